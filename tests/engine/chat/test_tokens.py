"""The context meter: /tokenize when the server has it, an estimate when not, and the drop-oldest plan."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from engine.chat.tokens import ContextMeter, ContextUsage, drop_oldest, estimate_tokens, most_tokens
from engine.endpoint import Endpoint
from tests.support.standin.launch import running_standin


class _NoTokenize(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible server of another brand: /v1/models only, no /tokenize."""

    calls: ClassVar[list[str]] = []
    limit: ClassVar[int | None] = 100

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.calls.append(self.path)
        model: dict[str, Any] = {"id": "other"}
        if self.limit is not None:
            model["max_model_len"] = self.limit
        body = json.dumps({"data": [model]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.calls.append(self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def plain_server() -> Iterator[Endpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoTokenize)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _NoTokenize.calls = []
    _NoTokenize.limit = 100
    yield Endpoint(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", model="other")
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_drop_oldest_keeps_the_system_prompt_and_the_newest_question() -> None:
    msgs = [
        ("system", "S"),
        ("user", "u1"),
        ("assistant", "a1"),
        ("user", "u2"),
        ("assistant", "a2"),
        ("user", "u3"),
    ]
    assert drop_oldest(msgs, 0) == msgs
    assert drop_oldest(msgs, 1) == [("system", "S"), ("user", "u2"), ("assistant", "a2"), ("user", "u3")]
    assert drop_oldest(msgs, 99) == [("system", "S"), ("user", "u3")]


def test_usage_fits_and_fraction() -> None:
    assert ContextUsage(used=90, limit=100, reserve=10).fits
    assert not ContextUsage(used=91, limit=100, reserve=10).fits
    assert ContextUsage(used=10_000, limit=None).fits  # unknown limit: the server will say
    assert ContextUsage(used=50, limit=100).fraction == 0.5


@pytest.mark.asyncio
async def test_counts_with_the_servers_tokenize() -> None:
    with running_standin("--max-model-len", "64") as server:
        meter = ContextMeter()
        endpoint = Endpoint(base_url=server.base_url, model="standin")  # no max_model_len: asks /v1/models
        usage = await meter.measure(endpoint, [("user", "one two three")], draft="four five")
    assert usage.exact
    assert usage.used == 5  # the stand-in's tokenizer: one token per word
    assert usage.limit == 64


@pytest.mark.asyncio
async def test_falls_back_to_an_estimate_and_remembers_there_is_no_tokenize(plain_server: Endpoint) -> None:
    meter = ContextMeter()
    messages = [("user", "x" * 400)]
    first = await meter.measure(plain_server, messages)
    assert not first.exact
    assert first.used == estimate_tokens(messages)
    assert first.limit == 100
    await meter.measure(plain_server, messages)
    assert _NoTokenize.calls.count("/tokenize") == 1
    assert _NoTokenize.calls.count("/v1/models") == 1


@pytest.mark.asyncio
async def test_plan_names_the_fewest_turns_to_drop(plain_server: Endpoint) -> None:
    meter = ContextMeter()
    turn = [("user", "q" * 80), ("assistant", "a" * 80)]  # ~48 estimated tokens a turn
    plan = await meter.plan(plain_server, turn * 3, draft="short question")
    assert not plan.fits
    assert plan.drop_oldest_turns == 2
    trimmed = drop_oldest([*turn * 3, ("user", "short question")], 2)
    assert (await meter.measure(plain_server, trimmed)).fits
    hopeless = await meter.plan(plain_server, turn, draft="z" * 1000)
    assert hopeless.drop_oldest_turns is None


@pytest.mark.asyncio
async def test_plan_asks_the_server_only_when_the_turn_might_not_fit(plain_server: Endpoint) -> None:
    _NoTokenize.limit = 100_000
    meter = ContextMeter()
    messages = [("system", "Be brief."), ("user", "Größe?"), ("assistant", "Ja.")]
    plan = await meter.plan(plain_server, messages, draft="und noch eine Frage", reserve=500)
    assert plan.fits
    assert not plan.usage.exact
    assert plan.usage.used == most_tokens([*messages, ("user", "und noch eine Frage")])
    assert plan.usage.used >= len("Größe?".encode())  # bytes, not characters: a bound for any tokenizer
    assert "/tokenize" not in _NoTokenize.calls  # clearly fits: no round trip before the turn
    _NoTokenize.limit = None
    unknown = await ContextMeter().plan(plain_server, messages, draft="x" * 10_000)
    assert unknown.fits  # no known limit: nothing to refuse, nothing counted
    assert unknown.usage.limit is None
    assert "/tokenize" not in _NoTokenize.calls
    _NoTokenize.limit = 300
    near = await ContextMeter().plan(plain_server, messages, draft="x" * 1200)
    assert "/tokenize" in _NoTokenize.calls  # might not fit: counted (here by estimate, the server has none)
    assert not near.fits
    await meter.aclose()
