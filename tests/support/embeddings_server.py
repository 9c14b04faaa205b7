"""A small OpenAI-compatible ``/v1/embeddings`` server in a thread, for tests of an embedding server's clients
(the CLI with ``--embedder-url``) without starting vLLM. Its vectors are hashed bags of words: texts sharing
words are near, which is all those tests need; meaning comes from the real model in the ``vllm`` tests.
It counts requests (and the connection each came on) and can be told to fail."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DIMS = 64


def bag_of_words(text: str, dims: int = DIMS) -> list[float]:
    vec = np.zeros(dims, dtype=np.float64)
    for word in re.findall(r"\w+", text.lower()):
        vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % dims] += 1.0
    norm = float(np.linalg.norm(vec))
    values: list[float] = (vec / norm if norm else vec).tolist()
    return values


@dataclass
class EmbeddingsServer:
    base_url: str
    model: str
    requests: list[list[str]] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)  # each request's client port: one per connection
    fail_with: int | None = None
    # Refuse inputs of more words than this, with vLLM's words for an input over --max-model-len.
    max_words: int | None = None


@contextmanager
def running_embeddings_server(
    model: str = "bow-embedder", *, keep_alive: bool = False
) -> Iterator[EmbeddingsServer]:
    """``keep_alive``: HTTP/1.1, a connection stays open until the client closes it (as vLLM's do); else
    HTTP/1.0, closed after each answer."""
    state = EmbeddingsServer("", model)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model, "object": "model"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != "/v1/embeddings":
                self._send(404, {"error": "not found"})
                return
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            state.requests.append(inputs)
            state.client_ports.append(self.client_address[1])
            if state.fail_with is not None:
                self._send(
                    state.fail_with, {"error": {"message": "the test said so", "type": "server_error"}}
                )
                return
            if state.max_words is not None and any(len(t.split()) > state.max_words for t in inputs):
                message = (
                    f"This model's maximum context length is {state.max_words} tokens. However, your prompt "
                    f"contains at least {state.max_words + 1} input tokens, which exceeds this limit even "
                    "without any output tokens. Please reduce the length of the input prompt."
                )
                self._send(400, {"error": {"message": message, "type": "BadRequestError", "code": 400}})
                return
            data = [
                {"object": "embedding", "index": i, "embedding": bag_of_words(t)}
                for i, t in enumerate(inputs)
            ]
            usage = {"prompt_tokens": sum(len(t.split()) for t in inputs), "total_tokens": 0}
            self._send(200, {"object": "list", "data": data, "model": model, "usage": usage})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a kept connection's handler thread does not hold up the shutdown
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, name="embeddings-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
