"""Export…/Import… in the window: the dialog, real files through the real store, drag-and-drop import,
and a damaged file reported in words with the history untouched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QDialogButtonBox, QMainWindow

from desktop import errors
from desktop.window.transfer_actions import ExportChoice, ExportDialog, TransferActions
from engine.history.async_store import AsyncHistoryStore
from engine.paths import AppPaths
from engine.transfer import history_adapter
from engine.transfer.exporter import file_name
from engine.transfer.importer import read_conversations
from tests.support.database import database_rows
from tests.support.qasync_loop import qloop, run  # noqa: F401 - qloop is a fixture

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]
CHATGPT = Path(__file__).parents[2] / "engine" / "fixtures" / "chatgpt_conversations.json"


@pytest.fixture
def window(
    qtbot: Any,
    qloop: Any,  # noqa: F811 - the imported fixture
    app_paths: AppPaths,
    tmp_path: Path,
) -> Iterator[QMainWindow]:
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    win = QMainWindow()
    qtbot.addWidget(win)
    win.transfer = TransferActions(win, store, export_dir=tmp_path)  # type: ignore[attr-defined]
    win.show()
    yield win
    run(qtbot, store.close())


def _actions(win: QMainWindow) -> TransferActions:
    actions: TransferActions = win.transfer  # type: ignore[attr-defined]
    return actions


def _drag_enter(window: QMainWindow, mime: QMimeData) -> QDragEnterEvent:
    # Qt 6.12 takes a QPointF (the QPoint form is deprecated); earlier versions only the QPoint form.
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    try:
        return QDragEnterEvent(QPointF(window.rect().center()), *args)
    except TypeError:
        return QDragEnterEvent(window.rect().center(), *args)


def test_dialog_suggests_a_path_per_format(qtbot: Any, tmp_path: Path) -> None:
    one = ExportDialog(1, tmp_path / "conversation")
    qtbot.addWidget(one)
    one.format_box.setCurrentIndex(one.format_box.findData("html"))
    assert one.choice() == ExportChoice("html", tmp_path / "conversation.html", False)
    one.format_box.setCurrentIndex(one.format_box.findData("json"))
    one.branches_box.setChecked(True)
    assert not one.branches_box.isEnabled()  # JSON holds every branch anyway
    assert one.choice() == ExportChoice("json", tmp_path / "conversation.json", False)

    many = ExportDialog(3, tmp_path / "export")
    qtbot.addWidget(many)
    assert many.choice().target == tmp_path / "export"  # a folder, one file each
    many.zip_box.setChecked(True)
    many.branches_box.setChecked(True)
    assert many.choice() == ExportChoice("md", tmp_path / "export.zip", True)
    # JSON: every conversation in one file, as a backup is expected to be.
    many.zip_box.setChecked(False)
    many.format_box.setCurrentIndex(many.format_box.findData("json"))
    assert many.choice() == ExportChoice("json", tmp_path / "export.json", False)


def test_export_everything_as_one_json_file_through_the_dialog(
    qtbot: Any, window: QMainWindow, tmp_path: Path
) -> None:
    actions = _actions(window)
    run(qtbot, actions.import_paths([CHATGPT]))
    actions.export_all_action.trigger()
    qtbot.waitUntil(lambda: actions.dialog is not None and actions.dialog.isVisible(), timeout=10000)
    dialog = actions.dialog
    assert dialog is not None
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("json"))
    assert dialog.path_edit.text() == str(tmp_path / "vllm-desk-export.json")
    with qtbot.waitSignal(actions.exported, timeout=20000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    data = json.loads((tmp_path / "vllm-desk-export.json").read_text(encoding="utf-8"))
    assert data["format"] == "vllm-desk.conversations"
    assert sorted(c["title"] for c in data["conversations"]) == sorted(
        c.title for c in read_conversations(CHATGPT)
    )


def test_drop_a_chatgpt_export_then_export_everything(
    qtbot: Any, window: QMainWindow, tmp_path: Path
) -> None:
    actions = _actions(window)
    actions.install_drop_target(window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(CHATGPT))])
    enter = _drag_enter(window, mime)
    QCoreApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(window.rect().center()),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(actions.imported, timeout=20000) as imported:
        QCoreApplication.sendEvent(window, drop)
    assert len(imported.args[0].imported) == 2
    assert window.statusBar().currentMessage() == "Imported 2 conversations."
    assert actions.progress is None

    # Export… everything: the dialog opens, the user picks a zip of Markdown files.
    actions.export_all_action.trigger()
    qtbot.waitUntil(lambda: actions.dialog is not None and actions.dialog.isVisible(), timeout=10000)
    dialog = actions.dialog
    assert dialog is not None
    dialog.zip_box.setChecked(True)
    assert dialog.path_edit.text() == str(tmp_path / "vllm-desk-export.zip")
    with qtbot.waitSignal(actions.exported, timeout=20000) as exported:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    summary = exported.args[0]
    assert summary.target == tmp_path / "vllm-desk-export.zip"
    assert (tmp_path / "vllm-desk-export.zip").stat().st_size > 0


def test_context_menu_export_asks_for_that_conversation(
    qtbot: Any, window: QMainWindow, tmp_path: Path
) -> None:
    actions = _actions(window)
    summary = run(qtbot, actions.import_paths([CHATGPT]))
    actions.context_export_action.setData(summary.imported[1])
    actions.context_export_action.trigger()
    qtbot.waitUntil(lambda: actions.dialog is not None and actions.dialog.isVisible(), timeout=10000)
    dialog = actions.dialog
    assert dialog is not None
    assert dialog.count == 1
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("html"))
    # Named after the chat, as in a folder export: "2023-…-<title>.html".
    tree = run(qtbot, actions.store.export_tree(summary.imported[1]))
    named = file_name(history_adapter.from_tree(tree), "html")
    assert dialog.path_edit.text() == str(tmp_path / named)
    assert named != "conversation.html"
    with qtbot.waitSignal(actions.exported, timeout=20000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert "British Shorthair" in (tmp_path / named).read_text(encoding="utf-8")


def test_context_menu_export_of_several_ids_asks_for_all_of_them(qtbot: Any, window: QMainWindow) -> None:
    # The sidebar sets the list of the selected conversations as the action's data.
    actions = _actions(window)
    summary = run(qtbot, actions.import_paths([CHATGPT]))
    actions.context_export_action.setData(list(summary.imported))
    actions.context_export_action.trigger()
    qtbot.waitUntil(lambda: actions.dialog is not None and actions.dialog.isVisible(), timeout=10000)
    assert actions.dialog is not None
    assert actions.dialog.count == 2
    actions.dialog.reject()


def test_export_to_pdf_and_json_from_the_window(qtbot: Any, window: QMainWindow, tmp_path: Path) -> None:
    actions = _actions(window)
    summary = run(qtbot, actions.import_paths([CHATGPT]))
    pdf = run(qtbot, actions.export_to(summary.imported, ExportChoice("pdf", tmp_path / "pdfs")))
    assert [p.suffix for p in pdf.files] == [".pdf", ".pdf"]
    assert all(p.read_bytes().startswith(b"%PDF-") for p in pdf.files)
    one = run(qtbot, actions.export_to(summary.imported[:1], ExportChoice("json", tmp_path / "one.json")))
    assert one.files == [tmp_path / "one.json"]
    assert '"format": "vllm-desk.conversation"' in (tmp_path / "one.json").read_text(encoding="utf-8")


def test_a_damaged_file_is_reported_and_changes_nothing(
    qtbot: Any, window: QMainWindow, tmp_path: Path, app_paths: AppPaths
) -> None:
    actions = _actions(window)
    run(qtbot, actions.import_paths([CHATGPT]))
    before = database_rows(app_paths.history_db)
    broken = tmp_path / "broken.json"
    broken.write_bytes(CHATGPT.read_bytes()[:-100])
    with qtbot.waitSignal(errors.reporter().problem, timeout=20000) as shown:
        actions.import_files([broken])
    problem = shown.args[0]
    assert problem.title == "The file cannot be imported"
    assert problem.message.startswith("broken.json: the file is not valid JSON")
    assert problem.fix is not None
    assert problem.fix.action == "choose_import_file"
    assert database_rows(app_paths.history_db) == before


def test_a_big_batch_shows_progress_up_to_the_last_conversation(
    qtbot: Any, window: QMainWindow, tmp_path: Path
) -> None:
    actions = _actions(window)
    export = [
        {
            "id": f"c{n}",
            "title": f"Chat {n}",
            "create_time": 1700000000 + n,
            "mapping": {
                "u": {
                    "parent": None,
                    "message": {"author": {"role": "user"}, "content": {"parts": [f"hi {n}"]}},
                },
                "a": {
                    "parent": "u",
                    "message": {"author": {"role": "assistant"}, "content": {"parts": ["hello"]}},
                },
            },
            "current_node": "a",
        }
        for n in range(150)
    ]
    big = tmp_path / "conversations.json"
    big.write_text(json.dumps(export), encoding="utf-8")
    seen: list[tuple[int, int]] = []
    original = actions._set_progress

    def record(value: int) -> None:
        assert actions.progress is not None
        seen.append((value, actions.progress.maximum()))
        original(value)

    actions._set_progress = record  # type: ignore[method-assign]
    summary = run(qtbot, actions.import_paths([big]))
    assert len(summary.imported) == 150
    assert seen[-1] == (150, 150)
    assert [v for v, _ in seen] == sorted(v for v, _ in seen)
    assert actions.progress is None  # closed when done

    seen.clear()
    run(qtbot, actions.export_to(summary.imported, ExportChoice("md", tmp_path / "out.zip")))
    assert seen[-1] == (300, 300)  # 150 loaded, then 150 written


def test_drags_of_other_files_are_not_accepted(qtbot: Any, window: QMainWindow, tmp_path: Path) -> None:
    _actions(window).install_drop_target(window)
    text = tmp_path / "notes.txt"
    text.write_text("hello", encoding="utf-8")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(text)), QUrl("https://example.org/x.json")])
    enter = _drag_enter(window, mime)
    enter.setAccepted(False)
    QCoreApplication.sendEvent(window, enter)
    assert not enter.isAccepted()
