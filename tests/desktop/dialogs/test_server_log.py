"""The server log dialog: search, warnings-and-errors filter, follow-the-end, copy, the log file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QGuiApplication

from desktop.dialogs.server_log import LOG_LINES_KEPT, ServerLogDialog, is_problem

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]

LINES = [
    "INFO 12-06 02:10:01 [api_server.py:1] vLLM API server version 0.32.0",
    "WARNING 12-06 02:10:02 [config.py:9] Casting torch.bfloat16 to torch.float32.",
    "INFO 12-06 02:10:05 [gpu_model_runner.py:2] Loading weights took 0.4 seconds",
    'INFO:     127.0.0.1:51234 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
    "ERROR 12-06 02:11:00 [core.py:7] EngineCore encountered an issue",
    "Traceback (most recent call last):",
    "RuntimeError: Engine core initialization failed. See root cause above.",
]


def shown(dialog: ServerLogDialog) -> list[str]:
    text = dialog.view.toPlainText()
    return text.split("\n") if text else []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (LINES[0], False),
        (LINES[1], True),
        (LINES[3], False),
        (LINES[4], True),
        (LINES[5], True),
        (LINES[6], True),
    ],
)
def test_problem_lines(line: str, problem: bool) -> None:
    assert is_problem(line) is problem


def test_search_and_the_problems_filter_narrow_the_lines_and_say_how_many(qtbot: Any) -> None:
    dialog = ServerLogDialog()
    qtbot.addWidget(dialog)
    dialog.set_lines(LINES)
    assert shown(dialog) == LINES
    assert dialog.count.text() == "7 lines"
    dialog.search.setText("weights")
    assert shown(dialog) == [LINES[2]]
    assert dialog.count.text() == "1 of 7 lines"
    dialog.search.clear()
    dialog.problems_only.setChecked(True)
    assert shown(dialog) == [LINES[1], LINES[4], LINES[5], LINES[6]]
    # New lines go through the same filter.
    dialog.append_line("INFO 12-06 02:12:00 [loggers.py:1] Avg prompt throughput: 1.0 tokens/s")
    dialog.append_line("ERROR 12-06 02:12:01 second failure")
    assert shown(dialog)[-1] == "ERROR 12-06 02:12:01 second failure"
    assert dialog.count.text() == "5 of 9 lines"
    dialog.problems_only.setChecked(False)
    assert len(shown(dialog)) == 9


def test_follow_the_end_or_stay_where_the_reader_is(qtbot: Any) -> None:
    dialog = ServerLogDialog()
    qtbot.addWidget(dialog)
    dialog.resize(600, 200)
    dialog.show()
    dialog.set_lines([f"INFO line {n}" for n in range(500)])
    bar = dialog.view.verticalScrollBar()
    assert bar.value() == bar.maximum()
    dialog.append_line("INFO new")
    assert bar.value() == bar.maximum()  # following
    dialog.follow.setChecked(False)
    bar.setValue(10)
    dialog.append_line("INFO newer")
    assert bar.value() == 10  # reading further up: not pulled down
    dialog.follow.setChecked(True)
    assert bar.value() == bar.maximum()


def test_copy_takes_the_selection_or_every_shown_line(qtbot: Any) -> None:
    dialog = ServerLogDialog()
    qtbot.addWidget(dialog)
    dialog.set_lines(LINES)
    dialog.problems_only.setChecked(True)
    assert dialog.copy() == "\n".join([LINES[1], LINES[4], LINES[5], LINES[6]])
    assert QGuiApplication.clipboard().text() == dialog.copy()
    cursor = dialog.view.textCursor()
    cursor.setPosition(0)
    cursor.setPosition(7, cursor.MoveMode.KeepAnchor)
    dialog.view.setTextCursor(cursor)
    assert dialog.copy() == "WARNING"


def test_open_log_file_only_when_there_is_one(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where: list[Path | None] = [None]
    dialog = ServerLogDialog(log_path=lambda: where[0])
    qtbot.addWidget(dialog)
    assert not dialog.open_button.isEnabled()
    assert dialog.open_log_file() is False
    log = tmp_path / "server.log"
    log.write_text("INFO started\n")
    where[0] = log
    opened: list[str] = []
    monkeypatch.setattr(
        "desktop.dialogs.server_log.QDesktopServices.openUrl",
        lambda url: opened.append(url.toLocalFile()) or True,
    )
    dialog.append_line("INFO started")
    assert dialog.open_button.isEnabled()
    assert dialog.open_button.toolTip() == str(log)
    assert dialog.open_log_file() is True
    assert opened == [str(log)]


def test_the_log_keeps_a_bounded_number_of_lines(qtbot: Any) -> None:
    dialog = ServerLogDialog()
    qtbot.addWidget(dialog)
    dialog.set_lines([f"line {n}" for n in range(LOG_LINES_KEPT + 10)])
    dialog.append_line("last")
    lines = shown(dialog)
    assert len(lines) == LOG_LINES_KEPT
    assert lines[-1] == "last"
    assert dialog.count.text() == f"{LOG_LINES_KEPT} lines"
