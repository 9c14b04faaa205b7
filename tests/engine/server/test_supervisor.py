"""The supervisor against the stand-in process (fast faults); the real-vLLM tests are marked `vllm`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import Callable

import httpx
import psutil
import pytest

from engine.diagnosis.problems import (
    KvCacheTooSmall,
    NoNetwork,
    PortInUse,
    ServerDied,
    StartCancelled,
    StartTimedOut,
)
from engine.diagnosis.rules import diagnose
from engine.errors import DeskError
from engine.paths import AppPaths
from engine.server.log_phases import Phase
from engine.server.profiles import ServerProfile
from engine.server.supervisor import LogLine, ServerState, StartProgress, StateChange, Supervisor
from tests.support.chat_stream import stream_chat_lines
from tests.support.procs import is_alive
from tests.support.standin import logs
from tests.support.standin.launch import StandinRuntime

pytestmark = pytest.mark.asyncio

MODEL = "org/standin"


def profile(**fields: object) -> ServerProfile:
    return ServerProfile(name="test", source="hf_cache", model=MODEL, **fields)  # type: ignore[arg-type]


def supervisor(app_paths: AppPaths, *options: str, **kw: float) -> Supervisor:
    return Supervisor(app_paths, StandinRuntime(list(options)), **kw)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait (polling) until ``condition()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    for _ in range(100_000):
        if condition():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    pytest.fail(f"condition not met within {within} s")


class Recorder:
    def __init__(self, sup: Supervisor) -> None:
        self.states: list[StateChange] = []
        self.progress: list[StartProgress] = []
        self.lines: list[LogLine] = []
        sup.state_changed.connect(self.states.append)
        sup.progress.connect(self.progress.append)
        sup.log_line.connect(self.lines.append)

    @property
    def names(self) -> list[str]:
        return [s.state.value for s in self.states]


async def test_start_ready_chat_with_the_key_stop(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--reply", "Paris.", "--max-model-len", "4096")
    rec = Recorder(sup)
    endpoint = await sup.start(profile())
    assert sup.state is ServerState.READY
    assert endpoint.model == MODEL
    assert endpoint.max_model_len == 4096
    assert endpoint.base_url.startswith("http://127.0.0.1:")
    assert endpoint.api_key
    leader = psutil.Process(sup.pid)
    assert endpoint.api_key not in " ".join(leader.cmdline())  # the key is not on the command line
    assert os.getsid(leader.pid) == leader.pid  # its own session
    async with httpx.AsyncClient(trust_env=False) as client:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Capital of France?"}]}
        resp = await client.post(
            f"{endpoint.base_url}/chat/completions", json=body, headers=endpoint.auth_headers()
        )
        assert resp.json()["choices"][0]["message"]["content"] == "Paris."
        refused = await client.post(f"{endpoint.base_url}/chat/completions", json=body)
        assert refused.status_code == 401
    await sup.stop()
    assert rec.names == ["preparing", "starting", "ready", "stopping", "stopped"]
    assert sup.endpoint is None
    assert not is_alive(leader)
    phases = [p.phase for p in rec.progress]
    assert phases[0] is Phase.RUNTIME_CHECK
    assert Phase.LOADING_WEIGHTS in phases
    assert Phase.ALLOCATING_KV_CACHE in phases
    assert phases[-1] is Phase.READY
    kv = next(p for p in rec.progress if p.kv_cache_gib is not None)
    assert kv.kv_cache_gib == 1.0
    assert any("Application startup complete." in line.text and line.stream == "stderr" for line in rec.lines)
    log_files = list(app_paths.logs.glob("test-*.log"))
    assert len(log_files) == 1
    assert "Starting vLLM server on" in log_files[0].read_text()
    assert endpoint.api_key not in log_files[0].read_text()  # the argv header holds no key


async def test_expected_time_comes_from_the_last_start(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--startup-delay", "0.4")
    rec = Recorder(sup)
    await sup.start(profile())
    await sup.stop()
    assert all(p.expected_s is None for p in rec.progress)
    saved = json.loads((app_paths.state / "start-durations.json").read_text())
    assert saved["test"] >= 0.4
    rec.progress.clear()
    await sup.start(profile())
    await sup.shutdown()
    assert rec.progress[0].expected_s == saved["test"]
    assert rec.progress[-1].elapsed_s >= 0.4


async def test_a_server_that_ignores_sigterm_is_killed_after_the_grace(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--ignore-sigterm", "--fork-child", grace_s=0.5)
    await sup.start(profile())
    members = sup.processes()
    assert len(members) == 2
    await sup.stop()
    assert sup.last_stop is not None
    assert sup.last_stop.escalated
    assert not any(is_alive(p) for p in members)


async def test_stop_while_a_stream_is_open(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--reply-tokens", "100000", "--tokens-per-second", "50", "--fork-child")
    endpoint = await sup.start(profile())
    members = sup.processes()
    got: list[str] = []

    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True}
    reader = asyncio.create_task(stream_chat_lines(endpoint, body, got, http_timeout_s=30))
    await until(lambda: len(got) >= 5)
    began = time.monotonic()
    await sup.stop()
    with pytest.raises(httpx.RemoteProtocolError):
        await reader
    assert time.monotonic() - began < 10
    assert not any(is_alive(p) for p in members)


async def test_sigkill_of_the_leader_cleans_up_the_rest(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--fork-child")
    rec = Recorder(sup)
    await sup.start(profile())
    leader, *others = sup.processes()
    child = next(p for p in sup.processes() if p.pid != sup.pid)
    assert others
    os.kill(leader.pid, signal.SIGKILL)
    await until(lambda: sup.state is ServerState.FAILED)
    assert sup.state is ServerState.FAILED
    assert isinstance(sup.problem, ServerDied)
    assert "SIGKILL" in str(sup.problem)
    assert not is_alive(child)
    assert rec.names[-2:] == ["ready", "failed"]


async def test_an_engine_process_dying_is_noticed(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--fork-child")
    await sup.start(profile())
    leader = psutil.Process(sup.pid)
    await asyncio.sleep(0.8)  # the monitor has seen the engine process
    child = next(p for p in sup.processes() if p.pid != leader.pid)
    child.kill()
    await until(lambda: sup.state is ServerState.FAILED)
    assert isinstance(sup.problem, ServerDied)
    assert "engine process" in str(sup.problem)
    assert not is_alive(leader)


async def test_taken_port_is_diagnosed(app_paths: AppPaths) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        sup = supervisor(app_paths)
        rec = Recorder(sup)
        with pytest.raises(PortInUse) as caught:
            await sup.start(profile(port=port))
    assert caught.value.port == port
    assert caught.value.fix is not None
    assert caught.value.fix.action == "pick_free_port"
    assert rec.names == ["preparing", "starting", "failed"]
    assert sup.problem is caught.value


async def test_engine_failures_are_diagnosed_and_leave_nothing(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--fail-with", "kv-cache-too-small", "--fork-child")
    with pytest.raises(KvCacheTooSmall) as caught:
        await sup.start(profile(max_model_len=32768))
    assert caught.value.max_len_fits == 10912
    assert caught.value.fix is not None
    assert caught.value.fix.params == {"max_model_len": 10912}
    assert sup.state is ServerState.FAILED
    assert sup.processes() == []
    assert "Engine core initialization failed" in "\n".join(line.text for line in sup.log_tail())


async def test_download_progress_and_no_network(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--download", "--fail-with", "no-network")
    rec = Recorder(sup)
    with pytest.raises(NoNetwork):
        await sup.start(profile())
    downloads = [p for p in rec.progress if p.phase is Phase.DOWNLOADING]
    assert downloads[-1].bytes_total == 269_000_000
    assert downloads[-1].fraction == 1.0


async def test_start_timeout(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--startup-delay", "30", ready_timeout_s=1.0)
    with pytest.raises(StartTimedOut):
        await sup.start(profile())
    assert sup.processes() == []


async def test_cancelling_a_start_stops_the_launch(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--startup-delay", "30")
    rec = Recorder(sup)
    task = asyncio.create_task(sup.start(profile()))
    await until(lambda: sup.state is ServerState.STARTING)
    pid = sup.pid
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rec.names[-1] == "stopped"
    assert pid is not None
    assert not is_alive(pid)


async def test_stop_during_the_start_cancels_it(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, "--startup-delay", "30")
    rec = Recorder(sup)
    task = asyncio.create_task(sup.start(profile()))
    await until(lambda: sup.state is ServerState.STARTING)
    await sup.stop()
    with pytest.raises(StartCancelled):
        await task
    assert rec.names == ["preparing", "starting", "stopping", "stopped"]
    assert sup.problem is None


async def test_switch_and_shutdown(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths)
    first = await sup.start(profile())
    second = await sup.switch(profile(served_name="other"))
    assert second.model == "other"
    assert first.base_url != second.base_url or first.api_key != second.api_key
    await sup.shutdown()
    assert sup.state is ServerState.STOPPED
    assert sup.processes() == []


async def test_metrics_are_polled_only_while_listened_to(app_paths: AppPaths) -> None:
    sup = supervisor(app_paths, metrics_interval_s=0.05)
    await sup.start(profile())
    samples = []
    unsubscribe = sup.metrics.connect(samples.append)
    await until(lambda: len(samples) >= 2)
    assert samples[0].running == 0
    unsubscribe()
    await asyncio.sleep(0.15)
    count = len(samples)
    await asyncio.sleep(0.2)
    assert len(samples) == count
    await sup.shutdown()


async def test_log_ring_buffer_is_bounded(app_paths: AppPaths) -> None:
    sup = Supervisor(app_paths, StandinRuntime([]), log_buffer_lines=5)
    await sup.start(profile())
    await sup.stop()
    tail = sup.log_tail()
    assert len(tail) == 5
    full = next(app_paths.logs.glob("*.log")).read_text().splitlines()
    assert len(full) > 20


async def test_a_remote_profile_is_connected_to_not_launched(app_paths: AppPaths) -> None:
    from engine.secrets import SecretStore, profile_key
    from tests.support.standin.launch import running_standin

    secrets = SecretStore()
    secrets.set(profile_key("team"), "team-key")
    sup = Supervisor(app_paths, StandinRuntime([]), secrets=secrets)
    rec = Recorder(sup)
    with running_standin(model="team/llm", api_key="team-key") as srv:
        remote = ServerProfile(name="team", kind="remote", base_url=srv.base_url)
        endpoint = await sup.start(remote)
        assert endpoint.kind == "remote"
        assert endpoint.api_key == "team-key"
        assert sup.endpoint == endpoint
        assert sup.pid is None  # nothing of ours runs
        assert sup.processes() == []
        await sup.stop()
    assert rec.names == ["preparing", "ready", "stopped"]  # nothing to stop: only the endpoint is dropped
    assert [p.phase for p in rec.progress] == [Phase.READY]  # no runtime or model of ours was checked
    assert sup.endpoint is None


class _SlowSecrets:
    """A keychain that takes until ``release`` to answer: a start that is still preparing."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()
        self.asked = threading.Event()

    def get(self, name: str) -> str | None:
        self.asked.set()
        self.release.wait(10)
        return None


