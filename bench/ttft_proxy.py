"""A timestamping TCP proxy between a client and an OpenAI-compatible server: what the server takes to its
first token, seen from outside both, so the client's own share of a time to first token can be isolated.

Every byte is passed on unchanged, both ways. Per HTTP request on a connection (HTTP/1.1, one after the
other, keep-alive or not) the proxy notes, on ``CLOCK_MONOTONIC`` (``time.monotonic`` and
``time.perf_counter`` read the same clock in every process on Linux):

- ``request_first``: the request's first byte arrived from the client;
- ``request_done``: its last byte arrived (the headers and ``Content-Length`` bytes of body, or the last
  chunk of a chunked body) — the request is on the wire;
- ``response_first``: the response's first byte was passed on toward the client;
- ``first_token``: the bytes that complete the first Server-Sent Event whose ``data:`` carries text (a chat
  ``delta.content``, or a completion's ``text``) were passed on toward the client;
- ``response_done``: the response's last byte was passed on.

The server's span of a request is ``first_token - request_done``; a client's own overhead for it is its
time to first token minus that span (what it spent before its request was on the wire and after the first
token left the proxy). Two clients timed against the same server through the proxy differ by their own
overheads, whatever the server's own latency did meanwhile.

:class:`TtftProxy` runs in any asyncio loop (the unit tests run it in a thread); :class:`ProxyProcess` runs
it in a process of its own (``python -m bench.ttft_proxy HOST PORT``), so its work never waits for the
measured client's GIL, and hands its records over as JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
READY = "ttft-proxy listening on "


@dataclass(frozen=True)
class Exchange:
    """One request and its response, as the proxy saw them (monotonic seconds; ``None``: never happened)."""

    connection: int
    method: str
    path: str
    status: int
    request_first: float
    request_done: float
    response_first: float | None
    first_token: float | None
    response_done: float | None

    @property
    def server_span_s(self) -> float | None:
        """From the request on the wire to its first token passed on toward the client."""
        return None if self.first_token is None else self.first_token - self.request_done

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> Exchange:
        return cls(**json.loads(line))


class HttpMessageReader:
    """Follows one direction of an HTTP/1.1 connection, fed bytes as they pass, and says where each
    message's head and end are. ``response``: parse status lines (and treat the body as SSE), else requests.
    """

    def __init__(self, *, response: bool) -> None:
        self.response = response
        self._buffer = b""
        self._state = "head"  # head, length, chunk-size, chunk-data, chunk-trailer
        self._remaining = 0
        self._sse = b""  # undecoded SSE text of the current response's body
        self.start_line = ""
        self.token_seen = False

    @property
    def between_messages(self) -> bool:
        """No part of a message read yet since the last one ended."""
        return self._state == "head" and not self._buffer

    def feed(self, data: bytes) -> list[str]:
        """The events that ``data`` completes, in order: ``"head"``, ``"token"`` (responses only: the first
        SSE event with text), ``"done"``."""
        self._buffer += data
        events: list[str] = []
        step = {
            "head": self._head,
            "length": self._length,
            "chunk-size": self._chunk_size,
            "chunk-data": self._chunk_data,
            "chunk-trailer": self._chunk_trailer,
        }
        while step[self._state](events):
            pass
        return events

    def _head(self, events: list[str]) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self._buffer = self._buffer[:end].decode("latin-1"), self._buffer[end + 4 :]
        events.append("head")
        self._begin(head, events)
        return True

    def _length(self, events: list[str]) -> bool:
        if self._remaining and not self._buffer:
            return False
        take = self._buffer[: self._remaining]
        self._buffer = self._buffer[len(take) :]
        self._remaining -= len(take)
        self._body(take, events)
        if not self._remaining:
            self._end(events)
        return True

    def _chunk_size(self, events: list[str]) -> bool:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            return False
        size = int(self._buffer[:end].split(b";")[0].strip() or b"0", 16)
        self._buffer = self._buffer[end + 2 :]
        self._remaining = size
        self._state = "chunk-data" if size else "chunk-trailer"
        return True

    def _chunk_data(self, events: list[str]) -> bool:
        if len(self._buffer) < self._remaining + 2:  # the chunk (or its CRLF) is not all here yet
            take = self._buffer[: self._remaining]
            self._buffer = self._buffer[len(take) :]
            self._remaining -= len(take)
            self._body(take, events)
            return False
        take, self._buffer = self._buffer[: self._remaining], self._buffer[self._remaining + 2 :]
        self._remaining = 0
        self._body(take, events)
        self._state = "chunk-size"
        return True

    def _chunk_trailer(self, events: list[str]) -> bool:  # lines until an empty one
        end = self._buffer.find(b"\r\n")
        if end < 0:
            return False
        line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        if not line:
            self._end(events)
        return True

    def _begin(self, head: str, events: list[str]) -> None:
        lines = head.split("\r\n")
        self.start_line = lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self._sse = b""
        self.token_seen = False
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = "chunk-size"
        elif "content-length" in headers:
            self._remaining = int(headers["content-length"])
            self._state = "length"
            if not self._remaining:
                self._end(events)
        elif self.response:  # no length: the body runs until the connection closes
            self._remaining = sys.maxsize
            self._state = "length"
        else:
            self._end(events)

    def _body(self, data: bytes, events: list[str]) -> None:
        if not self.response or self.token_seen or not data:
            return
        self._sse += data
        while not self.token_seen:
            ends = (self._sse.find(b"\n\n"), self._sse.find(b"\r\n\r\n"))
            cut = min((i for i in ends if i >= 0), default=-1)
            if cut < 0:
                return
            event, self._sse = self._sse[:cut], self._sse[cut:].lstrip(b"\r\n")
            if sse_has_text(event):
                self.token_seen = True
                events.append("token")

    def _end(self, events: list[str]) -> None:
        events.append("done")
        self._state = "head"


def sse_has_text(event: bytes) -> bool:
    """Whether an SSE event's ``data:`` is a chunk carrying text (chat ``delta.content`` or ``text``)."""
    data = b"".join(
        line[5:].lstrip() for line in event.replace(b"\r\n", b"\n").split(b"\n") if line.startswith(b"data:")
    )
    if not data or data == b"[DONE]":
        return False
    try:
        chunk = json.loads(data)
    except ValueError:
        return False
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if (isinstance(delta, dict) and delta.get("content")) or choice.get("text"):
            return True
    return False


