"""Tool turns through the window against the REAL vLLM on the CPU: the built-in SmolLM2 with the tool choice
forced (its template does not describe tools, so only a forced choice makes it call one), once to the test
MCP server's ``add`` tool and once to the built-in ``search_history``. The loop sends a forced tool
``strict``, and vLLM 0.32 then pins the arguments to the schema (measured, issue 19: ``{"a": 2, "b": 3}``;
without strict they came back as a JSON string); a free-text string is held to its bound (the query's
``maxLength``), so this 135M model, which can run a string on until the token limit, still closes the call:
it waits on its card, is allowed there, runs, and the answer streams. The model's words change with the
processor, so the checks are on structure, never on its text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from desktop.widgets.tool_card import ToolCard
from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.settings.store import SettingsStore
from engine.tools.builtin import QUERY_MAX_CHARS
from engine.tools.config import ToolsSettings
from tests.desktop.window.test_tool_turns import asking, cards, send, stored_branch, tick_tool_for_new_chat
from tests.support.main_window import replies
from tests.support.mcp import stdio_test_server
from tests.support.qasync_loop import qloop, run  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path(__file__).resolve().parents[3] / "shots"


def open_window(qtbot, app_paths, vllm_server) -> tuple[AsyncHistoryStore, MainWindow]:  # type: ignore[no-untyped-def]
    settings = SettingsStore.open(app_paths.settings_file)
    # Precise: temperature 0 and 512 tokens, the built-in model's own preset.
    settings.update(settings.settings.model_copy(update={"model_presets": {vllm_server.model: "Precise"}}))
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=store,
        chat=ChatEngine(store, lambda: vllm_server),
        settings=settings,
        paths=app_paths,
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    window.resize(1100, 760)
    return store, window


def test_a_forced_tool_call_is_approved_on_its_card_with_the_built_in_model(  # type: ignore[no-untyped-def]
    qtbot, app_paths, vllm_server
) -> None:
    ToolsSettings(app_paths.config).add(stdio_test_server())
    store, window = open_window(qtbot, app_paths, vllm_server)
    try:
        window.show()
        run(qtbot, window.restore())
        window.toggle_chat_settings()
        tools = window.chat_settings.tools
        tools.boxes["desk"].click()
        # The built-in model does not see tool definitions: with "auto" the panel says so.
        assert tools.warning.isVisible()
        assert "does not describe tools" in tools.warning.text()
        tools.choice.setCurrentText("add")
        assert not tools.warning.isVisible()
        send(qtbot, window, "What is 2 plus 3?")
        finished: list[int] = []
        window.tool_turns.finished.connect(finished.append)
        qtbot.waitUntil(lambda: asking(window) is not None or bool(finished), timeout=180000)
        card = asking(window)
        assert card is not None, [c.call.result for c in cards(window)]  # well-formed: it waits for the user
        assert card.title.text() == "Tool call: add · desk"
        qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(finished), timeout=180000)
        # The turn's end shows the stored conversation again: new widgets, shown on the loop's next turn.
        qtbot.waitUntil(
            lambda: not window.transcript.building and cards(window)[0].isVisible(), timeout=10000
        )
        [shown] = cards(window)
        reply = replies(window)[-1]
        assert reply.data.state == "complete", reply.data.error
        assert not shown.call.error, shown.call.result
        arguments = shown.call.arguments
        assert shown.call.result == str(arguments["a"] + arguments["b"])  # the MCP tool ran with them
        assert reply.data.text  # the answer streamed after the result
        # The README's picture of an approved call through the real model (docs/images/ keeps a copy): the
        # question, the card with its result opened, the answer's start (its own file: the stand-in test's
        # shot of the built-in current_time is tool-call-approved.png).
        shown.result_button.click()
        qtbot.waitUntil(lambda: shown.result_view is not None and shown.result_view.isVisible(), timeout=5000)
        window.transcript.verticalScrollBar().setValue(0)
        qtbot.wait(300)
        SHOTS.mkdir(exist_ok=True)
        assert window.grab().save(str(SHOTS / "tool-call-approved-vllm.png"))
        conversation_id = window.conversation_id
        assert conversation_id is not None
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, store.close())
    _, branch = stored_branch(app_paths, conversation_id)
    assert [m.role for m in branch] == ["user", "assistant", "tool", "assistant"]
    assert isinstance(shown, ToolCard)


def test_a_forced_built_in_tool_with_a_free_text_query_is_approved_on_its_card(  # type: ignore[no-untyped-def]
    qtbot, app_paths, vllm_server
) -> None:
    # search_history, because whatever words the model writes its result is not an error (hits, or "no
    # conversation mentions"); current_time would fail on a zone the model makes up, and search_documents
    # needs a collection first.
    seed = HistoryStore(app_paths.history_db)
    try:
        earlier = seed.create_conversation(title="Pizza night")
        seed.add_message(earlier.id, None, "user", "Which pizza should we order for Friday?")
    finally:
        seed.close()
    store, window = open_window(qtbot, app_paths, vllm_server)
    try:
        window.show()
        run(qtbot, window.restore())
        tick_tool_for_new_chat(window, "search_history")  # a new chat, not the restored one
        tools = window.chat_settings.tools
        tools.choice.setCurrentText("search_history")
        assert not tools.warning.isVisible()  # a forced choice: the model will call it
        send(qtbot, window, "Did we talk about pizza before?")
        finished: list[int] = []
        window.tool_turns.finished.connect(finished.append)
        qtbot.waitUntil(lambda: asking(window) is not None or bool(finished), timeout=180000)
        card = asking(window)
        # Waiting for the user means well-formed: JSON matching the schema (bad calls are refused unasked).
        assert card is not None, [c.call.result for c in cards(window)]
        assert card.title.text() == "Tool call: search_history · built-in"
        query = card.call.arguments["query"]
        assert isinstance(query, str)
        assert 1 <= len(query) <= QUERY_MAX_CHARS
        qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(finished), timeout=180000)
        [shown] = cards(window)
        reply = replies(window)[-1]
        assert reply.data.state == "complete", reply.data.error
        assert not shown.call.error, shown.call.result  # the search ran
        result = shown.call.result
        searched = result == f"No conversation mentions “{query}”." or result.startswith("- conversation ")
        assert searched, result
        assert reply.data.text  # the answer streamed after the result
        print(f"\nSmolLM2's query: {query!r}\nresult: {result!r}\nanswer: {reply.data.text!r}")
        conversation_id = window.conversation_id
        assert conversation_id is not None
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, store.close())
    _, branch = stored_branch(app_paths, conversation_id)
    assert [m.role for m in branch] == ["user", "assistant", "tool", "assistant"]
    assert branch[-1].state == "complete"
