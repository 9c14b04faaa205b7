"""The tool-call card: what it shows (plain text only), its three decisions, its collapsed result."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop.widgets.tool_card import SHOWN_RESULT_CHARS, CallView, ToolCard
from desktop.widgets.tool_settings import ToolSettingsBox
from engine.tools.parsers import FORCED_ONLY_WARNING, ToolSupport

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]


def _card(qtbot, **changes) -> ToolCard:  # type: ignore[no-untyped-def]
    view = CallView(call_id="call-1", tool="add", server="calc", arguments={"a": 2, "b": "<b>bold</b>"})
    for name, value in changes.items():
        setattr(view, name, value)
    card = ToolCard(view)
    qtbot.addWidget(card)
    card.show()
    return card


def test_the_card_names_tool_and_server_and_shows_the_arguments_as_plain_json(qtbot) -> None:  # type: ignore[no-untyped-def]
    card = _card(qtbot)
    assert card.title.text() == "Tool call: add · calc"
    assert card.title.textFormat() == Qt.TextFormat.PlainText
    assert card.arguments.toPlainText() == '{\n  "a": 2,\n  "b": "<b>bold</b>"\n}'
    assert card.arguments.isReadOnly()
    # Nothing was decided and there is no result: no buttons, no result toggle.
    assert not card.allow_once_button.isVisible()
    assert not card.result_button.isVisible()


def test_asking_shows_three_decisions_and_a_click_answers_once(qtbot) -> None:  # type: ignore[no-untyped-def]
    card = _card(qtbot)
    card.ask()
    assert card.allow_once_button.isVisible()
    assert card.allow_always_button.text() == "Always allow this tool"
    assert card.deny_button.isVisible()
    with qtbot.waitSignal(card.decided) as got:
        qtbot.mouseClick(card.deny_button, Qt.MouseButton.LeftButton)
    assert got.args == ["call-1", "deny"]
    assert not card.deny_button.isVisible()
    assert "Denied" in card.status.text()


def test_the_result_is_collapsed_plain_and_a_huge_one_is_cut_with_a_notice(qtbot) -> None:  # type: ignore[no-untyped-def]
    card = _card(qtbot)
    huge = "<script>x</script>" + "y" * 10_000
    card.set_result(huge, error=False)
    assert card.result_button.isVisible()
    assert card.result_view is None  # collapsed: not even made
    qtbot.mouseClick(card.result_button, Qt.MouseButton.LeftButton)
    assert card.result_view is not None
    shown = card.result_view.toPlainText()
    assert shown.startswith("<script>x</script>")  # as text, never markup
    assert len(shown) == SHOWN_RESULT_CHARS
    assert card.result_notice.isVisible()
    assert f"{len(huge):,}" in card.result_notice.text()
    qtbot.mouseClick(card.result_button, Qt.MouseButton.LeftButton)
    assert not card.result_view.isVisible()


def test_malformed_arguments_are_shown_as_the_model_sent_them(qtbot) -> None:  # type: ignore[no-untyped-def]
    card = _card(qtbot, arguments={}, raw_arguments='"lookup_coder_code"')
    card.set_result("The call of add was not run: ...", error=True)
    assert card.arguments.toPlainText() == '"lookup_coder_code"'
    assert "failed" in card.status.text()


def test_the_tool_settings_warn_when_the_template_does_not_describe_tools(qtbot) -> None:  # type: ignore[no-untyped-def]
    box = ToolSettingsBox()
    qtbot.addWidget(box)
    box.available = lambda: [("current_time", "The time"), ("calc", "MCP server")]
    box.support = lambda: ToolSupport("hermes", False, FORCED_ONLY_WARNING)
    box.show()
    box.load({"tools": ["calc"], "tool_choice": "auto"})
    assert box.boxes["calc"].isChecked()
    assert not box.boxes["current_time"].isChecked()
    assert box.warning.isVisible()
    assert box.warning.text() == FORCED_ONLY_WARNING
    offered = [box.choice.itemText(i) for i in range(box.choice.count())]
    assert offered == ["auto", "required", "none", "current_time"]  # a built-in tool can be forced
    with qtbot.waitSignal(box.edited):
        box.choice.setCurrentText("add")  # a named tool forces the call: nothing to warn about
    assert not box.warning.isVisible()
    assert box.values() == {"tools": ("calc",), "tool_choice": "add"}
    box.boxes["calc"].setChecked(False)
    assert box.values()["tools"] == ()
    assert [w.text() for w in box.findChildren(QLabel) if w.objectName() == "toolWarning"] == [""]


def test_the_arguments_fit_their_box_when_the_sheet_changes_the_font_after_the_card_is_made(qtbot) -> None:  # type: ignore[no-untyped-def]
    # The window's sheet gives the transcript's text boxes the chat font and a padding only once the card is
    # in the transcript: the box is measured again, every line shown, no scroll bar.
    card = ToolCard(CallView(call_id="c", tool="t", server="s", arguments={"a": 1, "b": 2, "c": 3}))
    holder = QWidget()
    qtbot.addWidget(holder)
    QVBoxLayout(holder).addWidget(card)
    holder.show()
    qtbot.waitExposed(holder)
    assert card.arguments.verticalScrollBar().maximum() == 0
    small = card.arguments.height()
    holder.setStyleSheet("QPlainTextEdit { font-size: 22pt; padding: 6px 8px; border: 2px solid gray; }")
    qtbot.waitUntil(lambda: card.arguments.height() > small * 1.5)
    qtbot.wait(50)
    assert card.arguments.verticalScrollBar().maximum() == 0
