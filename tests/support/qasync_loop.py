"""The app's qasync loop for GUI tests (FACTS.md: ``QEventLoop(qapp, already_running=True)`` driven by qtbot).

Import the fixture in a test module: ``from tests.support.qasync_loop import qloop  # noqa: F401``. Teardown
fails the test if asyncio tasks are still pending or threads it started are still running.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


@pytest.fixture
def qloop(qapp: Any) -> Iterator[asyncio.AbstractEventLoop]:
    from desktop.event_loop import make_event_loop

    threads_before = set(threading.enumerate())
    hooks_before = sys.get_asyncgen_hooks()
    loop = make_event_loop(qapp, already_running=True)  # the app's own loop
    asyncio.set_event_loop(loop)
    yield loop
    # Streams the test dropped (a window closed mid-reply) close now, in tasks, as in the app.
    gc.collect()
    closing = asyncio.ensure_future(loop.shutdown_asyncgens(), loop=loop)
    deadline = time.monotonic() + 5
    while (not closing.done() or _closing_generators(loop)) and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.005)
    sys.set_asyncgen_hooks(*hooks_before)
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        # Let the cancellations run before closing.
        deadline = time.monotonic() + 5
        while any(not t.done() for t in pending) and time.monotonic() < deadline:
            qapp.processEvents()
            time.sleep(0.01)
    # Not loop.stop(): it calls QApplication.exit(), after which a later test's loop never wakes its tasks
    # (measured: the second test's run_in_executor future finished but its task was never resumed).
    loop._QEventLoop__is_running = False
    asyncio.events._set_running_loop(None)
    # close() kills the loop's Qt timers here, in the GUI thread: if the loop were garbage-collected later in
    # a worker thread, ~QObject would stop timers from the wrong thread ("Timers cannot be stopped from
    # another thread", then a crash).
    loop.close()
    asyncio.set_event_loop(None)
    assert loop._timer.pending() == 0
    gc.collect()  # windows and loops of this test die now, in this thread
    deadline = time.monotonic() + 5
    leaked: list[threading.Thread] = []
    while time.monotonic() < deadline:
        leaked = [
            t for t in threading.enumerate() if t not in threads_before and t.is_alive() and not t.daemon
        ]
        if not leaked:
            break
        time.sleep(0.05)
    names = [repr(t) for t in pending]
    assert not pending, f"asyncio tasks left pending at teardown: {names}"
    assert not leaked, f"threads left running at teardown: {[t.name for t in leaked]}"


def _closing_generators(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    """The loop's tasks still closing a dropped async generator (``aclose()`` from the finalizer hook)."""
    return [
        task
        for task in asyncio.all_tasks(loop)
        if not task.done() and type(task.get_coro()).__name__ == "async_generator_athrow"
    ]


def run(qtbot: Any, awaitable: Awaitable[T], timeout: float = 20.0) -> T:
    """Run ``awaitable`` on the (already running) qasync loop while qtbot processes events."""
    task = asyncio.ensure_future(awaitable)
    qtbot.waitUntil(task.done, timeout=int(timeout * 1000))
    return task.result()
