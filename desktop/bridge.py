"""Engine events to Qt signals.

Engine objects expose :class:`engine.events.Event` attributes whose callbacks run in the emitter's thread.
:class:`EventBridge` relays each one through a Qt signal, so a slot always runs in the GUI thread (a queued
connection when the engine emits from a worker thread, a direct call when it emits on the qasync loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from engine.events import Event


class _Relay(QObject):
    fired = Signal(object)


class EventBridge(QObject):
    """Owns the subscriptions of one window; :meth:`close` drops them all."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._relays: list[_Relay] = []
        self._unsubscribers: list[Callable[[], None]] = []

    def connect_event(self, event: Event[Any], slot: Callable[[Any], object]) -> None:
        """Call ``slot(value)`` in the GUI thread whenever ``event`` fires."""
        relay = _Relay(self)
        relay.fired.connect(slot)
        self._relays.append(relay)
        self._unsubscribers.append(event.connect(relay.fired.emit))

    def close(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        for relay in self._relays:
            relay.fired.disconnect()
            relay.deleteLater()
        self._relays.clear()
