"""Process sessions: a server runs in its own session; stop all of it; find what an earlier run left.

vLLM's tree is the API server (leader), a multiprocessing ``resource_tracker``, ``VLLM::EngineCore`` and
``VLLM::Worker``. Killing only the leader leaves the others running (re-parented to PID 1, holding memory), so
a launch always starts a new session (sid = pgid = leader pid) and every stop signals the whole group, then
checks by session id that nothing is left, re-parented processes included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import platformdirs
import psutil

from engine import APP_ID
from engine.hardware import gpu_memory_by_pid

STRAY_PREFIX = "VLLM::"


def session_members(sid: int) -> list[psutil.Process]:
    """Every live process in session ``sid`` (found by session id, so orphans re-parented to PID 1 count)."""
    members: list[psutil.Process] = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (OSError, psutil.Error):
            continue  # gone meanwhile, or not ours to inspect
    return members


def signal_session(sid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``sid`` and to any session member that moved to another group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)
    for proc in session_members(sid):
        with contextlib.suppress(psutil.Error):
            if os.getpgid(proc.pid) != sid:
                proc.send_signal(sig)


@dataclass(frozen=True)
class StopOutcome:
    """How a stop went: ``escalated`` when SIGKILL was needed; ``left`` pids that survived even that."""

    escalated: bool
    seconds: float
    left: tuple[int, ...] = ()


async def _wait_gone(sid: int, within: float) -> list[psutil.Process]:
    deadline = time.monotonic() + within
    while True:
        members = await asyncio.to_thread(session_members, sid)
        if not members or time.monotonic() >= deadline:
            return members
        await asyncio.sleep(0.05)


async def stop_session(sid: int, grace: float = 5.0, reap: psutil.Popen | None = None) -> StopOutcome:
    """SIGTERM to the session, up to ``grace`` seconds, then SIGKILL; verify that no member is left.

    ``reap`` is the leader's handle, waited for so it leaves no zombie.
    """
    start = time.monotonic()
    signal_session(sid, signal.SIGTERM)
    left = await _wait_gone(sid, grace)
    escalated = bool(left)
    if left:
        signal_session(sid, signal.SIGKILL)
        left = await _wait_gone(sid, 5.0)
    if reap is not None:
        with contextlib.suppress(psutil.Error, OSError):
            await asyncio.to_thread(reap.wait, 5)
    return StopOutcome(escalated, time.monotonic() - start, tuple(p.pid for p in left))


@dataclass(frozen=True)
class StrayProcess:
    """A process of a vLLM server nobody runs any more: a ``VLLM::`` engine whose session leader is gone, or
    a server (leader and its session) that an app which has since exited launched. ``rss_bytes``: RAM;
    ``gpu_bytes``: GPU memory it holds, as NVML reports it (0: none, or unknown)."""

    pid: int
    name: str
    cmdline: str
    age_s: float
    sid: int
    rss_bytes: int = 0
    gpu_bytes: int = 0


# -- our own leaders: recorded at launch, so a server whose app crashed is still known as ours ----------


def leaders_dir() -> Path:
    """Where launched servers are recorded: the user's state folder, whatever data folder an app instance
    used, because a GPU is held machine-wide."""
    return Path(platformdirs.user_state_dir(APP_ID)) / "servers"


def _start_time(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error):
        return float(psutil.Process(pid).create_time())
    return None


def record_leader(pid: int, argv: Sequence[str], folder: Path | None = None) -> Path | None:
    """Write down that this app (pid + start time) launched server leader ``pid``; ``None`` if it cannot.

    Start times make the record immune to pid reuse: a record only names a process whose start time
    matches.
    """
    started = _start_time(pid)
    if started is None:
        return None
    record = {
        "pid": pid,
        "start_time": started,
        "owner_pid": os.getpid(),
        "owner_start_time": _start_time(os.getpid()),
        "argv": list(argv[:4]),
    }
    path = (folder or leaders_dir()) / f"{pid}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf-8")
    except OSError:
        return None  # a read-only state folder costs only the crash cleanup, never the launch
    return path


def forget_leader(pid: int, folder: Path | None = None) -> None:
    with contextlib.suppress(OSError):
        ((folder or leaders_dir()) / f"{pid}.json").unlink()


def _same_process(pid: object, start_time: object) -> bool:
    if not isinstance(pid, int) or not isinstance(start_time, int | float):
        return False
    now = _start_time(pid)
    return now is not None and abs(now - start_time) < 0.5


def orphaned_leaders(folder: Path | None = None) -> list[int]:
    """Recorded server leaders still running whose app is gone; stale records are removed on the way."""
    found = []
    for path in sorted((folder or leaders_dir()).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        if not isinstance(record, dict) or not _same_process(record.get("pid"), record.get("start_time")):
            with contextlib.suppress(OSError):
                path.unlink()  # the server is gone (or the pid is someone else's now)
            continue
        if not _same_process(record.get("owner_pid"), record.get("owner_start_time")):
            found.append(int(record["pid"]))
    return found


def own_server_pids(folder: Path | None = None) -> set[int]:
    """Every process of the servers this process launched and still runs (leaders and their sessions):
    the memory they hold on a GPU comes back when the server is restarted with other settings."""
    pids: set[int] = set()
    me, my_start = os.getpid(), _start_time(os.getpid())
    for path in (folder or leaders_dir()).glob("*.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or record.get("owner_pid") != me:
            continue
        if not _same_process(me, my_start) or not _same_process(record.get("pid"), record.get("start_time")):
            continue
        pids |= {p.pid for p in session_members(int(record["pid"]))}
    return pids


def _label(proc: psutil.Process) -> tuple[str, str]:
    cmd = proc.cmdline()
    return proc.name(), " ".join(cmd)


def _may_be_orphaned(sid: int, pid: int, own_sid: int) -> bool:
    """Whether session ``sid`` may be one whose server is gone.

    Session 0 means its leader lives outside our PID namespace (containers, CI sandboxes): unknown, so never
    ours to stop. Our own session is alive because we are. Otherwise the leader must be gone.
    """
    if sid in (0, own_sid):
        return False
    return sid == pid or not psutil.pid_exists(sid)


def find_strays(leaders: Path | None = None) -> list[StrayProcess]:
    """Processes of this user's vLLM servers that nobody runs any more.

    Two kinds: ``VLLM::`` engine processes whose session leader is dead, and whole servers (the API server,
    which carries no ``VLLM::`` title, and its session) recorded by an app instance that has exited
    (``leaders``: the records' folder, :func:`leaders_dir` by default). A live server of someone else's, or
    of a running app, is not listed.
    """
    uid = os.getuid()
    own_sid = os.getsid(0)
    abandoned = set(orphaned_leaders(leaders)) - {own_sid}
    on_gpu = gpu_memory_by_pid()
    now = time.time()
    strays: list[StrayProcess] = []
    for proc in psutil.process_iter():
        try:
            if proc.uids().real != uid:
                continue
            name, cmdline = _label(proc)
            sid = os.getsid(proc.pid)
            engine = name.startswith(STRAY_PREFIX) or cmdline.startswith(STRAY_PREFIX)
            if not (sid in abandoned or (engine and _may_be_orphaned(sid, proc.pid, own_sid))):
                continue
            rss = int(proc.memory_info().rss)
            age = now - proc.create_time()
            strays.append(StrayProcess(proc.pid, name, cmdline, age, sid, rss, on_gpu.get(proc.pid, 0)))
        except (OSError, psutil.Error):
            continue
    return strays


async def clean_up_strays(strays: list[StrayProcess], grace: float = 3.0) -> list[int]:
    """Stop the given strays and the rest of their sessions; returns the pids that could not be stopped."""
    left: list[int] = []
    # Signalling group 0 or our own would hit this very process: such sessions are never cleaned as a whole.
    for sid in sorted({s.sid for s in strays} - {0, os.getsid(0)}):
        outcome = await stop_session(sid, grace)
        left.extend(outcome.left)
    # A stray in a session whose other members are not ours is signalled on its own as well.
    for stray in strays:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(stray.pid)
            proc.kill()
            proc.wait(3)
    return [pid for pid in left if psutil.pid_exists(pid)]


@dataclass(frozen=True)
class OutputLine:
    """One line a server printed; ``elapsed_s`` since its launch began."""

    stream: Literal["stdout", "stderr"]
    text: str
    elapsed_s: float


_LINE_SPLIT = re.compile(rb"\r\n|\r|\n")


class SessionProcess:
    """A command run in a new session, its output read by one thread per pipe into a log file.

    Each line is also handed to ``on_line`` on ``loop`` (thread-safe). Exit is found by :meth:`poll`, never by
    the pipes closing: orphaned children keep them open. Raises ``OSError`` when the command cannot run.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        on_line: Callable[[OutputLine], None],
        started: float,
    ) -> None:
        self.log_path = log_path
        self.started = started
        self._on_line = on_line
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._log = log_path.open("w", encoding="utf-8")
        self._log.write(f"# {' '.join(argv)}\n")
        try:
            self.popen = psutil.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,  # its own session and group: a stop signals all of it
            )
        except OSError:
            self._log.close()
            raise
        # Our own leader, written down so that a later app instance knows it if this one crashes.
        self._record = record_leader(self.popen.pid, argv)
        self._readers = [
            threading.Thread(target=self._read, args=(name, pipe), daemon=True, name=f"server-{name}")
            for name, pipe in (("stdout", self.popen.stdout), ("stderr", self.popen.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @property
    def sid(self) -> int:
        """Session id = process group id = the leader's pid."""
        return int(self.popen.pid)

    def poll(self) -> int | None:
        code: int | None = self.popen.poll()
        return code

    def _read(self, stream: Literal["stdout", "stderr"], pipe: IO[bytes] | None) -> None:
        # Split on \r too: progress bars redraw their line with it.
        if pipe is None:
            return
        buffer = b""
        try:
            while chunk := pipe.read1(65536):  # type: ignore[attr-defined]
                buffer += chunk
                *complete, buffer = _LINE_SPLIT.split(buffer)
                for raw in complete:
                    self._deliver(stream, raw)
            self._deliver(stream, buffer)
        except (OSError, ValueError):
            pass  # closed under us at shutdown
        finally:
            with contextlib.suppress(OSError):
                pipe.close()

    def _deliver(self, stream: Literal["stdout", "stderr"], raw: bytes) -> None:
        if not raw.strip():
            return
        line = OutputLine(stream, raw.decode(errors="replace"), time.monotonic() - self.started)
        with self._lock:
            if not self._log.closed:
                self._log.write(f"{line.elapsed_s:9.3f} {stream[3]} {line.text}\n")
                self._log.flush()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(self._on_line, line)

    async def stop(self, grace: float) -> StopOutcome:
        """Stop the whole session (see :func:`stop_session`), then finish reading and close the log."""
        outcome = await stop_session(self.sid, grace, reap=self.popen)
        if self._record is not None and not outcome.left:
            forget_leader(self.sid, self._record.parent)
        for reader in self._readers:  # the pipes close once every holder is gone
            await asyncio.to_thread(reader.join, 2.0)
        with self._lock:
            self._log.close()
        return outcome
