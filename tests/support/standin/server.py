"""The stand-in's HTTP server (stdlib ``ThreadingHTTPServer``) and command line; see the package doc."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.standin import logs, tool_calls

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda"]
DEFAULT_REPLY = "The capital of France is Paris."


# Hostile-server modes (--fault): what a broken proxy, a crashed worker or a non-vLLM server sends.
FAULTS = (
    "http-500",  # HTTP 500 with a JSON error body naming the cause
    "html-error",  # HTTP 502 with an HTML page (a reverse proxy in front of a dead server)
    "close-stream",  # a few tokens, then the stream ends cleanly: no finish_reason, no [DONE]
    "drop-connection",  # a few tokens, then the socket is closed in the middle of the chunked body
    "keepalive",  # a few tokens, then SSE comments (": keep-alive") every 0.2 s and never more text
    "malformed-sse",  # a few tokens, then a data line that is not JSON
    "json-not-stream",  # a streamed request answered with one whole JSON body (stream=true ignored)
)
SERVER_500_MESSAGE = "Internal failure in the stand-in: tokenizer worker crashed (fault injection)"
HTML_ERROR_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    "</center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n"
)


def tokens_of(text: str) -> list[str]:
    """Whitespace-attached words: joined back they give the text exactly."""
    return re.findall(r"\s*\S+|\s+$", text)


def _tool_parser_refusal(opts: argparse.Namespace, body: dict[str, Any]) -> str | None:
    """vLLM 0.32's 400 for a tool choice the server was not started for (``--check-tool-parser`` only)."""
    if not opts.check_tool_parser or not body.get("tools"):
        return None
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    if choice == "auto":
        if opts.enable_auto_tool_choice and opts.tool_call_parser:
            return None
        return '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
    if opts.tool_call_parser:
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name", "")
        return f'tool_choice=function "{name}" requires --tool-call-parser to be set'
    return f'tool_choice="{choice}" requires --tool-call-parser to be set'


