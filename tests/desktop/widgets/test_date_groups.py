"""The sidebar's date groups: the arithmetic, and the headings drawn above the rows that start a group."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QStyleOptionViewItem

from desktop.widgets.date_groups import date_group
from desktop.widgets.sidebar import GROUP_ROLE
from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.settings.store import SettingsStore
from tests.support.qasync_loop import qloop, run  # noqa: F401 - qloop is a fixture

NOW = datetime(2026, 12, 6, 9, 30)


@pytest.mark.parametrize(
    ("when", "group"),
    [
        (NOW, "Today"),
        (NOW.replace(hour=0, minute=1), "Today"),
        (NOW + timedelta(hours=3), "Today"),  # a clock that runs ahead
        (NOW - timedelta(days=1), "Yesterday"),
        (NOW.replace(hour=0, minute=0) - timedelta(minutes=1), "Yesterday"),  # 23:59 the day before
        (NOW - timedelta(days=2), "Previous 7 days"),
        (NOW - timedelta(days=6), "Previous 7 days"),
        (NOW - timedelta(days=7), "Previous 30 days"),
        (NOW - timedelta(days=29), "Previous 30 days"),
        (NOW - timedelta(days=30), "November 2026"),
        (datetime(2025, 12, 31, 23, 0), "December 2025"),
    ],
)
def test_date_group(when: datetime, group: str) -> None:
    assert date_group(when, NOW) == group


def test_pinned_wins_over_the_date() -> None:
    assert date_group(NOW, NOW, pinned=True) == "Pinned"


@pytest.mark.gui
@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("This plugin does not support")
def test_the_sidebar_heads_each_group_once_above_its_first_row(
    qtbot: Any, app_paths: AppPaths, tmp_path: Path
) -> None:
    store = HistoryStore(app_paths.history_db)
    now = time.time()
    for title, age_days, pinned in (
        ("Old plan", 70, False),
        ("Last week", 3, False),
        ("Also last week", 2, False),
        ("Yesterday's", 1, False),
        ("Pinned recipe", 40, True),
        ("Fresh", 0, False),
    ):
        conversation = store.create_conversation(title=title)
        store.update_conversation(conversation.id, pinned=pinned)
        when = now - age_days * 86400
        store._conn.execute("UPDATE conversations SET updated_at=? WHERE id=?", (when, conversation.id))
        store._conn.commit()
    store.close()
    async_store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=async_store,
        chat=ChatEngine(async_store, lambda: None),
        settings=SettingsStore.open(app_paths.settings_file),
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    try:
        window.resize(1000, 700)
        window.show()
        run(qtbot, window.restore())
        model, view = window.sidebar.model, window.sidebar.list
        titles = [c.title for c in model.conversations()]
        assert titles == ["Pinned recipe", "Fresh", "Yesterday's", "Also last week", "Last week", "Old plan"]
        groups = [model.data(model.index(r, 0), GROUP_ROLE) for r in range(model.rowCount())]
        assert groups[:4] == ["Pinned", "Today", "Yesterday", "Previous 7 days"]
        assert groups[4] == "Previous 7 days"
        delegate = view.itemDelegate()
        headings = [delegate.heading(model.index(r, 0)) for r in range(model.rowCount())]
        assert headings[:5] == ["Pinned", "Today", "Yesterday", "Previous 7 days", None]  # once a group
        assert headings[5] == groups[5]  # a month
        assert str(groups[5]).endswith(str(datetime.fromtimestamp(now - 70 * 86400).year))
        option = QStyleOptionViewItem()
        option.initFrom(view)
        option.widget = view  # sized by the view's own style (the window's sheet pads the rows)
        first, continued = (delegate.sizeHint(option, model.index(r, 0)).height() for r in (3, 4))
        assert first > continued  # room for the heading above the first row of a group
        # Clicking a row still opens that conversation (the heading belongs to the row's rectangle).
        rect = view.visualRect(model.index(4, 0))
        assert rect.height() == continued
        window.sidebar.grab().save(str(tmp_path / "sidebar.png"))
        window.sidebar.grab().save("/tmp/sidebar-groups.png")
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, async_store.close())
