"""A history file with damaged pages: what can be read still reads, the rest is named in words, and a
backup of everything readable can be made."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest

from engine.cli import main
from engine.history.store import HistoryStore
from engine.paths import AppPaths


@pytest.fixture
def damaged_home(tmp_path: Path) -> Path:
    root = tmp_path / "desk"
    db = AppPaths.under(root).ensure().history_db
    store = HistoryStore(db)
    for i in range(300):
        conv = store.create_conversation(title=f"conversation {i}")
        store.add_message(conv.id, None, "user", f"message {i} " + "words " * 200)
    store.close()
    size = db.stat().st_size
    with db.open("r+b") as handle:  # two pages in the middle of the message table overwritten
        handle.seek(size // 2)
        handle.write(random.Random(7).randbytes(8192))
    return root


def test_a_damaged_file_is_named_in_words_not_a_traceback(
    damaged_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = {}
    for command in (["list"], ["search", "words"], ["show", "150"]):
        results[command[0]] = main(["--data-dir", str(damaged_home), *command])
    err = capsys.readouterr().err
    assert results == {"list": 0, "search": 1, "show": 0}  # the search reads the damaged pages
    assert "Part of the chat history at" in err
    assert "cannot be read (database disk image is malformed)" in err
    assert "sqlite3 FILE .recover" in err


def test_export_all_saves_every_readable_conversation(
    damaged_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "backup.zip"
    status = main(["--data-dir", str(damaged_home), "export", "--all", "-o", str(backup), "--format", "json"])
    out = capsys.readouterr().out
    with zipfile.ZipFile(backup) as archive:
        saved = len(archive.namelist())
    assert 250 <= saved < 300
    assert status == 1
    assert f"Exported {saved} conversations" in out
    assert f"{300 - saved} could not be read from the damaged history file" in out
