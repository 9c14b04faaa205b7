"""Deleting one message (and the replies under it) from its own button, with Undo in the banner; the sidebar's
folder/tag filter. Real SQLite, the real window; no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication

from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window
from tests.support.qasync_loop import qloop, run  # noqa: F401

SHOTS = Path(__file__).resolve().parents[3] / "shots"
pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def texts(window: MainWindow) -> list[str]:
    return [w.data.text for w in window.transcript.messages()]


def test_delete_a_message_and_its_replies_then_undo(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    history = HistoryStore(app_paths.history_db)
    conv = history.create_conversation(title="Trip")
    q1 = history.add_message(conv.id, None, "user", "Where to go?")
    a1 = history.add_message(conv.id, q1.id, "assistant", "The coast.")
    q2 = history.add_message(conv.id, a1.id, "user", "And in winter?")
    history.add_message(conv.id, q2.id, "assistant", "The mountains.")
    history.close()
    window = open_window(qtbot, app_paths)
    try:
        assert texts(window) == ["Where to go?", "The coast.", "And in winter?", "The mountains."]
        target = window.transcript.message(q2.id)
        assert target is not None
        # A message widget added to the shown transcript is shown on the event loop's next turn (Qt posts
        # the show), which restore() may return before: wait for it, not for a fixed time.
        qtbot.waitUntil(target.isVisible, timeout=5000)
        assert target.delete_button.isVisible()
        assert target.delete_button.isEnabled()
        # Its actions are drawn while the pointer is over the message (or one of them has the focus).
        point = QPointF(5, 5)
        QApplication.sendEvent(target, QEnterEvent(point, point, QPointF(target.mapToGlobal(QPoint(5, 5)))))
        assert target.revealed
        qtbot.mouseClick(target.delete_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: texts(window) == ["Where to go?", "The coast."], timeout=5000)
        banner = window.banner
        qtbot.waitUntil(banner.isVisible, timeout=5000)
        assert banner.problem is not None
        assert banner.problem.title == "Message deleted"
        assert banner.problem.notice  # the calm look of a notice, not a problem's red
        assert banner.fix_button.text() == "Undo"
        # Gone from the store too (a reload shows the same).
        tree = run(qtbot, window.store.load(conv.id))
        assert [m.text for m in tree.branch()] == ["Where to go?", "The coast."]
        qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(texts(window)) == 4, timeout=5000)
        assert texts(window)[2:] == ["And in winter?", "The mountains."]
    finally:
        close_window(qtbot, window)


def test_sidebar_filters_by_folder_and_tag(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    history = HistoryStore(app_paths.history_db)
    history.create_conversation(title="Plain")
    history.create_conversation(title="Borrow checker", folder="Work", tags=["rust"])
    history.create_conversation(title="Bread", folder="Home", tags=["baking"])
    history.create_conversation(title="Rust at home", folder="Home", tags=["rust"])
    history.close()
    window = open_window(qtbot, app_paths)
    sidebar = window.sidebar
    try:
        box = sidebar.filter_box
        qtbot.waitUntil(lambda: box.count() == 5, timeout=5000)
        assert box.isVisible()
        assert [box.itemText(i) for i in range(box.count())] == [
            "All chats",
            "Folder: Home",
            "Folder: Work",
            "#baking",
            "#rust",
        ]

        def titles() -> list[str]:
            return sorted(c.title for c in sidebar.model.conversations())

        box.setCurrentIndex(4)
        box.activated.emit(4)
        qtbot.waitUntil(lambda: titles() == ["Borrow checker", "Rust at home"], timeout=5000)
        box.setCurrentIndex(1)
        box.activated.emit(1)
        qtbot.waitUntil(lambda: titles() == ["Bread", "Rust at home"], timeout=5000)
        assert box.currentText() == "Folder: Home"
        SHOTS.mkdir(exist_ok=True)
        assert window.grab().save(str(SHOTS / "sidebar-filter.png"))
        box.setCurrentIndex(0)
        box.activated.emit(0)
        qtbot.waitUntil(lambda: len(titles()) == 4, timeout=5000)
    finally:
        close_window(qtbot, window)