_Connecting = asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


@dataclass
class _Pending:
    method: str
    path: str
    request_first: float
    request_done: float | None = None
    status: int = 0
    response_first: float | None = None
    first_token: float | None = None


class TtftProxy:
    """The proxy: ``await start()`` listens on ``host:port`` (0: a free port) and forwards to ``upstream``;
    every finished exchange goes to :attr:`exchanges` and to ``on_exchange``."""

    def __init__(self, upstream_host: str, upstream_port: int, *, on_exchange: Any = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.on_exchange = on_exchange
        self.exchanges: list[Exchange] = []
        self._server: asyncio.Server | None = None
        self._connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):  # their reads end, and so do the connections' tasks
                writer.close()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections += 1
        connection = self._connections
        pending: list[_Pending] = []  # requests sent, their responses not finished, oldest first
        self._writers.add(client_w)
        # The client's bytes are read (and timed) from the start; the server's connection is made meanwhile.
        connecting = asyncio.ensure_future(asyncio.open_connection(*self.upstream))
        up = asyncio.ensure_future(self._upstream(client_r, connecting, pending))
        down = asyncio.ensure_future(self._downstream(connecting, client_w, pending, connection))
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if down in done:
                up.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
        finally:
            writers = [client_w]
            if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
                writers.append(connecting.result()[1])
            else:
                connecting.cancel()
            for writer in writers:
                writer.close()
                self._writers.discard(writer)
            self._tasks.discard(task)

    @staticmethod
    async def _upstream(
        client_r: asyncio.StreamReader, connecting: _Connecting, pending: list[_Pending]
    ) -> None:
        """Client to server: each request's first and last byte's arrival."""
        reader = HttpMessageReader(response=False)
        while data := await client_r.read(65536):
            now = time.monotonic()
            if reader.between_messages:  # a new request begins
                pending.append(_Pending("", "", now))
            server_w = (await connecting)[1]
            server_w.write(data)
            for event in reader.feed(data):
                entry = next(p for p in pending if p.request_done is None)
                if event == "head":
                    entry.method, entry.path = [*reader.start_line.split(" "), "", ""][:2]
                elif event == "done":
                    entry.request_done = now
            await server_w.drain()
        with contextlib.suppress(OSError):
            (await connecting)[1].write_eof()

    async def _downstream(
        self,
        connecting: _Connecting,
        client_w: asyncio.StreamWriter,
        pending: list[_Pending],
        connection: int,
    ) -> None:
        """Server to client: each response's first byte, first token and last byte passed on."""
        reader = HttpMessageReader(response=True)
        server_r = (await connecting)[0]
        while data := await server_r.read(65536):
            now = time.monotonic()  # before the write: the client cannot have these bytes earlier
            client_w.write(data)
            if pending and pending[0].response_first is None:
                pending[0].response_first = now
            for event in reader.feed(data):
                if not pending:
                    continue
                current = pending[0]
                if event == "head":
                    parts = reader.start_line.split(" ")
                    current.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                elif event == "token" and current.first_token is None:
                    current.first_token = now
                elif event == "done":
                    self._record(connection, pending.pop(0), now)
                    if pending and pending[0].response_first is None:
                        pending[0].response_first = now
            await client_w.drain()
        for entry in pending:  # the server closed before the response ended
            self._record(connection, entry, None)
        pending.clear()

    def _record(self, connection: int, entry: _Pending, done: float | None) -> None:
        exchange = Exchange(
            connection,
            entry.method,
            entry.path,
            entry.status,
            entry.request_first,
            entry.request_done if entry.request_done is not None else entry.request_first,
            entry.response_first,
            entry.first_token,
            done,
        )
        self.exchanges.append(exchange)
        if self.on_exchange is not None:
            self.on_exchange(exchange)


