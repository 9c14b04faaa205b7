"""A tool turn through the window against the REAL vLLM on the CPU: the built-in SmolLM2 with the tool choice
forced to the built-in current_time tool (its template does not describe tools, so only a forced choice makes
it call one). Measured on vLLM 0.32 (CPU): for a named and for a required choice alike the call comes back
with its arguments as a JSON string (``"cantar_a_rder_tam"``), not an object, so the card shows what the
model sent and the error the model was given, nothing runs and nothing is asked; the answer follows. Should
vLLM shape the arguments into an object, the call waits on its card and is allowed there (the path the
stand-in tests cover).
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
from tests.desktop.window.test_tool_turns import asking, cards, send
from tests.support.main_window import replies
from tests.support.qasync_loop import qloop, run  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path(__file__).resolve().parents[3] / "shots"


def test_a_forced_tool_call_is_approved_on_its_card_with_the_built_in_model(  # type: ignore[no-untyped-def]
    qtbot, app_paths, vllm_server
) -> None:
    settings = SettingsStore.open(app_paths.settings_file)
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
    try:
        window.show()
        run(qtbot, window.restore())
        window.toggle_chat_settings()
        tools = window.chat_settings.tools
        tools.boxes["current_time"].click()
        # The built-in model does not see tool definitions: with "auto" the panel says so.
        assert tools.warning.isVisible()
        assert "does not describe tools" in tools.warning.text()
        tools.choice.setCurrentText("current_time")
        assert not tools.warning.isVisible()
        send(qtbot, window, "What time is it?")
        finished: list[int] = []
        window.tool_turns.finished.connect(finished.append)
        qtbot.waitUntil(lambda: asking(window) is not None or bool(finished), timeout=180000)
        card = asking(window)
        if card is not None:  # arguments vLLM shaped into an object: the call waits for the user
            assert card.title.text() == "Tool call: current_time · built-in"
            qtbot.mouseClick(card.allow_once_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(finished), timeout=180000)
        [shown] = cards(window)
        reply = replies(window)[-1]
        assert reply.data.state == "complete", reply.data.error
        assert shown.call.result is not None
        if card is not None:
            assert not shown.call.error, shown.call.result
            assert "time zone" in shown.call.result
            shown.result_button.click()
            qtbot.wait(300)
            SHOTS.mkdir(exist_ok=True)
            assert window.grab().save(str(SHOTS / "tool-call-approved.png"))
        else:  # the malformed path (arguments as a JSON string): not run, the model told why
            assert shown.call.error
            assert "was not run" in shown.call.result
        conversation_id = window.conversation_id
        assert conversation_id is not None
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, store.close())
    history = HistoryStore(app_paths.history_db)
    try:
        roles = [m.role for m in history.load(conversation_id).branch()]
    finally:
        history.close()
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert isinstance(shown, ToolCard)
