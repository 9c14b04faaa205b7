"""Documents in the window: the panel (collections, files, per-file reasons, remove), drops routed by content
(conversation files to Import, the rest to the documents), collections attached to a chat (chips above the
composer), indexing progress and Cancel (Re-scan resumes), and grounded replies with their sources shown,
clickable, stored and exported (a real document store, Haystack's hashing embedder, the stand-in server)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop.widgets.sources_view import SourcesView
from desktop.window.documents_controller import DocumentsController
from desktop.window.transfer_actions import ExportChoice
from engine.documents.embedder import Embedder, hashing_embedder
from engine.documents.grounding import sources_of
from engine.endpoint import Endpoint
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]

LIGHTHOUSE = "The keeper of the Kelvar lighthouse is Maren Holt. She has kept the light since 1998."


def _window(qtbot: Any, app_paths: AppPaths, endpoint: Any = lambda: None, embedder: Any = None) -> Any:
    window = open_window(qtbot, app_paths, endpoint, paths=app_paths)
    made = embedder or hashing_embedder(32)

    async def factory() -> Embedder:
        return made

    # The window installs its documents once their modules are imported; they embed with the stand-in.
    qtbot.waitUntil(lambda: window.documents is not None, timeout=20000)
    window.documents.embedder_factory = factory
    return window


def _wait_idle(qtbot: Any, controller: DocumentsController) -> None:
    qtbot.waitUntil(lambda: controller.job is not None and controller.job.done(), timeout=20000)


def _files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kelvar.md").write_text(f"# Lighthouses\n\n{LIGHTHOUSE}\n", encoding="utf-8")
    (folder / "notes.txt").write_text("Stocks fell sharply today.\n", encoding="utf-8")
    (folder / "junk.txt").write_bytes(bytes(range(256)) * 40)  # binary data with a text extension
    return folder


def _drop(widget: Any, paths: list[Path], at: QPointF | None = None) -> bool:
    """A drag entering ``widget`` and dropped (Qt delivers a drop only after an accepted enter)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    where = at if at is not None else QPointF(widget.rect().center())
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(where.toPoint(), *args)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, QDropEvent(where, *args))
    return True


def _read(app_paths: AppPaths) -> HistoryStore:
    """Another connection to the window's history file: what is stored, as a restart would read it."""
    return HistoryStore(app_paths.history_db)


def _panel_rows(controller: DocumentsController) -> dict[str, list[tuple[str, str]]]:
    tree = controller.panel.tree
    out = {}
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        out[top.text(0)] = [(top.child(j).text(0), top.child(j).text(1)) for j in range(top.childCount())]
    return out


