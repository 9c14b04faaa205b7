"""User actions as small operations (after Anki's ``CollectionOp``).

``Operation(button, lambda: engine.do_it()).success(on_done).run()`` runs one awaited engine call on the
qasync loop, disables the control while it runs, sends a failure to the one error renderer
(:mod:`desktop.errors`) unless a ``failure`` callback takes it, and enables the control again. Nothing goes
to ``sys.excepthook`` as a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from PySide6.QtWidgets import QWidget
from shiboken6 import isValid

from desktop import errors

T = TypeVar("T")
log = logging.getLogger(__name__)

_running: set[asyncio.Task[Any]] = set()


def running() -> set[asyncio.Task[Any]]:
    """Operations still in flight (the app cancels them at exit; tests check none is left)."""
    return set(_running)


async def cancel_all() -> None:
    """Cancel every operation in flight and wait for them to finish."""
    loop = asyncio.get_running_loop()
    tasks = {t for t in running() if t.get_loop() is loop and not t.done()}
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


class Operation(Generic[T]):
    """One awaited engine call started by the user."""

    def __init__(self, parent: QWidget | None, coro_factory: Callable[[], Awaitable[T]]) -> None:
        self._parent = parent
        self._factory = coro_factory
        self._on_success: Callable[[T], object] | None = None
        self._on_failure: Callable[[BaseException], object] | None = None

    def success(self, callback: Callable[[T], object]) -> Operation[T]:
        self._on_success = callback
        return self

    def failure(self, callback: Callable[[BaseException], object]) -> Operation[T]:
        """Handle the failure yourself (it then does not reach the error renderer)."""
        self._on_failure = callback
        return self

    def run(self) -> asyncio.Task[None]:
        if self._parent is not None:
            self._parent.setEnabled(False)
        task = asyncio.ensure_future(self._run())
        _running.add(task)
        task.add_done_callback(_running.discard)
        # A done callback, not a ``finally``: a task cancelled before its first step never runs its body.
        task.add_done_callback(self._enable)
        return task

    def _enable(self, _task: object) -> None:
        if self._parent is not None and _alive(self._parent):
            self._parent.setEnabled(True)

    async def _run(self) -> None:
        try:
            result = await self._factory()
        except asyncio.CancelledError:
            log.debug("operation cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 - the one place user actions' failures are caught
            self._fail(exc)
        else:
            if self._on_success is not None:
                self._guard(self._on_success, result)

    def _fail(self, exc: BaseException) -> None:
        if self._on_failure is None:
            errors.report(exc)
        else:
            self._guard(self._on_failure, exc)

    @staticmethod
    def _guard(callback: Callable[[Any], object], value: Any) -> None:
        # A broken callback is a bug in the GUI: report it once, keep the app running.
        try:
            callback(value)
        except Exception as exc:  # noqa: BLE001 - a broken callback is reported, not raised
            errors.report(exc)


def _alive(widget: QWidget) -> bool:
    return bool(isValid(widget))
