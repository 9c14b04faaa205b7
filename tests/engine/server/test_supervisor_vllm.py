"""The supervisor and `vllm-desk serve` with the REAL vLLM on the CPU (built-in model).

Separate launches only where the test is about launching; the rest uses the shared `vllm_server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from engine.diagnosis.problems import PortInUse, ServerDied
from engine.endpoint import Endpoint
from engine.paths import AppPaths
from engine.runtime.locate import VllmRuntime
from engine.server.log_phases import Phase
from engine.server.processes import session_members
from engine.server.profiles import ServerProfile, builtin_profile
from engine.server.supervisor import ServerState, StartProgress, Supervisor
from tests.support.chat_stream import stream_chat_lines
from tests.support.procs import is_alive

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if is_alive(pid)]


async def ask(endpoint: Endpoint, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"model": endpoint.model, "messages": QUESTION, "temperature": 0, "max_tokens": 20}
    async with httpx.AsyncClient(trust_env=False, timeout=120) as client:
        return await client.post(
            f"{endpoint.base_url}/chat/completions",
            json=body,
            headers=endpoint.auth_headers() if headers is None else headers,
        )


@pytest.mark.asyncio
async def test_launch_chat_stop_cycles_leave_nothing(
    vllm_paths: AppPaths, vllm_runtime: VllmRuntime, builtin_model_dir: Path
) -> None:
    """Three real launches: chat + stop; stop with a stream open; SIGKILL of the leader. 0 processes left."""
    sup = Supervisor(vllm_paths, vllm_runtime, ready_timeout_s=900)
    progress: list[StartProgress] = []
    sup.progress.connect(progress.append)
    profile = builtin_profile()
    try:
        await _three_cycles(sup, profile, progress)
    finally:
        # Pass or fail, nothing of this test's servers outlives it (nor its open log file).
        await sup.shutdown()


async def _three_cycles(sup: Supervisor, profile: ServerProfile, progress: list[StartProgress]) -> None:
    # 1. start → ready → chat with the key → stop
    endpoint = await sup.start(profile)
    pids = [p.pid for p in sup.processes()]
    assert len(pids) >= 3  # API server, engine core, resource tracker / worker
    answer = await ask(endpoint)
    assert "Paris" in answer.json()["choices"][0]["message"]["content"]
    assert endpoint.max_model_len == profile.max_model_len
    # The access log keeps the chat request but not the app's own /health and /metrics polling. (Its line
    # is read from the server's output by a thread: give it a moment.)
    for _ in range(100):
        texts = [line.text for line in sup.log_tail()]
        if any("POST /v1/chat/completions" in t for t in texts):
            break
        await asyncio.sleep(0.05)
    assert any("POST /v1/chat/completions" in t for t in texts), texts[-20:]
    assert not any('"GET /health' in t or '"GET /metrics' in t for t in texts)
    await sup.stop()
    assert alive(pids) == []
    assert sup.last_stop is not None
    phases = {p.phase for p in progress}
    assert {Phase.RUNTIME_CHECK, Phase.LOADING_WEIGHTS, Phase.ALLOCATING_KV_CACHE, Phase.READY} <= phases

    # 2. stop while a stream is open (uvicorn would wait for it; the group stop does not)
    progress.clear()
    endpoint = await sup.start(profile)
    assert progress[0].expected_s is not None  # the last start's duration
    pids = [p.pid for p in sup.processes()]
    chunks: list[str] = []

    body = {"model": endpoint.model, "messages": QUESTION, "stream": True, "max_tokens": 2000}
    reader = asyncio.create_task(stream_chat_lines(endpoint, body, chunks, http_timeout_s=60))
    for _ in range(3000):
        if len(chunks) >= 3 or reader.done():
            break
        await asyncio.sleep(0.01)
    assert len(chunks) >= 3
    began = time.monotonic()
    await sup.stop()
    assert time.monotonic() - began < sup.grace_s + 8
    # The client sees the connection end (an error, or at best a cut-short answer), never a hang.
    with contextlib.suppress(httpx.HTTPError):
        await asyncio.wait_for(reader, 10)
    assert alive(pids) == []

    # 3. SIGKILL of the leader → noticed, the rest of the group cleaned up
    await sup.start(profile)
    leader = sup.pid
    assert leader is not None
    pids = [p.pid for p in sup.processes()]
    os.kill(leader, signal.SIGKILL)
    for _ in range(300):
        if sup.state is ServerState.FAILED:
            break
        await asyncio.sleep(0.05)
    assert sup.state is ServerState.FAILED
    assert isinstance(sup.problem, ServerDied)
    assert alive(pids) == []
    assert session_members(leader) == []


@pytest.mark.asyncio
async def test_taken_port_gives_the_port_in_use_diagnosis(
    vllm_paths: AppPaths, vllm_runtime: VllmRuntime, builtin_model_dir: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        sup = Supervisor(vllm_paths, vllm_runtime, ready_timeout_s=900)
        try:
            with pytest.raises(PortInUse) as caught:
                await sup.start(builtin_profile().model_copy(update={"port": port}))
        finally:
            await sup.shutdown()
    assert caught.value.port == port
    assert "Address already in use" in caught.value.details
    assert sup.processes() == []


@pytest.mark.asyncio
async def test_shared_server_answers_with_the_key_and_refuses_without(vllm_server: Endpoint) -> None:
    assert vllm_server.kind == "local"
    answer = await ask(vllm_server)
    assert answer.status_code == 200
    assert "Paris" in answer.json()["choices"][0]["message"]["content"]
    refused = await ask(vllm_server, headers={})
    assert refused.status_code == 401
    wrong = await ask(vllm_server, headers={"Authorization": "Bearer not-the-key"})
    assert wrong.status_code == 401


def test_cli_serve_reaches_ready_and_ctrl_c_leaves_nothing(
    vllm_paths: AppPaths, vllm_runtime: VllmRuntime, builtin_model_dir: Path
) -> None:
    home = vllm_paths.data.parent
    cli = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--data-dir", str(home), "serve", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    ready: dict[str, object] = {}
    events: list[dict[str, object]] = []
    try:
        assert cli.stdout is not None
        deadline = time.monotonic() + 900
        for line in cli.stdout:
            event = json.loads(line)
            events.append(event)
            if event["event"] == "ready":
                ready = event
                break
            assert event["event"] != "error", event
            assert time.monotonic() < deadline
        assert ready, events
        server_pid = int(str(ready["pid"]))
        pids = [p.pid for p in session_members(server_pid)]
        assert len(pids) >= 3
        resp = httpx.get(
            f"{ready['base_url']}/models",
            headers={"Authorization": f"Bearer {ready['api_key']}"},
            trust_env=False,
        )
        assert resp.json()["data"][0]["id"] == ready["model"]
        assert any(e["event"] == "progress" and e["phase"] == "loading_weights" for e in events)
        cli.send_signal(signal.SIGINT)  # Ctrl-C
        assert cli.wait(60) == 0
        rest = [json.loads(line) for line in cli.stdout]
        assert [e["state"] for e in rest if e["event"] == "state"][-1] == "stopped"
        assert alive(pids) == []
        assert session_members(server_pid) == []
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        for pipe in (cli.stdout, cli.stderr):
            if pipe is not None:
                pipe.close()