def test_the_panel_lists_collections_files_and_why_a_file_failed(qtbot, app_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = _window(qtbot, app_paths)
    controller: DocumentsController = window.documents
    try:
        folder = _files(tmp_path / "docs")
        controller.add([folder], "work")
        _wait_idle(qtbot, controller)
        rows = dict(_panel_rows(controller)["work"])
        assert rows["kelvar.md"] == "indexed"
        assert rows["notes.txt"] == "indexed"
        assert rows["junk.txt"].startswith("failed: ")
        assert "binary" in rows["junk.txt"]
        assert controller.dock.isVisible()
        assert "work: 2 files indexed" in controller.panel.notice.text()
        assert "junk.txt:" in controller.panel.notice.text()
        # Remove one file, then the collection.
        controller.remove("work", [str(folder / "notes.txt")])
        qtbot.waitUntil(
            lambda: "notes.txt" not in dict(_panel_rows(controller).get("work", [])), timeout=5000
        )
        controller.panel.collection_item("work").setSelected(True)  # type: ignore[union-attr]
        qtbot.mouseClick(controller.panel.remove_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "work" not in _panel_rows(controller), timeout=5000)
        assert controller.doc_store.collections() == []
        # File > Add documents… and the composer's attach button are there.
        assert controller.add_action in window.file_menu.actions()
        assert window.composer.attach_button.isVisibleTo(window)
    finally:
        close_window(qtbot, window)


def test_drops_go_by_content_conversations_to_import_the_rest_to_documents(
    qtbot, app_paths, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    window = _window(qtbot, app_paths)
    controller: DocumentsController = window.documents
    try:
        export = tmp_path / "chat.json"
        export.write_text(
            json.dumps(
                {
                    "format": "vllm-desk.conversation",
                    "version": 2,
                    "conversation": {
                        "id": "c-1",
                        "title": "Imported chat",
                        "created": "2026-01-01T00:00:00Z",
                        "updated": "2026-01-01T00:00:00Z",
                        "messages": [
                            {"id": "1", "role": "user", "text": "Hi", "created": "2026-01-01T00:00:00Z"}
                        ],
                    },
                }
            ),
            encoding="utf-8",
        )
        data = tmp_path / "prices.json"  # JSON that is not a conversation: a document
        data.write_text(json.dumps({"apples": 3, "pears": 5}), encoding="utf-8")
        folder = tmp_path / "folder"
        folder.mkdir()
        (folder / "kelvar.md").write_text(LIGHTHOUSE, encoding="utf-8")
        assert _drop(window, [export, data, folder])
        _wait_idle(qtbot, controller)
        files = {Path(f.path).name for f in controller.doc_store.files("Documents")}
        assert files == {"prices.json", "kelvar.md"}
        qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 1, timeout=10000)
        # A drop of conversation files alone is the import's (its own filter takes it).
        assert controller.drop_filter.split([export]) == ([export], [])
    finally:
        close_window(qtbot, window)


def test_collections_attach_to_the_chat_and_show_as_removable_chips(qtbot, app_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = _window(qtbot, app_paths)
    controller: DocumentsController = window.documents
    try:
        controller.add([_files(tmp_path / "docs")], "work")
        _wait_idle(qtbot, controller)
        controller.panel.collection_item("work").setSelected(True)  # type: ignore[union-attr]
        qtbot.mouseClick(controller.panel.attach_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "work" in controller.chips.chips, timeout=10000)
        assert controller.chips.isVisibleTo(window)
        conversation_id = window.conversation_id
        assert conversation_id is not None
        reader = _read(app_paths)
        try:
            assert reader.conversation(conversation_id).settings["documents"] == ["work"]
        finally:
            reader.close()
        qtbot.mouseClick(controller.chips.chips["work"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not controller.chips.chips, timeout=10000)
        assert not controller.chips.isVisibleTo(window)
        reader = _read(app_paths)
        try:
            assert "documents" not in reader.conversation(conversation_id).settings
        finally:
            reader.close()
    finally:
        close_window(qtbot, window)


def test_indexing_shows_its_progress_can_be_cancelled_and_rescan_resumes(qtbot, app_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = hashing_embedder(32)

    class Slow(Embedder):
        def embed_documents(self, documents: list[Any]) -> list[Any]:
            time.sleep(0.3)
            return super().embed_documents(documents)

    slow = Slow(base.name, base.document, base.text)
    window = _window(qtbot, app_paths, embedder=slow)
    controller: DocumentsController = window.documents
    try:
        folder = tmp_path / "many"
        folder.mkdir()
        for i in range(12):
            (folder / f"part{i:02}.md").write_text(f"Part {i} of the report. " * 20, encoding="utf-8")
        controller.add([folder], "big")
        qtbot.waitUntil(lambda: "of 12 files" in controller.panel.progress_label.text(), timeout=10000)
        assert controller.panel.progress_bar.isVisibleTo(window)
        assert controller.panel.progress_bar.maximum() == 12
        qtbot.waitUntil(lambda: "passages/s" in controller.panel.progress_label.text(), timeout=10000)
        qtbot.mouseClick(controller.panel.cancel_button, Qt.MouseButton.LeftButton)
        _wait_idle(qtbot, controller)
        report = controller.last_report
        assert report is not None
        assert report.cancelled
        assert "Re-scan picks up where it stopped" in controller.panel.notice.text()
        indexed = len(controller.doc_store.files("big"))
        assert indexed < 12
        assert not controller.panel.progress_bar.isVisibleTo(window)
        controller.rescan("big")
        _wait_idle(qtbot, controller)
        assert len(controller.doc_store.files("big")) == 12
        assert controller.last_report is not None
        assert controller.last_report.unchanged == indexed  # what was done before is not done again
    finally:
        close_window(qtbot, window)


def test_a_grounded_reply_shows_its_sources_stores_them_and_exports_them(qtbot, app_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--reply", "Maren Holt keeps it [1].") as server:
        endpoint: Endpoint = server.endpoint()
        window = _window(qtbot, app_paths, lambda: endpoint)
        controller: DocumentsController = window.documents
        opened: list[QUrl] = []
        controller.open_url = opened.append
        try:
            docs = tmp_path / "docs"
            docs.mkdir()
            (docs / "kelvar.md").write_text(f"# Lighthouses\n\n{LIGHTHOUSE}\n", encoding="utf-8")
            controller.add([docs], "work")
            _wait_idle(qtbot, controller)
            controller.attach(["work"])
            qtbot.waitUntil(lambda: "work" in controller.chips.chips, timeout=10000)
            window.composer.editor.setPlainText("Who is the keeper of the Kelvar lighthouse?")
            # The context meter counts the passages that will go with the draft.
            qtbot.waitUntil(
                lambda: window.context_watch.usage is not None and window.context_watch.usage.used > 40,
                timeout=10000,
            )
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(
                lambda: bool(replies(window)) and replies(window)[0].data.state == "complete", timeout=20000
            )
            qtbot.waitUntil(lambda: replies(window)[0].findChild(SourcesView) is not None, timeout=10000)
            view = replies(window)[0].findChild(SourcesView)
            assert view is not None
            assert [row.link.text() for row in view.rows] == ["[1] kelvar.md, Lighthouses"]
            assert view.attribution == "cited"  # the reply's [1]
            assert view.used_rows == view.rows
            assert "Maren Holt" in view.rows[0].quote.text()
            view.grab().save(str(tmp_path / "sources.png"))
            # Clicking the source opens its file; "In context" shows the passage.
            qtbot.mouseClick(view.rows[0].link, Qt.MouseButton.LeftButton)
            assert [u.toLocalFile() for u in opened] == [str(docs / "kelvar.md")]
            qtbot.mouseClick(view.rows[0].context_button, Qt.MouseButton.LeftButton)
            assert controller.context_dialog is not None
            assert LIGHTHOUSE in controller.context_dialog.view.toPlainText()
            controller.context_dialog.close()
            # Stored with the reply: opening the conversation again shows them from the history.
            conversation_id = window.conversation_id
            reader = _read(app_paths)
            try:
                reply = reader.message(int(replies(window)[0].data.id))
            finally:
                reader.close()
            assert sources_of(reply.content["meta"])[0]["file"] == str(docs / "kelvar.md")
            window.new_chat()
            window.open_conversation(conversation_id)
            qtbot.waitUntil(
                lambda: bool(replies(window)) and replies(window)[0].findChild(SourcesView) is not None,
                timeout=10000,
            )
            reopened = replies(window)[0].findChild(SourcesView)
            assert reopened is not None
            assert reopened.attribution == "cited"  # the use stored with the reply, read back
            # And exported: the Markdown lists the source with its passage.
            out = tmp_path / "chat.md"
            task = asyncio.ensure_future(
                window.transfer.export_to([conversation_id], ExportChoice("md", out))
            )
            qtbot.waitUntil(task.done, timeout=10000)
            text = out.read_text(encoding="utf-8")
            assert "**Sources**" in text
            assert "[1] `kelvar.md`, Lighthouses" in text
            assert "Maren Holt" in text
            # And the PDF (the printed HTML) lists it too.
            pdf = tmp_path / "chat.pdf"
            task = asyncio.ensure_future(
                window.transfer.export_to([conversation_id], ExportChoice("pdf", pdf))
            )
            qtbot.waitUntil(task.done, timeout=20000)
            from pypdf import PdfReader

            printed = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(str(pdf)).pages)
            assert "Sources" in printed
            assert "kelvar.md" in printed
            assert "Maren Holt" in printed
        finally:
            close_window(qtbot, window)


def test_a_drop_on_a_collection_adds_to_that_collection(qtbot, app_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window = _window(qtbot, app_paths)
    controller: DocumentsController = window.documents
    try:
        controller.add([_files(tmp_path / "docs")], "work")
        _wait_idle(qtbot, controller)
        extra = tmp_path / "extra.md"
        extra.write_text("More about lighthouses.", encoding="utf-8")
        item = controller.panel.collection_item("work")
        assert item is not None
        rect = controller.panel.tree.visualItemRect(item)
        assert _drop(controller.panel.tree.viewport(), [extra], QPointF(rect.center()))
        _wait_idle(qtbot, controller)
        assert "extra.md" in {Path(f.path).name for f in controller.doc_store.files("work")}
    finally:
        close_window(qtbot, window)


def test_the_app_window_installs_documents_when_its_engine_arrives(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from desktop.window.main_window import MainWindow
    from engine.chat.engine import ChatEngine
    from engine.history.async_store import AsyncHistoryStore
    from engine.settings.store import SettingsStore
    from tests.support.qasync_loop import run

    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=store,
        paths=app_paths,
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    try:
        window.show()
        run(qtbot, window.restore())
        assert not hasattr(window, "documents")  # nothing before the engine (the first paint stays light)
        window.attach(
            chat=ChatEngine(store, lambda: None), settings=SettingsStore.open(app_paths.settings_file)
        )
        qtbot.waitUntil(lambda: window.documents is not None, timeout=20000)
        controller: DocumentsController = window.documents
        assert controller.add_action in window.file_menu.actions()
        assert window.chat.augment == controller.grounder.augment
        assert (app_paths.data / "documents.sqlite3").exists()
    finally:
        close_window(qtbot, window)
    assert window.chat.augment is None  # shut down with the window


def test_a_run_the_app_quit_in_is_offered_for_resuming_at_the_next_start(qtbot, app_paths, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = hashing_embedder(32)

    class Slow(Embedder):
        def embed_documents(self, documents: list[Any]) -> list[Any]:
            time.sleep(0.3)
            return super().embed_documents(documents)

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(12):
        (folder / f"part{i:02}.md").write_text(f"Part {i} of the report. " * 20, encoding="utf-8")
    window = _window(qtbot, app_paths, embedder=Slow(base.name, base.document, base.text))
    controller: DocumentsController = window.documents
    try:
        controller.add([folder], "big")
        qtbot.waitUntil(lambda: "of 12 files" in controller.panel.progress_label.text(), timeout=10000)
    finally:
        close_window(qtbot, window)  # the app quits in the middle of the run
    assert controller.unfinished_marker.exists()

    window = _window(qtbot, app_paths, embedder=base)
    controller = window.documents
    try:
        done = len(controller.doc_store.files("big"))
        assert done < 12
        assert controller.panel.resume_button.isVisibleTo(window)
        assert "“big” did not finish" in controller.panel.notice.text()
        qtbot.mouseClick(controller.panel.resume_button, Qt.MouseButton.LeftButton)
        _wait_idle(qtbot, controller)
        assert len(controller.doc_store.files("big")) == 12
        assert controller.last_report is not None
        assert controller.last_report.unchanged == done
        assert not controller.unfinished_marker.exists()
        assert not controller.panel.resume_button.isVisibleTo(window)
    finally:
        close_window(qtbot, window)


def test_another_embedding_model_is_said_and_reindexing_replaces_the_vectors(
    qtbot, app_paths, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from engine.documents.index import Indexer
    from engine.documents.store import DocumentStore, documents_db

    folder = _files(tmp_path / "docs")
    # The collection was indexed with another embedding model (64 dimensions, another name) earlier.
    before = DocumentStore(documents_db(app_paths))
    Indexer(before, hashing_embedder(64)).add("work", [folder])
    assert before.collection("work").embedder == "hash-64"
    before.close()
    window = _window(qtbot, app_paths)  # the window's embedder now: hash-32
    controller: DocumentsController = window.documents
    try:
        # Adding to it refuses to mix the vectors, says why in words and offers to re-index.
        (folder / "more.md").write_text("Basalt is a volcanic rock.\n", encoding="utf-8")
        controller.add([folder], "work")
        _wait_idle(qtbot, controller)
        notice = controller.panel.notice.text()
        assert "“work” was indexed with the embedding model hash-64, not hash-32" in notice
        assert "searched by keyword only. Re-index it" in notice
        assert not controller.panel.reindex_button.isHidden()
        assert controller.panel.reindex_button.text() == "Re-index “work”"
        assert controller.doc_store.collection("work").embedder == "hash-64"  # nothing was mixed in
        qtbot.mouseClick(controller.panel.reindex_button, Qt.MouseButton.LeftButton)
        _wait_idle(qtbot, controller)
        info = controller.doc_store.collection("work")
        assert (info.embedder, info.dims) == ("hash-32", 32)
        assert info.files == 3  # every file again, the new one too
        assert info.roots == (str(folder),)
        assert controller.panel.reindex_button.isHidden()
        assert controller.check_embedders(controller.doc_store.collections()) == []
    finally:
        close_window(qtbot, window)


def test_the_window_uses_the_embedder_preferences_chose_and_switches_when_it_changes(
    qtbot, app_paths, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from engine.server.profiles import ServerProfile
    from tests.support.embeddings_server import running_embeddings_server

    folder = _files(tmp_path / "docs")
    with (
        running_embeddings_server("bow-embedder") as first,
        running_embeddings_server("other-embedder") as second,
    ):
        window = open_window(qtbot, app_paths, paths=app_paths)
        settings = window.settings
        profiles = [
            ServerProfile(name="A", kind="remote", base_url=first.base_url, served_name="bow-embedder"),
            ServerProfile(name="B", kind="remote", base_url=second.base_url, served_name="other-embedder"),
        ]
        current = settings.settings
        chosen = current.documents.model_copy(update={"embedder": "A"})
        settings.update(
            current.model_copy(update={"profiles": [*current.profiles, *profiles], "documents": chosen})
        )
        # The window's own documents: the embedder the settings name, not a stand-in.
        qtbot.waitUntil(lambda: window.documents is not None, timeout=20000)
        controller: DocumentsController = window.documents
        try:
            controller.add([folder], "work")
            _wait_idle(qtbot, controller)
            assert first.requests
            assert controller.doc_store.collection("work").embedder == "bow-embedder"
            assert controller.panel.reindex_button.isHidden()
            # Preferences > Documents picks B: A's server is let go, the panel offers to re-index.
            settings.update(
                settings.settings.model_copy(
                    update={"documents": chosen.model_copy(update={"embedder": "B"})}
                )
            )
            qtbot.waitUntil(lambda: not controller.panel.reindex_button.isHidden(), timeout=5000)
            assert controller.embedder is None
            assert "not other-embedder" in controller.panel.notice.text()
            qtbot.mouseClick(controller.panel.reindex_button, Qt.MouseButton.LeftButton)
            _wait_idle(qtbot, controller)
            assert second.requests
            assert controller.doc_store.collection("work").embedder == "other-embedder"
        finally:
            close_window(qtbot, window)
