"""Issue 14.4 and the fault-injection suite: a hostile OpenAI-compatible server (the stand-in's ``--fault``).

Whatever the server does, a reply is ``complete`` only when the server said it was finished; otherwise what
arrived is kept, marked ``failed`` and explained, and the CLI exits non-zero. Runs in CI (no vLLM needed).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.chat.engine import ChatEngine, ChatTimeouts, Turn, TurnEvent
from engine.chat.errors import (
    ConnectionLost,
    ReplyIncomplete,
    ReplyStalled,
    ReplyUnreadable,
    RequestRejected,
    ServerFailed,
)
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import StoredMessage
from tests.support.standin.launch import REPO_ROOT, running_standin
from tests.support.standin.server import SERVER_500_MESSAGE, WORDS


@pytest_asyncio.fixture
async def store(app_paths) -> AsyncIterator[AsyncHistoryStore]:  # type: ignore[no-untyped-def]
    s = await AsyncHistoryStore.open(app_paths.history_db)
    yield s
    await s.close()


async def _turn(
    store: AsyncHistoryStore, *options: str, read: float = 120.0
) -> tuple[list[TurnEvent], StoredMessage]:
    with running_standin("--reply-tokens", "20", *options) as server:
        engine = ChatEngine(store, server.endpoint, timeouts=ChatTimeouts(read=read))
        conv = await engine.new_conversation()
        turn: Turn = await engine.send(conv.id, "Hello")
        events = [event async for event in turn]
        await engine.shutdown()
    return events, await store.message(turn.reply_id)


@pytest.mark.asyncio
async def test_a_stream_that_ends_without_finish_reason_is_not_complete(store: AsyncHistoryStore) -> None:
    events, reply = await _turn(store, "--fault", "close-stream", "--fault-after", "3")
    assert reply.state == "failed"
    assert reply.text == "".join((" " if i else "") + WORDS[i] for i in range(3))  # what arrived is kept
    assert isinstance(events[-1].error, ReplyIncomplete)
    assert "without saying it was finished" in reply.error


@pytest.mark.asyncio
async def test_a_dropped_connection_keeps_the_partial_and_says_so(store: AsyncHistoryStore) -> None:
    events, reply = await _turn(store, "--fault", "drop-connection", "--fault-after", "3")
    assert reply.state == "failed"
    assert reply.text.startswith("alpha beta gamma")
    assert isinstance(events[-1].error, ConnectionLost | ReplyIncomplete)


@pytest.mark.asyncio
async def test_keep_alives_do_not_hold_off_the_stall_timeout(store: AsyncHistoryStore) -> None:
    # The client's read timeout never fires (a comment every 0.2 s); the stall limit counts text only.
    events, reply = await _turn(store, "--fault", "keepalive", "--fault-after", "2", read=1.0)
    assert reply.state == "failed"
    assert reply.text == "alpha beta"
    assert isinstance(events[-1].error, ReplyStalled)


@pytest.mark.asyncio
async def test_keep_alives_before_any_text_also_stall(store: AsyncHistoryStore) -> None:
    events, reply = await _turn(store, "--fault", "keepalive", "--fault-after", "0", read=1.0)
    assert reply.state == "failed"
    assert reply.text == ""
    assert isinstance(events[-1].error, ReplyStalled)


@pytest.mark.asyncio
async def test_a_whole_json_answer_to_a_stream_request_is_not_an_empty_complete_reply(
    store: AsyncHistoryStore,
) -> None:
    events, reply = await _turn(store, "--fault", "json-not-stream")
    assert reply.state == "failed"
    error = events[-1].error
    assert isinstance(error, ReplyIncomplete)
    assert not error.streamed
    assert "not a streamed reply" in reply.error


@pytest.mark.asyncio
async def test_malformed_sse_fails_with_the_partial_kept(store: AsyncHistoryStore) -> None:
    events, reply = await _turn(store, "--fault", "malformed-sse", "--fault-after", "2")
    assert reply.state == "failed"
    assert reply.text == "alpha beta"
    assert isinstance(events[-1].error, ReplyUnreadable)  # the server's data, not the connection or a bug
    assert "not an OpenAI-compatible stream" in reply.error


@pytest.mark.asyncio
async def test_a_500_shows_the_servers_own_message(store: AsyncHistoryStore) -> None:
    events, reply = await _turn(store, "--fault", "http-500")
    error = events[-1].error
    assert isinstance(error, ServerFailed)
    assert SERVER_500_MESSAGE in str(error)
    assert SERVER_500_MESSAGE in reply.error
    assert reply.state == "failed"


@pytest.mark.asyncio
async def test_an_html_error_page_becomes_its_text(store: AsyncHistoryStore) -> None:
    events, reply = await _turn(store, "--fault", "html-error")
    error = events[-1].error
    assert isinstance(error, ServerFailed | RequestRejected)
    assert "502 Bad Gateway" in str(error)
    assert "<" not in str(error)
    assert reply.state == "failed"


def test_the_cli_exits_non_zero_for_a_cut_off_reply(tmp_path: Path) -> None:
    with running_standin("--reply-tokens", "20", "--fault", "close-stream", "--fault-after", "3") as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "--data-dir",
                str(tmp_path / "desk"),
                "chat",
                "--base-url",
                server.endpoint().base_url,
                "Hello",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert "alpha beta gamma" in done.stdout
    assert "failed" in done.stderr
    assert "without saying it was finished" in done.stderr


@pytest.mark.asyncio
async def test_a_cut_off_completion_is_not_complete_either(store: AsyncHistoryStore) -> None:
    from engine.chat.generation import GenerationSettings

    with running_standin("--reply-tokens", "20", "--fault", "close-stream", "--fault-after", "4") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation(settings=GenerationSettings(mode="completion"))
        turn = await engine.send(conv.id, "Once upon a time")
        events = [event async for event in turn]
        await engine.shutdown()
    reply = await store.message(turn.reply_id)
    assert reply.state == "failed"
    assert reply.text == "alpha beta gamma delta"
    assert isinstance(events[-1].error, ReplyIncomplete)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://alice:pw@host:8000/v1", "http://***@host:8000/v1"),
        ("see https://tok@example.com and http://x:y@h", "see https://***@example.com and http://***@h"),
        ("http://host/v1?email=a@b.c", "http://host/v1?email=a@b.c"),
    ],
)
def test_urls_lose_their_credentials(text: str, shown: str) -> None:
    from engine.chat.errors import redact_url

    assert redact_url(text) == shown
