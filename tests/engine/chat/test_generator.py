"""The generator's stream reading: chunks read by pydantic's validator exactly as openai's lenient reader reads
them, and a backlog of chunks handled in slices that leave the event loop its turns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from haystack.dataclasses import StreamingChunk
from haystack.utils import Secret
from openai import AsyncOpenAI
from openai._models import construct_type
from openai.types.chat import ChatCompletionChunk

from engine.chat.generator import ReasoningChatGenerator, quick_chunks

pytestmark = pytest.mark.asyncio


def _chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": extra.pop("finish_reason", None)}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [choice], **extra}  # fmt: skip


# What vLLM streams: text, reasoning (its own delta field), a tool call, the end, usage after it.
VLLM_CHUNKS = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": " word"}),
    _chunk({"reasoning": "thinking", "content": None}),
    _chunk({"reasoning_content": "older field"}),
    _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "search", "arguments": "{\"q\": "}}]}),  # fmt: skip
    _chunk({"content": ""}, finish_reason="stop", stop_reason=None),
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
     "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}},  # fmt: skip
]


async def test_chunks_are_read_as_openai_reads_them() -> None:
    client = AsyncOpenAI(api_key="none", base_url="http://127.0.0.1:9/v1")
    lenient = client._process_response_data
    quick_chunks(client)
    try:
        for data in VLLM_CHUNKS:
            quick = client._process_response_data(data=data, cast_to=ChatCompletionChunk, response=None)
            reference = construct_type(type_=ChatCompletionChunk, value=data)
            assert isinstance(quick, ChatCompletionChunk)
            assert quick.model_dump() == reference.model_dump()  # type: ignore[union-attr]
            if quick.choices:
                assert quick.choices[0].delta.model_extra == reference.choices[0].delta.model_extra  # type: ignore[union-attr]
        # Data the validator refuses is read the lenient way, as it was: kept as sent, nothing raised.
        odd = _chunk({"content": "x"}, created="yesterday")
        read = client._process_response_data(data=odd, cast_to=ChatCompletionChunk, response=None)
        assert read.created == "yesterday"
        assert read == lenient(data=odd, cast_to=ChatCompletionChunk, response=None)
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
