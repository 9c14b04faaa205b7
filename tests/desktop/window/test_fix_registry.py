"""The FixRegistry on its own: one table of what each fix does; the handler gets the fix and its context,
and the engine's exception is never rewritten to carry that context."""

from __future__ import annotations

import logging

import pytest

from desktop import errors
from desktop.errors import ErrorReporter, FixContext
from desktop.window.fix_actions import FixRegistry
from engine.errors import DeskError, Fix

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]


def test_the_handler_gets_the_fix_and_its_context() -> None:
    said: list[str] = []
    registry = FixRegistry(said.append)
    got: list[tuple[Fix, FixContext]] = []
    registry.register(["retry", "restart_server"], lambda fix, context: got.append((fix, context)))
    fix = Fix("retry", "Try again")
    registry.apply(fix, FixContext(profile="Alpha"))
    registry.apply(Fix("restart_server", "Restart"))
    assert got == [(fix, FixContext(profile="Alpha")), (Fix("restart_server", "Restart"), FixContext())]
    assert "retry" in registry
    assert said == []


def test_an_unknown_fix_says_what_to_do(caplog: pytest.LogCaptureFixture) -> None:
    said: list[str] = []
    with caplog.at_level(logging.WARNING):
        FixRegistry(said.append).apply(Fix("from_the_future", "Do it", "Run the newer thing."))
    assert said == ["Run the newer thing."]
    assert "no handler for fix from_the_future" in caplog.text


def test_the_context_travels_beside_the_problem_not_inside_the_exception(qtbot) -> None:  # type: ignore[no-untyped-def]
    fix = Fix("set_option", "Fewer sequences", params={"max_num_seqs": 4})
    error = DeskError("The model does not fit.", fix=fix)
    reporter = ErrorReporter()
    reporter.report(error, FixContext(conversation_id=7, profile="Alpha"))
    problem = reporter.reported[-1]
    assert problem.fix == fix
    assert problem.context == FixContext(conversation_id=7, profile="Alpha")
    assert error.fix is fix
    assert fix.params == {"max_num_seqs": 4}
    banner = errors.ErrorBanner()
    qtbot.addWidget(banner)
    chosen: list[tuple[Fix, FixContext]] = []
    banner.fix_chosen.connect(lambda f, c: chosen.append((f, c)))
    banner.show_problem(problem)
    banner.fix_button.click()
    assert chosen == [(fix, FixContext(conversation_id=7, profile="Alpha"))]
