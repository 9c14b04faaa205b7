"""SIGTERM / SIGHUP to a command that started a server: the server's whole session is stopped, the command
exits 128 + the signal (engine.cli.runner). Real processes: the command line, with the stand-in as vLLM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from engine.cli.runner import StoppedBySignal, interrupt_means, run_command
from engine.documents.store import DocumentStore, documents_db
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.server.processes import session_members, signal_session
from engine.server.profiles import ServerProfile
from engine.server.supervisor import ServerState, StateChange, Supervisor
from engine.settings.store import DocumentsSettings, Settings, SettingsStore
from tests.support.embeddings_server import bag_of_words
from tests.support.procs import is_alive
from tests.support.standin.launch import REPO_ROOT, StandinRuntime, standin_env

SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGHUP, id="SIGHUP")]


@dataclass
class Desk:
    """A data folder whose profile ``standin`` (the chat model and the documents' embedder) has a model name
    no other process has: its server is found by it."""

    home: Path
    marker: str

    def cli(self, *args: str, standin: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.engine.cli.standin_cli", "--data-dir", str(self.home), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=standin_env(extra={"STANDIN_OPTIONS": json.dumps(standin)}),
        )

    def server_sid(self, proc: subprocess.Popen[str], within: float = 60.0) -> int:
        """The session of the server the command started, once its leader and forked child both run."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            for candidate in psutil.process_iter(["cmdline"]):
                if self.marker in " ".join(candidate.info["cmdline"] or ()):
                    with_child = session_members(os.getsid(candidate.pid))
                    if len(with_child) >= 2:
                        return os.getsid(candidate.pid)
            time.sleep(0.1)
        raise AssertionError("the command's server did not start")


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    home = tmp_path / "desk"
    marker = f"org/signal-{uuid.uuid4().hex[:12]}"
    paths = AppPaths.resolve(str(home)).ensure()
    settings = Settings(
        profiles=[ServerProfile(name="standin", source="hf_cache", model=marker)],
        documents=DocumentsSettings(embedder="standin"),
    )
    SettingsStore.open(paths.settings_file).update(settings)
    store = DocumentStore(documents_db(paths))
    try:
        store.ensure_collection("notes")
    finally:
        store.close()
    return Desk(home, marker)


@pytest.fixture
def sessions() -> Iterator[list[int]]:
    """Server sessions a test found; whatever is left of them (a failed test) is killed at the end."""
    found: list[int] = []
    yield found
    for sid in found:
        if session_members(sid):
            signal_session(sid, signal.SIGKILL)


def _stopped(proc: subprocess.Popen[str], sig: signal.Signals, sid: int) -> str:
    """Signal the command alone (not its group), and check it exited 128 + sig with its server gone."""
    members = session_members(sid)
    proc.send_signal(sig)
    try:
        _out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"the command did not exit after {sig.name}") from None
    assert proc.returncode == 128 + sig, err
    assert f"stopped by signal {sig.name}" in err
    assert not any(is_alive(p) for p in members), f"left running: {[p.pid for p in members if is_alive(p)]}"
    assert session_members(sid) == []
    return err


@pytest.mark.parametrize("sig", SIGNALS)
def test_a_signal_during_the_reply_stops_the_chat_server_and_saves_the_reply_as_stopped(
    desk: Desk, sessions: list[int], sig: signal.Signals
) -> None:
    proc = desk.cli(
        "chat",
        "--profile",
        "standin",
        "go",
        standin=["--fork-child", "--reply-tokens", "5000", "--tokens-per-second", "50"],
    )
    assert proc.stdout is not None
    sessions.append(desk.server_sid(proc))
    assert proc.stdout.read(10).startswith("alpha")  # the reply is streaming
    _stopped(proc, sig, sessions[0])
    history = HistoryStore(desk.home / "data" / "history.sqlite3")
    try:
        reply = history.load(1).branch()[-1]
    finally:
        history.close()
    assert reply.state == "stopped"
    assert reply.text.startswith("alpha")


@pytest.mark.parametrize("sig", SIGNALS)
def test_a_signal_while_the_embedder_starts_for_chat_docs_stops_it(
    desk: Desk, sessions: list[int], sig: signal.Signals
) -> None:
    proc = desk.cli(
        "chat", "--docs", "notes", "what is in my notes?", standin=["--fork-child", "--startup-delay", "60"]
    )
    sessions.append(desk.server_sid(proc))
    _stopped(proc, sig, sessions[0])


def test_sigterm_while_docs_add_starts_the_embedder_stops_it(
    desk: Desk, sessions: list[int], tmp_path: Path
) -> None:
    (tmp_path / "a.md").write_text("# A\n\nSome text.\n", encoding="utf-8")
    proc = desk.cli(
        "docs",
        "add",
        str(tmp_path / "a.md"),
        "--embedder-profile",
        "standin",
        standin=["--fork-child", "--startup-delay", "60"],
    )
    sessions.append(desk.server_sid(proc))
    _stopped(proc, signal.SIGTERM, sessions[0])