async def test_stop_while_preparing_cancels_the_start_and_nothing_is_launched(app_paths: AppPaths) -> None:
    secrets = _SlowSecrets()
    sup = Supervisor(app_paths, StandinRuntime([]), secrets=secrets)  # type: ignore[arg-type]
    rec = Recorder(sup)
    task = asyncio.create_task(sup.start(profile()))
    try:
        await until(secrets.asked.is_set)
        assert sup.state is ServerState.PREPARING
        await sup.stop()
        with pytest.raises(StartCancelled):
            await task
    finally:
        secrets.release.set()
    await asyncio.sleep(0.3)  # had the start gone on, its process would exist by now
    assert sup.state is ServerState.STOPPED
    assert sup.pid is None
    assert rec.names == ["preparing", "stopping", "stopped"]
    assert sup.problem is None


async def test_a_second_start_while_the_first_prepares_replaces_it(app_paths: AppPaths) -> None:
    secrets = _SlowSecrets()
    sup = Supervisor(app_paths, StandinRuntime([]), secrets=secrets)  # type: ignore[arg-type]
    first = asyncio.create_task(sup.start(profile(served_name="first")))
    await until(secrets.asked.is_set)
    secrets.release.set()  # the second start's own keychain lookup answers at once
    endpoint = await sup.start(profile(served_name="second"))
    with pytest.raises(StartCancelled):
        await first
    assert endpoint.model == "second"
    assert len({p.pid for p in sup.processes()}) >= 1
    await sup.shutdown()
    assert sup.processes() == []


