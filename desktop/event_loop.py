"""The asyncio loop inside Qt's (qasync), with what qasync leaves out.

**asyncio's async-generator hooks.** ``asyncio``'s own loops install ``sys.set_asyncgen_hooks`` while they
run, so an async generator dropped before its end (a cancelled chat stream: openai's ``AsyncStream`` → httpx
→ httpcore) is closed in a task. qasync's loop never installs them: such a generator is then finalised by the
garbage collector, outside any task, and httpcore's cleanup fails there ("unknown async library, or not in
async context") and leaves its connection half-closed. Installing the hooks gives the loop the standard
behaviour.

**Cancelled timers go at once.** qasync starts one Qt timer per scheduled callback and, when the callback is
cancelled, leaves the Qt timer running until it fires. Every network read has a timeout (httpx: the read
timeout, 120 s) that is cancelled when the read returns, so a 20,000-token reply left ~15,000 live Qt timers
behind, and Qt's sorted timer list is walked for every timer added (each ``call_soon``): a loop turn went
from ~20 to ~37 µs here, growing with the reply. :class:`DeskEventLoop` kills a cancelled callback's Qt timer
when it is cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import qasync
from PySide6.QtCore import QCoreApplication, QObject, QTimerEvent

HandleT = TypeVar("HandleT", bound=asyncio.Handle)


class _TimerHandle(asyncio.Handle):
    """A callback of :class:`_Timers`; cancelling it also kills its Qt timer."""

    __slots__ = ("_timer_id", "_timers")

    def __init__(
        self,
        timers: _Timers,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None,
    ) -> None:
        super().__init__(callback, args, loop, context=context)
        self._timers = timers
        self._timer_id = 0

    def started_as(self, timer_id: int) -> None:
        self._timer_id = timer_id

    def cancel(self) -> None:
        if not self._cancelled:
            super().cancel()
            self._timers.forget(self._timer_id)


class _Timers(QObject):
    """qasync's timer object (one Qt timer per callback; Qt calls ``timerEvent``), except that a cancelled
    callback's Qt timer is killed when it is cancelled, not left to fire."""

    def __init__(self) -> None:
        super().__init__()
        self._handles: dict[int, asyncio.Handle] = {}
        self._thread = threading.get_ident()  # Qt timers are started and killed in their object's thread only
        self._stopped = False

    def add_callback(self, handle: HandleT, delay: float = 0) -> HandleT:
        """Run ``handle`` after ``delay`` s: a :class:`_TimerHandle` (``call_later``), or a plain handle from
        asyncio's own loop code (a signal handler's, ``_add_callback_signalsafe``)."""
        timer_id = self.startTimer(int(max(0.0, delay) * 1000))
        if isinstance(handle, _TimerHandle):
            handle.started_as(timer_id)
        self._handles[timer_id] = handle
        return handle

    def forget(self, timer_id: int) -> None:
        """A cancelled callback: its timer is killed now (cancelled from another thread: when it fires)."""
        if threading.get_ident() == self._thread and self._handles.pop(timer_id, None) is not None:
            self.killTimer(timer_id)

    def timerEvent(self, event: QTimerEvent) -> None:
        timer_id = event.timerId()
        self.killTimer(timer_id)
        handle = self._handles.pop(timer_id, None)
        if handle is not None and not handle.cancelled() and not self._stopped:
            handle._run()  # noqa: SLF001 - how asyncio's own loops run a handle

    def stop(self) -> None:
        """The loop closed: no callback runs any more, and every timer goes now."""
        self._stopped = True
        if threading.get_ident() == self._thread:
            for timer_id in self._handles:
                self.killTimer(timer_id)
            self._handles.clear()

    def set_debug(self, enabled: bool) -> None:
        """qasync's loop passes its debug flag on; these timers have no debug output of their own."""

    def pending(self) -> int:
        """Callbacks scheduled and not yet run or cancelled."""
        return len(self._handles)


class DeskEventLoop(qasync.QEventLoop):  # type: ignore[misc]  # qasync has no type hints
    """qasync's loop whose cancelled callbacks take their Qt timers with them."""

    _timer: _Timers

    def __init__(self, app: QCoreApplication, *, already_running: bool = False) -> None:
        super().__init__(app, already_running=already_running)
        self._timer.stop()  # qasync's own timer object (nothing scheduled on it yet)
        self._timer = _Timers()

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        if asyncio.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with call_later")
        if not callable(callback):
            raise TypeError(f"callback must be callable: {type(callback).__name__}")
        return self._timer.add_callback(_TimerHandle(self._timer, callback, args, self, context), delay)


def make_event_loop(app: QCoreApplication, *, already_running: bool = False) -> DeskEventLoop:
    """The app's loop for ``app``, with asyncio's async-generator hooks installed for this thread."""
    loop = DeskEventLoop(app, already_running=already_running)
    install_asyncgen_hooks(loop)
    return loop


def install_asyncgen_hooks(loop: qasync.QEventLoop) -> Callable[[], None]:
    """Let ``loop`` close dropped async generators in a task; returns what puts the previous hooks back."""
    previous = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(
        firstiter=loop._asyncgen_firstiter_hook,  # noqa: SLF001 - asyncio's own hooks, as run_forever installs
        finalizer=loop._asyncgen_finalizer_hook,  # noqa: SLF001
    )

    def restore() -> None:
        sys.set_asyncgen_hooks(*previous)

    return restore
