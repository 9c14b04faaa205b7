"""Engine events to the GUI thread.

Engine objects expose :class:`engine.events.Event` attributes whose callbacks run in the emitter's thread.
:class:`EventBridge` makes a slot always run in the GUI thread: an event emitted there (the chat engine runs
on the qasync loop, in the GUI thread) calls the slot directly, with no Qt signal, so a stream of tokens
costs no Qt work per token; one emitted from a worker thread crosses through a queued Qt signal.
"""

from __future__ import annotations

import threading
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
        self._gui_thread = threading.get_ident()  # made by the window, in the GUI thread
        self._relays: list[_Relay] = []
        self._unsubscribers: list[Callable[[], None]] = []

    def connect_event(self, event: Event[Any], slot: Callable[[Any], object]) -> None:
        """Call ``slot(value)`` in the GUI thread whenever ``event`` fires."""
        relay = _Relay(self)
        relay.fired.connect(slot)
        self._relays.append(relay)
        gui_thread, emit = self._gui_thread, relay.fired.emit

        def deliver(value: Any) -> None:
            if threading.get_ident() == gui_thread:
                slot(value)  # what a same-thread signal would do, without the signal's cost
            else:
                emit(value)  # queued: the slot runs in the GUI thread

        self._unsubscribers.append(event.connect(deliver))

    def close(self) -> None:
        for unsubscribe in self._unsubscribers:
            unsubscribe()
        self._unsubscribers.clear()
        for relay in self._relays:
            relay.fired.disconnect()
            relay.deleteLater()
        self._relays.clear()
