"""Which failures of a turn read as the network and which as vLLM Desk's own error (engine.chat.errors).

Only a transport failure (the connection cut mid-reply) says the connection broke; an exception of the code
between the stream and the reply (Haystack's chunk conversion, a streaming callback) is an internal error that
names itself, keeps what arrived and the user's message, and is logged with its traceback. Haystack's
``ComponentError`` is looked through, so a network error it wraps still reads as the network.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from haystack.core.errors import ComponentError

import engine.chat.generator as generator_module
from engine.chat.engine import ChatEngine, Turn, TurnEvent
from engine.chat.errors import ConnectionLost, InternalFailure, ReplyUnreadable, from_openai_error
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import StoredMessage
from tests.support.standin.launch import running_standin
from tests.support.standin.server import WORDS

pytestmark = pytest.mark.asyncio

CHUNKS_BEFORE_FAILURE = 4  # the role chunk, then three tokens


async def _turn(store: AsyncHistoryStore, *options: str) -> tuple[list[TurnEvent], StoredMessage, list[str]]:
    """One chat turn ("Hello") against the stand-in; its events, the stored reply and the branch's texts."""
    with running_standin("--reply-tokens", "20", *options) as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn: Turn = await engine.send(conv.id, "Hello")
        events = [event async for event in turn]
        await engine.shutdown()
    tree = await store.load(conv.id)
    return events, await store.message(turn.reply_id), [m.text for m in tree.branch()]


def _failing_conversion(monkeypatch: pytest.MonkeyPatch, failure: BaseException) -> None:
    """Haystack's chunk conversion (a library step inside the generator) raises ``failure`` after a few
    chunks were converted and shown."""
    real = generator_module._convert_chat_completion_chunk_to_streaming_chunk
    calls = 0

    def convert(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > CHUNKS_BEFORE_FAILURE:
            raise failure
        return real(**kwargs)

    monkeypatch.setattr(generator_module, "_convert_chat_completion_chunk_to_streaming_chunk", convert)


async def test_a_stream_cut_mid_reply_still_says_the_connection_broke(store: AsyncHistoryStore) -> None:
    events, reply, texts = await _turn(store, "--fault", "drop-connection", "--fault-after", "3")
    assert isinstance(events[-1].error, ConnectionLost)
    assert "connection to the server broke in the middle of the reply" in reply.error
    assert texts == ["Hello", " ".join(WORDS[:3])]


async def test_an_exception_inside_the_generator_is_an_internal_error_not_the_network(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _failing_conversion(monkeypatch, ValueError("chunk has no choices"))
    with caplog.at_level(logging.ERROR, logger="engine.chat.errors"):
        events, reply, texts = await _turn(store)
    error = events[-1].error
    assert isinstance(error, InternalFailure)
    assert error.kind == "ValueError"
    assert reply.state == "failed"
    assert "internal error (ValueError: chunk has no choices)" in reply.error
    assert "not a network problem" in reply.error
    assert "written to the log" in reply.error
    assert "connection" not in reply.error
    assert texts == ["Hello", " ".join(WORDS[:3])]  # the user's message and what arrived are kept
    logged = [r for r in caplog.records if r.name == "engine.chat.errors"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[0] is ValueError  # the traceback the message points to


async def test_a_component_error_is_looked_through(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapped = ComponentError("Component 'llm' failed to run")
    wrapped.__cause__ = KeyError("usage")
    _failing_conversion(monkeypatch, wrapped)
    events, reply, texts = await _turn(store)
    error = events[-1].error
    assert isinstance(error, InternalFailure)
    assert error.kind == "KeyError"  # the real exception, not Haystack's wrapper
    assert "connection" not in reply.error
    assert texts == ["Hello", " ".join(WORDS[:3])]


async def test_a_network_error_wrapped_by_haystack_still_reads_as_the_network() -> None:
    wrapped = ComponentError("Component 'llm' failed to run")
    wrapped.__cause__ = httpx.ReadError("connection reset by peer")
    problem = from_openai_error(
        wrapped, base_url="http://127.0.0.1:1", model="m", read_timeout=5, started=True
    )
    assert isinstance(problem, ConnectionLost)
    assert problem.details == "ReadError: connection reset by peer"


async def test_a_stream_that_is_not_json_is_the_servers_fault(store: AsyncHistoryStore) -> None:
    events, reply, texts = await _turn(store, "--fault", "malformed-sse", "--fault-after", "2")
    error = events[-1].error
    assert isinstance(error, ReplyUnreadable)
    assert "not an OpenAI-compatible stream" in reply.error
    assert "{this is not json" in error.details
    assert texts == ["Hello", "alpha beta"]
