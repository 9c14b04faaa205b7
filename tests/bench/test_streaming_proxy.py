"""The timestamping proxy of the streaming benchmark (bench/ttft_proxy.py): it passes every byte on unchanged,
both ways, and its timestamps of each exchange come in the order they happened. Nothing here looks at how
fast anything is."""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import pytest

from bench.ttft_proxy import Exchange, HttpMessageReader, TtftProxy, proxied, sse_has_text
from tests.support.standin.launch import running_standin

BODY = bytes(range(256)) * 40  # every byte value, more than one read's worth


def _sse(*events: object) -> bytes:
    return b"".join(
        b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events
    )


ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
TOKEN = {"choices": [{"index": 0, "delta": {"content": "alpha"}}]}


def _chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


def test_an_sse_event_carries_text_only_when_its_delta_or_text_is_not_empty() -> None:
    assert not sse_has_text(_sse(ROLE))
    assert sse_has_text(_sse(TOKEN))
    assert sse_has_text(_sse({"choices": [{"index": 0, "text": "x"}]}))  # /v1/completions
    assert not sse_has_text(b"data: [DONE]")
    assert not sse_has_text(b": keep-alive")
    assert not sse_has_text(b"data: {not json")
    assert not sse_has_text(_sse({"choices": [], "usage": {"completion_tokens": 3}}))


def test_a_chunked_sse_response_fed_a_byte_at_a_time_says_head_first_token_and_end_where_they_are() -> None:
    body = _sse(ROLE, TOKEN, TOKEN, b"[DONE]")
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    wire = head + _chunked(body, 7) + b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"
    reader = HttpMessageReader(response=True)
    seen = [(i, event) for i in range(len(wire)) for event in reader.feed(wire[i : i + 1])]
    assert [event for _, event in seen] == ["head", "token", "done", "head", "done"]
    assert seen[0][0] == len(head) - 1
    # The token is complete at the blank line ending the second event: where that byte is in the chunked form.
    end = body.index(b"\n\n", body.index(b"alpha")) + 1
    chunk, offset = divmod(end, 7)
    assert seen[1][0] == len(head) + chunk * len(_chunked(b"x" * 7, 7)[:-5]) + len(b"7\r\n") + offset
    assert seen[2][0] == len(head) + len(_chunked(body, 7)) - 1
    assert seen[4][0] == len(wire) - 1


def test_a_request_ends_after_its_content_length_bytes() -> None:
    reader = HttpMessageReader(response=False)
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    assert reader.feed(request[:-1]) == ["head"]
    assert reader.between_messages is False
    assert reader.feed(request[-1:]) == ["done"]
    assert reader.between_messages is True
    assert reader.start_line == "POST /v1/chat/completions HTTP/1.1"


def test_bytes_pass_through_unchanged_both_ways_and_each_exchange_is_recorded_in_order() -> None:
    async def scenario() -> tuple[bytes, bytes, bytes, bytes, list[Exchange]]:
        received = bytearray()
        sse = _sse(ROLE, TOKEN, b"[DONE]")
        responses = [
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(BODY) + BODY,
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + _chunked(sse, 5),
        ]

        async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for response in responses:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                received.extend(head + await reader.readexactly(length))
                for i in range(0, len(response), 1000):  # in pieces, as a server's writes come
                    writer.write(response[i : i + 1000])
                    await writer.drain()
            writer.close()

        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        proxy = TtftProxy("127.0.0.1", server.sockets[0].getsockname()[1])
        port = await proxy.start()
        requests = [
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY,
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        ]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        got = bytearray()
        for request, response in zip(requests, responses, strict=True):
            writer.write(request)
            await writer.drain()
            got.extend(await reader.readexactly(len(response)))
        writer.close()
        await proxy.close()
        server.close()
        await server.wait_closed()
        return b"".join(requests), bytes(received), b"".join(responses), bytes(got), proxy.exchanges

    sent, received, answered, got, exchanges = asyncio.run(scenario())
    assert received == sent
    assert got == answered
    assert [(e.method, e.path, e.status) for e in exchanges] == [
        ("POST", "/a", 200),
        ("POST", "/v1/chat/completions", 200),
    ]
    assert exchanges[0].first_token is None  # not an event stream with text
    for e in exchanges:
        assert e.response_first is not None
        assert e.response_done is not None
        assert e.request_first <= e.request_done <= e.response_first <= e.response_done
    streamed = exchanges[1]
    assert streamed.first_token is not None
    assert streamed.response_first <= streamed.first_token <= streamed.response_done
    assert exchanges[0].response_done <= streamed.request_first


def test_a_streamed_reply_from_the_standin_comes_through_the_proxy_process_whole_and_timed_in_order() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    def stream(client: httpx.Client, url: str) -> tuple[float, float, float, list[str]]:
        pieces: list[str] = []
        first = 0.0
        start = time.monotonic()
        with client.stream(
            "POST", f"{url}/chat/completions", json=body, headers={"Authorization": "Bearer k"}
        ) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for choice in json.loads(line[6:])["choices"]:
                        if choice["delta"].get("content"):
                            first = first or time.monotonic()
                            pieces.append(choice["delta"]["content"])
        return start, first, time.monotonic(), pieces

    with (
        running_standin("--tokens-per-second", "200", "--reply-tokens", "6", model="m", api_key="k") as srv,
        proxied(srv.base_url) as (proxy, url),
        httpx.Client(trust_env=False, timeout=30) as client,
    ):
        direct = stream(client, srv.base_url)
        runs = [stream(client, url) for _ in range(2)]  # the second on the kept connection
        exchanges = proxy.take(2)
        pid = proxy.proc.pid
    assert proxy.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    for (start, first, end, pieces), e in zip(runs, exchanges, strict=True):
        assert pieces == direct[3]
        assert len(pieces) == 6
        assert (e.method, e.path, e.status) == ("POST", "/v1/chat/completions", 200)
        assert e.first_token is not None
        assert e.response_first is not None
        assert e.response_done is not None
        assert start <= e.request_first <= e.request_done <= e.response_first <= e.first_token
        assert e.first_token <= first <= end
        assert e.first_token <= e.response_done <= end
        span = e.server_span_s
        assert span is not None
        assert 0 < span <= first - start