async def test_twenty_start_stop_cycles_leave_nothing_behind(app_paths: AppPaths) -> None:
    # Each launch forks a VLLM::EngineCore-like child, as vLLM does; every stop must take the whole tree.
    sup = supervisor(app_paths, "--fork-child")
    seen: set[int] = set()
    for _ in range(20):
        await sup.start(profile())
        members = sup.processes()
        assert len(members) == 2
        seen.update(p.pid for p in members)
        await sup.stop()
        assert sup.processes() == []
    assert len(seen) == 40
    left = []
    for pid in seen:
        try:
            if is_alive(psutil.Process(pid)):
                left.append(pid)
        except psutil.NoSuchProcess:
            continue  # gone, as it should be
    assert left == []


@pytest.mark.parametrize("kind", logs.FAILURE_KINDS)
async def test_every_known_failure_is_diagnosed_through_the_process(app_paths: AppPaths, kind: str) -> None:
    # The same words read from a real process's stderr by the supervisor as by diagnose() directly
    # (tests/engine/diagnosis/test_problems.py checks which problem each one is).
    sup = supervisor(app_paths, "--fail-with", kind)
    with pytest.raises(DeskError) as caught:
        await sup.start(profile(max_model_len=4096))
    expected = diagnose(logs.failure_lines(kind, MODEL, 4096), exit_code=1)
    assert type(caught.value) is type(expected)
    assert caught.value.fix == expected.fix
    assert sup.state is ServerState.FAILED
    assert sup.processes() == []


