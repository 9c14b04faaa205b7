"""After the context menu of a chat that is not open (a right press selects its row for the menu), the list
highlights the chat on screen again: when the menu is closed, and after a rename from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication, QMenu

from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import fixture_window, open_window
from tests.support.qasync_loop import qloop  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
ALPHA, BETA, GAMMA = 1, 2, 3  # created in this order: the list shows Gamma, Beta, Alpha


@pytest.fixture
def window(request: pytest.FixtureRequest, qtbot: Any, app_paths: AppPaths) -> Iterator[MainWindow]:
    store = HistoryStore(app_paths.history_db)
    for title in ("Alpha", "Beta", "Gamma"):
        conversation = store.create_conversation(title=title)
        store.add_message(conversation.id, None, "user", f"question about {title.lower()}")
    store.close()
    win = open_window(qtbot, app_paths)
    with fixture_window(request, qtbot, win):
        yield win


def click(qtbot: Any, window: MainWindow, conversation_id: int, button: Qt.MouseButton) -> None:
    sidebar = window.sidebar
    index = sidebar.model.index(sidebar.model.row_of(conversation_id), 0)
    center = sidebar.list.visualRect(index).center()
    qtbot.mouseClick(sidebar.list.viewport(), button, Qt.KeyboardModifier.NoModifier, center)


def right_click_then(
    qtbot: Any, window: MainWindow, conversation_id: int, in_menu: Callable[[QMenu], None]
) -> list[int]:
    """Right-click the row; while its menu is open, note the selection and act on the menu (it blocks)."""
    seen: list[int] = []

    def act() -> None:
        menu = QApplication.activePopupWidget()
        if not isinstance(menu, QMenu):  # not open yet
            QTimer.singleShot(20, act)
            return
        seen.extend(window.sidebar.selected_conversation_ids())
        in_menu(menu)

    QTimer.singleShot(20, act)
    # As the desktop delivers a right-click: the press (which selects), then the context menu event.
    sidebar = window.sidebar
    viewport = sidebar.list.viewport()
    center = sidebar.list.visualRect(sidebar.model.index(sidebar.model.row_of(conversation_id), 0)).center()
    qtbot.mousePress(viewport, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, center)
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, center, viewport.mapToGlobal(center))
    QApplication.sendEvent(viewport, event)
    qtbot.mouseRelease(viewport, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, center)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None, timeout=5000)
    return seen


def test_closing_the_menu_of_a_chat_not_shown_highlights_the_shown_chat_again(
    qtbot: Any, window: MainWindow
) -> None:
    click(qtbot, window, BETA, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.conversation_id == BETA, timeout=5000)
    during = right_click_then(qtbot, window, ALPHA, lambda menu: menu.close())
    assert during == [ALPHA]  # the menu's row shows which chat it is for
    assert window.conversation_id == BETA
    assert window.sidebar.selected_conversation_ids() == [BETA]
    assert window.sidebar.current_conversation_id() == BETA


def test_renaming_a_chat_not_shown_from_its_menu_leaves_the_shown_chat_highlighted(
    qtbot: Any, window: MainWindow
) -> None:
    click(qtbot, window, BETA, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.conversation_id == BETA, timeout=5000)

    def rename(menu: QMenu) -> None:
        [action] = [a for a in menu.actions() if a.text() == "Rename…"]
        action.trigger()
        menu.close()

    right_click_then(qtbot, window, ALPHA, rename)
    dialog = window.sidebar.name_dialog
    assert dialog is not None
    dialog.setTextValue("Alpha renamed")
    dialog.accept()
    sidebar = window.sidebar
    # The rename reloads the list (the model is reset, then the selection it keeps is set again).
    qtbot.waitUntil(
        lambda: (
            "Alpha renamed" in [c.title for c in sidebar.model.conversations()]
            and bool(sidebar.selected_conversation_ids())
        ),
        timeout=5000,
    )
    assert window.conversation_id == BETA
    assert window.sidebar.selected_conversation_ids() == [BETA]


def test_the_menu_of_a_chat_in_a_selection_of_several_keeps_the_selection(
    qtbot: Any, window: MainWindow
) -> None:
    click(qtbot, window, BETA, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.conversation_id == BETA, timeout=5000)
    sidebar = window.sidebar
    index = sidebar.model.index(sidebar.model.row_of(ALPHA), 0)
    qtbot.mouseClick(
        sidebar.list.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ControlModifier,
        sidebar.list.visualRect(index).center(),
    )
    assert sidebar.selected_conversation_ids() == [BETA, ALPHA]
    during = right_click_then(qtbot, window, ALPHA, lambda menu: menu.close())
    assert during == [BETA, ALPHA]
    assert sidebar.selected_conversation_ids() == [BETA, ALPHA]
