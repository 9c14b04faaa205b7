"""A proxy from the environment never sees a local server or its key; a remote server still goes through it.

The "proxy" is a socket server in the test that records every request reaching it and answers 502.
"""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from engine.chat.engine import ChatEngine
from engine.chat.generation import GenerationSettings
from engine.chat.generator import client_kwargs
from engine.chat.tokens import ContextMeter
from engine.cli.chat import ChatArgumentProblem, remote_endpoint
from engine.endpoint import Endpoint, uses_env_proxy
from engine.history.async_store import AsyncHistoryStore
from engine.server.metrics import MetricsPoller, MetricsSample, fetch_metrics
from tests.support.standin.launch import Standin, running_standin

KEY = "sk-local-key-the-proxy-must-never-see"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class _Recorder(socketserver.BaseRequestHandler):
    server: _RecordingProxy

    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            head = self.request.recv(65536)
        except OSError:
            head = b""
        self.server.requests.append(head.decode("latin-1"))
        self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class _RecordingProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[_RecordingProxy]:
    """The recording proxy, named in every proxy variable of the environment (no NO_PROXY exceptions)."""
    server = _RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in PROXY_VARS:
        monkeypatch.setenv(name, server.url)
        monkeypatch.setenv(name.lower(), server.url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def standin() -> Iterator[Standin]:
    # Started before the proxy variables are set: its own readiness check is not under test.
    with running_standin("--reply", "Fine.", api_key=KEY) as server:
        yield server


REMOTE = Endpoint(
    base_url="http://team-server.invalid/v1",
    model="m",
    api_key="sk-remote",
    max_model_len=2048,
    kind="remote",
)


def test_only_remote_servers_off_this_machine_use_the_proxy() -> None:
    assert not uses_env_proxy("http://127.0.0.1:8000/v1", "local")
    assert not uses_env_proxy("http://gpu-box.lan:8000/v1", "local")  # launched here, bound to a LAN address
    for url in ("http://localhost:8000/v1", "http://127.0.0.2:1/v1", "http://[::1]:8000/v1"):
        assert not uses_env_proxy(url, "remote"), url  # e.g. an SSH tunnel: no proxy can reach it
    assert uses_env_proxy("https://team.example.com/v1", "remote")
    assert uses_env_proxy("http://10.0.0.5:8000/v1", "remote")
    assert client_kwargs(REMOTE)["trust_env"] is True
    assert client_kwargs(replace(REMOTE, kind="local"))["trust_env"] is False


@pytest.mark.asyncio
async def test_a_local_server_is_never_reached_through_the_proxy(
    standin: Standin, proxy: _RecordingProxy, store: AsyncHistoryStore
) -> None:
    endpoint = standin.endpoint()
    assert endpoint.kind == "local"

    # A chat turn and a completion turn (the openai client that Haystack builds, shared by both).
    engine = ChatEngine(store, standin.endpoint)
    try:
        for mode in ("chat", "completion"):
            conv = await engine.new_conversation(settings=GenerationSettings(mode=mode))
            reply = await (await engine.send(conv.id, "How are you?")).wait()
            assert (reply.state, reply.text) == ("complete", "Fine."), mode
    finally:
        await engine.shutdown()

    # The context meter: /v1/models for the limit (none given here), /tokenize for an exact count.
    meter = ContextMeter()
    try:
        usage = await meter.measure(replace(endpoint, max_model_len=None), [("user", "Hello there")])
    finally:
        await meter.aclose()
    assert usage.exact
    assert usage.limit == 2048

    # Metrics: one reading, and the poller's own client.
    assert isinstance(await fetch_metrics(endpoint), MetricsSample)
    poller = MetricsPoller(interval=0.05)
    polled = asyncio.Event()
    poller.metrics.connect(lambda _sample: polled.set())
    poller.set_endpoint(endpoint)
    try:
        await asyncio.wait_for(polled.wait(), 10)
    finally:
        await poller.aclose()

    # The command line's --base-url without --model asks the server which models it serves.
    found = await remote_endpoint(standin.base_url, None, KEY)
    assert (found.model, found.kind) == ("standin", "local")

    assert proxy.requests == []


@pytest.mark.asyncio
async def test_a_remote_server_still_goes_through_the_proxy(
    proxy: _RecordingProxy, store: AsyncHistoryStore
) -> None:
    engine = ChatEngine(store, lambda: REMOTE)
    try:
        conv = await engine.new_conversation()
        reply = await (await engine.send(conv.id, "Hello")).wait()
    finally:
        await engine.shutdown()
    assert reply.state != "complete"

    meter = ContextMeter()
    try:
        _count, exact = await meter.count(REMOTE, [("user", "Hello")])
    finally:
        await meter.aclose()
    assert not exact  # the proxy's 502 leaves the estimate

    with pytest.raises(httpx.HTTPStatusError):
        await fetch_metrics(REMOTE)
    with pytest.raises(ChatArgumentProblem):
        await remote_endpoint("http://team-server.invalid", None, "sk-remote")

    targets = sorted(request.split(" ", 2)[1] for request in proxy.requests)
    assert targets == [
        "http://team-server.invalid/metrics",
        "http://team-server.invalid/tokenize",
        "http://team-server.invalid/v1/chat/completions",
        "http://team-server.invalid/v1/models",
    ]
