"""ConversationActions on its own (a store, the sidebar, ShownConversation; no MainWindow): each action only
writes to the store, and the sidebar follows the store by itself."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QSettings

from desktop.errors import Problem
from desktop.widgets.sidebar import Sidebar
from desktop.window.conversations import ConversationActions
from desktop.window.fix_actions import FixRegistry
from desktop.window.shown import ShownConversation
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.qasync_loop import qloop, run  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def test_delete_then_undo_through_the_fix_with_the_list_following_the_store(
    qtbot: Any, app_paths: AppPaths
) -> None:
    history = HistoryStore(app_paths.history_db)
    first, second = (history.create_conversation(title=t).id for t in ("First", "Second"))
    history.close()
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    sidebar = Sidebar(store)
    qtbot.addWidget(sidebar)
    shown = ShownConversation(QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat))
    calls: list[object] = []
    problems: list[Problem] = []

    async def show(conversation_id: int) -> None:
        calls.append(("show", conversation_id))

    actions = ConversationActions(
        store=store,
        sidebar=sidebar,
        shown=shown,
        stop_turn=lambda cid: calls.append(("stop", cid)),
        new_chat=lambda: calls.append("new chat"),
        show_conversation=show,
        show_problem=problems.append,
    )
    registry = FixRegistry(lambda _words: None)
    actions.register_fixes(registry)
    try:
        run(qtbot, sidebar.model.reload())
        shown.show_tree(run(qtbot, store.load(second)))
        run(qtbot, actions.set_pinned(first, True))
        run(qtbot, sidebar.settled())
        assert [c.title for c in sidebar.model.conversations()] == ["First", "Second"]  # pinned first
        run(qtbot, actions.delete_now(first, second))
        assert calls == [("stop", first), ("stop", second), "new chat"]  # the shown one went
        run(qtbot, sidebar.settled())
        assert sidebar.model.conversations() == []
        fix = problems[-1].fix
        assert fix is not None
        registry.apply(fix)  # the banner's Undo
        qtbot.waitUntil(lambda: ("show", first) in calls, timeout=5000)
        assert sidebar.model.row_of(first) >= 0
        assert sidebar.model.row_of(second) >= 0
        assert sorted(sidebar.selected_conversation_ids()) == sorted([first, second])
    finally:
        run(qtbot, sidebar.aclose())
        run(qtbot, store.close())
