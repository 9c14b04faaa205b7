"""SIGTERM / SIGHUP to the window app (a session ending, ``kill``): it quits as its Quit does, stopping the
server it started, instead of dying with the server left running. The app as a real process, offscreen,
with the stand-in as its vLLM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from engine.paths import AppPaths
from engine.server.processes import session_members, signal_session
from engine.server.profiles import ServerProfile
from engine.settings.store import SettingsStore
from tests.support.procs import is_alive
from tests.support.standin.launch import REPO_ROOT, standin_env


@pytest.fixture
def sessions() -> Iterator[list[int]]:
    """Server sessions a test found; whatever is left of them (a failed test) is killed at the end."""
    found: list[int] = []
    yield found
    for sid in found:
        if session_members(sid):
            signal_session(sid, signal.SIGKILL)


def _server_sid(proc: subprocess.Popen[str], marker: str, within: float = 90.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for candidate in psutil.process_iter(["cmdline"]):
            if marker in " ".join(candidate.info["cmdline"] or ()):
                sid = os.getsid(candidate.pid)
                if len(session_members(sid)) >= 2:  # the leader and its forked child
                    return sid
        time.sleep(0.1)
    raise AssertionError("the app's server did not start")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_quits_the_app_and_stops_its_server(
    tmp_path: Path, sessions: list[int], sig: signal.Signals
) -> None:
    home = tmp_path / "desk"
    paths = AppPaths.resolve(str(home)).ensure()
    marker = f"org/app-signal-{uuid.uuid4().hex[:12]}"
    store = SettingsStore.open(paths.settings_file)
    current = store.settings
    general = current.general.model_copy(
        update={"start_server_with_app": True, "default_profile": "Stand-in"}
    )
    profile = ServerProfile(name="Stand-in", source="hf_cache", model=marker)
    store.update(current.model_copy(update={"profiles": [profile], "general": general}))
    env = standin_env(extra={"STANDIN_OPTIONS": json.dumps(["--fork-child"]), "QT_QPA_PLATFORM": "offscreen"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.desktop.standin_app", "--data-dir", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        sessions.append(_server_sid(proc, marker))
        members = session_members(sessions[0])
        proc.send_signal(sig)  # the app alone, not its group
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, err
    assert f"stopped by signal {sig.name}" in err
    assert not any(is_alive(p) for p in members), f"left running: {[p.pid for p in members if is_alive(p)]}"
    assert session_members(sessions[0]) == []


def test_a_second_signal_while_quitting_does_not_leave_a_server_that_ignores_sigterm(
    tmp_path: Path, sessions: list[int]
) -> None:
    """The quit is stopping a server that ignores SIGTERM (the grace is running) when another signal comes:
    the app still waits for the SIGKILL after the grace and ends with nothing of the server left."""
    home = tmp_path / "desk"
    paths = AppPaths.resolve(str(home)).ensure()
    marker = f"org/app-signal-{uuid.uuid4().hex[:12]}"
    store = SettingsStore.open(paths.settings_file)
    current = store.settings
    general = current.general.model_copy(
        update={"start_server_with_app": True, "default_profile": "Stand-in"}
    )
    profile = ServerProfile(name="Stand-in", source="hf_cache", model=marker)
    store.update(current.model_copy(update={"profiles": [profile], "general": general}))
    options = ["--fork-child", "--ignore-sigterm"]
    env = standin_env(extra={"STANDIN_OPTIONS": json.dumps(options), "QT_QPA_PLATFORM": "offscreen"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.desktop.standin_app", "--data-dir", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        sessions.append(_server_sid(proc, marker))
        members = session_members(sessions[0])
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # the quit has sent the server its SIGTERM; the grace (5 s) is running
        assert proc.poll() is None
        assert all(is_alive(p) for p in members)  # it ignores SIGTERM
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not any(is_alive(p) for p in members), f"left running: {[p.pid for p in members if is_alive(p)]}"
    assert session_members(sessions[0]) == []
