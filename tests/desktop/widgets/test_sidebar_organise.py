"""The sidebar on a real window: Ctrl/Shift-click select several conversations, Export…, "Move to folder…"
and "Tags…" act on the selection (and the filter then finds them), and a conversation file dropped on the
composer is imported instead of pasted as text."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QDialogButtonBox, QWidget

from desktop import errors
from desktop.widgets.sidebar import NameRejected, parse_folder, parse_tags, retag
from desktop.window.main_window import MainWindow
from desktop.window.transfer_actions import ExportChoice, TransferActions
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import fixture_window, open_window
from tests.support.qasync_loop import qloop, run  # noqa: F401 - qloop is a fixture

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
CHATGPT = Path(__file__).parents[2] / "engine" / "fixtures" / "chatgpt_conversations.json"
ALPHA, BETA, GAMMA = 1, 2, 3  # created in this order: the list shows Gamma, Beta, Alpha


@pytest.fixture
def window(request: Any, qtbot: Any, app_paths: AppPaths, tmp_path: Path) -> Iterator[MainWindow]:
    store = HistoryStore(app_paths.history_db)
    for title in ("Alpha", "Beta", "Gamma"):
        conversation = store.create_conversation(title=title)
        store.add_message(conversation.id, None, "user", f"question about {title.lower()}")
    store.close()
    win = open_window(qtbot, app_paths)
    transfer(win).export_dir = tmp_path
    with fixture_window(request, qtbot, win) as shown:  # closed before pytest-qt deletes it
        yield shown


def transfer(window: MainWindow) -> TransferActions:
    actions: TransferActions = window.transfer
    return actions


def click(qtbot: Any, window: MainWindow, conversation_id: int, modifier: Any = None) -> None:
    sidebar = window.sidebar
    index = sidebar.model.index(sidebar.model.row_of(conversation_id), 0)
    modifier = modifier if modifier is not None else Qt.KeyboardModifier.NoModifier
    center = sidebar.list.visualRect(index).center()
    qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, modifier, center)


def menu_action(window: MainWindow, conversation_id: int, text: str) -> QAction:
    menu = window.sidebar.context_menu_for(conversation_id)
    found = [a for a in menu.actions() if a.text() == text]
    assert len(found) == 1, [a.text() for a in menu.actions()]
    return found[0]


def answer_name_dialog(qtbot: Any, window: MainWindow, text: str) -> None:
    qtbot.waitUntil(lambda: window.sidebar.name_dialog is not None, timeout=5000)
    dialog = window.sidebar.name_dialog
    assert dialog is not None
    dialog.setTextValue(text)
    dialog.accept()


def stored(window: MainWindow, qtbot: Any, conversation_id: int) -> tuple[str, list[str]]:
    conversation = run(qtbot, window.store.conversation(conversation_id))
    return conversation.folder, list(conversation.tags)


def test_ctrl_and_shift_click_select_several_and_a_plain_click_opens_one(
    qtbot: Any, window: MainWindow
) -> None:
    sidebar = window.sidebar
    assert window.conversation_id == GAMMA  # the newest is opened at start
    click(qtbot, window, BETA)
    qtbot.waitUntil(lambda: window.conversation_id == BETA, timeout=5000)
    assert sidebar.selected_conversation_ids() == [BETA]

    click(qtbot, window, GAMMA, Qt.KeyboardModifier.ShiftModifier)
    assert sidebar.selected_conversation_ids() == [GAMMA, BETA]  # the range from Beta
    click(qtbot, window, ALPHA, Qt.KeyboardModifier.ControlModifier)
    assert sidebar.selected_conversation_ids() == [GAMMA, BETA, ALPHA]
    click(qtbot, window, GAMMA, Qt.KeyboardModifier.ControlModifier)
    assert sidebar.selected_conversation_ids() == [BETA, ALPHA]  # Ctrl-click again: unselected
    # A double-click activates; with Ctrl held it only selects.
    index = sidebar.model.index(sidebar.model.row_of(GAMMA), 0)
    qtbot.mouseDClick(
        sidebar.list.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ControlModifier,
        sidebar.list.visualRect(index).center(),
    )
    qtbot.wait(50)
    assert window.conversation_id == BETA  # changing the selection opened nothing

    click(qtbot, window, ALPHA)
    qtbot.waitUntil(lambda: window.conversation_id == ALPHA, timeout=5000)
    assert sidebar.selected_conversation_ids() == [ALPHA]


def test_the_file_menu_has_import_and_export(window: MainWindow) -> None:
    actions = transfer(window)
    menu = window.file_menu.actions()
    for action in (actions.import_action, actions.export_action, actions.export_all_action):
        assert action in menu
        assert action.isEnabled()
    assert [a.text() for a in menu][:4] == [
        "&New chat",
        "&Import conversations…",
        "&Export conversation…",
        "Export &all conversations…",
    ]


def test_context_menu_export_takes_the_selection_or_the_row_clicked(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    actions = transfer(window)
    click(qtbot, window, BETA)
    click(qtbot, window, ALPHA, Qt.KeyboardModifier.ControlModifier)

    # On a row outside the selection: that conversation only.
    export = menu_action(window, GAMMA, "Export…")
    assert export is actions.context_export_action
    assert export.data() == [GAMMA]
    # On a selected row: the whole selection, to a folder of Markdown files...
    menu_action(window, ALPHA, "Export…").trigger()
    qtbot.waitUntil(lambda: actions.dialog is not None and actions.dialog.isVisible(), timeout=10000)
    dialog = actions.dialog
    assert dialog is not None
    assert dialog.count == 2
    assert dialog.path_edit.text() == str(tmp_path / "vllm-desk-export")
    with qtbot.waitSignal(actions.exported, timeout=20000) as exported:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    files = exported.args[0].files
    assert sorted(p.parent for p in files) == [tmp_path / "vllm-desk-export"] * 2
    texts = sorted(p.read_text(encoding="utf-8") for p in files)
    assert "question about alpha" in texts[0]
    assert "question about beta" in texts[1]

    # ... and again as one zip.
    assert window.sidebar.selected_conversation_ids() == [BETA, ALPHA]
    menu_action(window, BETA, "Export…").trigger()
    qtbot.waitUntil(lambda: actions.dialog is not dialog and actions.dialog is not None, timeout=10000)
    zipped = actions.dialog
    assert zipped is not None
    qtbot.waitUntil(zipped.isVisible, timeout=10000)
    zipped.zip_box.setChecked(True)
    zipped.path_edit.setText(str(tmp_path / "both.zip"))
    with qtbot.waitSignal(actions.exported, timeout=20000):
        zipped.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    with zipfile.ZipFile(tmp_path / "both.zip") as archive:
        names = archive.namelist()
        assert len(names) == 2, names
        bodies = sorted(archive.read(n).decode() for n in names)
    assert "question about alpha" in bodies[0]
    assert "question about beta" in bodies[1]


def test_file_export_takes_the_sidebar_selection(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    actions = transfer(window)
    click(qtbot, window, BETA)
    click(qtbot, window, ALPHA, Qt.KeyboardModifier.ControlModifier)
    actions.export_action.trigger()
    qtbot.waitUntil(lambda: actions.dialog is not None and actions.dialog.isVisible(), timeout=10000)
    dialog = actions.dialog
    assert dialog is not None
    assert dialog.count == 2
    with qtbot.waitSignal(actions.exported, timeout=20000) as exported:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    texts = sorted(p.read_text(encoding="utf-8") for p in exported.args[0].files)
    assert len(texts) == 2
    assert "question about alpha" in texts[0]
    assert "question about beta" in texts[1]


def test_move_to_folder_and_tag_the_selection_then_filter_by_them(qtbot: Any, window: MainWindow) -> None:
    sidebar = window.sidebar
    assert sidebar.filter_box.isHidden()  # nothing is in a folder or tagged yet
    click(qtbot, window, BETA)
    click(qtbot, window, ALPHA, Qt.KeyboardModifier.ControlModifier)

    menu_action(window, BETA, "Move to folder…").trigger()
    answer_name_dialog(qtbot, window, "  Work ")
    qtbot.waitUntil(lambda: stored(window, qtbot, ALPHA)[0] == "Work", timeout=5000)
    assert stored(window, qtbot, BETA)[0] == "Work"
    assert stored(window, qtbot, GAMMA)[0] == ""
    qtbot.waitUntil(lambda: sidebar.filter_box.findText("Folder: Work") >= 0, timeout=5000)
    assert sidebar.selected_conversation_ids() == [BETA, ALPHA]  # still selected after the list reloads
    assert sidebar.folders == ["Work"]

    menu_action(window, ALPHA, "Tags…").trigger()
    answer_name_dialog(qtbot, window, "#draft, gpu, draft")
    qtbot.waitUntil(lambda: stored(window, qtbot, BETA)[1] == ["draft", "gpu"], timeout=5000)
    assert stored(window, qtbot, ALPHA)[1] == ["draft", "gpu"]
    # Alpha alone: its tags are shown; removing one leaves Beta's alone.
    click(qtbot, window, ALPHA)
    menu_action(window, ALPHA, "Tags…").trigger()
    qtbot.waitUntil(lambda: window.sidebar.name_dialog is not None, timeout=5000)
    assert window.sidebar.name_dialog is not None
    assert window.sidebar.name_dialog.textValue() == "draft, gpu"
    answer_name_dialog(qtbot, window, "gpu")
    qtbot.waitUntil(lambda: stored(window, qtbot, ALPHA)[1] == ["gpu"], timeout=5000)
    assert stored(window, qtbot, BETA)[1] == ["draft", "gpu"]
    qtbot.waitUntil(lambda: sidebar.filter_box.findText("#draft") >= 0, timeout=5000)

    def choose(label: str) -> None:
        index = sidebar.filter_box.findText(label)
        assert index >= 0, label
        sidebar.filter_box.setCurrentIndex(index)
        sidebar.filter_box.activated.emit(index)

    def shown() -> list[int]:
        return [c.id for c in sidebar.model.conversations()]

    choose("Folder: Work")
    qtbot.waitUntil(lambda: shown() == [BETA, ALPHA], timeout=5000)
    assert sidebar.model.data(sidebar.model.index(0, 0)) == "Beta  [Work] #draft #gpu"
    choose("#draft")
    qtbot.waitUntil(lambda: shown() == [BETA], timeout=5000)
    choose("All chats")
    qtbot.waitUntil(lambda: shown() == [GAMMA, BETA, ALPHA], timeout=5000)

    # An empty folder name takes a conversation out of its folder.
    menu_action(window, BETA, "Move to folder…").trigger()
    answer_name_dialog(qtbot, window, "")
    qtbot.waitUntil(lambda: stored(window, qtbot, BETA)[0] == "", timeout=5000)


def test_a_tag_with_a_space_is_refused_in_words(qtbot: Any, window: MainWindow) -> None:
    menu_action(window, GAMMA, "Tags…").trigger()
    with qtbot.waitSignal(errors.reporter().problem, timeout=5000) as shown:
        answer_name_dialog(qtbot, window, "good, two words")
    problem = shown.args[0]
    assert problem.title == "That name cannot be used"
    assert problem.message.startswith('A tag cannot contain spaces: "two words".')
    assert stored(window, qtbot, GAMMA) == ("", [])


def test_names_are_read_as_the_user_means_them() -> None:
    assert parse_folder("  Work  ") == "Work"
    assert parse_folder("   ") == ""
    assert parse_tags(" #a, b,, #a ,  ") == ["a", "b"]
    assert parse_tags("") == []
    with pytest.raises(NameRejected, match="at most 80 characters long; this one has 81"):
        parse_folder("x" * 81)
    with pytest.raises(NameRejected, match="at most 40 characters long"):
        parse_tags("y" * 41)
    # Shared tags become the chosen ones; a tag only one conversation had stays.
    assert retag(["a", "b", "own"], ["a", "b"], ["b", "c"]) == ["b", "own", "c"]


def _under(window: MainWindow, widget: QWidget) -> tuple[QWidget, QPointF]:
    # The deepest widget under the middle of ``widget``, as a real drag would find it.
    spot = widget.mapToGlobal(widget.rect().center())
    target = window.childAt(window.mapFromGlobal(spot)) or window
    return target, QPointF(target.mapFromGlobal(spot))


def _files(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


@contextmanager
def opened_store(qtbot: Any, path: Path) -> Iterator[AsyncHistoryStore]:
    store = run(qtbot, AsyncHistoryStore.open(path))
    try:
        yield store
    finally:
        run(qtbot, store.close())


def _drop(target: QWidget, at: QPointF, mime: QMimeData) -> QDropEvent:
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(at.toPoint(), *args)
    QCoreApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    move = QDragMoveEvent(at.toPoint(), *args)
    QCoreApplication.sendEvent(target, move)
    assert move.isAccepted()
    drop = QDropEvent(at, *args)
    QCoreApplication.sendEvent(target, drop)
    return drop


def test_a_conversation_file_dropped_on_the_composer_is_imported_not_pasted(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    actions = transfer(window)  # the window made the composer's editor and the transcript drop targets
    target, at = _under(window, window.composer.editor)
    assert target is window.composer.editor.viewport()
    with qtbot.waitSignal(actions.imported, timeout=20000) as imported:
        _drop(target, at, _files(CHATGPT))
    assert len(imported.args[0].imported) == 2
    assert window.composer.editor.toPlainText() == ""
    qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 5, timeout=5000)

    # A vLLM Desk export (of a conversation from another history) dropped on the transcript.
    other = HistoryStore(tmp_path / "other.db")
    elsewhere = other.create_conversation(title="From elsewhere")
    other.add_message(elsewhere.id, None, "user", "hello from the other history")
    other.close()
    with opened_store(qtbot, tmp_path / "other.db") as other_store:
        holder = QWidget()  # not the window: its actions would clash with the window's shortcuts
        qtbot.addWidget(holder)
        exporter = TransferActions(holder, other_store)
        run(qtbot, exporter.export_to([elsewhere.id], ExportChoice("json", tmp_path / "elsewhere.json")))
    target, at = _under(window, window.transcript)
    with qtbot.waitSignal(actions.imported, timeout=20000) as imported:
        _drop(target, at, _files(tmp_path / "elsewhere.json"))
    assert len(imported.args[0].imported) == 1
    qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 6, timeout=5000)

    # Text dropped on the composer is still text.
    words = QMimeData()
    words.setText("dropped words")
    target, at = _under(window, window.composer.editor)
    _drop(target, at, words)
    assert window.composer.editor.toPlainText() == "dropped words"


# --- task I: the window's list reloads keep the selection ---------------------------------------------


def test_the_window_s_list_reloads_keep_the_selection(qtbot: Any, window: MainWindow) -> None:
    sidebar = window.sidebar
    click(qtbot, window, BETA)
    qtbot.waitUntil(lambda: window.conversation_id == BETA, timeout=5000)
    click(qtbot, window, ALPHA, Qt.KeyboardModifier.ControlModifier)
    assert sidebar.selected_conversation_ids() == [BETA, ALPHA]
    # Renaming one of the selected (the list reloads, then shows it selected): both stay selected.
    run(qtbot, window.conversations.set_title(ALPHA, "Alpha renamed"))
    run(qtbot, sidebar.settled())  # the list follows the store
    assert sidebar.selected_conversation_ids() == [BETA, ALPHA]
    # Deleting another conversation reloads the list too.
    run(qtbot, window.conversations.delete_now(GAMMA))
    run(qtbot, sidebar.settled())  # the list follows the store
    assert sidebar.model.row_of(GAMMA) == -1
    assert sidebar.selected_conversation_ids() == [BETA, ALPHA]
    # Its Undo, the same.
    run(qtbot, window.conversations.bring_back(GAMMA))
    assert sidebar.model.row_of(GAMMA) >= 0
    assert window.conversation_id == GAMMA
    assert sidebar.selected_conversation_ids() == [GAMMA]  # opening Gamma selects it alone