class ProxyProcess:
    """:class:`TtftProxy` in a process of its own; :meth:`take` returns the exchanges recorded since the
    last call (waiting for those still to come)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.ttft_proxy", upstream_host, str(upstream_port)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(READY):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"the TTFT proxy did not start: {line!r}")
        self.port = int(line[len(READY) :])
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True, name="ttft-proxy-reader")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def take(self, count: int, timeout: float = 10.0) -> list[Exchange]:
        """The next ``count`` exchanges (raises ``TimeoutError`` when they do not come within ``timeout``)."""
        deadline = time.monotonic() + timeout
        taken: list[Exchange] = []
        while len(taken) < count:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"the proxy recorded {len(taken)} of {count} exchanges") from None
            taken.append(Exchange.from_json(line))
        return taken

    def pending(self) -> list[Exchange]:
        """The exchanges recorded and not taken yet (no wait)."""
        taken = []
        while True:
            try:
                taken.append(Exchange.from_json(self._lines.get_nowait()))
            except queue.Empty:
                return taken

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def proxied(base_url: str) -> Iterator[tuple[ProxyProcess, str]]:
    """A :class:`ProxyProcess` in front of ``base_url``'s host and port, and the base URL through it."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise ValueError(f"the TTFT proxy needs an http://host:port URL, not {base_url!r}")
    with ProxyProcess(parts.hostname, parts.port) as proxy:
        yield proxy, urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))


def main(argv: list[str]) -> None:
    host, port = argv[0], int(argv[1])

    async def serve() -> None:
        def emit(exchange: Exchange) -> None:
            sys.stdout.write(exchange.to_json() + "\n")
            sys.stdout.flush()

        proxy = TtftProxy(host, port, on_exchange=emit)
        listening = await proxy.start()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        sys.stdout.write(f"{READY}{listening}\n")
        sys.stdout.flush()
        await stop.wait()
        await proxy.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main(sys.argv[1:])
