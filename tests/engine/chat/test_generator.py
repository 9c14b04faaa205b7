"""The generator's request and stream: a plain chat request posted as openai's ``create`` would post it
(without its transform), chunks read by pydantic's validator exactly as openai's lenient reader reads
them, and a backlog of chunks handled in slices that leave the event loop its turns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import openai
import pytest
from haystack.components.generators.chat.openai import (
    OpenAIChatGenerator,
    _convert_chat_completion_chunk_to_streaming_chunk,
)
from haystack.dataclasses import StreamingChunk
from haystack.utils import Secret
from openai import AsyncOpenAI
from openai._models import construct_type
from openai.types.chat import ChatCompletionChunk

from engine.chat.generator import KeptChunks, ReasoningChatGenerator, quick_chunks, quick_requests

pytestmark = pytest.mark.asyncio


def _chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": extra.pop("finish_reason", None)}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
        **extra,
    }


# What vLLM streams: text, reasoning (its own delta field), a tool call, the end, usage after it.
VLLM_CHUNKS = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": " word"}),
    _chunk({"reasoning": "thinking", "content": None}),
    _chunk({"reasoning_content": "older field"}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"q": '},
                }
            ]
        }
    ),
    _chunk({"content": ""}, finish_reason="stop", stop_reason=None),
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    },
]


async def test_chunks_are_read_as_openai_reads_them() -> None:
    client = AsyncOpenAI(api_key="none", base_url="http://127.0.0.1:9/v1")
    lenient = client._process_response_data
    quick_chunks(client)
    read_chunk: Any = client._process_response_data
    try:
        for data in VLLM_CHUNKS:
            quick = read_chunk(data=data, cast_to=ChatCompletionChunk, response=None)
            reference: Any = construct_type(type_=ChatCompletionChunk, value=data)
            assert isinstance(quick, ChatCompletionChunk)
            assert quick.model_dump() == reference.model_dump()
            if quick.choices:
                assert quick.choices[0].delta.model_extra == reference.choices[0].delta.model_extra
        # Data the validator refuses is read the lenient way, as it was: kept as sent, nothing raised.
        odd = _chunk({"content": "x"}, created="yesterday")
        read = read_chunk(data=odd, cast_to=ChatCompletionChunk, response=None)
        assert read.created == "yesterday"
        assert read == lenient(data=odd, cast_to=ChatCompletionChunk, response=cast(Any, None))
    finally:
        await client.close()


class _Backlog:
    """A stream whose chunks have all arrived already: iterating it never waits for the server."""

    def __init__(self, chunks: list[ChatCompletionChunk]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        for chunk in self._chunks:
            yield chunk

    async def close(self) -> None:
        pass


async def test_a_backlog_of_chunks_leaves_the_loop_turns_and_keeps_every_chunk_in_order() -> None:
    generator = ReasoningChatGenerator(api_key=Secret.from_token("none"), model="m")
    texts = [f" w{i}" for i in range(3000)]
    backlog = _Backlog([ChatCompletionChunk.model_validate(_chunk({"content": t})) for t in texts])
    received: list[str] = []
    turns = 0
    done = False

    async def on_chunk(chunk: StreamingChunk) -> None:
        received.append(chunk.content)

    async def other_work() -> None:  # a timer or a repaint waiting for the loop
        nonlocal turns
        while not done:
            await asyncio.sleep(0)
            turns += 1

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    turns = 0
    [message] = await generator._handle_async_stream_response(backlog, on_chunk)
    done = True
    await other
    assert received == texts
    assert message.text == "".join(texts)
    # Before, the whole backlog was one step of the loop: nothing else ran until it was handled.
    assert turns >= 2


async def _sent(quick: bool, **request: Any) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """What reaches the server for ``create(**request)`` (body, headers) and the streamed texts."""
    seen: list[httpx.Request] = []
    events = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in VLLM_CHUNKS[:2]) + b"data: [DONE]\n\n"

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=events)

    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    client = AsyncOpenAI(
        api_key="secret", base_url="http://127.0.0.1:9/v1", http_client=cast(Any, http), max_retries=0
    )
    if quick:
        quick_requests(client)
    try:
        stream = await client.chat.completions.create(**request)
        texts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    finally:
        await client.close()
    [sent] = seen
    headers = {k: v for k, v in sent.headers.items() if not k.startswith("x-stainless")}
    return json.loads(sent.content), headers, texts


PLAIN = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "A **story**, please."},
    ],
    "n": 1,
    "stream": True,
    "stream_options": {"include_usage": True},
    "max_tokens": 64,
    "temperature": 0,
    "stop": ["\n\n"],
    "extra_body": {"top_k": 20, "repetition_penalty": 1.1},
    "timeout": openai.Timeout(30, connect=1),
}
TOOLS = {
    **PLAIN,
    "tools": [{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}],
}


@pytest.mark.parametrize("request_", [PLAIN, TOOLS], ids=["plain", "with-tools"])
async def test_a_chat_request_reaches_the_server_as_openai_sends_it(request_: dict[str, Any]) -> None:
    reference = await _sent(False, **request_)
    quick = await _sent(True, **request_)
    assert quick == reference  # body (with extra_body merged in), auth and other headers, what streamed
    assert quick[0]["top_k"] == 20
    assert quick[1]["authorization"] == "Bearer secret"


async def test_the_reply_is_built_from_a_few_kept_chunks_as_from_all_of_them() -> None:
    texts = [f" w{i}" for i in range(1000)]
    raw = [
        _chunk({"role": "assistant", "content": ""}),
        *(_chunk({"content": t}) for t in texts[:500]),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "now", "arguments": "{}"},
                    }
                ]
            }
        ),
        *(_chunk({"content": t}) for t in texts[500:]),
        _chunk({"content": ""}, finish_reason="stop"),
        VLLM_CHUNKS[-1],  # usage
    ]
    chunks = [ChatCompletionChunk.model_validate(c) for c in raw]
    ours = ReasoningChatGenerator(api_key=Secret.from_token("none"), model="m")
    stock = OpenAIChatGenerator(api_key=Secret.from_token("none"), model="m")
    seen: list[str] = []

    async def on_chunk(chunk: StreamingChunk) -> None:
        seen.append(chunk.content)

    [mine] = await ours._handle_async_stream_response(_Backlog(chunks), on_chunk)
    [reference] = await stock._handle_async_stream_response(cast(Any, _Backlog(chunks)), on_chunk)
    assert seen[: len(seen) // 2] == seen[len(seen) // 2 :]  # every chunk still reaches the callback
    assert mine.text == reference.text == "".join(texts)
    assert mine.tool_calls == reference.tool_calls
    for key in ("finish_reason", "usage", "model", "index"):
        assert mine.meta[key] == reference.meta[key]
    # What is kept until the end: the first chunks, a run of text as one, the tool call, text, the end.
    kept = KeptChunks()
    for chunk in chunks:
        kept.add(_convert_chat_completion_chunk_to_streaming_chunk(chunk, kept.chunks))
    assert len(kept.joined()) < 10
