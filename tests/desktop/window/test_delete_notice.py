"""The banner after a delete ("Conversation deleted … Undo") is a notice, not a problem: it has the theme's
calm notice look (the current chat's colour, framed in the accent) in light and dark, not the error's red;
a problem shown after it is red again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from desktop import theme
from desktop.errors import Problem
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


@pytest.fixture
def window(request: pytest.FixtureRequest, qtbot: Any, app_paths: AppPaths) -> Iterator[MainWindow]:
    store = HistoryStore(app_paths.history_db)
    for title in ("Alpha", "Beta"):
        store.create_conversation(title=title)
    store.close()
    with fixture_window(request, qtbot, open_window(qtbot, app_paths, size=(1000, 700))) as shown:
        yield shown
    QApplication.styleHints().unsetColorScheme()
    theme.restore_system_look()


def choose(qtbot: Any, window: MainWindow, chosen: str) -> theme.Colours:
    expected = theme.colours(chosen == "dark")
    current = window.settings.settings
    window.settings.update(
        current.model_copy(update={"appearance": current.appearance.model_copy(update={"theme": chosen})})
    )
    qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Base).name() == expected.chat)
    return expected


def background(window: MainWindow) -> str:
    """The banner's fill, inside its rounded border (its left end, beside the title)."""
    banner = window.banner
    QApplication.processEvents()
    return banner.grab().toImage().pixelColor(4, banner.height() // 2).name()


@pytest.mark.parametrize("chosen", ["light", "dark"])
def test_the_delete_banner_has_the_notice_look_and_a_problem_after_it_the_error_look(
    qtbot: Any, window: MainWindow, chosen: str
) -> None:
    colours = choose(qtbot, window, chosen)
    alpha = next(c.id for c in window.sidebar.model.conversations() if c.title == "Alpha")
    window.conversations.delete([alpha])
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    assert window.banner.problem is not None
    assert window.banner.problem.title == "Conversation deleted"
    assert window.banner.problem.notice
    assert window.banner.accessibleName() == "Notice"
    assert background(window) == QColor(colours.selection).name()

    window.show_problem(Problem("Not reachable", "Nothing answers at http://127.0.0.1:9."))
    assert window.banner.accessibleName() == "Problem"
    red = "#5c2b29" if chosen == "dark" else "#fdecea"  # theme.banner_style's error fill
    assert background(window) == red
