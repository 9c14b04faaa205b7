"""Start the stand-in as a real subprocess (own session), wait until it answers, stop its whole group.

Use from tests, benchmarks and other engineers' fixtures::

    from tests.support.standin.launch import running_standin

    with running_standin("--reply", "Hi there", api_key="k") as server:
        httpx.get(f"{server.root_url}/health")
        server.endpoint()  # an engine.endpoint.Endpoint for chat clients

:class:`StandinRuntime` makes the engine's supervisor launch the stand-in instead of vLLM (same
``serve_command``/``env`` shape as ``engine.runtime.locate.VllmRuntime``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from engine.endpoint import Endpoint

REPO_ROOT = Path(__file__).resolve().parents[3]
READY_LINE = re.compile(r"Starting vLLM server on (http://[^\s:]+:(\d+))")


def standin_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "tests.support.standin", *options]


def standin_env(api_key: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("VLLM_API_KEY", None)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    env.update(extra or {})
    return env


@dataclass
class StandinRuntime:
    """Looks like ``engine.runtime.locate.VllmRuntime`` to the supervisor, but launches the stand-in.

    ``options`` are stand-in options put before vLLM's arguments (e.g. ``["--fail-with", "no-network"]``).
    """

    options: list[str] = field(default_factory=list)
    version: str = "0.32.0"
    is_cpu: bool = True
    python: Path = Path(sys.executable)

    def serve_command(self, args: Sequence[str]) -> list[str]:
        return standin_command(*self.options, "serve", *args)

    def env(self, **_options: object) -> dict[str, str]:
        return standin_env()


@dataclass
class Standin:
    """A running stand-in: its process (leader of its own session), port and everything it printed."""

    proc: subprocess.Popen[str]
    port: int
    model: str
    api_key: str | None
    lines: list[str]
    reader: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def endpoint(self) -> Endpoint:
        return Endpoint(base_url=self.base_url, model=self.model, api_key=self.api_key, max_model_len=2048)

    def client_ports(self, request: str) -> list[int]:
        """The client's port of each ``request`` (e.g. ``"POST /v1/chat/completions"``) in the access log so
        far, in order: one port is one connection."""
        pattern = re.compile(rf'127\.0\.0\.1:(\d+) - ""{re.escape(request)} ')
        return [int(m.group(1)) for line in list(self.lines) if (m := pattern.search(line))]

    async def until_a_request_runs(self, within_s: float = 15.0) -> None:
        """Wait until the stand-in is streaming a request (its ``/metrics``), e.g. while the client's other
        work (the history's commit) is held up."""
        running = f'vllm:num_requests_running{{engine="0",model_name="{self.model}"}} 1.0'
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(trust_env=False) as client:
            while running not in (await client.get(f"{self.root_url}/metrics")).text:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no request reached the stand-in within {within_s} s")
                await asyncio.sleep(0.01)

    def open_connections(self) -> int:
        """How many connections the stand-in's process holds open on its port now (kept or busy)."""
        held = psutil.Process(self.proc.pid).net_connections(kind="tcp")
        return sum(1 for c in held if c.laddr.port == self.port and c.status == psutil.CONN_ESTABLISHED)

    def stop(self, grace: float = 5.0) -> int:
        """SIGTERM to the group, SIGKILL to it after ``grace`` seconds; returns the leader's exit code."""
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        _signal_group(self.proc.pid, signal.SIGKILL)  # whatever of the group is left (e.g. --fork-child)
        if self.reader is not None:
            self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def start_standin(
    *options: str,
    model: str = "standin",
    api_key: str | None = None,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> Standin:
    """Start ``python -m tests.support.standin serve MODEL --port 0 OPTIONS`` and wait for ``/health`` == 200.

    Raises ``RuntimeError`` with the output if it exits or does not get ready within ``timeout``.
    """
    cmd = standin_command("serve", model, "--port", "0", *options)
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=standin_env(api_key, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    port_found = threading.Event()
    port_box: list[int] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            match = READY_LINE.search(line)
            if match and not port_box:
                port_box.append(int(match.group(2)))
                port_found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not port_found.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join(5)
            if proc.stdout is not None:
                proc.stdout.close()
            raise RuntimeError("stand-in did not start:\n" + "\n".join(lines))
    server = Standin(proc=proc, port=port_box[0], model=model, api_key=api_key, lines=lines, reader=reader)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.root_url}/health", timeout=1, trust_env=False).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError("stand-in never answered /health:\n" + "\n".join(lines))


@contextmanager
def running_standin(
    *options: str,
    model: str = "standin",
    api_key: str | None = None,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> Iterator[Standin]:
    """Context manager around :func:`start_standin`; always stops the whole process group."""
    server = start_standin(*options, model=model, api_key=api_key, timeout=timeout, env=env)
    try:
        yield server
    finally:
        server.stop()
