"""The sidebar over 10,000 conversations: the first page only at start, more as the list scrolls, pinned on
top; rename and pin from the window."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QSettings, Qt

from desktop.widgets.sidebar import PAGE_SIZE
from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.settings.store import SettingsStore
from tests.support.qasync_loop import qloop, run  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
CONVERSATIONS = 10_000


def fill(path) -> None:  # type: ignore[no-untyped-def]
    # Bulk SQL through the real schema (as the store's scale test does): 10,000 one-message conversations.
    store = HistoryStore(path)
    conn = store._conn
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO conversations (id, uid, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        ((i, f"u{i}", f"Conversation {i}", i, i) for i in range(1, CONVERSATIONS + 1)),
    )
    conn.executemany(
        "INSERT INTO messages (conversation_id, role, text, content, created_at, updated_at)"
        " VALUES (?, 'user', ?, '{}', ?, ?)",
        ((i, f"question number {i}", i, i) for i in range(1, CONVERSATIONS + 1)),
    )
    conn.execute("COMMIT")
    store.close()


def test_ten_thousand_conversations_are_listed_page_by_page(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    fill(app_paths.history_db)
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=store,
        chat=ChatEngine(store, lambda: None),
        settings=SettingsStore.open(app_paths.settings_file),
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    try:
        window.show()
        started = time.perf_counter()
        run(qtbot, window.restore())
        print(f"restore with {CONVERSATIONS} conversations: {time.perf_counter() - started:.3f} s")
        model = window.sidebar.model
        assert model.rowCount() == PAGE_SIZE  # only the first page was read
        assert model.pages_loaded == 1
        # Newest first, and the newest conversation is open.
        assert model.conversations()[0].title == f"Conversation {CONVERSATIONS}"
        assert window.conversation_id == CONVERSATIONS
        # Scrolling to the end fetches the next page.
        window.sidebar.list.scrollToBottom()
        qtbot.waitUntil(lambda: model.rowCount() >= 2 * PAGE_SIZE, timeout=5000)
        titles = [c.title for c in model.conversations()]
        assert titles[PAGE_SIZE] == f"Conversation {CONVERSATIONS - PAGE_SIZE}"
        assert len(set(titles)) == len(titles)
        # Pin an old one: it comes first; rename it through the dialog.
        run(qtbot, window.conversations.set_pinned(5, True))
        run(qtbot, window.sidebar.settled())  # the list follows the store
        from desktop import errors

        assert model.rowCount() > 0, (errors.reporter().reported, model._generation, model._busy, model._more)
        assert model.conversations()[0].title == "Conversation 5"
        assert not model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole).isNull()  # the pin
        window.conversations.rename(5)
        dialog = window.sidebar.name_dialog
        assert dialog is not None
        assert dialog.width() >= 420
        dialog.setTextValue("Pinned and renamed")
        dialog.accept()
        qtbot.waitUntil(
            lambda: model.rowCount() > 0 and model.conversations()[0].title == "Pinned and renamed",
            timeout=5000,
        )
        # Folder and tags show beside the title.
        run(qtbot, store.update_conversation(5, folder="Work", tags=["draft", "gpu"]))
        run(qtbot, model.reload())
        assert model.data(model.index(0, 0)) == "Pinned and renamed  [Work] #draft #gpu"
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, store.close())


def test_window_geometry_is_remembered(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    ini = str(app_paths.config / "window.ini")
    try:
        first = MainWindow(
            store=store,
            chat=ChatEngine(store, lambda: None),
            settings=SettingsStore.open(app_paths.settings_file),
            ui_state=QSettings(ini, QSettings.Format.IniFormat),
        )
        qtbot.addWidget(first)
        first.show()
        first.resize(700, 500)
        qtbot.waitUntil(lambda: first.size().width() == 700, timeout=2000)
        first.close()  # closing saves the geometry
        run(qtbot, first.shutdown())
        second = MainWindow(
            store=store,
            chat=ChatEngine(store, lambda: None),
            settings=SettingsStore.open(app_paths.settings_file),
            ui_state=QSettings(ini, QSettings.Format.IniFormat),
        )
        qtbot.addWidget(second)
        second.restore_geometry()
        # (The offscreen screen is 800x600: a size inside it comes back exactly.)
        assert (second.width(), second.height()) == (700, 500)
        run(qtbot, second.shutdown())
    finally:
        run(qtbot, store.close())
