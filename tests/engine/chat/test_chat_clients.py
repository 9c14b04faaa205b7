"""Kept clients: one warmed generator per endpoint across turns, retired when the endpoint changes, closed on
shutdown — against the stand-in process."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from engine.chat.engine import ChatEngine, ChatTimeouts
from engine.chat.generation import GenerationSettings
from engine.chat.generator import GeneratorPool
from engine.history.async_store import AsyncHistoryStore
from tests.support.standin.launch import running_standin

pytestmark = pytest.mark.asyncio


async def test_turns_on_one_endpoint_share_one_warmed_client(store: AsyncHistoryStore) -> None:
    with running_standin("--reply", "Fine.") as server:
        engine = ChatEngine(store, server.endpoint)
        await engine.warm_up()
        pool = engine.generators
        assert len(pool) == 1
        async with pool.lease(server.endpoint()) as generator:
            client = generator.async_client
        assert client is not None
        conv = await engine.new_conversation()
        completion = await engine.new_conversation(settings=GenerationSettings(mode="completion"))
        for conversation_id in (conv.id, conv.id, completion.id):
            turn = await engine.send(conversation_id, "How are you")
            assert (await turn.wait()).text == "Fine."
        async with pool.lease(server.endpoint()) as generator:
            assert generator.async_client is client  # no client was built for the three turns
        assert len(pool) == 1
        await engine.shutdown()
        assert generator.async_client is None
        assert len(pool) == 0
        # A turn after shutdown builds its client again.
        again = await engine.send(conv.id, "Still there?")
        assert (await again.wait()).text == "Fine."
        await engine.shutdown()


async def test_a_changed_endpoint_retires_the_old_client_once_its_turn_ends() -> None:
    with running_standin("--reply", "A.") as first, running_standin("--reply", "B.") as second:
        pool = GeneratorPool(ChatTimeouts().for_endpoint)
        async with pool.lease(first.endpoint()) as old:
            async with pool.lease(second.endpoint()) as new:
                assert new is not old
                assert old.async_client is not None  # still in use by a running turn: kept open
                assert len(pool) == 2
            reply = await old.run_async("hi")
            assert reply["replies"][0].text == "A."
        assert old.async_client is None  # released by its last turn: closed
        assert len(pool) == 1
        async with pool.lease(second.endpoint()) as same:
            assert same is new
            assert (await same.run_async("hi"))["replies"][0].text == "B."
        async with pool.lease(replace(second.endpoint(), api_key="other-key")) as keyed:
            assert keyed is not new  # a new key is a new endpoint
        assert new.async_client is None
        await pool.aclose()
        assert keyed.async_client is None


async def test_a_dead_server_still_fails_fast_with_a_kept_client(store: AsyncHistoryStore) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with running_standin("--reply", "up") as server:
        endpoint = server.endpoint()
        engine = ChatEngine(store, lambda: endpoint)
        conv = await engine.new_conversation()
        assert (await (await engine.send(conv.id, "one")).wait()).text == "up"
        endpoint = replace(endpoint, base_url=f"http://127.0.0.1:{port}/v1")
        turn = await engine.send(conv.id, "two")
        reply = await turn.wait()
        await engine.shutdown()
    assert reply.state == "failed"
    assert "127.0.0.1" in reply.error
