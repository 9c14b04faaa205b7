"""The chat window against the real vLLM on the CPU (built-in SmolLM2-135M, the session's shared server):
type a question, see the streamed answer, its numbers, and the reply saved."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.settings.store import SettingsStore
from tests.support.qasync_loop import qloop, run  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path(__file__).resolve().parents[3] / "shots"


def test_chat_with_the_built_in_model_on_real_vllm(qtbot, app_paths, vllm_server) -> None:  # type: ignore[no-untyped-def]
    settings = SettingsStore.open(app_paths.settings_file)
    # Temperature 0 for a stable answer (the built-in model's own preset uses 0.2).
    current = settings.settings
    settings.update(current.model_copy(update={"model_presets": {vllm_server.model: "Precise"}}))
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=store,
        chat=ChatEngine(store, lambda: vllm_server),
        settings=settings,
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    window.resize(1000, 700)
    try:
        window.show()
        run(qtbot, window.restore())
        window.composer.editor.setFocus()
        qtbot.keyClicks(window.composer.editor, "What is the capital of France?")
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: len(window.transcript.messages()) == 2, timeout=10000)
        reply = window.transcript.messages()[1]
        qtbot.waitUntil(lambda: not reply.streaming and reply.data.state != "streaming", timeout=120000)
        assert reply.data.state == "complete", reply.data.error
        assert "Paris" in reply.data.text
        assert re.search(r"\d+ tokens · [\d.]+ tok/s · first token [\d.]+ s", reply.stats_label.text())
        assert str(vllm_server.max_model_len or "") in window.composer.meter.text().replace(",", "")
        qtbot.wait(300)
        SHOTS.mkdir(exist_ok=True)
        assert window.grab().save(str(SHOTS / "real-vllm.png"))
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, store.close())
    # What was shown is what was saved.
    history = HistoryStore(app_paths.history_db)
    try:
        conversation = history.list_conversations().items[0]
        saved = [m.text for m in history.load(conversation.id).branch()]
    finally:
        history.close()
    assert saved == ["What is the capital of France?", reply.data.text]
