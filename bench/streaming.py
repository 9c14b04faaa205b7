"""Streaming overhead: time to first token and tokens delivered, app chat engine vs a raw httpx stream.

App: ``engine.chat.engine.ChatEngine`` over ``AsyncHistoryStore`` (Haystack ``OpenAIChatGenerator`` path, the
reply
saved as it streams, the context check included) — from ``send()`` to the first ``token`` event.
Baseline: one persistent ``httpx.AsyncClient`` reading the SSE stream of the same request — the physical
limit of the server and the socket. Requests alternate (raw, app, app, raw, ...) so both see the same noise;
the added latency is the per-pair difference. Servers: the stand-in at 1,000 and 10,000 tok/s and the real
vLLM on the CPU (built-in model, temperature 0), each started as the app's supervisor starts vLLM (idle
connections kept for ``SERVER_KEEP_ALIVE_S``, which the app's endpoint says): the app keeps its connection
between turns as it does with the server it launched, and so does the raw client.

A third case sends into one conversation of 2,000 messages (the stand-in at 1,000 tok/s), the raw stream
carrying the same messages: once as the command line does (``send()`` reads the conversation) and once as
the window does (it passes the shown conversation it holds, reloaded after each turn as the window does
after a reply — not timed), so the added time's growth with the conversation shows.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from bench.context import BenchContext
from bench.result import BenchResult, Goal, Metric, SubjectMissing
from bench.servers import real_vllm, standin_launcher
from bench.stats import median, percentile
from bench.ttft_proxy import Exchange, ProxyProcess, proxied

PROMPT = "Write a short story about a lighthouse keeper."
LONG_MESSAGES = 2000


@dataclass
class Sample:
    ttft_ms: float
    total_ms: float
    tokens: int
    text: str
    stored_ok: bool = True
    send_ms: float = 0.0  # app only: until send() returned (history writes + context check)
    start: float = 0.0  # monotonic seconds: the request began (raw) / send() was called (app)
    first: float = 0.0  # monotonic seconds: the first token in the client's hands
    exchange: Exchange | None = None  # the chat request as the proxy saw it
    gc_ms: float = 0.0  # app only: the garbage collector's pauses between start and first

    @property
    def server_ms(self) -> float:
        """The server's span seen at the proxy: the request on the wire to its first token leaving."""
        span = self.exchange.server_span_s if self.exchange is not None else None
        if span is None:
            raise RuntimeError("the proxy saw no first token for this request")
        return span * 1000

    @property
    def overhead_ms(self) -> float:
        """The client's own share of its time to first token."""
        return self.ttft_ms - self.server_ms

    @property
    def to_wire_ms(self) -> float:
        """From the start to the request's last byte at the proxy."""
        assert self.exchange is not None
        return (self.exchange.request_done - self.start) * 1000

    @property
    def from_token_ms(self) -> float:
        """From the first token leaving the proxy to the client having it."""
        assert self.exchange is not None
        assert self.exchange.first_token is not None
        return (self.first - self.exchange.first_token) * 1000