class Stats:
    """What /metrics reports, updated by the request threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success = 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.support.standin", description="vllm serve stand-in")
    # vllm serve's own arguments (the supervisor passes them; most only change what is reported).
    p.add_argument("command", nargs="?", default="serve", help="'serve' (accepted like vllm's CLI)")
    p.add_argument("model_tag", nargs="?", default="standin-model")
    p.add_argument("--model", dest="model_opt")
    p.add_argument("--served-model-name", nargs="+")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-model-len", default="2048")
    p.add_argument("--api-key")
    # Stand-in behaviour.
    p.add_argument("--tokens-per-second", type=float, default=0.0, help="0 = as fast as possible")
    p.add_argument("--reply", default=None)
    p.add_argument("--reply-tokens", type=int, default=None)
    p.add_argument("--reasoning", default=None)
    p.add_argument("--reasoning-field", default="reasoning", choices=["reasoning", "reasoning_content"])
    p.add_argument("--startup-delay", type=float, default=0.0)
    p.add_argument("--download", action="store_true", help="print weight-download progress at startup")
    p.add_argument("--fail-with", choices=logs.FAILURE_KINDS)
    p.add_argument("--stall-after", type=int, default=None)
    p.add_argument("--crash-after", type=int, default=None)
    p.add_argument("--engine-error-after", type=int, default=None, help="N tokens, then vLLM's error event")
    p.add_argument("--fork-child", action="store_true")
    p.add_argument("--child-lifetime", type=float, default=120.0)
    p.add_argument("--no-chat-template", action="store_true")
    p.add_argument("--ignore-sigterm", action="store_true")
    p.add_argument("--version-string", default="0.32.0")
    p.add_argument("--fault", choices=FAULTS, help="a hostile server: answer chat/completion requests badly")
    p.add_argument("--fault-after", type=int, default=2, help="reply tokens sent before the fault")
    p.add_argument("--tool-calls", choices=tool_calls.MODES, help="answer requests with tools with calls")
    p.add_argument("--tool-name", default=None, help="the tool called (default: the forced or first one)")
    p.add_argument("--tool-arguments", default="{}", help="the JSON arguments of the calls")
    p.add_argument("--refuse-strict", action="store_true", help="a request with a strict tool gets a 400")
    p.add_argument("--enable-auto-tool-choice", action="store_true")
    p.add_argument("--tool-call-parser", default=None)
    p.add_argument("--check-tool-parser", action="store_true", help="refuse tools as vLLM without a parser")
    args, _unknown = p.parse_known_args(argv)
    return args


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandinServer

    def setup(self) -> None:
        super().setup()
        # As uvicorn's asyncio transports: small writes (a chunk, a token) leave at once. Without it, on a
        # kept connection Nagle held a write for the peer's delayed ACK (20-40 ms for a first token).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        # As uvicorn under vLLM: a kept connection idle for VLLM_HTTP_TIMEOUT_KEEP_ALIVE seconds (5 by
        # default) is closed by the server, quietly; a request under way is never timed out.
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection and self._next_request_within(self.server.keep_alive_s):
            self.handle_one_request()

    def _next_request_within(self, seconds: float) -> bool:
        self.connection.settimeout(seconds)
        try:
            return bool(self.rfile.peek(1))  # b"": the client closed it
        except OSError:  # TimeoutError included: idle too long
            return False
        finally:
            self.connection.settimeout(None)

    def log_message(self, format: str, *args: Any) -> None:
        # uvicorn's access-log format, on stdout like vLLM's.
        logs.out(f'INFO:     {self.client_address[0]}:{self.client_address[1]} - "{format % args}"')

    # -- plumbing -------------------------------------------------------------------------------
    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, status: int, text: str, ctype: str = "text/plain; charset=utf-8") -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": param, "code": status}})

    def _authorized(self) -> bool:
        key = self.server.api_key
        if not key or not self.path.startswith("/v1"):
            return True  # vLLM protects /v1/* only
        if self.headers.get("Authorization", "") == f"Bearer {key}":
            return True
        self._json(401, {"error": "Unauthorized"})
        return False

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return body if isinstance(body, dict) else {}

    # -- routes ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if not self._authorized():
            return
        path = self.path.split("?")[0]
        if path in ("/health", "/ping"):
            self._text(200, "")
        elif path == "/version":
            self._json(200, {"version": self.server.opts.version_string})
        elif path == "/v1/models":
            self._json(200, self.server.models_body())
        elif path == "/metrics":
            self._text(200, self.server.metrics_text(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._json(404, {"detail": "Not Found"})

    def _tokenize(self, body: dict[str, Any]) -> None:
        text = body.get("prompt") or " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        toks = tokens_of(str(text))
        self._json(
            200,
            {
                "count": len(toks),
                "max_model_len": self.server.max_model_len,
                "tokens": list(range(len(toks))),
            },
        )

    def _answered_by_fault(self, fault: str | None) -> bool:
        """The request is answered with the error a fault mode asks for (True), or served normally."""
        if fault == "http-500":
            self._error(500, SERVER_500_MESSAGE, "InternalServerError")
            return True
        if fault == "html-error":
            self._text(502, HTML_ERROR_PAGE, "text/html")
            return True
        return False

    def _refused(self, body: dict[str, Any]) -> bool:
        """A chat request answered with vLLM's 400 before it starts (no chat template, a strict tool)."""
        if self.server.opts.no_chat_template:
            self._error(400, logs.NO_CHAT_TEMPLATE, "BadRequestError")
            return True
        if (refusal := _tool_parser_refusal(self.server.opts, body)) is not None:
            self._error(400, refusal, "BadRequestError")
            return True
        if self.server.opts.refuse_strict and any(
            (t.get("function") or {}).get("strict") for t in body.get("tools") or []
        ):
            # vLLM 0.32's answer to a grammar it cannot build (measured with a dangling $ref): a 400, or when
            # streamed, a 200 whose first event is the error.
            message = "Invalid grammar specification: 'triggers'"
            if not body.get("stream"):
                self._error(400, message, "BadRequestError")
                return True
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            error = {"message": message, "type": "BadRequestError", "param": None, "code": 400}
            self._chunk(f"data: {json.dumps({'error': error})}\n\n")
            self._chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return True
        return False

    def do_POST(self) -> None:
        if not self._authorized():
            return
        path = self.path.split("?")[0]
        body = self._body()
        if path == "/tokenize":
            self._tokenize(body)
            return
        if path not in ("/v1/chat/completions", "/v1/completions"):
            self._json(404, {"detail": "Not Found"})
            return
        chat = path == "/v1/chat/completions"
        model = body.get("model", self.server.served)
        if model != self.server.served:
            self._error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
            return
        if chat and self._refused(body):
            return
        if chat:
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        else:
            prompt = str(body.get("prompt", ""))
        prompt_tokens = len(tokens_of(prompt))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        wanted = prompt_tokens + (limit if isinstance(limit, int) else 0)
        if wanted > self.server.max_model_len:  # vLLM refuses such a request before it starts
            self._error(
                400, logs.context_too_long(self.server.max_model_len, prompt_tokens, limit), "BadRequestError"
            )
            return
        fault = self.server.opts.fault
        if self._answered_by_fault(fault):
            return
        reply = self.server.reply_tokens()
        finish = "stop"
        if isinstance(limit, int) and limit < len(reply):
            reply, finish = reply[:limit], "length"
        reasoning = tokens_of(self.server.opts.reasoning) if (chat and self.server.opts.reasoning) else []
        with self.server.stats.lock:
            self.server.stats.running += 1
            self.server.stats.prompt_tokens += prompt_tokens
        try:
            if chat and body.get("stream") and tool_calls.wanted(self.server.opts.tool_calls, body):
                self._stream_tool_calls(body)
            elif body.get("stream") and fault != "json-not-stream":
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self._stream(chat, reasoning, reply, finish, prompt_tokens, usage)
            else:
                self._whole(chat, reasoning, reply, finish, prompt_tokens)
        finally:
            with self.server.stats.lock:
                self.server.stats.running -= 1

    def _whole(
        self, chat: bool, reasoning: list[str], reply: list[str], finish: str, prompt_tokens: int
    ) -> None:
        for _ in range(len(reasoning) + len(reply)):
            self.server.pace_and_faults(self.server.next_token())
        text = "".join(reply)
        usage = {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + len(reply),
            "completion_tokens": len(reply),
        }
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": text, "tool_calls": []}
            if reasoning:
                message[self.server.opts.reasoning_field] = "".join(reasoning)
            choice: dict[str, Any] = {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        obj = "chat.completion" if chat else "text_completion"
        self.server.count_done(len(reply))
        body = {"id": rid, "object": obj, "created": int(time.time()), "model": self.server.served}
        self._json(200, {**body, "choices": [choice], "usage": usage})

    def _chunk(self, data: str) -> None:
        raw = data.encode()
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _stream(
        self, chat: bool, reasoning: list[str], reply: list[str], finish: str, prompt_tokens: int, usage: bool
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"
        head = {"id": rid, "object": obj, "created": created, "model": self.server.served}

        def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            self._chunk(f"data: {json.dumps({**head, 'choices': choices, **extra})}\n\n")

        def choice(delta: dict[str, Any], fin: str | None = None) -> dict[str, Any]:
            if chat:
                return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": fin}
            return {"index": 0, "text": delta.get("content", ""), "logprobs": None, "finish_reason": fin}

        try:
            if chat:
                send([choice({"role": "assistant", "content": ""})])
            for tok in reasoning:
                self.server.pace_and_faults(self.server.next_token())
                send([choice({self.server.opts.reasoning_field: tok})])
            for i, tok in enumerate(reply):
                if self.server.opts.fault is not None and i >= self.server.opts.fault_after:
                    self._fault(self.server.opts.fault)
                    return
                error_after = self.server.opts.engine_error_after
                if error_after is not None and i >= error_after:
                    # What vLLM streams when EngineCore dies mid-reply: an error event, then the end.
                    error = {"message": logs.ENGINE_DEAD_MESSAGE, "type": "InternalServerError", "code": 500}
                    self._chunk(f"data: {json.dumps({'error': error})}\n\n")
                    self._chunk("data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                self.server.pace_and_faults(self.server.next_token())
                send([choice({"content": tok}, finish if i == len(reply) - 1 else None)])
            if not reply:
                send([choice({"content": ""}, finish)])
            self.server.count_done(len(reply))
            if usage:
                total = prompt_tokens + len(reply)
                send(
                    [],
                    usage={
                        "prompt_tokens": prompt_tokens,
                        "total_tokens": total,
                        "completion_tokens": len(reply),
                    },
                )
            self._chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            logs.out(logs.api("Client disconnected, aborting request", "serving_chat.py:1106"))

    def _stream_tool_calls(self, body: dict[str, Any]) -> None:
        opts = self.server.opts
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.server.served,
        }
        steps = [
            {"role": "assistant", "content": ""},
            *tool_calls.deltas(opts.tool_calls, body, opts.tool_name, opts.tool_arguments),
        ]
        for i, delta in enumerate(steps):
            fin = tool_calls.finish_reason(opts.tool_calls) if i == len(steps) - 1 else None
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": fin}
            self._chunk(f"data: {json.dumps({**head, 'choices': [choice]})}\n\n")
        self._chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _fault(self, fault: str) -> None:
        """The rest of a streamed reply, as a broken server sends it."""
        if fault == "close-stream":
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
        elif fault == "drop-connection":
            self.wfile.write(b'40\r\ndata: {"partial')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif fault == "keepalive":
            end = time.monotonic() + 300  # bounded: a failed test cannot leave it forever
            while time.monotonic() < end:
                self._chunk(": keep-alive\n\n")
                time.sleep(0.2)
        elif fault == "malformed-sse":
            self._chunk("data: {this is not json\n\n")
            self._chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, opts: argparse.Namespace) -> None:
        super().__init__((opts.host, opts.port), Handler, bind_and_activate=False)
        self.opts = opts
        self.served = (opts.served_model_name or [opts.model_opt or opts.model_tag])[0]
        self.max_model_len = 2048 if opts.max_model_len in ("auto", "-1") else int(opts.max_model_len)
        self.api_key = os.environ.get("VLLM_API_KEY") or opts.api_key
        self.keep_alive_s = float(os.environ.get("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "5"))  # int() in vLLM
        self.stats = Stats()
        self.tokens_sent = 0  # across requests: --stall-after / --crash-after count every token served
        self.token_lock = threading.Lock()

    def reply_tokens(self) -> list[str]:
        if self.opts.reply_tokens is not None:
            return [(" " if i else "") + WORDS[i % len(WORDS)] for i in range(self.opts.reply_tokens)]
        return tokens_of(self.opts.reply if self.opts.reply is not None else DEFAULT_REPLY)

    def next_token(self) -> int:
        with self.token_lock:
            self.tokens_sent += 1
            return self.tokens_sent

    def pace_and_faults(self, n: int) -> None:
        if self.opts.crash_after is not None and n > self.opts.crash_after:
            logs.err("Fatal Python error: Segmentation fault")
            os._exit(139)
        if self.opts.stall_after is not None and n > self.opts.stall_after:
            while True:  # a hung engine: the stream stays open and silent
                time.sleep(3600)
        if self.opts.tokens_per_second > 0:
            time.sleep(1.0 / self.opts.tokens_per_second)

    def count_done(self, generated: int) -> None:
        with self.stats.lock:
            self.stats.generation_tokens += generated
            self.stats.success += 1

    def models_body(self) -> dict[str, Any]:
        model = {
            "id": self.served,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "vllm",
            "root": self.opts.model_opt or self.opts.model_tag,
            "parent": None,
            "max_model_len": self.max_model_len,
            "permission": [],
        }
        return {"object": "list", "data": [model]}

    def metrics_text(self) -> str:
        s = self.stats
        labels = f'engine="0",model_name="{self.served}"'
        with s.lock:
            usage = min(1.0, s.running * 0.05)
            rows = [
                (
                    "vllm:num_requests_running",
                    "gauge",
                    "Number of requests in model execution batches.",
                    s.running,
                ),
                ("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", 0),
                ("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", usage),
                (
                    "vllm:prompt_tokens_total",
                    "counter",
                    "Number of prefill tokens processed.",
                    s.prompt_tokens,
                ),
                (
                    "vllm:generation_tokens_total",
                    "counter",
                    "Number of generation tokens processed.",
                    s.generation_tokens,
                ),
            ]
            success = s.success
        lines = [
            "# HELP python_gc_objects_collected_total Objects collected during gc",
            "# TYPE python_gc_objects_collected_total counter",
            'python_gc_objects_collected_total{generation="0"} 1234.0',
        ]
        for name, kind, helptext, value in rows:
            base = name.removesuffix("_total") if kind == "counter" else name
            lines += [
                f"# HELP {base} {helptext}",
                f"# TYPE {base} {kind}",
                f"{name}{{{labels}}} {float(value)}",
            ]
        lines += [
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
            f'vllm:request_success_total{{{labels},finished_reason="stop"}} {float(success)}',
        ]
        return "\n".join(lines) + "\n"


CHILD_CODE = """
import ctypes, os, sys, time
try:
    ctypes.CDLL(None).prctl(15, b"VLLM::EngineCore", 0, 0, 0)  # PR_SET_NAME, like setproctitle
except Exception:
    pass
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:  # bounded, so a failed test cannot leave it forever
    time.sleep(0.2)
"""


def spawn_child(lifetime: float) -> subprocess.Popen[bytes]:
    """A child named like vLLM's engine core (argv[0], comm) that inherits stdout/stderr like the real one."""
    return subprocess.Popen(["VLLM::EngineCore", "-c", CHILD_CODE, str(lifetime)], executable=sys.executable)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    served = (opts.served_model_name or [opts.model_opt or opts.model_tag])[0]
    model = opts.model_opt or opts.model_tag
    requested_len = 2048 if opts.max_model_len in ("auto", "-1") else int(opts.max_model_len)
    if opts.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server = StandinServer(opts)
    # Like vLLM, bind the port before the engine starts; listen only once it is ready.
    try:
        server.server_bind()
    except OSError as exc:
        if exc.errno != 98:
            raise
        for line in logs.PORT_IN_USE:
            logs.err(line)
        return 1
    child = spawn_child(opts.child_lifetime) if opts.fork_child else None
    logs.startup(model, served, requested_len, opts.version_string, opts.startup_delay, opts.download)
    if opts.fail_with:
        for line in logs.failure_lines(opts.fail_with, model, requested_len):
            logs.err(line)
        server.server_close()
        if child is not None:
            child.terminate()
            child.wait()
        return 1
    server.server_activate()
    port = server.server_address[1]
    logs.listening(opts.host, port)

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    if not opts.ignore_sigterm:
        signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    if child is not None:  # a clean shutdown takes the engine core down too, as vLLM does
        child.terminate()
        child.wait()
    logs.shutting_down()
    return 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
