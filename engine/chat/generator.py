"""Haystack's ``OpenAIChatGenerator`` taught to keep vLLM's reasoning; streamed completions for base models.

Imported lazily by :mod:`engine.chat.engine` (Haystack takes ~0.7 s to import).

vLLM with ``--reasoning-parser`` streams the model's thinking as ``delta.reasoning`` (older servers:
``delta.reasoning_content``). The stock generator converts each raw chunk with
``_convert_chat_completion_chunk_to_streaming_chunk``, which reads only ``delta.content``, so the reasoning is
dropped. :class:`ReasoningChatGenerator` overrides the one method that walks the raw stream: it converts each
chunk with Haystack's own function and, when the raw delta carries reasoning, emits it as a
``StreamingChunk(reasoning=ReasoningContent(...))`` — Haystack's own shape, which its
``_convert_streaming_chunks_to_chat_message`` already gathers into ``ChatMessage.reasoning``. Everything else
(request building, clients, cancellation that shields ``close()``) stays Haystack's.

:class:`GeneratorPool` keeps one warmed generator (its ``AsyncOpenAI`` client and connections) per endpoint,
so a turn does not pay for building clients (40–110 ms each here); per-turn settings travel in
``run_async(generation_kwargs=...)``.

Haystack 3.x removed ``OpenAIGenerator`` (the ``/v1/completions`` component of Haystack 2), so
:func:`stream_completion` talks to ``/v1/completions`` with the same ``openai`` client Haystack uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pydantic
from haystack.components.generators.chat.openai import (
    OpenAIChatGenerator,
    _convert_chat_completion_chunk_to_streaming_chunk,
)
from haystack.components.generators.utils import _convert_streaming_chunks_to_chat_message
from haystack.dataclasses import ChatMessage, ComponentInfo, ReasoningContent, StreamingChunk
from haystack.dataclasses.streaming_chunk import StreamingCallbackT, _invoke_streaming_callback
from haystack.utils import Secret
from openai import APIError, AsyncOpenAI, AsyncStream, Omit
from openai._base_client import make_request_options
from openai._utils._json import openapi_dumps
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from engine.chat.tokens import tls_context
from engine.endpoint import Endpoint

REASONING_FIELDS = ("reasoning", "reasoning_content")
# The stream gives the event loop a turn after this long of chunks handled back to back: chunks that piled
# up while the loop was busy (a read takes all of them) are not handled as one long stall.
SLICE_S = 0.004
# A streamed chat request with only these parameters and plain text messages is sent as it is (openai's
# transform would return it unchanged); anything else (tools, images, ...) goes openai's whole way.
PLAIN_PARAMS = frozenset(
    {"model", "messages", "n", "stream", "stream_options", "max_tokens", "max_completion_tokens",
     "temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "logprobs",
     "top_logprobs", "user"}
)  # fmt: skip
REQUEST_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")


def raw_reasoning(chunk: Any) -> str:
    """The reasoning text in a raw ``ChatCompletionChunk`` (vLLM's extra delta fields), or ``""``."""
    if not getattr(chunk, "choices", None):
        return ""
    delta = chunk.choices[0].delta
    if delta is None:
        return ""
    extra = delta.model_extra or {}
    for name in REASONING_FIELDS:
        value = extra.get(name) or getattr(delta, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


class ReasoningChatGenerator(OpenAIChatGenerator):
    """``OpenAIChatGenerator`` whose streamed chunks and replies keep vLLM's reasoning."""

    async def warm_up_async(self) -> None:
        await super().warm_up_async()
        if self.async_client is not None:
            quick_chunks(self.async_client)
            quick_requests(self.async_client)

    async def _handle_async_stream_response(
        self, chat_completion: Any, callback: StreamingCallbackT
    ) -> list[ChatMessage]:
        component_info = ComponentInfo.from_component(self)
        kept = KeptChunks()
        chunks = kept.chunks
        began = last = time.perf_counter()
        try:
            async for raw in chat_completion:
                now = time.perf_counter()
                if now - last > 0.001:  # the stream waited for the server: the loop had its turn
                    began = now
                converted = _convert_chat_completion_chunk_to_streaming_chunk(
                    chunk=raw, previous_chunks=chunks, component_info=component_info
                )
                reasoning = raw_reasoning(raw)
                if reasoning:
                    # A StreamingChunk holds one kind of content: reasoning first, then any answer text.
                    thought = StreamingChunk(
                        content="",
                        meta=converted.meta,
                        component_info=component_info,
                        index=0,
                        reasoning=ReasoningContent(reasoning_text=reasoning),
                    )
                    kept.add(thought)
                    await _invoke_streaming_callback(callback, thought)
                    if not converted.content and not converted.finish_reason:
                        continue
                    converted = dataclasses.replace(converted, start=False)
                kept.add(converted)
                await _invoke_streaming_callback(callback, converted)
                last = time.perf_counter()
                if last - began >= SLICE_S:
                    await asyncio.sleep(0)
                    began = last = time.perf_counter()
        except BaseException:
            # As Haystack does on a cancel, and on any other error too (a callback that raised): close the
            # stream, so the server sees the disconnect and no open response is left to the garbage collector.
            with contextlib.suppress(Exception):  # a broken connection's close must not hide why it broke
                await asyncio.shield(chat_completion.close())
            raise
        return [_convert_streaming_chunks_to_chat_message(chunks=kept.joined())]


def _plain(chunk: StreamingChunk) -> bool:
    """Text and nothing else (not the first text, no tool call, reasoning, end, usage or logprobs)."""
    meta = chunk.meta
    return (
        bool(chunk.content)
        and chunk.index == 0
        and not chunk.start
        and not chunk.tool_calls
        and (
            chunk.reasoning is None
            and not chunk.finish_reason
            and not meta.get("usage")
            and not meta.get("logprobs")
        )
    )


class KeptChunks:
    """The chunks a reply's message is built from at its end, a run of plain text chunks kept as one.

    Haystack keeps every chunk (with its meta dict) until the reply ends: 20,000 tokens left ~100,000 objects
    that the garbage collector's full collections walked, tens of ms each, mid-stream. The message built
    from the kept chunks is the same (text, reasoning, tool calls, end, usage).
    """

    def __init__(self) -> None:
        self.chunks: list[StreamingChunk] = []  # ``previous_chunks`` for Haystack (it reads their count)
        self._run: list[str] = []  # text of plain chunks after ``chunks[-1]``, not joined into it yet

    def add(self, chunk: StreamingChunk) -> None:
        if self.chunks and _plain(chunk) and _plain(self.chunks[-1]):
            self._run.append(chunk.content)
            return
        self._join_run()
        self.chunks.append(chunk)

    def joined(self) -> list[StreamingChunk]:
        self._join_run()
        return self.chunks

    def _join_run(self) -> None:
        if self._run:
            last = self.chunks[-1]
            self.chunks[-1] = dataclasses.replace(last, content=last.content + "".join(self._run))
            self._run = []


def quick_chunks(client: AsyncOpenAI) -> None:
    """Have ``client`` read streamed chat chunks with pydantic's compiled validator (~4 µs a chunk) instead
    of openai's lenient ``construct`` (~70 µs, an import statement per field): at 2,000 tok/s that was a
    third of the GUI thread's time. A chunk that does not validate is read the lenient way, as before."""
    # The one place openai turns an event's data into a chunk: a private method of a library we pin.
    lenient = client._process_response_data  # noqa: SLF001

    def process(*, data: object, cast_to: type[Any], response: Any) -> Any:
        if cast_to is ChatCompletionChunk and isinstance(data, dict):
            try:
                return ChatCompletionChunk.model_validate(data)
            except pydantic.ValidationError:
                pass
        return lenient(data=data, cast_to=cast_to, response=response)

    client._process_response_data = process  # type: ignore[method-assign]  # noqa: SLF001


class PlainForm(dict[str, Any]):
    """A role-and-text message's openai form (see :func:`engine.chat.request.plain_chat_message`) that carries
    its JSON as openai encodes it in a request's body (``json``), so that a long conversation's messages are
    neither checked nor encoded again at every turn. Made by :meth:`of`; :meth:`copy` keeps the JSON, and a
    change through any of dict's methods drops it (the message is then checked and encoded as any other)."""

    __slots__ = ("json",)
    json: bytes | None

    @classmethod
    def of(cls, form: dict[str, Any]) -> PlainForm:
        made = cls(form)
        made.json = None
        if plain_message(form):
            # Text that JSON cannot carry (a lone surrogate) fails where openai's own encoding would fail.
            with contextlib.suppress(ValueError, TypeError):
                made.json = openapi_dumps(form)
        return made

    def copy(self) -> PlainForm:  # dict's own copy would be a plain dict
        made = PlainForm(self)  # dict's own __init__: ~0.2 µs less a message than one of ours
        made.json = getattr(self, "json", None)
        return made

    def _changed(self) -> None:
        self.json = None

    def __setitem__(self, key: str, value: Any) -> None:
        self._changed()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._changed()
        super().__delitem__(key)

    def __ior__(self, other: Any) -> PlainForm:  # type: ignore[override,misc]
        self._changed()
        return super().__ior__(other)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().update(*args, **kwargs)

    def pop(self, *args: Any) -> Any:
        self._changed()
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self._changed()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._changed()
        return super().setdefault(key, default)

    def clear(self) -> None:
        self._changed()
        super().clear()


def plain_message(message: object) -> bool:
    """A message of role and text only (no images, tool calls or tool results)."""
    return (
        isinstance(message, dict)
        and message.keys() <= {"role", "content", "name"}
        and isinstance(message.get("content"), str)
    )


def request_body(body: dict[str, Any]) -> bytes | None:
    """``body`` (string keys) as openai encodes it (``openapi_dumps``: the same bytes), or ``None`` when
    its ``messages`` are not all plain (:func:`plain_message`). A :class:`PlainForm` that kept its JSON is
    known to be plain, and its JSON is used as it is."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    parts: list[bytes] = []
    for message in messages:
        encoded = getattr(message, "json", None) if type(message) is PlainForm else None
        if encoded is None:
            if not plain_message(message):
                return None
            encoded = openapi_dumps(message)
        parts.append(encoded)
    listed = b"[" + b",".join(parts) + b"]"
    items = [
        openapi_dumps(key) + b":" + (listed if key == "messages" else openapi_dumps(value))
        for key, value in body.items()
    ]
    return b"{" + b",".join(items) + b"}"


def quick_requests(client: AsyncOpenAI) -> None:
    """Have ``client`` send a plain streamed chat request without openai's parameter transform.

    The transform walks every message through the union of openai's message types: 0.4 ms for a first
    message, 3.5 ms for 20 messages and 30 ms for 100 here, all before the request leaves. For role-and-text
    messages and plain parameters it returns them unchanged, so they are posted as they are, with the same
    request options (timeout, auth) ``create`` would use and ``extra_body`` merged in as openai merges it;
    any other request goes through ``create``. The body is encoded here (:func:`request_body`: the bytes
    openai would send), so the messages' kept JSON saves encoding a long conversation again (~3 ms for 2,000
    messages here).
    """
    completions = client.chat.completions
    create = completions.create
    security = "security" in inspect.signature(make_request_options).parameters

    async def quick_create(**kwargs: Any) -> Any:
        params = {k: v for k, v in kwargs.items() if k not in REQUEST_OPTIONS}
        extra = kwargs.get("extra_body") or {}
        plain = (
            params.get("stream") is True
            and params.keys() <= PLAIN_PARAMS
            and isinstance(extra, dict)
            and "messages" not in extra
            and all(isinstance(key, str) and not isinstance(v, Omit) for key, v in extra.items())
        )
        content = request_body({**params, **extra}) if plain else None
        if content is None:
            return await create(**kwargs)
        options: dict[str, Any] = {k: kwargs[k] for k in REQUEST_OPTIONS if k in kwargs and k != "extra_body"}
        if security:
            options["security"] = {"bearer_auth": True}
        return await client.post(
            "/chat/completions",
            content=content,
            options=make_request_options(**options),
            cast_to=ChatCompletion,
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )

    completions.create = quick_create  # type: ignore[method-assign]


# A kept connection is given up this long before the server would close it (a launched vLLM's keep-alive
# is known: Endpoint.keep_alive_s); its timer starts when it has sent a reply, ours when we have read it.
KEEP_ALIVE_MARGIN_S = 60.0


def client_kwargs(endpoint: Endpoint) -> dict[str, Any]:
    """httpx settings for an endpoint's client.

    The shared TLS context makes a client in ~0.1 ms instead of loading the CA bundle again. A server the app
    launched keeps idle connections for :attr:`~engine.endpoint.Endpoint.keep_alive_s` (told at its launch:
    10 minutes, longer than a user reads and writes), and ours are kept until :data:`KEEP_ALIVE_MARGIN_S`
    before that: a turn then needs no new connection (~1.5 ms of its first token here). httpx never reuses a
    kept connection that the server closed (seen readable at its end), so a server that closes sooner costs
    only a new connect. Kept sockets are closed by :meth:`GeneratorPool.aclose` (the engine's ``shutdown``).
    Another local server's connections are not kept: its keep-alive is unknown (vLLM's default is 5 s, gone
    between a user's turns), and an idle socket would outlive an engine dropped without ``shutdown``. A remote
    server's are kept as httpx does (5 s; a TLS handshake costs tens of milliseconds). ``trust_env`` follows
    :attr:`~engine.endpoint.Endpoint.uses_env_proxy`: a proxy from the environment never sees a local server
    or its key (the ``openai`` client uses this httpx client as it is, so this covers completions too).
    """
    kwargs: dict[str, Any] = {
        "verify": tls_context(),
        "follow_redirects": True,
        "trust_env": endpoint.uses_env_proxy,
    }
    if endpoint.keep_alive_s is not None:
        expiry = max(endpoint.keep_alive_s - KEEP_ALIVE_MARGIN_S, endpoint.keep_alive_s / 2)
        kwargs["limits"] = httpx.Limits(max_keepalive_connections=4, keepalive_expiry=expiry)
    elif not keeps_connections(endpoint):
        kwargs["limits"] = httpx.Limits(max_keepalive_connections=0)
    return kwargs


def keeps_connections(endpoint: Endpoint) -> bool:
    """Whether the endpoint's client keeps idle connections (see :func:`client_kwargs`)."""
    return endpoint.keep_alive_s is not None or endpoint.kind != "local"


EndpointKey = tuple[str, str, str, str]  # base URL, API key, model, kind (local/remote: its timeouts)


@dataclasses.dataclass
class _Pooled:
    generator: ReasoningChatGenerator
    users: int = 0


class GeneratorPool:
    """One warmed :class:`ReasoningChatGenerator` per endpoint, reused by every turn.

    :meth:`lease` hands out the current endpoint's generator (built and warmed on first use). When the
    endpoint changes, the old generator is closed as soon as no running turn uses it; :meth:`aclose` closes
    them all (the pool stays usable and builds anew).
    """

    def __init__(self, timeout_for: Callable[[Endpoint], Any]) -> None:
        self._timeout_for = timeout_for
        self._pooled: dict[EndpointKey, _Pooled] = {}
        self._current: EndpointKey | None = None

    @staticmethod
    def key(endpoint: Endpoint) -> EndpointKey:
        return (endpoint.base_url, endpoint.api_key or "", endpoint.model, endpoint.kind)

    async def _get(self, endpoint: Endpoint) -> _Pooled:
        key = self.key(endpoint)
        self._current = key
        pooled = self._pooled.get(key)
        if pooled is None:
            generator = ReasoningChatGenerator(
                api_key=Secret.from_token(endpoint.api_key or "none"),
                model=endpoint.model,
                api_base_url=endpoint.base_url,
                # An openai.Timeout (connect and read apart); Haystack passes it on though it is typed float.
                timeout=self._timeout_for(endpoint),
                max_retries=0,
                http_client_kwargs=client_kwargs(endpoint),
            )
            pooled = self._pooled[key] = _Pooled(generator)
            await generator.warm_up_async()
        await self._retire_unused()
        return pooled

    @contextlib.asynccontextmanager
    async def lease(self, endpoint: Endpoint) -> AsyncIterator[ReasoningChatGenerator]:
        """The endpoint's warmed generator, for the length of one turn."""
        pooled = await self._get(endpoint)
        pooled.users += 1
        try:
            yield pooled.generator
        finally:
            pooled.users -= 1
            # Shielded: a stopped turn still releases an old endpoint's connections.
            await asyncio.shield(self._retire_unused())

    @contextlib.asynccontextmanager
    async def lease_client(self, endpoint: Endpoint) -> AsyncIterator[AsyncOpenAI]:
        """The endpoint's ``AsyncOpenAI`` client (for ``/v1/completions``), shared with its generator."""
        async with self.lease(endpoint) as generator:
            assert generator.async_client is not None  # built by warm_up_async in _get
            yield generator.async_client

    async def connect(self, endpoint: Endpoint) -> None:
        """Open a kept connection to the endpoint's server, or refresh the kept one, before a turn needs it
        (the window does it while the user writes): ``GET /health`` on the generator's own client (vLLM
        leaves it out of its access log; a server without it answers 404 on the same connection). A server
        that does not answer is not reported here: the turn will say it. Nothing where connections are not
        kept (a local server the app did not launch)."""
        if not keeps_connections(endpoint):
            return
        async with self.lease_client(endpoint) as client:
            with contextlib.suppress(APIError):
                await client.get(f"{endpoint.root_url}/health", cast_to=httpx.Response)

    async def _retire_unused(self) -> None:
        stale = [k for k, p in self._pooled.items() if k != self._current and p.users == 0]
        for key in stale:
            await self._pooled.pop(key).generator.close_async()

    async def aclose(self) -> None:
        """Close every generator's client and connections."""
        pooled, self._pooled, self._current = self._pooled, {}, None
        for entry in pooled.values():
            await entry.generator.close_async()

    def __len__(self) -> int:
        return len(self._pooled)


@dataclasses.dataclass(frozen=True)
class CompletionDelta:
    """One piece of a streamed ``/v1/completions`` answer."""

    text: str = ""
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    model: str = ""


async def stream_completion(
    client: AsyncOpenAI, *, model: str, prompt: str, generation_kwargs: dict[str, Any]
) -> AsyncIterator[CompletionDelta]:
    """Stream a plain completion (base models without a chat template); the stream closes on cancel."""
    stream = await client.completions.create(model=model, prompt=prompt, stream=True, **generation_kwargs)
    try:
        async for raw in stream:
            usage = raw.usage.model_dump() if raw.usage is not None else None
            if not raw.choices:
                yield CompletionDelta(usage=usage, model=raw.model)
                continue
            choice = raw.choices[0]
            yield CompletionDelta(choice.text or "", choice.finish_reason, usage, raw.model)
    finally:
        await asyncio.shield(stream.close())
