"""Deleting from the sidebar acts on what is selected: the context menu's Delete on a selection of several
deletes them all (and Undo brings them all back), and the Delete key deletes the selection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt

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


def click(qtbot: Any, window: MainWindow, conversation_id: int, modifier: Any = None) -> None:
    sidebar = window.sidebar
    index = sidebar.model.index(sidebar.model.row_of(conversation_id), 0)
    modifier = modifier if modifier is not None else Qt.KeyboardModifier.NoModifier
    center = sidebar.list.visualRect(index).center()
    qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, modifier, center)


def listed(window: MainWindow) -> set[int]:
    return {c.id for c in window.sidebar.model.conversations()}


def test_delete_in_the_menu_of_a_selection_deletes_all_of_it_and_undo_brings_all_back(
    qtbot: Any, window: MainWindow
) -> None:
    click(qtbot, window, BETA)
    qtbot.waitUntil(lambda: window.conversation_id == BETA, timeout=5000)
    click(qtbot, window, ALPHA, Qt.KeyboardModifier.ControlModifier)
    assert window.sidebar.selected_conversation_ids() == [BETA, ALPHA]
    menu = window.sidebar.context_menu_for(ALPHA)  # right-click on one of the selected
    delete = [a for a in menu.actions() if a.text().startswith("Delete")]
    assert [a.text() for a in delete] == ["Delete 2 conversations"]
    delete[0].trigger()
    qtbot.waitUntil(lambda: listed(window) == {GAMMA}, timeout=5000)
    assert window.banner.isVisible()
    assert window.banner.problem is not None
    assert window.banner.problem.title == "2 conversations deleted"
    assert window.conversation_id is None  # the open one was among them: a new chat
    window.banner.fix_button.click()  # Undo
    qtbot.waitUntil(lambda: listed(window) == {ALPHA, BETA, GAMMA}, timeout=5000)
    qtbot.waitUntil(lambda: sorted(window.sidebar.selected_conversation_ids()) == [ALPHA, BETA], timeout=5000)


def test_the_menu_of_a_conversation_outside_the_selection_deletes_only_it(
    qtbot: Any, window: MainWindow
) -> None:
    click(qtbot, window, BETA)
    click(qtbot, window, ALPHA, Qt.KeyboardModifier.ControlModifier)
    menu = window.sidebar.context_menu_for(GAMMA)
    [delete] = [a for a in menu.actions() if a.text().startswith("Delete")]
    assert delete.text() == "Delete"
    delete.trigger()
    qtbot.waitUntil(lambda: listed(window) == {ALPHA, BETA}, timeout=5000)
    assert window.banner.problem is not None
    assert window.banner.problem.title == "Conversation deleted"


def test_the_delete_key_deletes_the_selected_conversations(qtbot: Any, window: MainWindow) -> None:
    click(qtbot, window, GAMMA)
    click(qtbot, window, ALPHA, Qt.KeyboardModifier.ControlModifier)
    window.sidebar.list.setFocus()
    qtbot.waitUntil(window.sidebar.list.hasFocus, timeout=2000)
    qtbot.keyClick(window.sidebar.list, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: listed(window) == {BETA}, timeout=5000)
    assert window.banner.problem is not None
    assert window.banner.problem.title == "2 conversations deleted"
