"""``vllm-desk export`` / ``vllm-desk import``: exit status, summaries, files on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.history.store import HistoryStore

CHATGPT = Path(__file__).parents[1] / "fixtures" / "chatgpt_conversations.json"


def test_import_then_export_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path / "home")
    assert main(["--data-dir", home, "import", str(CHATGPT)]) == 0
    out = capsys.readouterr().out
    assert "Imported 2 conversations." in out
    ids = out.split("New conversation ids: ")[1].split()
    assert len(ids) == 2

    assert main(["--data-dir", home, "import", str(CHATGPT), "--format", "chatgpt"]) == 0
    assert "Imported 0 conversations; 2 were already in the history." in capsys.readouterr().out

    md = tmp_path / "one.md"
    assert main(["--data-dir", home, "export", ids[0], "-o", str(md)]) == 0
    assert md.read_text(encoding="utf-8").startswith("# ")
    html = tmp_path / "one.html"
    assert main(["--data-dir", home, "export", ids[1], "--format", "html", "-o", str(html)]) == 0
    assert "British Shorthair" in html.read_text(encoding="utf-8")
    assert (
        main(["--data-dir", home, "export", "--all", "--format", "json", "-o", str(tmp_path / "all.zip")])
        == 0
    )
    assert f"Exported 2 conversations to {tmp_path / 'all.zip'}." in capsys.readouterr().out

    store = HistoryStore(Path(home) / "data" / "history.sqlite3")
    try:
        titles = sorted(c.title for c in store.list_conversations().items)
    finally:
        store.close()
    assert titles == ["A photo of my cat", "Sorting dicts in Python"]


def test_problems_exit_non_zero_with_a_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path / "home")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(json.loads(CHATGPT.read_text()))[:-40], encoding="utf-8")
    assert main(["--data-dir", home, "import", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "error: broken.json: the file is not valid JSON" in err
    assert "Nothing was imported." in err
    assert "fix: Nothing was imported." in err

    assert main(["--data-dir", home, "import", str(CHATGPT)]) == 0
    capsys.readouterr()
    # No desktop capability passed: PDF is refused with the reason, not a traceback.
    assert (
        main(["--data-dir", home, "export", "--all", "--format", "pdf", "-o", str(tmp_path / "x.pdf")]) == 1
    )
    assert "PDF export needs Qt's PDF writer" in capsys.readouterr().err
    assert main(["--data-dir", home, "export", "999", "-o", str(tmp_path / "x.md")]) == 1
    assert "no conversation with id 999" in capsys.readouterr().err
    assert main(["--data-dir", home, "export", "1", "2", "-o", str(tmp_path / "two.md")]) == 1
    assert (
        "several conversations go to a folder or a .zip file, not to one .md file" in capsys.readouterr().err
    )
    assert not (tmp_path / "two.md").exists()
    assert main(["--data-dir", home, "export", "-o", str(tmp_path / "x.md")]) == 2
    assert main(["--data-dir", home, "export", "1", "-o", str(tmp_path / "x.txt")]) == 2


def test_the_command_runs_as_a_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--data-dir", str(tmp_path), "import", str(CHATGPT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Imported 2 conversations.")
