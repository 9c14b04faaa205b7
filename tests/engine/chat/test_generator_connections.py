"""Kept connections of the chat's client, against the stand-in process (which closes idle connections as
uvicorn under vLLM does): turns reuse one connection, a connection the server dropped while idle is never an
error, the window's early connect is the one the turn uses, and shutdown closes what was kept."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from engine.chat.engine import ChatEngine, ChatTimeouts
from engine.chat.generator import KEEP_ALIVE_MARGIN_S, GeneratorPool, client_kwargs
from engine.endpoint import Endpoint
from engine.history.async_store import AsyncHistoryStore
from tests.support.standin.launch import start_standin

pytestmark = pytest.mark.asyncio


async def until(condition: Callable[[], bool], what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


CHAT = "POST /v1/chat/completions"


async def test_only_a_launched_servers_connections_are_kept_short_of_its_keep_alive() -> None:
    local = Endpoint(base_url="http://127.0.0.1:8000/v1", model="m")
    launched = replace(local, keep_alive_s=600)
    remote = replace(local, base_url="https://llm.example.org/v1", kind="remote")
    assert client_kwargs(launched)["limits"].keepalive_expiry == 600 - KEEP_ALIVE_MARGIN_S
    assert client_kwargs(launched)["limits"].max_keepalive_connections > 0
    assert client_kwargs(replace(launched, keep_alive_s=2))["limits"].keepalive_expiry == 1  # never past it
    assert client_kwargs(local)["limits"].max_keepalive_connections == 0  # not launched: keep-alive unknown
    assert "limits" not in client_kwargs(remote)  # httpx's own: kept for 5 s
    assert client_kwargs(local)["verify"] is client_kwargs(remote)["verify"]  # one TLS context for all


async def test_turns_reuse_one_connection_and_shutdown_closes_it(store: AsyncHistoryStore) -> None:
    server = start_standin("--reply", "Fine.", env={"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "600"})
    try:
        endpoint = replace(server.endpoint(), keep_alive_s=600)
        engine = ChatEngine(store, lambda: endpoint)
        conv = await engine.new_conversation()
        for text in ("one", "two", "three"):
            assert (await (await engine.send(conv.id, text)).wait()).text == "Fine."
        await until(lambda: len(server.client_ports(CHAT)) == 3, "three requests logged")
        assert len(set(server.client_ports(CHAT))) == 1
        assert server.open_connections() == 1  # kept, idle
        await engine.shutdown()
        # The server keeps idle connections for 600 s: only the client's close ends it.
        await until(lambda: not server.open_connections(), "the kept connection closed by shutdown")
    finally:
        server.stop()


async def test_a_connection_the_server_dropped_while_idle_is_not_an_error(store: AsyncHistoryStore) -> None:
    # The client was told 600 s and keeps its connection; the server drops it after 0.5 s idle.
    server = start_standin("--reply", "Fine.", env={"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "0.5"})
    try:
        endpoint = replace(server.endpoint(), keep_alive_s=600)
        engine = ChatEngine(store, lambda: endpoint)
        conv = await engine.new_conversation()
        assert (await (await engine.send(conv.id, "one")).wait()).text == "Fine."
        await until(lambda: not server.open_connections(), "the server closed the idle connection")
        second = await (await engine.send(conv.id, "two")).wait()
        assert second.state == "complete"
        assert second.text == "Fine."
        await until(lambda: len(server.client_ports(CHAT)) == 2, "two requests logged")
        first_port, second_port = server.client_ports(CHAT)
        assert first_port != second_port  # a new connection, not the dropped one
        await engine.shutdown()
    finally:
        server.stop()


async def test_connect_opens_the_connection_the_next_turn_uses() -> None:
    server = start_standin("--reply", "Fine.", env={"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "600"})
    pool = GeneratorPool(ChatTimeouts().for_endpoint)
    try:
        endpoint = replace(server.endpoint(), keep_alive_s=600)
        await pool.connect(endpoint)
        await until(lambda: len(server.client_ports("GET /health")) == 2, "the connect's /health logged")
        connected = server.client_ports("GET /health")[-1]  # the first: start_standin's own readiness check
        assert server.open_connections() == 1
        async with pool.lease(endpoint) as generator:
            assert (await generator.run_async("hi"))["replies"][0].text == "Fine."
        await until(lambda: len(server.client_ports(CHAT)) == 1, "the turn logged")
        assert server.client_ports(CHAT) == [connected]
    finally:
        await pool.aclose()
        server.stop()


async def test_connect_asks_nothing_where_connections_are_not_kept() -> None:
    server = start_standin("--reply", "Fine.")
    pool = GeneratorPool(ChatTimeouts().for_endpoint)
    try:
        await pool.connect(server.endpoint())  # a local server the app did not launch
        async with pool.lease(server.endpoint()) as generator:
            assert (await generator.run_async("hi"))["replies"][0].text == "Fine."
        await until(lambda: len(server.client_ports(CHAT)) == 1, "the turn logged")
        assert len(server.client_ports("GET /health")) == 1  # start_standin's own readiness check only
    finally:
        await pool.aclose()
        server.stop()


async def test_connect_to_a_server_that_is_not_there_says_nothing() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    pool = GeneratorPool(ChatTimeouts().for_endpoint)
    await pool.connect(Endpoint(base_url=f"http://127.0.0.1:{port}/v1", model="m", keep_alive_s=600))
    await pool.aclose()