class GcPauses:
    """The garbage collector's pauses, as (start, end) monotonic seconds, while installed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float]] = []
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((self._began, time.perf_counter()))

    def within_ms(self, start: float, end: float) -> float:
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.pauses) * 1000

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def chat_exchange(proxy: ProxyProcess) -> Exchange:
    """The next chat request the proxy saw (a ``/tokenize`` or other request before it is passed over)."""
    while True:
        (exchange,) = proxy.take(1)
        if exchange.path.endswith("/chat/completions"):
            return exchange


async def raw_stream(
    client: httpx.AsyncClient, endpoint: Any, max_tokens: int, history: list[dict[str, str]] | None = None
) -> Sample:
    """The same chat request (after ``history``: the conversation's messages), read straight off the
    socket."""
    body = {
        "model": endpoint.model,
        "messages": [*(history or []), {"role": "user", "content": PROMPT}],
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream_options": {"include_usage": True},
    }
    parts: list[str] = []
    first: float | None = None
    start = time.perf_counter()
    async with client.stream(
        "POST", f"{endpoint.base_url}/chat/completions", json=body, headers=endpoint.auth_headers()
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            for choice in json.loads(data).get("choices", []):
                piece = choice.get("delta", {}).get("content")
                if piece:
                    if first is None:
                        first = time.perf_counter()
                    parts.append(piece)
    end = time.perf_counter()
    return Sample(
        ((first or end) - start) * 1000,
        (end - start) * 1000,
        len(parts),
        "".join(parts),
        start=start,
        first=first or end,
    )


class AppClient:
    """The app's chat engine with its history store in the scratch folder."""

    def __init__(self, db: Path, endpoint: Any, max_tokens: int) -> None:
        self.db = db
        self.endpoint = endpoint
        self.max_tokens = max_tokens
        self.store: Any = None
        self.engine: Any = None

    async def __aenter__(self) -> AppClient:
        try:
            from engine.chat.engine import ChatEngine
            from engine.chat.generation import GenerationSettings
            from engine.history.async_store import AsyncHistoryStore
        except ImportError as exc:
            raise SubjectMissing(
                f"engine/chat/engine.py or engine/history/store.py cannot be imported: {exc}"
            ) from exc
        self.settings = GenerationSettings(temperature=0, max_tokens=self.max_tokens)
        self.store = await AsyncHistoryStore.open(self.db)
        self.engine = ChatEngine(self.store, lambda: self.endpoint)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.shutdown()
        await self.store.close()

    async def long_conversation(self, messages: int) -> int:
        """A conversation of ``messages`` messages (questions of 4–30 words, answers of 15–90), imported."""
        from bench.history_data import vocabulary
        from engine.history.records import Conversation, ConversationTree, StoredMessage

        rng = random.Random(LONG_MESSAGES)
        vocab = vocabulary(2000, rng)
        now = time.time()
        rows = tuple(
            StoredMessage(
                id=i + 1,
                conversation_id=0,
                parent_id=i or None,
                role="user" if i % 2 == 0 else "assistant",
                text=" ".join(
                    rng.choices(vocab, k=rng.randint(4, 30) if i % 2 == 0 else rng.randint(15, 90))
                ),
            )
            for i in range(messages)
        )
        conversation = Conversation(
            id=0,
            uid=f"bench-long-{messages}",
            title="A long conversation",
            created_at=now,
            updated_at=now,
            settings=self.settings.to_json_dict(),
        )
        return await self.store.import_tree(ConversationTree(conversation, rows))

    async def history(self, conversation_id: int) -> list[dict[str, str]]:
        """The conversation's branch as a raw request's messages (not timed)."""
        tree = await self.store.load(conversation_id)
        return [{"role": m.role, "content": m.text} for m in tree.branch()]

    async def stream(self, conversation_id: int | None = None, *, held: bool = False) -> Sample:
        """One turn in a new conversation (or in ``conversation_id``); ``held``: as the window sends, with
        the conversation it holds (loaded again after the turn, as the window does, not timed)."""
        if conversation_id is None:
            conversation_id = (await self.engine.new_conversation(settings=self.settings)).id
        tree = (await self.store.load(conversation_id)) if held else None
        parts: list[str] = []
        first: float | None = None
        start = time.perf_counter()
        turn = await self.engine.send(conversation_id, PROMPT, tree=tree)
        sent = time.perf_counter()
        state = None
        async for event in turn:
            if event.kind == "token":
                if first is None:
                    first = time.perf_counter()
                parts.append(event.text)
            elif event.kind == "finished":
                state = event.state
        end = time.perf_counter()
        reply = await turn.wait()
        text = "".join(parts)
        if state != "complete":
            raise RuntimeError(f"the app's turn ended {state}: {reply.error}")
        return Sample(
            ((first or end) - start) * 1000,
            (end - start) * 1000,
            len(parts),
            text,
            reply.text == text,
            (sent - start) * 1000,
            start=start,
            first=first or end,
        )


async def compare(ctx: BenchContext, endpoint: Any, max_tokens: int, pairs: int, tag: str) -> dict[str, Any]:
    """``pairs`` alternating raw/app requests after a warm-up of each, all through the timestamping proxy;
    returns the samples."""
    raw: list[Sample] = []
    app: list[Sample] = []
    with proxied(endpoint.base_url) as (proxy, url):
        through = replace(endpoint, base_url=url)
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(120, connect=5), trust_env=False) as client,
            AppClient(ctx.work_dir / f"stream-{tag}.sqlite3", through, max_tokens) as app_client,
        ):

            async def one_raw() -> None:
                sample = await raw_stream(client, through, max_tokens)
                sample.exchange = chat_exchange(proxy)
                raw.append(sample)

            async def one_app() -> None:
                with GcPauses() as collector:
                    sample = await app_client.stream()
                sample.exchange = chat_exchange(proxy)
                sample.gc_ms = collector.within_ms(sample.start, sample.first)
                app.append(sample)

            await one_raw()
            await one_app()
            raw.clear()
            app.clear()
            for i in range(pairs):
                for step in (one_raw, one_app) if i % 2 == 0 else (one_app, one_raw):
                    await step()
    return {"raw": raw, "app": app}


