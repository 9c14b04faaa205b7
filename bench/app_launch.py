"""Start the real app (``python -m desktop.main``) with the startup hook and read its timestamps.

The hook lives in ``desktop/app.py``: with ``VLLM_DESK_BENCH_STARTUP=1`` the app prints
``VLLM_DESK_BENCH_STARTUP shown <epoch>`` when the main window is shown and ``... painted <epoch>`` when the
first conversation is on screen, then quits; with ``=stay`` it keeps running (the memory benchmark reads its
RSS, then stops it).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.context import BenchContext

PREFIX = "VLLM_DESK_BENCH_STARTUP"


@dataclass
class Launch:
    proc: subprocess.Popen[str]
    spawned: float
    marks: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)  # e.g. the conversation id painted
    output: list[str] = field(default_factory=list)

    def since_spawn(self, mark: str) -> float:
        return self.marks[mark] - self.spawned

    def rss_bytes(self) -> int:
        """Resident memory of the process and its children."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total


def app_command(ctx: BenchContext) -> list[str]:
    return [ctx.python, "-m", "desktop.main"]


def bare_command(ctx: BenchContext, stay: bool = False) -> list[str]:
    return [ctx.python, "-m", "bench.bare_window", *(["stay"] if stay else [])]


def home_env(ctx: BenchContext, home: Path, stay: bool) -> dict[str, str]:
    return ctx.child_env(
        VLLM_DESK_HOME=str(home),
        VLLM_DESK_BENCH_STARTUP="stay" if stay else "1",
        # Nothing but the window: no server launch, no first-run install.
        VLLM_DESK_GENERAL__START_SERVER_WITH_APP="false",
        PYTHONUNBUFFERED="1",
    )


@contextmanager
def launched(
    cmd: list[str], env: dict[str, str], cwd: Path, stay: bool, timeout: float = 60
) -> Iterator[Launch]:
    """Run ``cmd`` until it printed ``painted`` (and exited, unless ``stay``); always ends it."""
    spawned = time.time()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    launch = Launch(proc, spawned)
    # A reader thread, not select() + readline(): the text wrapper buffers lines that select() cannot see.
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            lines.put(text)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while "painted" not in launch.marks:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                tail = "\n".join(launch.output[-20:])
                raise RuntimeError(f"no startup mark after {timeout:.0f} s:\n{tail}") from None
            if line is None:
                tail = "\n".join(launch.output[-20:])
                raise RuntimeError(f"{cmd[-1]} exited ({proc.wait()}) before the startup mark:\n{tail}")
            launch.output.append(line.rstrip())
            if line.startswith(PREFIX):
                _prefix, mark, stamp, *detail = line.split()
                launch.marks[mark] = float(stamp)
                launch.details[mark] = " ".join(detail)
        if not stay:
            proc.wait(timeout)
        yield launch
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(5)


def plain_import_seconds(ctx: BenchContext) -> float:
    """``python -c "import PySide6.QtWidgets"``: spawn to exit."""
    start = time.time()
    subprocess.run([ctx.python, "-c", "import PySide6.QtWidgets"], env=ctx.child_env(), check=True)
    return time.time() - start


def prepare_home(
    ctx: BenchContext, name: str, history_db: Path | None, last_conversation: int | None
) -> Path:
    """A fresh ``VLLM_DESK_HOME`` with a copy of ``history_db`` and the window's last conversation set."""
    import shutil

    home = ctx.work_dir / name
    if home.exists():
        shutil.rmtree(home)
    (home / "data").mkdir(parents=True)
    (home / "config").mkdir(parents=True)
    if history_db is not None:
        shutil.copyfile(history_db, home / "data" / "history.sqlite3")
    if last_conversation is not None:
        # The window keeps its last conversation in QSettings' INI file beside the settings.
        (home / "config" / "window.ini").write_text(f"[window]\nlast_conversation={last_conversation}\n")
    return home
