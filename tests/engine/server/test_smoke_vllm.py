"""The whole chain for real: the app's runtime and built-in model, `vllm serve` on the CPU, Haystack."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from engine.models.builtin import BUILTIN_MODEL
from engine.runtime.locate import VllmRuntime
from engine.server.profiles import CPU_DEFAULT_DTYPE

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

# Generous: a loaded 2-core machine shared with other servers; this is a hang detector, not a speed check.
STARTUP_LIMIT_S = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vllm serve exited with {proc.returncode} before it was healthy:\n{_log_tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"vllm serve was not healthy after {STARTUP_LIMIT_S} s:\n{_log_tail(log)}")


def _stop_group(proc: subprocess.Popen[bytes], tree: list[psutil.Process], grace_s: float = 5) -> None:
    """SIGTERM to the whole process group, then SIGKILL what is left (VLLM-ON-CPU.md: stopping it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=10)
    proc.wait(timeout=30)


def _group_members(pgid: int) -> list[int]:
    members = []
    for p in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                members.append(p.pid)
    return members


async def _ask(base_url: str, api_key: str, question: str) -> tuple[str, list[str]]:
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.dataclasses import ChatMessage, StreamingChunk
    from haystack.utils import Secret

    pieces: list[str] = []

    async def on_chunk(chunk: StreamingChunk) -> None:
        pieces.append(chunk.content)

    generator = OpenAIChatGenerator(
        api_key=Secret.from_token(api_key),
        model=BUILTIN_MODEL.served_name,
        api_base_url=base_url,
        streaming_callback=on_chunk,
        generation_kwargs={"temperature": 0, "max_tokens": 64},
        timeout=120,
        max_retries=0,
    )
    try:
        result = await generator.run_async(messages=[ChatMessage.from_user(question)])
    finally:
        await generator.close_async()
    return result["replies"][0].text or "", pieces


def test_builtin_model_answers_through_haystack_stream(
    vllm_runtime: VllmRuntime, builtin_model_dir: Path, tmp_path: Path
) -> None:
    port = _free_port()
    api_key = secrets.token_urlsafe(16)
    args = [
        str(builtin_model_dir),
        "--served-model-name",
        BUILTIN_MODEL.served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        str(BUILTIN_MODEL.max_model_len),
        "--dtype",
        CPU_DEFAULT_DTYPE,  # the app's CPU choice: bfloat16 answers wrongly on some CPUs
        "--enforce-eager",
    ]
    # The key travels in the environment, not argv, so `ps` does not show it.
    env = dict(os.environ, **vllm_runtime.env(), VLLM_API_KEY=api_key)
    log = tmp_path / "vllm.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            vllm_runtime.serve_command(args),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: the whole tree can be signalled at once
        )
    tree: list[psutil.Process] = [psutil.Process(proc.pid)]
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{port}/health", log)
        tree += psutil.Process(proc.pid).children(recursive=True)
        # /v1 is protected by the key: without it the server refuses.
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).status_code == 401

        text, pieces = asyncio.run(
            _ask(f"http://127.0.0.1:{port}/v1", api_key, "What is the capital of France?")
        )
    finally:
        _stop_group(proc, tree)

    streamed = "".join(pieces)
    assert "Paris" in streamed, f"streamed reply: {streamed!r}\n{_log_tail(log)}"
    assert streamed.strip() == text.strip()
    assert len([p for p in pieces if p]) > 1, "the reply was not streamed token by token"
    assert len(tree) >= 2, "expected vLLM's engine process under the API server"
    left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes of vllm serve still running: {[(p.pid, p.cmdline()) for p in left]}"
    assert _group_members(proc.pid) == [], "a process of the server's group is still running"
