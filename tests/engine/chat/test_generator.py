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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI, AsyncStream
from openai._base_client import make_request_options
from openai._models import construct_type
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from engine.chat.generator import (
    KeptChunks,
    PlainForm,
    ReasoningChatGenerator,
    quick_chunks,
    quick_requests,
)
from engine.chat.request import plain_chat_message


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


@pytest.mark.asyncio
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


@pytest.mark.asyncio
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


async def _sent_raw(quick: bool | None, **request: Any) -> tuple[bytes, dict[str, str], list[str]]:
    """What reaches the server for ``create(**request)`` (body's bytes, headers) and the streamed texts.
    ``quick=None``: the body posted as it is through openai's ``post`` (``extra_body`` merged by openai), as
    the quick requests did before they encoded the body themselves."""
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
        if quick is None:
            options = {k: request[k] for k in ("extra_body", "timeout") if k in request}
            stream = await client.post(
                "/chat/completions",
                body={k: v for k, v in request.items() if k not in options},
                options=make_request_options(**options, security={"bearer_auth": True}),
                cast_to=ChatCompletion,
                stream=True,
                stream_cls=AsyncStream[ChatCompletionChunk],
            )
        else:
            stream = await client.chat.completions.create(**request)
        texts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    finally:
        await client.close()
    [sent] = seen
    headers = {k: v for k, v in sent.headers.items() if not k.startswith("x-stainless")}
    return sent.content, headers, texts


async def _sent(quick: bool, **request: Any) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """What reaches the server for ``create(**request)`` (body, headers) and the streamed texts."""
    content, headers, texts = await _sent_raw(quick, **request)
    return json.loads(content), headers, texts


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
@pytest.mark.asyncio
async def test_a_chat_request_reaches_the_server_as_openai_sends_it(request_: dict[str, Any]) -> None:
    reference = await _sent(False, **request_)
    quick = await _sent(True, **request_)
    assert quick == reference  # body (with extra_body merged in), auth and other headers, what streamed
    assert quick[0]["top_k"] == 20
    assert quick[1]["authorization"] == "Bearer secret"


def _forms(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The openai forms the engine's messages hand to Haystack's request (PlainForms with their JSON)."""
    message = plain_chat_message()
    made = {"system": message.from_system, "user": message.from_user, "assistant": message.from_assistant}
    return [made[role](text).to_openai_dict_format() for role, text in pairs]


# Any text, quotes, escapes, control characters and non-ASCII included (no lone surrogates: neither way can
# encode them).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), TEXT), min_size=1, max_size=6),
    extra=st.dictionaries(st.sampled_from(["top_k", "temperature", "min_p", "chat_template_kwargs"]),
                          st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), TEXT),
                          max_size=3),
    kept=st.booleans(),
)  # fmt: skip
def test_a_plain_request_s_bytes_are_the_ones_openai_sends(
    pairs: list[tuple[str, str]], extra: dict[str, Any], kept: bool
) -> None:
    # The kept forms' JSON (kept=True) or plain dicts: either way the body is byte for byte openai's own.
    messages = _forms(pairs) if kept else [{"role": role, "content": text} for role, text in pairs]
    if kept:
        assert all(type(m) is PlainForm and m.json is not None for m in messages)
    request = {**PLAIN, "messages": messages, "extra_body": extra}
    before = asyncio.run(_sent_raw(None, **request))  # the body handed to openai's post
    quick = asyncio.run(_sent_raw(True, **request))
    assert quick == before
    # openai's create sends the same body (its keys in the order of its own signature).
    created = asyncio.run(_sent_raw(False, **request))
    assert json.loads(quick[0]) == json.loads(created[0])
    assert quick[1:] == created[1:]


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_a_value_json_cannot_hold_is_refused_as_openai_refuses_it(value: float) -> None:
    request = {**PLAIN, "messages": _forms([("user", "Hi")]), "extra_body": {"top_k": value}}
    for quick in (None, True):
        with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
            asyncio.run(_sent_raw(quick, **request))


@pytest.mark.asyncio
async def test_a_changed_form_is_sent_as_changed_and_an_unplain_one_goes_openai_s_way() -> None:
    changed = _forms([("system", "Be brief."), ("user", "Hi")])
    changed[1]["content"] = "Changed"
    changed[0].update(name="boss")
    sent = await _sent_raw(True, **{**PLAIN, "messages": changed})
    assert json.loads(sent[0])["messages"] == [
        {"role": "system", "content": "Be brief.", "name": "boss"},
        {"role": "user", "content": "Changed"},
    ]
    assert sent == await _sent_raw(None, **{**PLAIN, "messages": changed})
    # A form made to carry an image is not plain: openai's create builds that request, as before.
    image = _forms([("user", "Look")])
    image[0]["content"] = [{"type": "text", "text": "Look"}]
    request = {**PLAIN, "messages": image}
    assert await _sent_raw(True, **request) == await _sent_raw(False, **request)  # the same key order too


def test_a_form_s_copy_keeps_its_json_and_every_change_drops_it() -> None:
    [form] = _forms([("user", "Hi")])
    assert form.json == b'{"role":"user","content":"Hi"}'
    assert form.copy().json == form.json
    assert form.copy() == form
    changes = [
        lambda f: f.__setitem__("content", "x"),
        lambda f: f.__delitem__("content"),
        lambda f: f.update(content="x"),
        lambda f: f.pop("content"),
        lambda f: f.popitem(),
        lambda f: f.setdefault("name", "x"),
        lambda f: f.clear(),
        lambda f: f.__ior__({"name": "x"}),
    ]
    for change in changes:
        copy = form.copy()
        change(copy)
        assert copy.json is None
    assert form.json == b'{"role":"user","content":"Hi"}'  # the kept form is untouched by its copies'


@pytest.mark.asyncio
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
