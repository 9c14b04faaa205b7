"""ShownConversation on its own: the one object that knows which conversation (or which new chat) is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from desktop.window.shown import ShownConversation
from engine.history.records import ConversationTree
from engine.history.store import HistoryStore

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]


def _tree(tmp_path: Path, title: str) -> ConversationTree:
    store = HistoryStore(tmp_path / "history.db")
    try:
        return store.load(store.create_conversation(title=title).id)
    finally:
        store.close(purge=False)


def test_it_remembers_what_is_shown_and_says_when_it_changes(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    shown = ShownConversation(state)
    changes: list[object] = []
    shown.changed.connect(changes.append)
    first, second = _tree(tmp_path, "one"), _tree(tmp_path, "two")
    assert shown.show_tree(first)
    assert not shown.show_tree(first)  # the same one again: no change
    assert shown.show_tree(second)
    assert changes == [first.conversation.id, second.conversation.id]
    assert ShownConversation(state).last_conversation() == second.conversation.id  # the next run's
    assert not shown.update_tree(first)  # a late load of another conversation is ignored
    assert shown.tree is second
    shown.show_new_chat()
    assert (shown.conversation_id, shown.tree, changes[-1]) == (None, None, None)


def test_each_new_chat_gets_its_own_number_and_only_the_one_on_screen_adopts(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shown = ShownConversation(QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
    assert shown.here()[0] is None
    first = shown.here()[1]
    assert shown.here() == (None, first)  # numbered once
    shown.show_new_chat()
    later = shown.here()[1]
    assert later != first
    assert not shown.shows(None, first)
    assert shown.shows(None, later)
    assert not shown.adopt(41, first)  # written in the earlier new chat: the window moved on
    assert shown.conversation_id is None
    assert shown.adopt(42, later)
    assert shown.here() == (42, 0)
    assert shown.shows(42)
    shown.drop(42)  # its first send was refused
    assert shown.conversation_id is None
