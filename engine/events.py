"""A tiny, Qt-free publish/subscribe primitive.

Engine objects expose :class:`Event` attributes; the GUI's bridge (``desktop/bridge.py``), the tray and the
CLI connect plain callables to them. Callbacks run synchronously in the emitter's thread (the asyncio loop's
thread for everything in the engine).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Event(Generic[T]):
    """A list of subscribers for one kind of message."""

    def __init__(self, name: str = "event") -> None:
        self._name = name
        # A tuple, replaced on (dis)connect: emit (once per streamed token) iterates it without a copy, and a
        # subscriber that disconnects during an emit does not disturb it.
        self._subscribers: tuple[Callable[[T], object], ...] = ()

    def connect(self, callback: Callable[[T], object]) -> Callable[[], None]:
        """Subscribe; returns a function that unsubscribes."""
        self._subscribers = (*self._subscribers, callback)
        return lambda: self.disconnect(callback)

    def disconnect(self, callback: Callable[[T], object]) -> None:
        if callback in self._subscribers:
            subscribers = list(self._subscribers)
            subscribers.remove(callback)
            self._subscribers = tuple(subscribers)

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def emit(self, value: T) -> None:
        # A broken subscriber must not break the emitter (a GUI slot failing must not kill the supervisor).
        for callback in self._subscribers:
            try:
                callback(value)
            except Exception:
                log.exception("subscriber of %s failed", self._name)


def on_loop(callback: Callable[[T], object] | None) -> Callable[[T], None]:
    """A callback that worker threads may call: ``callback`` then runs on the event loop running now (the
    caller's), in order. ``None`` gives a callback that does nothing."""
    loop = asyncio.get_running_loop()

    def relay(value: T) -> None:
        if callback is not None:
            loop.call_soon_threadsafe(callback, value)

    return relay
