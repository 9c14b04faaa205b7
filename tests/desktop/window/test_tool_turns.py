"""Tool turns through the window, against the stand-in server streaming real tool calls: the approval card
(allow once, always allow, deny — the model gets the denial), the tools ticked in the chat settings and kept
with the conversation, stop, regenerate, and the cards read back after the window is opened again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.widgets.tool_card import ToolCard
from desktop.window.main_window import MainWindow
from desktop.window.tool_turns import STOPPED_RESULT
from engine.chat.engine import ChatEngine
from engine.chat.generation import GenerationSettings
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.tools.approval import CallRequest, denied_result
from engine.tools.config import McpServer, ToolsSettings
from engine.tools.session import branch_messages
from tests.support.main_window import close_window, open_window, replies
from tests.support.mcp import stdio_test_server
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import running_standin
from tests.support.tool_turns import bare_tool_turns, showing_a_chat_that_uses_desk

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path(__file__).resolve().parents[3] / "shots"
ANSWER = "The current_time tool gave the time in UTC (shown in its result above)."
TIME_CALL = (
    *("--tool-calls", "well-formed", "--tool-arguments", '{"timezone": "UTC"}'),
    *("--reply", ANSWER),
)


def cards(window: MainWindow) -> list[ToolCard]:
    return [card for reply in replies(window) for card in reply.findChildren(ToolCard)]


def asking(window: MainWindow) -> ToolCard | None:
    return next((c for c in cards(window) if c.allow_once_button.isVisible()), None)


def waiting_card(qtbot, window: MainWindow, timeout: int = 20000) -> ToolCard:  # type: ignore[no-untyped-def]
    """Wait (up to ``timeout`` ms) for a card that asks for the user's decision; that card."""
    qtbot.waitUntil(lambda: asking(window) is not None, timeout=timeout)
    card = asking(window)
    assert card is not None
    return card


def send(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    window.composer.editor.setPlainText(text)
    qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)


def tick_tool_for_new_chat(window: MainWindow, name: str) -> None:
    window.new_chat()
    if not window.chat_settings.isVisible():
        window.toggle_chat_settings()
    window.chat_settings.tools.boxes[name].click()


