"""The app's qasync loop closes async generators dropped before their end in a task, as asyncio's loops do."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from openai import AsyncOpenAI
from PySide6.QtCore import QAbstractEventDispatcher

from desktop.event_loop import make_event_loop
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [pytest.mark.gui]
VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="no context")


async def numbers(closed_in: list[asyncio.Task[object] | None]) -> AsyncIterator[int]:
    try:
        yield 1
        yield 2
    finally:
        closed_in.append(asyncio.current_task())


@pytest.mark.usefixtures("qloop")
def test_a_dropped_generator_is_closed_in_a_task(qtbot) -> None:  # type: ignore[no-untyped-def]
    closed_in: list[asyncio.Task[object] | None] = []

    async def started() -> AsyncIterator[int]:
        generator = numbers(closed_in)
        assert await anext(generator) == 1
        return generator

    generator = run(qtbot, started())
    del generator  # dropped at its first value, outside any task (as the garbage collector drops one)
    gc.collect()
    qtbot.waitUntil(lambda: bool(closed_in))
    assert closed_in[0] is not None  # closed by the loop, in a task; the garbage collector would have no task


@pytest.mark.usefixtures("qloop")
def test_a_chat_stream_dropped_mid_reply_closes_without_an_error(qtbot) -> None:  # type: ignore[no-untyped-def]
    # Without the hooks httpcore's cleanup runs in the garbage collector and raises "unknown async library"
    # (pytest reports it as an unraisable exception, and the suite fails on warnings).
    with running_standin("--reply-tokens", "400", "--tokens-per-second", "200") as server:
        client = AsyncOpenAI(api_key="none", base_url=server.base_url, max_retries=0)

        async def first_token() -> str:
            stream = await client.chat.completions.create(
                model=server.model, messages=[{"role": "user", "content": "Count"}], stream=True
            )
            async for chunk in stream:
                return chunk.id  # the stream is dropped here, mid-reply, without close()
            return ""

        assert run(qtbot, first_token())
        gc.collect()
        for _ in range(20):
            qtbot.wait(10)  # let the loop run the aclose() tasks
        run(qtbot, client.close())


def test_the_app_loop_has_the_hooks(qapp) -> None:  # type: ignore[no-untyped-def]
    previous = sys.get_asyncgen_hooks()
    loop = make_event_loop(qapp)
    try:
        hooks = sys.get_asyncgen_hooks()
        assert hooks.firstiter == loop._asyncgen_firstiter_hook
        assert hooks.finalizer == loop._asyncgen_finalizer_hook
    finally:
        sys.set_asyncgen_hooks(*previous)
        loop.close()


@pytest.fixture
def app_loop(qapp) -> Iterator[asyncio.AbstractEventLoop]:  # type: ignore[no-untyped-def]
    """The app's loop, driven here by run_until_complete (not the qloop fixture's loop)."""
    previous = sys.get_asyncgen_hooks()
    loop = make_event_loop(qapp)
    try:
        yield loop
    finally:
        sys.set_asyncgen_hooks(*previous)
        loop.close()


def qt_timers(loop: asyncio.AbstractEventLoop) -> int:
    return len(QAbstractEventDispatcher.instance().registeredTimers(loop._timer))  # type: ignore[attr-defined]


def test_a_cancelled_callback_takes_its_qt_timer_with_it(app_loop) -> None:  # type: ignore[no-untyped-def]
    # Every network read's timeout is scheduled and then cancelled: qasync left each one a live Qt timer
    # until it would have fired, thousands of them by the end of a long reply.
    handles = [app_loop.call_later(120, lambda: None) for _ in range(50)]
    assert qt_timers(app_loop) == 50
    for handle in handles:
        handle.cancel()
        handle.cancel()  # twice is harmless
    assert qt_timers(app_loop) == 0

    async def reads() -> None:  # what a stream's reads do: a timeout per read, cancelled when it returns
        for _ in range(200):
            async with asyncio.timeout(120):
                await asyncio.sleep(0)

    app_loop.run_until_complete(reads())
    assert qt_timers(app_loop) == 0


def test_callbacks_run_in_order_and_a_cancelled_one_never(app_loop) -> None:  # type: ignore[no-untyped-def]
    ran: list[str] = []
    app_loop.call_later(0.05, ran.append, "late")
    app_loop.call_soon(ran.append, "first")
    app_loop.call_soon(ran.append, "second")
    app_loop.call_later(0.01, ran.append, "cancelled").cancel()
    app_loop.call_at(app_loop.time() + 0.02, ran.append, "at")
    other_thread = app_loop.call_later(0.01, ran.append, "cancelled in another thread")
    worker = threading.Thread(target=other_thread.cancel)
    worker.start()
    worker.join()
    context = contextvars.copy_context()
    context.run(VAR.set, "from the context")
    app_loop.call_soon(lambda: ran.append(VAR.get()), context=context)
    app_loop.run_until_complete(asyncio.sleep(0.2))
    assert ran == ["first", "second", "from the context", "at", "late"]
    assert qt_timers(app_loop) == 0
    with pytest.raises(TypeError, match="coroutines cannot be used"):
        app_loop.call_soon(asyncio.sleep)


def test_closing_the_loop_kills_its_timers_and_runs_nothing_more(qapp) -> None:  # type: ignore[no-untyped-def]
    previous = sys.get_asyncgen_hooks()
    loop = make_event_loop(qapp)
    sys.set_asyncgen_hooks(*previous)
    ran: list[int] = []
    loop.call_later(0.01, ran.append, 1)
    loop.close()
    assert qt_timers(loop) == 0
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:
        qapp.processEvents()
    assert ran == []


def test_a_signal_handler_runs_on_the_app_loop(app_loop) -> None:  # type: ignore[no-untyped-def]
    # asyncio's own signal handling schedules a plain handle on the loop (not one of call_later's); the app
    # quits on SIGTERM through it.
    received: list[int] = []
    handled = asyncio.Event()

    def on_signal(signum: int) -> None:
        received.append(signum)
        handled.set()

    app_loop.add_signal_handler(signal.SIGUSR1, on_signal, signal.SIGUSR1)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        app_loop.run_until_complete(asyncio.wait_for(handled.wait(), 10))
    finally:
        app_loop.remove_signal_handler(signal.SIGUSR1)
    assert received == [signal.SIGUSR1]
    assert qt_timers(app_loop) == 0
