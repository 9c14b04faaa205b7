"""Process sessions: stopping one whole and finding strays (only ever processes these tests start)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from engine.server.processes import StrayProcess, clean_up_strays, find_strays, session_members, stop_session
from tests.support.standin.launch import start_standin

# A leader that starts a child ignoring SIGTERM (it touches argv[1] once it does), in a new session.
STUBBORN = (
    "import signal, subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', "
    "'import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)', sys.argv[1]])\n"
    "time.sleep(60)\n"
)


def _wait_for(condition, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.asyncio
async def test_stop_session_escalates_and_leaves_nothing(tmp_path: Path) -> None:
    flag = tmp_path / "ignoring"
    leader = psutil.Popen([sys.executable, "-c", STUBBORN, str(flag)], start_new_session=True)
    _wait_for(flag.exists)
    outcome = await stop_session(leader.pid, grace=0.5, reap=leader)
    assert outcome.escalated
    assert outcome.left == ()
    assert session_members(leader.pid) == []
    assert leader.returncode == -signal.SIGTERM


@pytest.mark.asyncio
async def test_a_polite_session_stops_without_sigkill() -> None:
    leader = psutil.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    outcome = await stop_session(leader.pid, grace=5, reap=leader)
    assert not outcome.escalated
    assert session_members(leader.pid) == []


def test_session_members_include_reparented_orphans() -> None:
    server = start_standin("--fork-child")
    try:
        child = psutil.Process(server.proc.pid).children()[0]
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        members = session_members(server.proc.pid)
        assert [p.pid for p in members] == [child.pid]
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_strays_of_a_crashed_server_are_found_and_cleaned_up() -> None:
    server = start_standin("--fork-child")
    try:
        child = psutil.Process(server.proc.pid).children()[0]
        _wait_for(lambda: child.name().startswith("VLLM::"))
        assert child.pid not in {s.pid for s in find_strays()}  # its server still runs: not a stray
        os.kill(server.proc.pid, signal.SIGKILL)  # the app "crashed" and took only the leader down
        server.proc.wait(10)
        ours = [s for s in find_strays() if s.pid == child.pid]  # never touch anyone else's processes
        assert len(ours) == 1
        stray = ours[0]
        assert isinstance(stray, StrayProcess)
        assert stray.sid == server.proc.pid
        assert stray.cmdline.startswith("VLLM::EngineCore")
        assert stray.age_s >= 0
        assert stray.rss_bytes > 1_000_000  # a Python process holds megabytes
        assert await clean_up_strays(ours) == []
        assert session_members(server.proc.pid) == []
    finally:
        server.stop()


def test_processes_outside_a_new_session_are_never_strays() -> None:
    # Named like vLLM but in our own (live) session: a live server's child, not a stray.
    proc = subprocess.Popen(["VLLM::Worker", "-c", "import time; time.sleep(30)"], executable=sys.executable)
    try:
        _wait_for(lambda: psutil.Process(proc.pid).cmdline()[:1] == ["VLLM::Worker"])
        assert proc.pid not in {s.pid for s in find_strays()}
    finally:
        proc.kill()
        proc.wait()


# An "app" whose session leader has already exited (as under CI runners and in some terminals): it starts a
# vLLM-named child in that same session and reports whether find_strays() would call the child a stray.
ORPHANED_SESSION_APP = (
    "import json, subprocess, sys, time\n"
    "from engine.server.processes import find_strays\n"
    "import psutil\n"
    "worker = subprocess.Popen(\n"
    "    ['VLLM::Worker', '-c', 'import time; time.sleep(30)'], executable=sys.executable\n"
    ")\n"
    "while psutil.Process(worker.pid).cmdline()[:1] != ['VLLM::Worker']: time.sleep(0.02)\n"
    "listed = worker.pid in {s.pid for s in find_strays()}\n"
    "worker.kill(); worker.wait()\n"
    "open(sys.argv[1], 'w').write(json.dumps({'listed': listed}))\n"
)
LEADER_THAT_LEAVES = (
    "import subprocess, sys\n"
    "subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]])\n"  # not waited for: the leader exits
)


def test_children_in_our_own_session_are_never_strays_even_when_its_leader_is_gone(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER_THAT_LEAVES, ORPHANED_SESSION_APP, str(report)],
        start_new_session=True,
        cwd=Path(__file__).parents[3],
    )
    leader.wait(10)
    _wait_for(report.exists, within=30)
    _wait_for(lambda: report.read_text().endswith("}"))
    assert report.read_text() == '{"listed": false}'


def test_session_zero_is_never_taken_for_an_orphaned_server() -> None:
    from engine.server.processes import _may_be_orphaned

    # Session 0: the leader is outside our PID namespace (a container's runner), so never ours to stop.
    assert not _may_be_orphaned(0, 4321, own_sid=77)
    assert not _may_be_orphaned(77, 4321, own_sid=77)  # our own session is alive: we are running
    assert _may_be_orphaned(999_999_999, 4321, own_sid=77)  # a leader that no longer exists
    assert _may_be_orphaned(os.getpid(), os.getpid(), own_sid=77)  # its own leader: the pre-existing rule


# An app that launches a server through SessionProcess (which records the leader) and then waits to be
# killed: its server keeps running with a live leader, which no "VLLM::" rule would call a stray.
APP_THAT_LAUNCHES = (
    "import asyncio, os, sys, time\n"
    "from pathlib import Path\n"
    "from engine.server.processes import SessionProcess\n"
    "from tests.support.standin.launch import standin_command\n"
    "async def main():\n"
    "    cmd = standin_command('serve', 'standin', '--port', '0', '--fork-child')\n"
    "    server = SessionProcess(cmd, dict(os.environ), Path.cwd(), Path(sys.argv[1]), lambda line: None,\n"
    "                            time.monotonic())\n"
    "    Path(sys.argv[2]).write_text(str(server.sid))\n"
    "    await asyncio.sleep(120)\n"
    "asyncio.run(main())\n"
)


@pytest.mark.asyncio
async def test_a_server_whose_app_crashed_is_found_whole_and_stopped(tmp_path: Path) -> None:
    from engine.server.processes import leaders_dir

    pid_file = tmp_path / "server.pid"
    app = psutil.Popen(
        [sys.executable, "-c", APP_THAT_LAUNCHES, str(tmp_path / "server.log"), str(pid_file)],
        cwd=Path(__file__).parents[3],
    )
    leader = 0
    try:
        _wait_for(lambda: pid_file.exists() and pid_file.read_text().isdigit(), within=30)
        leader = int(pid_file.read_text())
        _wait_for(lambda: any(p.name().startswith("VLLM::") for p in session_members(leader)), within=30)
        assert (leaders_dir() / f"{leader}.json").is_file()
        # The app runs: its server is its own business.
        assert not {s.pid for s in find_strays()} & {p.pid for p in session_members(leader)}
        app.kill()  # the app crashes; the server (leader included) keeps running
        app.wait(10)
        assert psutil.pid_exists(leader)
        ours = [s for s in find_strays() if s.sid == leader]
        assert {s.pid for s in ours} == {p.pid for p in session_members(leader)}
        assert leader in {s.pid for s in ours}  # the API server itself, which has no VLLM:: title
        assert await clean_up_strays(ours) == []
        assert session_members(leader) == []
        find_strays()  # a record whose server is gone is removed on the next look
        assert not (leaders_dir() / f"{leader}.json").exists()
    finally:
        with contextlib.suppress(psutil.Error):
            app.kill()
        app.wait(10)
        if leader and psutil.pid_exists(leader):
            await stop_session(leader, grace=1)


def test_a_record_of_a_reused_pid_names_nothing(tmp_path: Path) -> None:
    from engine.server.processes import orphaned_leaders, record_leader

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        path = record_leader(sleeper.pid, ["vllm", "serve"], tmp_path)
        assert path is not None
        data = json.loads(path.read_text())
        # Recorded by an app that is gone: listed. The same pid started at another time: someone else's.
        path.write_text(json.dumps({**data, "owner_pid": 999_999_999}))
        assert orphaned_leaders(tmp_path) == [sleeper.pid]
        path.write_text(json.dumps({**data, "owner_pid": 999_999_999, "start_time": data["start_time"] - 60}))
        assert orphaned_leaders(tmp_path) == []
        assert not path.exists()
        # Recorded by this (running) process: not orphaned.
        record_leader(sleeper.pid, ["vllm", "serve"], tmp_path)
        assert orphaned_leaders(tmp_path) == []
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.asyncio
async def test_own_server_pids_are_the_sessions_this_process_launched(tmp_path: Path) -> None:
    import asyncio

    from engine.server.processes import SessionProcess, own_server_pids
    from tests.support.standin.launch import standin_command, standin_env

    assert own_server_pids() == set()
    server = SessionProcess(
        standin_command("serve", "standin", "--port", "0", "--fork-child"),
        standin_env(),
        Path(__file__).parents[3],
        tmp_path / "server.log",
        lambda line: None,
        time.monotonic(),
    )
    try:
        for _ in range(500):
            if len(session_members(server.sid)) >= 2:
                break
            await asyncio.sleep(0.02)
        assert own_server_pids() == {p.pid for p in session_members(server.sid)}
        assert server.sid in own_server_pids()
    finally:
        await server.stop(grace=2)
    assert own_server_pids() == set()


def test_a_busy_gpu_names_who_holds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.hardware
    from engine.diagnosis.gpu import name_gpu_holders
    from engine.diagnosis.problems import GpuMemoryBusy
    from engine.diagnosis.rules import diagnose
    from engine.hardware import GpuInfo, GpuProcess, GpuStatus
    from tests.engine.gpu_failure_logs import FREE_MEMORY, log

    status = GpuStatus(
        (GpuInfo(0, "RTX", 24 * 2**30, 2 * 2**30, processes=(GpuProcess(os.getpid(), 3 * 2**30),)),)
    )
    monkeypatch.setattr(engine.hardware, "gpu_status", lambda: status)  # NVML: the boundary
    problem = name_gpu_holders(diagnose(log(FREE_MEMORY)))
    assert isinstance(problem, GpuMemoryBusy)
    assert f"Holding GPU memory now: {psutil.Process().name()} (pid {os.getpid()}, 3.0 GiB)." in str(problem)
    other = diagnose(["OSError: [Errno 98] Address already in use"])
    assert str(name_gpu_holders(other)) == str(other)
