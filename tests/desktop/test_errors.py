"""The one renderer: DeskErrors in their own words with their fix; bugs logged and shown once."""

from __future__ import annotations

import logging
import sys

import pytest
from PySide6.QtCore import Qt

from desktop.errors import ErrorBanner, ErrorReporter, describe, install_excepthook
from engine.chat.errors import InternalFailure, ReplyUnreadable
from engine.errors import DataDirUnusable, Fix

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]


def test_desk_error_is_described_in_its_own_words(tmp_path) -> None:  # type: ignore[no-untyped-def]
    problem = describe(DataDirUnusable(tmp_path, "not writable"))
    assert problem.title == "The data folder cannot be used"
    assert str(tmp_path) in problem.message
    assert problem.fix is not None
    assert problem.fix.label == "Choose another folder"
    assert not problem.unexpected


def test_an_unexpected_exception_is_logged_and_shown_once(caplog) -> None:  # type: ignore[no-untyped-def]
    reporter = ErrorReporter()
    shown: list[object] = []
    reporter.problem.connect(shown.append)
    with caplog.at_level(logging.ERROR, logger="desktop.errors"):
        for _ in range(3):
            try:
                {"present": 1}["missing"]
            except KeyError as exc:
                reporter.report(exc)
    assert len(shown) == 1
    assert "KeyError" in shown[0].message  # type: ignore[attr-defined]
    assert "Traceback" not in shown[0].message  # type: ignore[attr-defined]
    assert "Traceback" in caplog.text  # the details are in the log


def test_excepthook_routes_uncaught_exceptions_to_the_reporter() -> None:
    reporter = ErrorReporter()
    shown: list[object] = []
    reporter.problem.connect(shown.append)
    undo = install_excepthook(reporter)
    try:
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        undo()
    assert len(shown) == 1
    assert sys.excepthook is not None


def test_banner_shows_the_fix_and_emits_it_on_click(qtbot) -> None:  # type: ignore[no-untyped-def]
    banner = ErrorBanner()
    qtbot.addWidget(banner)
    banner.show()
    fix = Fix("set_option", "Retry with 3,072 tokens", params={"max_model_len": 3072})
    clicked: list[Fix] = []
    banner.fix_requested.connect(clicked.append)
    reporter = ErrorReporter()
    reporter.problem.connect(banner.show_problem)
    from engine.errors import DeskError

    reporter.report(DeskError("The model does not fit.", fix=fix))
    assert banner.isVisible()
    assert banner.text == "The model does not fit."
    assert banner.fix_button.text() == "Retry with 3,072 tokens"
    qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
    assert clicked == [fix]
    assert not banner.isVisible()


@pytest.mark.parametrize(
    ("error", "title", "words"),
    [
        (
            InternalFailure("KeyError", "'choices'"),
            "An internal error stopped the reply",
            "internal error (KeyError: 'choices')",
        ),
        (
            ReplyUnreadable("Expecting property name: {this is not json"),
            "The server's reply could not be read",
            "not an OpenAI-compatible stream",
        ),
    ],
)
def test_a_chat_turns_own_failures_are_shown_as_problems_not_crashes(  # type: ignore[no-untyped-def]
    qtbot, error: Exception, title: str, words: str
) -> None:
    problem = describe(error)
    assert not problem.unexpected  # its own words, not "Something unexpected went wrong"
    assert problem.title == title
    assert words in problem.message
    assert problem.fix is not None
    assert problem.fix.action == "retry_turn"
    banner = ErrorBanner()
    qtbot.addWidget(banner)
    banner.show_problem(problem)
    assert banner.text == problem.message
    assert banner.fix_button.text() == "Try again"
    assert not banner.fix_button.isHidden()