@contextmanager
def slow_embeddings_server(delay_s: float) -> Iterator[str]:
    """A ``/v1/embeddings`` server (in a thread) taking ``delay_s`` per request: indexing is slow enough to be
    signalled in the middle. Its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send({"object": "list", "data": [{"id": "bow", "object": "model"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            time.sleep(delay_s)
            data = [
                {"object": "embedding", "index": i, "embedding": bag_of_words(t)}
                for i, t in enumerate(inputs)
            ]
            self._send(
                {
                    "object": "list",
                    "model": "bow",
                    "data": data,
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                }
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_sigterm_while_indexing_ends_the_indexing_cleanly_and_rescan_goes_on(tmp_path: Path) -> None:
    """The indexing thread stops (the file being indexed dropped whole) before the command exits 143; the
    collection is intact and ``rescan`` indexes the rest."""
    home, notes = tmp_path / "desk", tmp_path / "notes"
    notes.mkdir()
    for n in range(30):
        (notes / f"note{n:02}.md").write_text(
            f"# Note {n}\n\nThe number {n} is written here.\n", encoding="utf-8"
        )
    with slow_embeddings_server(0.2) as url:
        cli = [sys.executable, "-m", "engine.cli", "--data-dir", str(home), "docs"]
        proc = subprocess.Popen(
            [*cli, "add", str(notes), "--embedder-url", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=standin_env(),
        )
        assert proc.stderr is not None
        while not (line := proc.stderr.readline()).startswith("[3/30]"):
            assert line, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
        assert proc.returncode == 143, err
        assert "stopped by signal SIGTERM" in err
        listed = subprocess.run(
            [*cli, "list", "--json"], capture_output=True, text=True, cwd=REPO_ROOT, check=True
        )
        (collection,) = json.loads(listed.stdout)
        assert 2 <= collection["files"] < 30
        again = subprocess.run(
            [*cli, "rescan", "--embedder-url", url, "--json"], capture_output=True, text=True, cwd=REPO_ROOT
        )
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout)
        assert len(report["added"]) == 30 - collection["files"]
        assert report["failed"] == []


def test_ctrl_c_while_the_chat_server_starts_stops_it(desk: Desk, sessions: list[int]) -> None:
    proc = desk.cli("chat", "--profile", "standin", "go", standin=["--fork-child", "--startup-delay", "60"])
    sessions.append(desk.server_sid(proc))
    _stopped(proc, signal.SIGINT, sessions[0])


# --- the runner itself, in this process --------------------------------------------------------------


def test_a_signal_cancels_the_command_its_cleanup_runs_and_stopped_by_signal_is_raised() -> None:
    cleaned: list[str] = []

    async def command() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(30)
            return 0
        finally:
            await asyncio.sleep(0)
            cleaned.append("stopped the server")

    def runners_own(_signum: int, _frame: object) -> None:
        pass

    earlier = signal.signal(signal.SIGHUP, runners_own)
    try:
        with pytest.raises(StoppedBySignal) as stopped:
            run_command(command())
        # The handler from before is back (asyncio's removal alone would leave SIG_DFL).
        assert signal.getsignal(signal.SIGHUP) is runners_own
    finally:
        signal.signal(signal.SIGHUP, earlier)
    assert cleaned == ["stopped the server"]
    assert stopped.value.exit_code == 143
    assert str(stopped.value) == "stopped by signal SIGTERM"


def test_a_signal_while_the_command_stops_its_server_still_ends_with_the_server_killed(
    app_paths: AppPaths, sessions: list[int]
) -> None:
    """The command is stopping its server on its own (the SIGTERM is out; the server ignores it) when SIGTERM
    comes: the stop still goes on to its SIGKILL before the command ends, then the signal is reported."""
    supervisors: list[Supervisor] = []
    members: list[psutil.Process] = []

    async def command() -> int:
        sup = Supervisor(app_paths, StandinRuntime(["--ignore-sigterm", "--fork-child"]), grace_s=2.0)
        supervisors.append(sup)
        await sup.start(ServerProfile(name="standin", source="hf_cache", model="org/standin"))
        members.extend(sup.processes())
        sessions.append(os.getsid(members[0].pid))
        loop = asyncio.get_running_loop()

        def signal_mid_stop(change: StateChange) -> None:
            if change.state is ServerState.STOPPING:  # the SIGTERM goes out now; the grace is 2 s
                loop.call_later(0.3, os.kill, os.getpid(), signal.SIGTERM)

        sup.state_changed.connect(signal_mid_stop)
        try:
            return 0
        finally:
            await sup.shutdown()

    with pytest.raises(StoppedBySignal) as stopped:
        run_command(command())
    assert stopped.value.exit_code == 143
    assert len(members) == 2
    assert not any(is_alive(p) for p in members), f"left running: {[p.pid for p in members if is_alive(p)]}"
    sup = supervisors[0]
    assert sup.last_stop is not None
    assert sup.last_stop.escalated
    assert sup.processes() == []


def test_interrupt_means_gives_ctrl_c_a_meaning_for_a_while_then_it_stops_the_command() -> None:
    heard: list[str] = []

    async def command() -> int:
        with interrupt_means(lambda: heard.append("stop the reply")):
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(0.1)
        assert heard == ["stop the reply"]
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(30)
        return 0

    with pytest.raises(StoppedBySignal) as stopped:
        run_command(command())
    assert stopped.value.exit_code == 130


def test_sighup_stops_serve_and_its_server(desk: Desk, sessions: list[int]) -> None:
    """``serve`` has its own loop: SIGHUP (its terminal closing) stops it as Ctrl-C does, exit 0."""
    proc = desk.cli("serve", "--profile", "standin", standin=["--fork-child"])
    assert proc.stdout is not None
    sessions.append(desk.server_sid(proc))
    while not (line := proc.stdout.readline()).startswith("Ready: "):  # progress lines come first
        assert line, proc.communicate()
    members = session_members(sessions[0])
    proc.send_signal(signal.SIGHUP)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert not any(is_alive(p) for p in members)
    assert session_members(sessions[0]) == []