async def compare_long(
    ctx: BenchContext, endpoint: Any, max_tokens: int, rounds: int, tag: str
) -> dict[str, dict[str, Any]]:
    """``rounds`` of raw / app as the command line sends / app as the window sends (order rotated), in one
    conversation of ``LONG_MESSAGES`` messages, through the proxy; returns the samples of both app modes
    against the raw."""
    raw: list[Sample] = []
    read: list[Sample] = []
    held: list[Sample] = []
    with proxied(endpoint.base_url) as (proxy, url):
        through = replace(endpoint, base_url=url)
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(120, connect=5), trust_env=False) as client,
            AppClient(ctx.work_dir / f"stream-{tag}.sqlite3", through, max_tokens) as app_client,
        ):
            conversation = await app_client.long_conversation(LONG_MESSAGES)

            async def one(kind: str) -> None:
                if kind == "raw":
                    history = await app_client.history(conversation)
                    sample = await raw_stream(client, through, max_tokens, history)
                    raw.append(sample)
                else:
                    with GcPauses() as collector:
                        sample = await app_client.stream(conversation, held=kind == "held")
                    sample.gc_ms = collector.within_ms(sample.start, sample.first)
                    (held if kind == "held" else read).append(sample)
                sample.exchange = chat_exchange(proxy)

            for kind in ("raw", "read", "held"):  # warm-up
                await one(kind)
            for samples in (raw, read, held):
                samples.clear()
            order = ["raw", "read", "held"]
            for i in range(rounds):
                for kind in order[i % 3 :] + order[: i % 3]:
                    await one(kind)
    return {"read": {"raw": raw, "app": read}, "held": {"raw": raw, "app": held}}


