"""Documents in the window against real vLLM on the CPU (the session's built-in chat and embedding servers):
index a folder from the panel, attach it, ask, and see the answer with its sources (the README's shot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from desktop.widgets.sources_view import SourcesView
from desktop.window.documents_controller import DocumentsController
from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.chat.generation import GenerationSettings
from engine.documents.embedder import Embedder, endpoint_embedder
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.settings.store import SettingsStore
from tests.engine.documents.files import write_pdf
from tests.support.main_window import replies
from tests.support.qasync_loop import qloop, run  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.vllm,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path(__file__).resolve().parents[3] / "shots"


def test_an_answer_from_documents_with_its_sources_on_real_vllm(  # type: ignore[no-untyped-def]
    qtbot, app_paths, tmp_path, vllm_server, vllm_embedder
) -> None:
    docs = tmp_path / "coast"
    docs.mkdir()
    (docs / "keeper.md").write_text(
        "# Kelvar lighthouse\n\nThe keeper of the Kelvar lighthouse is named Orla Brennick. She lights the "
        "lamp at dusk and logs every ship that passes.\n\n"
        "# Harbour\n\nFishing boats leave the harbour at dawn.\n"
    )
    write_pdf(docs / "tides.pdf", [["Tide tables for the northern coast."], ["High tide is at noon."]])
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    chat = ChatEngine(store, lambda: vllm_server)
    window = MainWindow(
        store=store,
        chat=chat,
        settings=SettingsStore.open(app_paths.settings_file),
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
        paths=app_paths,
    )
    qtbot.addWidget(window)
    window.resize(1280, 800)

    async def real_embedder() -> Embedder:
        return endpoint_embedder(vllm_embedder)

    try:
        window.show()
        run(qtbot, window.restore())
        # The window's own documents (installed once their modules are imported), embedding with real vLLM.
        qtbot.waitUntil(lambda: window.documents is not None, timeout=20000)
        controller: DocumentsController = window.documents
        controller.embedder_factory = real_embedder
        controller.add([docs], "coast")
        qtbot.waitUntil(lambda: controller.job is not None and controller.job.done(), timeout=120000)
        assert controller.last_report is not None
        assert controller.last_report.ok, controller.last_report.failed
        conversation = run(
            qtbot, chat.new_conversation(settings=GenerationSettings(temperature=0.0, max_tokens=60))
        )
        window.open_conversation(conversation.id)
        qtbot.waitUntil(lambda: window.conversation_id == conversation.id, timeout=10000)
        controller.attach(["coast"])
        qtbot.waitUntil(lambda: "coast" in controller.chips.chips, timeout=10000)
        window.composer.editor.setFocus()
        qtbot.keyClicks(window.composer.editor, "Who is the keeper of the Kelvar lighthouse?")
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
        qtbot.waitUntil(
            lambda: bool(replies(window)) and replies(window)[0].data.state not in ("streaming", "queued"),
            timeout=180000,
        )
        reply = replies(window)[0]
        assert reply.data.state == "complete", reply.data.error
        assert "Brennick" in reply.data.text
        qtbot.waitUntil(lambda: reply.findChild(SourcesView) is not None, timeout=10000)
        view = reply.findChild(SourcesView)
        assert view is not None
        assert view.rows[0].link.text() == "[1] keeper.md, Kelvar lighthouse"
        assert "Orla Brennick" in view.rows[0].quote.text()
        # The passage with the answer is shown as used (cited, or matched by the app, and then tagged so),
        # above the others given to the model, which wait collapsed.
        assert view.attribution in ("cited", "matched")
        assert view.rows[0] in view.used_rows
        assert (view.rows[0].tag is not None) == (view.attribution == "matched")
        assert view.others_toggle is None or not view.others_toggle.isChecked()
        controller.panel.tree.expandAll()
        qtbot.wait(400)
        SHOTS.mkdir(exist_ok=True)
        assert window.grab().save(str(SHOTS / "documents-answer.png"))
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, store.close())
    history = HistoryStore(app_paths.history_db)
    try:
        answer = history.load(conversation.id).branch()[-1]
    finally:
        history.close()
    assert answer.content["meta"]["sources"][0]["file"] == str(docs / "keeper.md")
    assert answer.content["meta"]["sources"][0]["use"] in ("cited", "matched")
