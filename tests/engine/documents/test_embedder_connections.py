"""An embedder on a server the app launched keeps no connection: Haystack's embedders hold their own clients
and have no close, so a kept socket would outlive them (the real-vLLM embedding tests saw "unclosed socket"
once chat connections to launched servers were kept). The server here is a small HTTP/1.1 server of the
test's own that answers ``/v1/embeddings`` and notes each request's client port (one port, one connection)."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.documents.embedder import endpoint_embedder
from engine.endpoint import Endpoint

VECTOR = [0.25, 0.5, 0.75]


class EmbeddingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.client_ports: list[int] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps a connection open unless the client closes it
    server: EmbeddingServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.client_ports.append(self.client_address[1])
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        answer = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": VECTOR} for i in range(len(inputs))],
            "model": body["model"],
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
        }
        raw = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    server = EmbeddingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_embedder_on_a_launched_server_keeps_no_connection(server: EmbeddingServer) -> None:
    port = server.server_address[1]
    # As the supervisor describes a server it launched: its keep-alive is known, chat connections are kept.
    launched = Endpoint(base_url=f"http://127.0.0.1:{port}/v1", model="all-minilm-l6-v2", keep_alive_s=600)
    embedder = endpoint_embedder(launched)
    assert embedder.embed_query("cats") == VECTOR
    assert embedder.embed_query("dogs") == VECTOR
    assert len(server.client_ports) == 2
    assert server.client_ports[0] != server.client_ports[1]  # a connection each, none kept
    del embedder
    gc.collect()  # an open socket collected here would be a ResourceWarning, an error in this suite
