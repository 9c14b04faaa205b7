"""A conversation that used tools, exported as PDF (Qt's PDF writer over the print-ready HTML): each call with
its tool, server and arguments (what the model sent when it was not JSON) and each result is readable, and the
tool's hostile output is there as text only: no script, no link."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from desktop.export_pdf import write_pdf
from engine.history.store import HistoryStore
from engine.transfer.history_adapter import from_tree
from engine.transfer.html_format import render_html
from tests.engine.tools.test_tool_export import HOSTILE, _tool_conversation

pytestmark = [pytest.mark.gui, pytest.mark.tools]


def test_a_pdf_shows_tool_calls_and_results_readable_and_inert(qapp: Any, tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    cid = _tool_conversation(db)
    store = HistoryStore(db)
    try:
        conversation = from_tree(store.export_tree(cid))
    finally:
        store.close()
    out = tmp_path / "tools.pdf"
    write_pdf(render_html(conversation, for_print=True), out)
    text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "Tool call: add · desk" in lines
    assert '"a": 2,' in lines
    assert "Tool call: fetch · built-in" in lines
    assert '{"url":' in lines  # the malformed call as the model sent it
    assert "Result of add · always allowed" in lines
    assert "Result of fetch (error)" in lines
    assert " ".join(HOSTILE.split()) in lines  # the tool's output, as text
    data = out.read_bytes()
    assert b"/JavaScript" not in data
    assert b"/URI" not in data  # its [click](javascript:...) is no link