def built(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    """Wait for the transcript shown again at a turn's end: its newest message comes at once, the older ones
    a slice per tick (one message per tick under load)."""
    qtbot.waitUntil(lambda: not window.transcript.building, timeout=10000)


def stored_branch(app_paths: AppPaths, conversation_id: int):  # type: ignore[no-untyped-def]
    store = HistoryStore(app_paths.history_db)
    try:
        tree = store.load(conversation_id)
        return tree.conversation, tree.branch()
    finally:
        store.close()


def test_each_call_waits_on_its_card_allow_once_then_always_and_the_cards_come_back_after_reopening(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    with running_standin(*TIME_CALL) as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            tick_tool_for_new_chat(window, "current_time")
            send(qtbot, window, "What time is it?")
            card = waiting_card(qtbot, window)
            assert card.title.text() == "Tool call: current_time · built-in"
            assert '"timezone": "UTC"' in card.arguments.toPlainText()
            assert window.composer.busy  # nothing ran yet: the turn waits for the user
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
            reply = replies(window)[-1]
            assert reply.data.text == ANSWER
            [done] = reply.findChildren(ToolCard)
            # The turn's end shows the stored conversation again: new widgets, shown on the loop's next turn.
            qtbot.waitUntil(done.isVisible, timeout=5000)
            assert done.call.result is not None
            assert "time zone UTC" in done.call.result
            assert not done.allow_once_button.isVisible()  # stored: read-only
            assert done.result_button.isVisible()
            assert done.result_view is None  # collapsed
            assert done.status.text() == "Allowed once"
            done.result_button.click()
            qtbot.wait(200)
            SHOTS.mkdir(exist_ok=True)  # the README's is the real vLLM's (test_tool_turns_vllm.py)
            assert window.grab().save(str(SHOTS / "tool-call-approved.png"))
            conversation_id = window.conversation_id
            assert conversation_id is not None
            settings = GenerationSettings.parse(stored_branch(app_paths, conversation_id)[0].settings)
            assert settings.tools == ("current_time",)

            # Allow once is once: the next call asks again; "always" then runs it without asking.
            send(qtbot, window, "And now?")
            card = waiting_card(qtbot, window)
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                qtbot.mouseClick(card.allow_always_button, Qt.MouseButton.LeftButton)
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                send(qtbot, window, "Once more?")  # no card asks: it would wait for a click forever
            assert replies(window)[-1].data.text == ANSWER
            # Regenerate answers the same message again, with the tool (still always allowed).
            last = replies(window)[-1]
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                qtbot.mouseClick(last.regenerate_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: replies(window)[-1].branch_label.text() == "2/2", timeout=5000)
            built(qtbot, window)  # the earlier replies' cards too
            assert len(replies(window)) == 3
            assert len(replies(window)[-1].findChildren(ToolCard)) == 1
            before = [(c.title.text(), c.status.text()) for c in cards(window)]
            assert [status for _, status in before] == ["Allowed once", "Always allowed", "Always allowed"]
        finally:
            close_window(qtbot, window)
        _, branch = stored_branch(app_paths, conversation_id)
        assert [m.role for m in branch] == ["user", "assistant", "tool", "assistant"] * 3

        # A restart: the stored calls show as read-only cards under their replies.
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            qtbot.waitUntil(lambda: window.conversation_id == conversation_id, timeout=5000)
            qtbot.waitUntil(lambda: not window.transcript.building, timeout=5000)  # built a slice per tick
            assert len(replies(window)) == 3
            assert all(len(r.findChildren(ToolCard)) == 1 for r in replies(window))
            assert asking(window) is None
            assert all(c.call.result and "UTC" in c.call.result for c in cards(window))
            # Each card says what it said before: the server, and "once" or "always".
            assert [(c.title.text(), c.status.text()) for c in cards(window)] == before
            if not window.chat_settings.isVisible():
                window.toggle_chat_settings()
            assert window.chat_settings.tools.boxes["current_time"].isChecked()
        finally:
            close_window(qtbot, window)


def test_a_denied_call_is_not_run_and_the_model_is_told(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with running_standin(*TIME_CALL) as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            tick_tool_for_new_chat(window, "current_time")
            send(qtbot, window, "What time is it?")
            window.activateWindow()
            window.composer.editor.setFocus()
            card = waiting_card(qtbot, window)
            # The card takes no focus: typing on (a space!) goes on in the message box, never "Allow once".
            assert QApplication.focusWidget() is window.composer.editor
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                qtbot.mouseClick(card.deny_button, Qt.MouseButton.LeftButton)
            [shown] = cards(window)
            assert "Denied" in shown.status.text()
            assert replies(window)[-1].data.text == ANSWER
            conversation_id = window.conversation_id
            denied_status = shown.status.text()
        finally:
            close_window(qtbot, window)
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            qtbot.waitUntil(lambda: len(cards(window)) == 1, timeout=5000)
            assert cards(window)[0].status.text() == denied_status
        finally:
            close_window(qtbot, window)
    assert conversation_id is not None
    conversation, branch = stored_branch(app_paths, conversation_id)
    assert [m.role for m in branch] == ["user", "assistant", "tool", "assistant"]
    call = branch[1].to_chat_message().tool_calls[0]
    told = denied_result(CallRequest(call.id or "", call.tool_name, "built-in"))
    assert branch[2].text == told
    # What the model reads next: the denial as the call's result, right after the call.
    sent = branch_messages(conversation, branch)
    assert sent[-2].tool_call_result is not None
    assert sent[-2].tool_call_result.result == told


def test_stop_while_a_card_waits_leaves_a_conversation_that_goes_on(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with running_standin(*TIME_CALL) as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            tick_tool_for_new_chat(window, "current_time")
            send(qtbot, window, "What time is it?")
            qtbot.waitUntil(lambda: asking(window) is not None, timeout=20000)
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                window.stop_action.trigger()
            assert not window.composer.busy
            conversation_id = window.conversation_id
            assert conversation_id is not None
            _, branch = stored_branch(app_paths, conversation_id)
            assert [m.role for m in branch] == ["user", "assistant", "tool"]
            assert branch[2].text == STOPPED_RESULT
            # The next message goes out as a valid request (every call has its result) and is answered.
            window.chat_settings.tools.choice.setCurrentText("none")
            window.chat_settings.apply()
            qtbot.waitUntil(lambda: not window.chat_settings.apply_button.isEnabled(), timeout=5000)
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                send(qtbot, window, "Never mind.")
            assert replies(window)[-1].data.text == ANSWER
        finally:
            close_window(qtbot, window)


def test_an_mcp_servers_tools_and_parallel_calls_each_get_a_card(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    ToolsSettings(app_paths.config).add(stdio_test_server())
    args = ("--tool-calls", "parallel", "--tool-name", "add", "--tool-arguments", '{"a": 2, "b": 3}')
    with running_standin(*args, "--reply", "Five, twice.") as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            tick_tool_for_new_chat(window, "desk")
            send(qtbot, window, "Add 2 and 3, twice.")
            for _ in range(2):  # one card after the other: each call waits for its own decision
                card = waiting_card(qtbot, window, timeout=30000)
                assert card.title.text() == "Tool call: add · desk"
                qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: not window.composer.busy, timeout=20000)
            shown = cards(window)
            assert [c.call.result for c in shown] == ["5", "5"]
            assert replies(window)[-1].data.text == "Five, twice."
        finally:
            close_window(qtbot, window)  # also stops the MCP server (the leak check would see it)
        # A restart: the cards still name the server (the stored turn says it; nothing is started to ask).
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            qtbot.waitUntil(lambda: len(cards(window)) == 2, timeout=5000)
            assert [(c.title.text(), c.status.text()) for c in cards(window)] == [
                ("Tool call: add · desk", "Allowed once")
            ] * 2
        finally:
            close_window(qtbot, window)


def test_a_waiting_card_outlives_a_visit_elsewhere_and_an_edit_is_answered_with_tools(
    qtbot, app_paths: AppPaths
) -> None:  # type: ignore[no-untyped-def]
    with running_standin(*TIME_CALL) as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            tick_tool_for_new_chat(window, "current_time")
            send(qtbot, window, "What time is it?")
            qtbot.waitUntil(lambda: asking(window) is not None, timeout=20000)
            conversation_id = window.conversation_id
            assert conversation_id is not None
            window.new_chat()  # the turn keeps waiting for its decision meanwhile
            assert asking(window) is None
            window.open_conversation(conversation_id)
            card = waiting_card(qtbot, window, timeout=10000)
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
            assert replies(window)[-1].data.text == ANSWER

            send(qtbot, window, "And in Paris?")
            card = waiting_card(qtbot, window)
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                window.tool_turns.decide(card.call.call_id, "deny")
            built(qtbot, window)  # the question is the second newest message
            question = [w for w in window.transcript.messages() if w.data.role == "user"][-1]
            editor = question.begin_edit()
            editor.setPlainText("And in Tokyo?")
            assert question.save_edit_button is not None
            qtbot.mouseClick(question.save_edit_button, Qt.MouseButton.LeftButton)
            card = waiting_card(qtbot, window)  # the new version uses tools
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
            built(qtbot, window)
            question = [w for w in window.transcript.messages() if w.data.role == "user"][-1]
            assert question.data.text == "And in Tokyo?"
            assert question.branch_label.text() == "2/2"
            assert not cards(window)[-1].call.error
        finally:
            close_window(qtbot, window)
    _, branch = stored_branch(app_paths, conversation_id)
    assert [m.role for m in branch] == ["user", "assistant", "tool", "assistant"] * 2
    assert branch[4].text == "And in Tokyo?"


def test_an_edit_of_the_first_message_and_a_regenerate_of_an_earlier_reply_use_the_tools(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    with running_standin(*TIME_CALL) as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            tick_tool_for_new_chat(window, "current_time")
            for text in ("What time is it?", "And now?"):
                send(qtbot, window, text)
                card = waiting_card(qtbot, window)
                with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                    qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
            conversation_id = window.conversation_id
            assert conversation_id is not None
            built(qtbot, window)  # the first reply too, not only the newest message

            # Regenerate the first reply (not the last one): answered again with the tool, on a card.
            first_reply = replies(window)[0]
            qtbot.mouseClick(first_reply.regenerate_button, Qt.MouseButton.LeftButton)
            card = waiting_card(qtbot, window)
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
            assert len(replies(window)) == 1
            assert replies(window)[0].branch_label.text() == "2/2"
            [card] = cards(window)
            assert card.status.text() == "Allowed once"
            built(qtbot, window)  # the question above the reply too

            # Edit the first message: the new version is a new first message, answered with the tool too.
            question = next(w for w in window.transcript.messages() if w.data.role == "user")
            editor = question.begin_edit()
            editor.setPlainText("What time is it in UTC?")
            assert question.save_edit_button is not None
            qtbot.mouseClick(question.save_edit_button, Qt.MouseButton.LeftButton)
            card = waiting_card(qtbot, window)  # nothing ran before the click
            assert window.composer.busy
            with qtbot.waitSignal(window.tool_turns.finished, timeout=20000):
                qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
            built(qtbot, window)
            question = next(w for w in window.transcript.messages() if w.data.role == "user")
            assert question.data.text == "What time is it in UTC?"
            assert question.branch_label.text() == "2/2"
            assert replies(window)[-1].data.text == ANSWER
            assert [c.status.text() for c in cards(window)] == ["Allowed once"]
        finally:
            close_window(qtbot, window)
    _, branch = stored_branch(app_paths, conversation_id)
    assert [m.role for m in branch] == ["user", "assistant", "tool", "assistant"]
    assert branch[0].text == "What time is it in UTC?"
    assert branch[0].parent_id is None
    assert "UTC" in branch[2].text  # the tool ran on the new version


def test_the_mcp_servers_are_offered_once_the_engine_is_attached(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    ToolsSettings(app_paths.config).add(
        McpServer(name="notes", transport="http", url="http://127.0.0.1:9/mcp")
    )
    with bare_tool_turns(qtbot, app_paths) as bare:
        box = bare.box
        box.load({})
        assert list(box.boxes) == ["current_time", "search_history", "search_documents"]  # tools.toml waits
        bare.turns.chat = ChatEngine(bare.store, lambda: None)
        assert "notes" in box.boxes
        assert "127.0.0.1:9" in box.boxes["notes"].toolTip()


def test_a_server_renamed_in_preferences_moves_the_shown_chats_tick_and_apply_keeps_the_new_name(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    with showing_a_chat_that_uses_desk(qtbot, app_paths) as (window, conversation_id):
        box = window.chat_settings.tools
        dialog = window.open_preferences()
        page = dialog.tools_page
        page._select("desk")
        page.edit_button.click()
        page.name_edit.setText("notes")
        page.add_button.click()
        assert not page.add_problem.isVisible(), page.add_problem.text()
        # The chats are changed on the window's history store's thread, then said.
        said = "Renamed “desk” to “notes”: 1 chat that used “desk” now uses “notes”."
        qtbot.waitUntil(lambda: said in page.server_detail.text(), timeout=10000)
        dialog.reject()
        # The shown chat's panel ticks the new name (the old one is not offered any more)...
        assert "desk" not in box.boxes
        assert box.values()["tools"] == ("current_time", "notes")
        # ...so applying another change there keeps it (it would have written "desk" back).
        window.chat_settings.temperature.setValue(0.3)
        with qtbot.waitSignal(window.chat_settings.saved, timeout=5000):
            window.chat_settings.apply()
        stored, _branch = stored_branch(app_paths, conversation_id)
        assert stored.settings["tools"] == ["current_time", "notes"]
        assert stored.settings["temperature"] == 0.3


def test_a_server_with_a_built_in_tools_name_from_an_older_file_is_not_offered_nor_started_and_is_said(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    from engine.tools.builtin import DESCRIPTIONS
    from engine.tools.config import ToolsConfig, save_tools_config, tools_file

    # As an older version wrote it (a command that would fail loudly if it were ever run).
    clashing = McpServer(name="current_time", transport="stdio", command=sys.executable, args=["-c", "x("])
    save_tools_config(tools_file(app_paths.config), ToolsConfig(servers=[clashing]))
    with bare_tool_turns(qtbot, app_paths) as bare:
        turns, box = bare.turns, bare.box
        turns.chat = ChatEngine(bare.store, lambda: None)
        box.load({})
        assert turns.available() == [(name, DESCRIPTIONS[name]) for name in DESCRIPTIONS]  # offered once
        assert list(box.boxes) == ["current_time", "search_history", "search_documents"]
        tools, owners = run(qtbot, turns._tools(["current_time"]))
        assert [tool.name for tool in tools] == ["current_time"]  # the built-in
        assert owners == {}
        assert turns.manager.connections == {}  # the server's command never ran
        assert "current_time: “current_time” is a built-in tool's name, so this MCP server is not used" in (
            bare.composer.notice.text()
        )