def _add(result: BenchResult, tag: str, label: str, samples: dict[str, Any], expected: int | None) -> None:
    raw: list[Sample] = samples["raw"]
    app: list[Sample] = samples["app"]
    added = [a.ttft_ms - r.ttft_ms for a, r in zip(app, raw, strict=True)]
    isolated = [a.overhead_ms - r.overhead_ms for a, r in zip(app, raw, strict=True)]
    want = [expected] * len(raw) if expected is not None else [r.tokens for r in raw]
    lost = sum(max(0, w - a.tokens) for w, a in zip(want, app, strict=True))
    mismatched = sum(a.text != r.text for a, r in zip(app, raw, strict=True))
    unsaved = sum(not a.stored_ok for a in app)
    result.add(
        Metric(
            f"{tag}_proxy_added_median_ms",
            f"{label}: added by the app (client overheads at the proxy), median",
            median(isolated),
            "ms",
            goal=Goal("<=", 2),
        )
    )
    result.add(
        Metric(
            f"{tag}_proxy_added_p99_ms",
            f"{label}: added by the app (client overheads at the proxy), p99",
            percentile(isolated, 99),
            "ms",
            goal=Goal("<=", 5),
        )
    )
    # Measured for both, side by side: (key, what, the Sample field).
    side_by_side = (
        ("overhead", "client overhead (TTFT minus the server's span at the proxy)", "overhead_ms"),
        ("to_wire", "start to the request's last byte at the proxy", "to_wire_ms"),
        ("from_token", "first token leaving the proxy to the caller having it", "from_token_ms"),
        ("ttft", "time to first token", "ttft_ms"),
    )
    for key, what, field in side_by_side:
        result.add(
            Metric(
                f"{tag}_{key}_median_ms",
                f"{label}: {what}, median",
                median([getattr(a, field) for a in app]),
                "ms",
                median([getattr(r, field) for r in raw]),
                "raw httpx stream",
            )
        )
    result.add(
        Metric(
            f"{tag}_added_median_ms",
            f"{label}: added to first token end to end (with the server's own variance), median",
            median(added),
            "ms",
        )
    )
    result.add(
        Metric(
            f"{tag}_added_p99_ms",
            f"{label}: added to first token end to end (with the server's own variance), p99",
            percentile(added, 99),
            "ms",
        )
    )
    result.add(
        Metric(
            f"{tag}_send_median_ms",
            f"{label}: of which until send() returns (history + context check), median",
            median([a.send_ms for a in app]),
            "ms",
        )
    )
    result.add(
        Metric(
            f"{tag}_total_median_ms",
            f"{label}: whole reply, median",
            median([a.total_ms for a in app]),
            "ms",
            median([r.total_ms for r in raw]),
            "raw httpx stream",
        )
    )
    result.add(Metric(f"{tag}_lost", f"{label}: tokens lost", float(lost), "tokens", goal=Goal("==", 0)))
    spans = [s.server_ms for s in raw + app]
    slow = [(x, a, r) for x, a, r in zip(isolated, app, raw, strict=True) if x > 5]
    result.notes.append(
        f"{label}: {len(app)} pairs, {sum(a.tokens for a in app):,} tokens through the app; "
        f"replies differing from the raw stream: {mismatched}; "
        f"stored reply differing from the streamed text: {unsaved}. "
        f"Added by the app at the proxy: min {min(isolated):.2f}, median {median(isolated):.2f}, "
        f"p99 {percentile(isolated, 99):.2f}, max {max(isolated):.2f} ms; end to end: min {min(added):.2f}, "
        f"max {max(added):.2f} ms; the server's own span: min {min(spans):.1f}, median {median(spans):.1f}, "
        f"max {max(spans):.1f} ms. Pairs over 5 ms added at the proxy: {len(slow)}"
        + (
            " ("
            + "; ".join(
                f"{x:.1f} ms: to the wire {a.to_wire_ms:.1f} (raw {r.to_wire_ms:.1f}), first token to the"
                f" caller {a.from_token_ms:.1f} (raw {r.from_token_ms:.1f}), send() returned"
                f" after {a.send_ms:.1f}, garbage collection {a.gc_ms:.1f} ms"
                for x, a, r in slow
            )
            + ")"
            if slow
            else ""
        )
        + f"; garbage collection inside an app's time to first token: {sum(a.gc_ms > 0 for a in app)} turns, "
        f"{sum(a.gc_ms for a in app):.1f} ms in all."
    )
    result.series.setdefault(
        "ttft",
        {"kind": "box", "title": "Time to first token", "ylabel": "ms (log scale)", "log": True, "data": {}},
    )
    result.series["ttft"]["data"][f"{label}\nraw"] = [r.ttft_ms for r in raw]
    result.series["ttft"]["data"][f"{label}\napp"] = [a.ttft_ms for a in app]
    result.series.setdefault(
        "overhead",
        {
            "kind": "box",
            "title": "Client overhead: time to first token minus the server's span at the proxy",
            "ylabel": "ms",
            "log": False,
            "data": {},
        },
    )
    result.series["overhead"]["data"][f"{label}\nraw"] = [r.overhead_ms for r in raw]
    result.series["overhead"]["data"][f"{label}\napp"] = [a.overhead_ms for a in app]


