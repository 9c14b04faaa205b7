"""The servers the benchmarks talk to: the stand-in process and the real vLLM on the CPU.

The real vLLM uses the runtime and built-in model the test suite builds (``$VLLM_DESK_TEST_CACHE``, default
``~/.cache/vllm-desk-tests``), through the app's own ``RuntimeInstaller`` and ``prepare_builtin_model``, so a
fresh machine builds them once (a few minutes) and later runs reuse them.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.context import BenchContext
from bench.result import SubjectMissing


def standin_launcher() -> Any:
    """``tests.support.standin.launch.running_standin`` (written by the supervisor's engineer)."""
    try:
        from tests.support.standin.launch import running_standin
    except ImportError as exc:
        raise SubjectMissing(
            f"the stand-in server (tests/support/standin/launch.py) is missing: {exc}"
        ) from exc
    return running_standin


def vllm_paths() -> Any:
    """The test suite's cache folder for the current pins and model recipe (tests/support/vllm_fixtures)."""
    from engine.paths import AppPaths
    from tests.support.vllm_fixtures import cache_dir

    return AppPaths.under(cache_dir() / "home").ensure()


def prepare_real_vllm(ctx: BenchContext) -> tuple[Any, Path]:
    """(runtime, model folder) for the real vLLM; installs them when missing, except in quick mode."""
    try:
        from engine.models.builtin import ModelState, builtin_model_state, prepare_builtin_model
        from engine.runtime.install import RuntimeInstaller
    except ImportError as exc:
        raise SubjectMissing(
            f"engine/runtime/install.py or engine/models/builtin.py is missing: {exc}"
        ) from exc
    paths = vllm_paths()
    installer = RuntimeInstaller(paths)
    if ctx.quick and not (installer.is_complete() and builtin_model_state(paths) == ModelState.READY):
        raise SubjectMissing(
            "quick mode does not install the vLLM runtime and model (minutes); "
            "run `make test` or the full bench once"
        )
    ctx.say("preparing the vLLM runtime and the built-in model (reused when already there)")
    runtime = installer.install(lambda p: None)
    model = prepare_builtin_model(paths, runtime, lambda p: None)
    return runtime, model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RealServer:
    proc: subprocess.Popen[bytes]
    endpoint: Any
    launched_at: float
    ready_at: float
    gone_s: float | None = None  # stop (SIGTERM to the group) → last process gone, set after the block


@contextmanager
def real_vllm(ctx: BenchContext, log_path: Path, dtype: str | None = None) -> Iterator[RealServer]:
    """``vllm serve`` of the built-in model on a free port (own session); stopped with its whole group.

    ``dtype``: the app's CPU choice (float32) unless another is asked for (the CPU-dtype benchmark)."""
    from engine.endpoint import Endpoint
    from engine.models.builtin import BUILTIN_MODEL
    from engine.server.profiles import CPU_DEFAULT_DTYPE
    from engine.server.readiness import SERVER_KEEP_ALIVE_S

    runtime, model = prepare_real_vllm(ctx)
    port = free_port()
    key = secrets.token_hex(16)
    args = [
        str(model), "--served-model-name", BUILTIN_MODEL.served_name, "--host", "127.0.0.1",
        "--port", str(port), "--max-model-len", "2048",
        "--dtype", dtype or CPU_DEFAULT_DTYPE, "--enforce-eager",
    ]  # fmt: skip
    # As the app's supervisor launches it (idle connections kept, as bench.streaming's endpoint says).
    keep = {"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": str(SERVER_KEEP_ALIVE_S)}
    env = {**os.environ, **runtime.env(), "VLLM_API_KEY": key, **keep}
    ctx.say(f"starting the real vLLM on port {port} (log: {log_path})")
    with log_path.open("wb") as log:
        launched = time.monotonic()
        proc = subprocess.Popen(
            runtime.serve_command(args), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        server: RealServer | None = None
        try:
            ready = _wait_health(f"http://127.0.0.1:{port}", proc, timeout=420)
            endpoint = Endpoint(
                base_url=f"http://127.0.0.1:{port}/v1",
                model=BUILTIN_MODEL.served_name,
                api_key=key,
                max_model_len=2048,
            )
            server = RealServer(proc, endpoint, launched, ready)
            yield server
        finally:
            stopping = time.monotonic()
            stop_group(proc)
            if server is not None:
                server.gone_s = time.monotonic() - stopping


def _wait_health(root: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vLLM exited with status {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{root}/health", timeout=1).status_code == 200:
                return time.monotonic()
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"vLLM was not ready after {timeout:.0f} s")


def stop_group(proc: subprocess.Popen[bytes], grace: float = 8.0) -> None:
    """SIGTERM to the process group, SIGKILL after ``grace``, and wait until none of the group is left."""
    pgid = proc.pid
    members = _group(pgid)
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(members, timeout=10)


def _group(pgid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid:
                out.append(p)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return out
