"""Haystack's ``OpenAIChatGenerator`` taught to keep vLLM's reasoning; streamed completions for base models.

Imported lazily by :mod:`engine.chat` (Haystack takes ~0.7 s to import).

vLLM with ``--reasoning-parser`` streams the model's thinking as ``delta.reasoning`` (older servers:
``delta.reasoning_content``). The stock generator converts each raw chunk with
``_convert_chat_completion_chunk_to_streaming_chunk``, which reads only ``delta.content``, so the reasoning is
dropped. :class:`ReasoningChatGenerator` overrides the one method that walks the raw stream: it converts each
chunk with Haystack's own function and, when the raw delta carries reasoning, emits it as a
``StreamingChunk(reasoning=ReasoningContent(...))`` — Haystack's own shape, which its
``_convert_streaming_chunks_to_chat_message`` already gathers into ``ChatMessage.reasoning``. Everything else
(request building, clients, cancellation that shields ``close()``) stays Haystack's.

Haystack 3.x removed ``OpenAIGenerator`` (the ``/v1/completions`` component of Haystack 2), so
:func:`stream_completion` talks to ``/v1/completions`` with the same ``openai`` client Haystack uses.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from haystack.components.generators.chat.openai import (
    OpenAIChatGenerator,
    _convert_chat_completion_chunk_to_streaming_chunk,
)
from haystack.components.generators.utils import _convert_streaming_chunks_to_chat_message
from haystack.dataclasses import ChatMessage, ComponentInfo, ReasoningContent, StreamingChunk
from haystack.dataclasses.streaming_chunk import StreamingCallbackT, _invoke_streaming_callback
from openai import AsyncOpenAI

REASONING_FIELDS = ("reasoning", "reasoning_content")


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

    async def _handle_async_stream_response(
        self, chat_completion: Any, callback: StreamingCallbackT
    ) -> list[ChatMessage]:
        component_info = ComponentInfo.from_component(self)
        chunks: list[StreamingChunk] = []
        try:
            async for raw in chat_completion:
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
                    chunks.append(thought)
                    await _invoke_streaming_callback(callback, thought)
                    if not converted.content and not converted.finish_reason:
                        continue
                    converted = dataclasses.replace(converted, start=False)
                chunks.append(converted)
                await _invoke_streaming_callback(callback, converted)
        except asyncio.CancelledError:
            # As Haystack does: close the stream (the server sees the disconnect) even while cancelled.
            await asyncio.shield(chat_completion.close())
            raise
        return [_convert_streaming_chunks_to_chat_message(chunks=chunks)]


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
