"""Bad tool calls through the window, against the stand-in streaming them as vLLM would: the user sees what
the model got. A call whose arguments are not JSON is shown on its card as the model sent it, with the error
the model was given and no buttons (it never runs), also after a restart; a model that keeps calling tools is
stopped at the round cap, says so, and answers."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop.window.main_window import MainWindow
from engine.paths import AppPaths
from engine.tools.loop import LoopLimits
from tests.desktop.window.test_tool_turns import (
    asking,
    cards,
    send,
    stored_branch,
    tick_tool_for_new_chat,
    waiting_card,
)
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
ANSWER = "Sorry, that did not work."


def _finished_turn(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.tool_turns.finished, timeout=30000):
        send(qtbot, window, text)


def test_a_call_that_is_not_json_is_shown_as_sent_with_its_error_and_never_asked(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    with running_standin("--tool-calls", "malformed", "--reply", ANSWER) as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            tick_tool_for_new_chat(window, "current_time")
            asked: list[object] = []
            window.tool_turns.finished.connect(lambda *_: asked.append(asking(window)))
            _finished_turn(qtbot, window, "What time is it?")
            assert asked == [None]  # no card waited for a decision: a bad call is refused unasked
            qtbot.waitUntil(lambda: len(cards(window)) == 1 and cards(window)[0].isVisible(), timeout=5000)
            [card] = cards(window)
            assert card.arguments.toPlainText() == '{"a": 1,'  # what the model sent, as plain text
            assert card.call.error
            assert card.call.result is not None
            assert card.call.result.startswith(
                "The call of current_time was not run: the arguments are not valid"
            )
            assert not card.allow_once_button.isVisible()
            card.result_button.click()
            qtbot.waitUntil(
                lambda: card.result_view is not None and card.result_view.isVisible(), timeout=5000
            )
            assert card.result_view is not None
            assert card.result_view.toPlainText() == card.call.result  # the user reads what the model read
            assert replies(window)[-1].data.text == ANSWER
            conversation_id = window.conversation_id
            shown = (card.arguments.toPlainText(), card.call.result, card.status.text())
        finally:
            close_window(qtbot, window)
        assert conversation_id is not None
        _, branch = stored_branch(app_paths, conversation_id)
        assert [m.role for m in branch] == ["user", "assistant", "tool", "assistant"]
        assert branch[2].text == shown[1]
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            qtbot.waitUntil(lambda: len(cards(window)) == 1, timeout=5000)
            [card] = cards(window)
            assert (card.arguments.toPlainText(), card.call.result, card.status.text()) == shown
        finally:
            close_window(qtbot, window)


def test_a_model_that_keeps_calling_tools_is_stopped_at_the_cap_and_the_window_says_so(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    options = ("--tool-calls", "loop", "--tool-arguments", '{"timezone": "UTC"}', "--reply", ANSWER)
    with running_standin(*options) as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            tick_tool_for_new_chat(window, "current_time")
            notices: list[str] = []
            window.tool_turns.finished.connect(lambda *_: notices.append(window.composer.notice.text()))
            send(qtbot, window, "What time is it?")
            card = waiting_card(qtbot, window)
            with qtbot.waitSignal(window.tool_turns.finished, timeout=60000):
                qtbot.mouseClick(card.allow_always_button, Qt.MouseButton.LeftButton)
            assert len(notices) == 1
            assert f"tools {LoopLimits().max_rounds} rounds in a row, the most one turn allows" in notices[0]
            assert replies(window)[-1].data.text == ANSWER  # the last request went without tools
            conversation_id = window.conversation_id
        finally:
            close_window(qtbot, window)
    assert conversation_id is not None
    _, branch = stored_branch(app_paths, conversation_id)
    rounds = LoopLimits().max_rounds  # the window's cap
    assert [m.role for m in branch] == ["user", *(["assistant", "tool"] * rounds), "assistant"]
    assert branch[-1].state == "complete"
