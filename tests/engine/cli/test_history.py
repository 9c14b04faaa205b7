"""`vllm-desk list`, `search` and `show` over a real history file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.history.store import HistoryStore
from engine.paths import AppPaths


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "desk"
    store = HistoryStore(AppPaths.under(root).ensure().history_db)
    a = store.create_conversation(title="Trip to Köln", folder="Travel", tags=["europe"])
    u = store.add_message(a.id, None, "user", "Where to eat in Köln?")
    r = store.add_message(a.id, u.id, "assistant", "Try a Brauhaus.", model="m")
    store.add_message(a.id, u.id, "assistant", "A Kölsch bar near the Dom.", model="m")  # regenerated
    b = store.create_conversation(title="Recipes")
    store.add_message(b.id, None, "user", "Crème brûlée, please")
    store.update_conversation(a.id, pinned=True)
    store.close()
    assert r.id > 0
    return root


def test_list_pinned_first_as_text_and_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(home), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "Trip to Köln" in lines[0]
    assert "*" in lines[0]
    assert "#europe" in lines[0]
    assert "Recipes" in lines[1]
    assert main(["--data-dir", str(home), "list", "--json", "--folder", "Travel"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["title"] for c in data] == ["Trip to Köln"]
    assert data[0]["tags"] == ["europe"]


def test_list_limit_pages_through(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(home), "list", "--json", "--limit", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_search_ignores_accents_and_names_the_message(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(home), "search", "kolsch", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 1
    assert hits[0]["message_id"] is not None
    assert "[Kölsch]" in hits[0]["snippet"]
    assert main(["--data-dir", str(home), "search", "creme brulee"]) == 0
    assert "Recipes" in capsys.readouterr().out


def test_search_without_results_says_so(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(home), "search", "zanzibar"]) == 1
    assert "Nothing matches" in capsys.readouterr().err


def test_show_prints_the_shown_branch_and_json_has_every_branch(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(home), "show", "1"]) == 0
    out = capsys.readouterr().out
    assert "Where to eat in Köln?" in out
    assert "[assistant (2/2)] A Kölsch bar near the Dom." in out
    assert "Try a Brauhaus." not in out
    assert main(["--data-dir", str(home), "show", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["messages"]) == 3
    assert len(data["shown"]) == 2
    assert data["messages"][1]["content"]["content"] == [{"text": "Try a Brauhaus."}]


def test_show_unknown_id_is_a_clear_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(home), "show", "99"]) == 1
    assert "no conversation with id 99" in capsys.readouterr().err