def _client_cost_ms() -> float:
    costs = []
    for _ in range(5):
        start = time.perf_counter()
        httpx.AsyncClient()
        costs.append((time.perf_counter() - start) * 1000)
    return median(costs)


def keep_alive() -> tuple[dict[str, str], float]:
    """The environment the app's supervisor gives ``vllm serve`` for its idle connections, and the keep-alive
    its endpoint then says (the stand-in and the real vLLM are started here as the supervisor starts vLLM)."""
    try:
        from engine.server.readiness import SERVER_KEEP_ALIVE_S
    except ImportError as exc:
        raise SubjectMissing(f"engine/server/readiness.py cannot be imported: {exc}") from exc
    return {"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": str(SERVER_KEEP_ALIVE_S)}, float(SERVER_KEEP_ALIVE_S)


def run(ctx: BenchContext) -> BenchResult:
    running_standin = standin_launcher()
    keep_env, keep_s = keep_alive()

    def launched(endpoint: Any) -> Any:
        return replace(endpoint, keep_alive_s=keep_s)

    result = BenchResult("streaming", "Streaming overhead")
    pairs = max(2, min(30, ctx.repeats // 2))
    for rate, tokens in ((1000, 300), (10000, 1500)):
        tokens = ctx.scaled(tokens, 20) if ctx.scale < 0.1 else tokens
        ctx.say(f"stand-in at {rate:,} tok/s, {tokens:,}-token replies, {pairs} pairs")
        with running_standin(
            "--tokens-per-second", str(rate), "--reply-tokens", str(tokens), api_key="bench", env=keep_env
        ) as srv:
            samples = asyncio.run(
                compare(ctx, launched(srv.endpoint()), tokens + 10, pairs, f"standin{rate}")
            )
        _add(result, f"standin_{rate}", f"stand-in {rate // 1000}k tok/s", samples, tokens)
    rounds = max(2, min(15, pairs))
    tokens = 20  # the first token is what this case is about
    ctx.say(f"stand-in at 1,000 tok/s, a {LONG_MESSAGES:,}-message conversation, {rounds} rounds")
    with running_standin(
        "--tokens-per-second", "1000", "--reply-tokens", str(tokens), "--max-model-len", "10000000",
        api_key="bench", env=keep_env,
    ) as srv:  # fmt: skip
        endpoint = replace(launched(srv.endpoint()), max_model_len=10_000_000)
        long = asyncio.run(compare_long(ctx, endpoint, tokens + 10, rounds, "standin-long"))
    _add(result, "standin_long_read", f"stand-in 1k tok/s, {LONG_MESSAGES:,} messages, send() reads them",
         long["read"], tokens)  # fmt: skip
    _add(result, "standin_long_held", f"stand-in 1k tok/s, {LONG_MESSAGES:,} messages, the window's tree",
         long["held"], tokens)  # fmt: skip
    result.notes.append(
        f"An httpx client built with the default SSL context takes {_client_cost_ms():.0f} ms to create here "
        "(the CA bundle is loaded even for http://); a client per turn or per context check adds that to the "
        "first token."
    )
    if not ctx.real_vllm:
        result.skip_part("real vLLM", "--no-vllm was given")
        return result
    try:
        with real_vllm(ctx, ctx.work_dir / "vllm-streaming.log") as server:
            # A CPU decodes ~40 tok/s when idle (far less on a busy machine): short replies, few pairs.
            real_pairs = 3 if ctx.quick else 6
            ctx.say(f"real vLLM: {real_pairs} pairs of 32-token replies at temperature 0")
            samples = asyncio.run(compare(ctx, launched(server.endpoint), 32, real_pairs, "vllm"))
        ctx.shared["raw_vllm"] = {"ready_s": server.ready_at - server.launched_at, "gone_s": server.gone_s}
        _add(result, "vllm", "real vLLM (CPU)", samples, None)
    except SubjectMissing as missing:
        result.skip_part("real vLLM", str(missing))
    return result
