"""The app's qasync loop closes async generators dropped before their end in a task, as asyncio's loops do."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from desktop.event_loop import make_event_loop
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qloop")]


async def numbers(closed_in: list[asyncio.Task[object] | None]) -> AsyncIterator[int]:
    try:
        yield 1
        yield 2
    finally:
        closed_in.append(asyncio.current_task())


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
