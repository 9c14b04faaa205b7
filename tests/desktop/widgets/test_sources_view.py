"""The sources under a reply: the ones it used first, under a line that says whether the reply cites them or
the app matched them to its wording; the other passages given to the model collapsed below; a reply stored
before attribution shown as it always was."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from desktop.widgets.sources_view import SourcesView
from engine.documents.attribution import attribute

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]

QUESTION = "Who is the keeper of the Kelvar lighthouse?"
PASSAGES = [
    ("/d/keeper.md", None, "Kelvar lighthouse",
     "# Kelvar lighthouse\n\nThe keeper of the Kelvar lighthouse is named Orla Brennick. She lights the "
     "lamp at dusk and logs every ship that passes."),
    ("/d/keeper.md", None, "Harbour", "# Harbour\n\nFishing boats leave the harbour at dawn."),
    ("/d/tides.pdf", 1, "", "Tide tables for the northern coast."),
    ("/d/tides.pdf", 2, "", "High tide is at noon."),
]  # fmt: skip
SHOTS = os.environ.get("SOURCES_VIEW_SHOTS")  # a folder: the views are saved there as PNGs to look at


def stored(reply: str | None) -> list[dict[str, Any]]:
    """The sources as the grounding stores them; attributed to ``reply`` (None: as stored before)."""
    records = [
        {"number": n, "file": f, "page": p, "section": s, "passage": t, "doc_id": f"d{n}"}
        for n, (f, p, s, t) in enumerate(PASSAGES, start=1)
    ]
    return records if reply is None else attribute(reply, records, QUESTION)


def _view(qtbot, sources: list[dict[str, Any]], name: str) -> SourcesView:  # type: ignore[no-untyped-def]
    view = SourcesView(sources)
    qtbot.addWidget(view)
    view.setFixedWidth(640)
    view.show()
    qtbot.waitExposed(view)
    if SHOTS:
        view.adjustSize()
        assert view.grab().save(str(Path(SHOTS) / f"{name}.png"))
    return view


def test_a_reply_without_markers_shows_the_matched_passage_first_and_says_the_app_matched_it(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = _view(qtbot, stored("The keeper of the Kelvar lighthouse is named Orla Brennick."), "matched")
    assert view.attribution == "matched"
    assert view.note is not None
    assert "the app matched its wording" in view.note.text()
    assert [row.link.text() for row in view.used_rows] == ["[1] keeper.md, Kelvar lighthouse"]
    tag = view.used_rows[0].tag
    assert tag is not None
    assert tag.text() == "matched by the app"
    assert "100%" in tag.toolTip()
    assert tag.isVisible()
    # The three others, under a collapsed "Also given to the model (3)" that opens on a click.
    assert view.others_toggle is not None
    assert view.others_box is not None
    assert view.others_toggle.text() == "Also given to the model (3)"
    assert [row.link.text() for row in view.other_rows] == [
        "[2] keeper.md, Harbour",
        "[3] tides.pdf, page 1",
        "[4] tides.pdf, page 2",
    ]
    assert all(row.tag is None for row in view.other_rows)
    assert not view.other_rows[0].isVisible()
    qtbot.mouseClick(view.others_toggle, Qt.MouseButton.LeftButton)
    assert view.other_rows[0].isVisible()
    assert view.others_toggle.arrowType() == Qt.ArrowType.DownArrow
    qtbot.mouseClick(view.others_toggle, Qt.MouseButton.LeftButton)
    assert not view.other_rows[0].isVisible()


def test_a_reply_with_markers_lists_the_cited_passages_without_a_matched_tag(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = _view(qtbot, stored("High tide is at noon [4]; the boats leave at dawn [2]."), "cited")
    assert view.attribution == "cited"
    assert view.note is not None
    assert view.note.text() == "Cited by the reply"
    assert [row.link.text() for row in view.used_rows] == ["[2] keeper.md, Harbour", "[4] tides.pdf, page 2"]
    assert all(row.tag is None for row in view.rows)
    assert view.others_toggle is not None
    assert view.others_toggle.text() == "Also given to the model (2)"


def test_a_reply_that_used_no_passage_says_so_and_keeps_them_collapsed(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = _view(qtbot, stored("The 2010 world cup was won by Spain."), "none")
    assert view.attribution == "none"
    assert view.note is not None
    assert "neither cites" in view.note.text()
    assert view.used_rows == []
    assert view.others_toggle is not None
    assert view.others_toggle.text() == "Given to the model (4)"
    assert not view.other_rows[0].isVisible()


def test_sources_stored_before_attribution_are_all_listed_as_before(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = _view(qtbot, stored(None), "unknown")
    assert view.attribution == "unknown"
    assert view.note is None
    assert view.others_toggle is None
    assert [row.link.text() for row in view.rows][:2] == [
        "[1] keeper.md, Kelvar lighthouse",
        "[2] keeper.md, Harbour",
    ]
    assert all(row.isVisible() for row in view.rows)


def test_clicking_a_used_or_an_other_source_asks_for_that_source(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = _view(qtbot, stored("Fishing boats leave the harbour at dawn."), "click")
    opened: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    view.open_requested.connect(opened.append)
    view.context_requested.connect(shown.append)
    qtbot.mouseClick(view.used_rows[0].link, Qt.MouseButton.LeftButton)
    assert view.others_toggle is not None
    qtbot.mouseClick(view.others_toggle, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(view.other_rows[0].context_button, Qt.MouseButton.LeftButton)
    assert [s["number"] for s in opened] == [2]
    assert [s["number"] for s in shown] == [1]
    assert opened[0]["use"] == "matched"
