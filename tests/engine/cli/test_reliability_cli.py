"""Issue 14.6: the smaller ways a file, a server or an argument could hang, mislead or leak."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from engine.cli import main
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.transfer.errors import ImportRejected
from engine.transfer.importer import read_conversations
from engine.transfer.json_format import dumps
from tests.engine.transfer_trees import sample_conversation
from tests.support.standin.launch import REPO_ROOT, running_standin
from tests.support.unprivileged import unprivileged


def _within(seconds: float, work: object) -> object:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)  # type: ignore[operator]
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "it hung"
    return out[0]


def test_importing_a_fifo_is_refused_without_hanging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "conversations.json"
    os.mkfifo(fifo)
    status = _within(30, lambda: main(["--data-dir", str(tmp_path / "d"), "import", str(fifo)]))
    if status is None:  # pragma: no cover - unblock a hung reader
        fifo.open("w").close()
    assert status == 1
    assert "not a regular file" in capsys.readouterr().err


def test_dev_zero_is_refused_before_reading() -> None:
    with pytest.raises(ImportRejected, match="not a regular file"):
        read_conversations(Path("/dev/zero"))


def test_an_empty_import_name_is_not_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path / "d"), "import", ""]) == 2
    assert "empty name" in capsys.readouterr().err


def test_a_zip_bomb_is_refused_from_its_directory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversation.json", b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ImportRejected, match="zip bomb"):
        read_conversations(bomb)


def test_a_normal_zip_still_imports(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.json", dumps(sample_conversation()))
    assert [c.title for c in read_conversations(good)] == ["Reversing lists"]


ESCAPES = "\x1b]0;PWNED\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J"


def test_terminal_escapes_in_titles_and_text_are_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "d"
    store = HistoryStore(AppPaths.under(home).ensure().history_db)
    conv = store.create_conversation(title=f"evil{ESCAPES}", tags=[f"t{ESCAPES}"])
    store.add_message(conv.id, None, "user", f"text{ESCAPES}\nsecond line")
    store.close()
    for command in (["list"], ["show", str(conv.id)], ["search", "evil"], ["search", "text"]):
        assert main(["--data-dir", str(home), *command]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out
        assert "\x07" not in out
        assert "\\x1b]0;PWNED" in out or command[0] == "search"
    assert main(["--data-dir", str(home), "show", str(conv.id)]) == 0
    assert "second line" in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize("port", ["70000", "-1", "0", "http"])
def test_serve_refuses_a_port_out_of_range(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", f"--port={port}"])
    assert exited.value.code == 2
    assert "port" in capsys.readouterr().err


def test_serve_explains_a_privileged_port(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "engine.cli", "--data-dir", str(tmp_path), "serve", "--port", "22"]
    done = subprocess.run(
        unprivileged(argv), capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "below 1024" in done.stderr
    assert "PermissionError" not in done.stderr


def test_serve_refuses_an_option_as_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path), "serve", "--model=--trust-remote-code"]) == 1
    assert "looks like an option" in capsys.readouterr().err


def test_serve_refuses_a_missing_model_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path), "serve", "--model", "/nonexistent/model"]) == 1
    assert "no model folder" in capsys.readouterr().err


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )


def test_credentials_in_a_base_url_are_never_stored_or_printed(tmp_path: Path) -> None:
    home = tmp_path / "d"
    with running_standin() as server:
        port = server.port
    url = f"http://alice:hunter2secret@127.0.0.1:{port}/v1"  # the server is gone: unreachable
    for extra in (["--model", "m"], []):
        done = _cli("--data-dir", str(home), "chat", "--base-url", url, *extra, "Hello")
        assert done.returncode == 1
        assert "hunter2secret" not in done.stdout + done.stderr
    conn = sqlite3.connect(AppPaths.under(home).history_db)
    errors = [row[0] for row in conn.execute("SELECT error FROM messages")]
    conn.close()
    assert errors
    assert not any("hunter2secret" in e for e in errors)


def test_a_long_prompt_from_stdin_and_no_empty_conversation_when_refused(tmp_path: Path) -> None:
    home = tmp_path / "d"
    with running_standin("--reply", "Fine.", "--max-model-len", "64") as server:
        base = server.endpoint().base_url
        too_long = " ".join(["word"] * 500)
        for _ in range(2):
            refused = _cli("--data-dir", str(home), "chat", "--base-url", base, "-", stdin=too_long)
            assert refused.returncode == 1
            assert "context" in refused.stderr
        short = tmp_path / "prompt.txt"
        short.write_text("Hello from a file")
        assert _cli("--data-dir", str(home), "chat", "--base-url", base, "--file", str(short)).returncode == 0
        assert (
            _cli("--data-dir", str(home), "chat", "--base-url", base, "-", stdin="Hi there").returncode == 0
        )
    listed = _cli("--data-dir", str(home), "list", "--json")
    conversations = json.loads(listed.stdout)
    assert len(conversations) == 2  # the two refusals left nothing behind
    shown = _cli("--data-dir", str(home), "show", str(conversations[-1]["id"]))
    assert "Hello from a file" in shown.stdout


def test_an_empty_zip_member_list_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("readme.txt", "no json here")
    with pytest.raises(ImportRejected, match=r"no \.json"):
        read_conversations(empty)


def test_an_emoji_is_found_in_the_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "d"
    store = HistoryStore(AppPaths.under(home).ensure().history_db)
    conv = store.create_conversation(title="Launch 🚀")
    store.add_message(conv.id, None, "user", "We shipped it! 🎉 Time to celebrate")
    store.add_message(conv.id, None, "user", "no emoji here")
    hits = store.search("🎉")
    assert [(h.conversation_id, h.snippet) for h in hits] == [
        (conv.id, "We shipped it! [🎉] Time to celebrate")
    ]
    assert [h.message_id for h in store.search("🚀")] == [None]
    assert store.search("🦄") == []
    store.close()
    assert main(["--data-dir", str(home), "search", "🎉"]) == 0
    assert "[🎉]" in capsys.readouterr().out


def test_serve_says_which_settings_it_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings_file = AppPaths.under(tmp_path).ensure().settings_file
    settings_file.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    # The start is refused by a later check, after the settings were read.
    assert main(["--data-dir", str(tmp_path), "serve", "--model=--bad"]) == 1
    err = capsys.readouterr().err
    assert "warning: vLLM Desk started with default values" in err
    assert "nested too deeply" in err


def test_a_servers_words_in_an_error_are_printed_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.chat.engine import TurnEvent
    from engine.chat.errors import ServerFailed
    from engine.cli.chat import _Printer

    error = ServerFailed(500, f"boom{ESCAPES}")
    _Printer(as_json=False).event(TurnEvent("finished", 1, 2, state="failed", error=error))
    err = capsys.readouterr().err
    assert "boom\\x1b]0;PWNED" in err
    assert "\x1b" not in err