# --- a stop, once begun, runs to its end even when the task awaiting it is cancelled -----------------


async def _cancel_once_sigterm_was_sent(sup: Supervisor, task: asyncio.Task[object]) -> None:
    """Cancel ``task`` while its stop waits out the grace: after the SIGTERM, before the SIGKILL."""
    await until(lambda: sup.state is ServerState.STOPPING)
    await asyncio.sleep(0.3)  # the SIGTERM went out at once; the grace (2 s) is running
    assert not task.done()
    task.cancel()


@pytest.mark.parametrize("how", ["stop", "shutdown"])
async def test_cancelling_a_stop_after_its_sigterm_still_kills_a_server_that_ignores_it(
    app_paths: AppPaths, how: str
) -> None:
    sup = supervisor(app_paths, "--ignore-sigterm", "--fork-child", grace_s=2.0)
    await sup.start(profile())
    members = sup.processes()
    assert len(members) == 2
    task: asyncio.Task[object] = asyncio.create_task(getattr(sup, how)())
    await _cancel_once_sigterm_was_sent(sup, task)
    with pytest.raises(asyncio.CancelledError):
        await task
    # The cancellation reached the caller only once the stop had finished: SIGKILL after the grace, reaped.
    assert not any(is_alive(p) for p in members)
    assert sup.last_stop is not None
    assert sup.last_stop.escalated
    assert sup.state is ServerState.STOPPED
    assert sup.processes() == []


async def test_a_second_cancel_while_a_cancelled_start_stops_its_launch_still_kills_it(
    app_paths: AppPaths,
) -> None:
    sup = supervisor(app_paths, "--startup-delay", "30", "--ignore-sigterm", "--fork-child", grace_s=2.0)
    task = asyncio.create_task(sup.start(profile()))
    await until(lambda: sup.state is ServerState.STARTING and len(sup.processes()) == 2)
    members = sup.processes()
    task.cancel()  # the start stops its launch: SIGTERM, the grace...
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()  # ...and a second cancel (a quit on top of a cancelled start) does not cut it short
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(is_alive(p) for p in members)
    assert sup.last_stop is not None
    assert sup.last_stop.escalated
    assert sup.state is ServerState.STOPPED
