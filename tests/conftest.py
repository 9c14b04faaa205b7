"""Suite-wide setup: headless Qt, no telemetry, every test's dirs in a temp folder, leak checks."""

from __future__ import annotations

import os
import signal

# Before any Qt import: without a display Qt aborts the process.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
os.environ["VLLM_NO_USAGE_STATS"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
# Forced, not defaulted: an outer environment must never put the user's real keychain under the tests.
os.environ["PYTHON_KEYRING_BACKEND"] = "tests.support.memory_keyring.MemoryKeyring"

import contextlib
import gc
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.procs import is_alive

# CI (CI=true, as the README's test command runs there) draws the same examples every run, so a red run can be
# run again and a green one means the same thing twice; a local run keeps exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")

pytest_plugins = ["tests.support.vllm_fixtures", "tests.support.embedder_fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    # The engine's tests also run in an environment without PySide6 (and so without pytest-qt);
    # declare pytest-qt's ini keys there so --strict-config still accepts the shared configuration.
    try:
        import pytestqt  # noqa: F401
    except ImportError:
        parser.addini("qt_api", "pytest-qt's Qt binding (unused without Qt)")
        parser.addini("qt_log_level_fail", "pytest-qt's log level (unused without Qt)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import PySide6  # noqa: F401
    except ImportError:
        skip = pytest.mark.skip(reason="PySide6 is not installed in this environment (engine-only run)")
        for item in items:
            if "gui" in item.keywords or "tests/desktop" in str(item.path).replace(os.sep, "/"):
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches real user data: XDG dirs and the app's home point into the test's temp dir."""
    home = tmp_path / "xdg"
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_RUNTIME_DIR", "run"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        if sub == "run":
            path.chmod(0o700)
        monkeypatch.setenv(var, str(path))
    monkeypatch.delenv("VLLM_DESK_HOME", raising=False)
    monkeypatch.delenv("VLLM_DESK_VLLM", raising=False)
    # The model catalog scans the Hugging Face cache: never the user's real one.
    monkeypatch.setenv("HF_HOME", str(home / "huggingface"))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "huggingface" / "hub"))
    return home


@pytest.fixture
def app_paths(isolated_dirs: Path):  # type: ignore[no-untyped-def]
    from engine.paths import AppPaths

    return AppPaths.under(isolated_dirs / "desk-home").ensure()


@pytest.fixture(autouse=True)
def no_leaked_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a child process behind (session-scoped servers started earlier are exempt),
    and end what it left — whole process groups, as vLLM's helpers live in the server's group — before
    the next test starts, so a failure is reported by the test that caused it and by no other."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    if request.node.get_closest_marker("vllm"):
        # A real-server test that dropped a supervisor or a log file: collected here, reported here.
        gc.collect()
    deadline = time.monotonic() + 10
    leaked: list[psutil.Process] = []
    while time.monotonic() < deadline:
        leaked = [p for p in me.children(recursive=True) if p.pid not in before and is_alive(p)]
        if not leaked:
            return
        time.sleep(0.1)
    names = ", ".join(f"{p.pid} {_describe(p)}" for p in leaked)
    _kill_with_their_groups(leaked)
    pytest.fail(f"test left child processes running: {names}")


def _kill_with_their_groups(procs: list[psutil.Process]) -> None:
    ours = os.getpgrp()
    for p in procs:
        with contextlib.suppress(psutil.Error, OSError):
            group = os.getpgid(p.pid)
            if group != ours:
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=10)


def _describe(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())[:200]
    except psutil.Error:
        return "?"
