"""The PyInstaller bundle: built once, then started offscreen without any Python of ours on the path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # VLLM_DESK_TEST_BUNDLE=path/to/vllm-desk tests a bundle built earlier (make bundle) instead.
    prebuilt = os.environ.get("VLLM_DESK_TEST_BUNDLE")
    if prebuilt:
        return Path(prebuilt).absolute()
    out = tmp_path_factory.mktemp("bundle")
    # The documented build command itself (make bundle), with this environment's Python.
    build = subprocess.run(
        ["bash", "packaging/build.sh", str(out / "dist"), str(out / "work")],
        env={**os.environ, "VENV": str(Path(sys.executable).parents[1])},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1000,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    exe = out / "dist" / "vllm-desk" / "vllm-desk"
    assert exe.is_file()
    return exe


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """No venv, no PYTHONPATH, no Python on PATH: what a user's session has."""
    home = tmp_path / "home"
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": os.environ["XDG_RUNTIME_DIR"],
        "LANG": "C.UTF-8",
    }
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "share"), ("XDG_STATE_HOME", "state")):
        env[var] = str(home / sub)
    env["XDG_CACHE_HOME"] = str(home / "cache")
    return env


def run(exe: Path, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(exe), *args],
        env=env,
        cwd=env["HOME"] if Path(env["HOME"]).is_dir() else "/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_version(bundle: Path, bare_env: dict[str, str]) -> None:
    result = run(bundle, bare_env, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vLLM Desk {engine.__version__}"


def test_doctor_runs_headless(bundle: Path, bare_env: dict[str, str]) -> None:
    # Exit 1 is doctor's "needs attention" (no vLLM runtime in a bare home); the report must be whole.
    result = run(bundle, bare_env, "doctor", "--json")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["app_version"] == engine.__version__
    assert report["python"]["executable"] == str(bundle)


def test_desktop_entry_from_the_bundle_points_at_it(bundle: Path, bare_env: dict[str, str]) -> None:
    result = run(bundle, bare_env, "install-desktop-entry", "--json")
    assert result.returncode == 0, result.stderr
    desktop = Path(bare_env["XDG_DATA_HOME"]) / "applications" / "vllm-desk.desktop"
    assert str(desktop) in json.loads(result.stdout)["installed"]
    assert f"\nExec={bundle}\n" in desktop.read_text()
    png = Path(bare_env["XDG_DATA_HOME"]) / "icons" / "hicolor" / "256x256" / "apps" / "vllm-desk.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def gui_env(bare_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env = dict(bare_env)
    # No server at start (it would install vLLM). VLLM_DESK_BENCH_STARTUP=stay makes the app print a line once
    # the window is shown, once the last conversation is painted and once the engine is attached
    # (desktop/app.py), and keep running.
    env["VLLM_DESK_GENERAL__START_SERVER_WITH_APP"] = "false"
    env["VLLM_DESK_HOME"] = str(tmp_path / "desk")
    return env


def milestones(stdout: str) -> list[str]:
    """The start's marks the app printed, in order (not the figures printed beside them, e.g. shown_cpu)."""
    marks = [line.split()[1] for line in stdout.splitlines() if line.startswith("VLLM_DESK_BENCH_STARTUP")]
    return [mark for mark in marks if not mark.endswith("_cpu")]


def test_window_opens_offscreen_and_quits_cleanly(bundle: Path, gui_env: dict[str, str]) -> None:
    result = run(bundle, dict(gui_env, VLLM_DESK_BENCH_STARTUP="1"), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    marks = milestones(result.stdout)
    # Shown, then the last conversation painted, then the engine attached (the bundle's engine modules load).
    assert marks == ["shown", "painted", "ready"], result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_window_opens_offscreen_and_a_second_launch_hands_over_to_it(
    bundle: Path, gui_env: dict[str, str]
) -> None:
    env = dict(gui_env, VLLM_DESK_BENCH_STARTUP="stay")
    errors = Path(env["VLLM_DESK_HOME"] + "-stderr.txt")
    with errors.open("w") as sink:
        first = subprocess.Popen(
            [str(bundle)], env=env, cwd="/", stdout=subprocess.PIPE, stderr=sink, text=True
        )
    try:
        assert first.stdout is not None
        deadline = time.monotonic() + 120
        seen = ""
        while "painted" not in seen and time.monotonic() < deadline and first.poll() is None:
            seen += first.stdout.readline()
        marks = milestones(seen)
        assert marks == ["shown", "painted"], f"exit {first.poll()}: {seen}{errors.read_text()}"
        second = run(bundle, env, "--new-chat", timeout=60)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "VLLM_DESK_BENCH_STARTUP" not in second.stdout  # it never opened a window of its own
        assert first.poll() is None  # the first copy keeps running
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)


def test_bundle_holds_the_modules_imported_by_name(bundle: Path) -> None:
    # CLI subcommands (importlib) and Haystack's lazy imports are invisible to PyInstaller's analysis.
    listing = subprocess.run(
        [sys.executable, "-m", "PyInstaller.utils.cliutils.archive_viewer", "-r", "-b", str(bundle)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr
    modules = {line.strip() for line in listing.stdout.splitlines()}
    for name in (
        "engine.cli.desktop_entry",
        "engine.cli.doctor",
        "engine.chat.generator",
        "haystack.components.generators.chat.openai",
        "desktop.launcher.tray",
        "desktop.single_instance",
        "qasync",
    ):
        assert name in modules, name
