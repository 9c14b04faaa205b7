"""The suite's own leak check: a test that fails half-way with a server running is reported for that test,
its whole server is ended, and the next test starts clean (what issue 13 saw: a failed real-vLLM test's
server and log file were collected during an unrelated later test, which then failed too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

INNER = """
import pytest

from engine.server.profiles import ServerProfile
from engine.server.supervisor import Supervisor
from tests.support.standin.launch import StandinRuntime

LEFT = []


@pytest.mark.vllm
@pytest.mark.asyncio
async def test_fails_half_way(app_paths):
    sup = Supervisor(app_paths, StandinRuntime([]))
    await sup.start(ServerProfile(name="t", source="hf_cache", model="org/m"))
    LEFT.extend(p.pid for p in sup.processes())
    print("SERVER-PIDS", *LEFT)
    raise AssertionError("half-way")


def test_next_one_starts_clean():
    import psutil

    assert LEFT
    assert not [pid for pid in LEFT if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
"""


def test_a_half_way_failure_is_reported_once_and_its_server_ended(tmp_path: Path) -> None:
    inner = tmp_path / "test_inner.py"
    inner.write_text(INNER)
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-s",
            "-q",
            "--rootdir",
            str(repo),
            "-c",
            str(repo / "pyproject.toml"),
            str(inner),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed, 1 passed, 1 error" in out, out
    assert "ERROR at teardown of test_fails_half_way" in out, out
    assert "test left child processes running" in out, out
    pids = [int(p) for line in out.splitlines() if line.startswith("SERVER-PIDS") for p in line.split()[1:]]
    assert pids
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
