"""The chosen theme reaches every window, not only the main one: Preferences, the server log, the dashboard
(its charts recoloured when the theme changes), About; the model picker's state in the theme's colours with
enough contrast; the sidebar's pin drawn from the theme's icon set. The offscreen desktop is light, so "dark"
here is a theme chosen against the system's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu, QWidget

from desktop import theme
from desktop.dialogs.about import show_about
from desktop.dialogs.dashboard import ServerDashboard
from desktop.dialogs.server_log import ServerLogDialog
from desktop.preferences.dialog import PreferencesDialog
from desktop.widgets.model_picker import ModelPicker
from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.server.supervisor import ServerState, Supervisor
from tests.support.main_window import fixture_window, open_window
from tests.support.memory_keyring import MemoryKeyring
from tests.support.qasync_loop import qloop, run  # noqa: F401 - qloop is a fixture
from tests.support.standin.launch import StandinRuntime

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


@pytest.fixture
def window(request: Any, qtbot: Any, app_paths: AppPaths) -> Iterator[MainWindow]:
    store = HistoryStore(app_paths.history_db)
    try:
        pinned = store.create_conversation(title="A pinned chat")
        store.update_conversation(pinned.id, pinned=True)
    finally:
        store.close()
    with fixture_window(request, qtbot, open_window(qtbot, app_paths, size=(1000, 700))) as shown:
        yield shown
    QApplication.styleHints().unsetColorScheme()
    theme.restore_system_look()


def choose(qtbot: Any, window: MainWindow, chosen: str, expected: theme.Colours) -> None:
    current = window.settings.settings
    window.settings.update(
        current.model_copy(update={"appearance": current.appearance.model_copy(update={"theme": chosen})})
    )
    qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Base).name() == expected.chat)
    for _ in range(3):
        QApplication.processEvents()


def lightness(widget: QWidget, x: int, y: int) -> int:
    return widget.grab().toImage().pixelColor(x, y).lightness()


def luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(v) for v in (colour.redF(), colour.greenF(), colour.blueF()))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: QColor, other: QColor) -> float:
    """WCAG 2's contrast ratio."""
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_dark_chosen_on_a_light_desktop_darkens_the_dialogs_and_the_dashboard(
    qtbot: Any, window: MainWindow, app_paths: AppPaths
) -> None:
    assert not theme.system_is_dark()  # the offscreen desktop is light
    choose(qtbot, window, "dark", theme.DARK)
    assert not theme.system_is_dark()  # the desktop is still light: our palette is not mistaken for it

    log = ServerLogDialog()
    qtbot.addWidget(log)
    log.set_lines(["INFO 12-06 02:10:01 vLLM API server version 0.32.0"])
    log.show()
    prefs = PreferencesDialog(
        window.settings, paths=app_paths, gpus=[], secrets=SecretStore(backend=MemoryKeyring())
    )
    qtbot.addWidget(prefs)
    prefs.show()
    dashboard = ServerDashboard(Supervisor(app_paths, StandinRuntime([])))
    qtbot.addWidget(dashboard)
    dashboard.show()
    about = show_about(window)
    qtbot.waitUntil(lambda: all(w.isVisible() for w in (log, prefs, dashboard, about)))
    QApplication.processEvents()

    for top in (log, prefs, dashboard, about):
        assert top.palette().color(QPalette.ColorRole.Window).name() == theme.DARK.side, top
        assert lightness(top, top.width() - 3, top.height() // 2) < 60, top  # painted dark, not white
    assert lightness(log.view.viewport(), 20, 20) < 80  # the log's text area
    assert prefs.nav.palette().color(QPalette.ColorRole.Text).name() == theme.DARK.text
    chart = dashboard.plots["generation_tok_s"]
    assert chart.backgroundBrush().color().name() == theme.DARK.chat
    assert lightness(chart, 5, 5) < 60
    assert dashboard.curves["waiting"].opts["pen"].color().name() == theme.DARK.chart_second
    tray_menu = QMenu()  # a menu outside the window (the tray's) takes the theme too
    tray_menu.addAction("Start server")
    tray_menu.popup(QPoint(0, 0))
    qtbot.waitExposed(tray_menu)
    assert lightness(tray_menu, 3, tray_menu.height() // 2) < 60
    tray_menu.close()

    # Light chosen later: every open window follows, the charts redrawn in the light colours.
    choose(qtbot, window, "light", theme.LIGHT)
    qtbot.waitUntil(lambda: chart.backgroundBrush().color().name() == theme.LIGHT.chat)
    assert dashboard.curves["generation_tok_s"].opts["pen"].color().name() == theme.LIGHT.accent
    assert dashboard.curves["waiting"].opts["pen"].color().name() == theme.LIGHT.chart_second
    assert chart.getAxis("bottom").textPen().color().name() == theme.LIGHT.muted
    axis = chart.getAxis("bottom")  # its label ("seconds ago") in the text's colour, not the faint line's
    assert axis.labelStyle["color"] == theme.LIGHT.muted
    assert theme.LIGHT.muted in axis.label.toHtml()
    for top in (log, prefs, dashboard, about):
        assert lightness(top, top.width() - 3, top.height() // 2) > 200, top
    assert lightness(chart, 5, 5) > 200

    # Back to the system: light, as the desktop is (not the dark palette the app set a moment ago).
    choose(qtbot, window, "dark", theme.DARK)
    choose(qtbot, window, "system", theme.LIGHT)
    assert lightness(log.view.viewport(), 20, 20) > 200
    about.close()


@pytest.mark.parametrize("dark", [False, True])
def test_the_picker_s_state_has_a_colour_per_kind_readable_on_its_background(qtbot: Any, dark: bool) -> None:
    frame = QMainWindow()
    qtbot.addWidget(frame)
    picker = ModelPicker(frame)
    frame.setCentralWidget(picker)
    theme.style_window(frame, dark)
    picker.show()
    frame.show()
    background = QColor(theme.colours(dark).chat)  # the picker's own background in the sheet
    seen = {}
    try:
        for state in (ServerState.STOPPED, ServerState.STARTING, ServerState.READY, ServerState.FAILED):
            picker.show_state(state)
            picker.state.ensurePolished()
            colour = picker.state.palette().color(QPalette.ColorRole.WindowText)
            assert contrast(colour, background) >= 4.5, (state, colour.name())
            seen[state] = colour.name()
        assert len(set(seen.values())) == 4, seen  # good, busy, bad and stopped each look their own
        assert seen[ServerState.READY] == theme.colours(dark).good
        assert seen[ServerState.FAILED] == theme.colours(dark).bad
        # Preparing is busy like starting (the server-state table says so), in the same colour.
        picker.show_state(ServerState.PREPARING)
        picker.state.ensurePolished()
        preparing = picker.state.palette().color(QPalette.ColorRole.WindowText).name()
        assert preparing == seen[ServerState.STARTING]
        # The theme changes under a shown state: the state takes the other theme's colour.
        picker.show_state(ServerState.READY)
        theme.style_window(frame, not dark)
        QApplication.processEvents()
        picker.state.ensurePolished()
        ready = picker.state.palette().color(QPalette.ColorRole.WindowText).name()
        assert ready == theme.colours(not dark).good
    finally:
        theme.restore_system_look()


def stroke(image: QImage) -> QColor:
    """The most opaque pixel's colour (the icon's stroke)."""
    best = max(
        ((x, y) for x in range(image.width()) for y in range(image.height())),
        key=lambda p: image.pixelColor(*p).alpha(),
    )
    return image.pixelColor(*best)


def test_the_pin_is_the_theme_s_icon_in_both_themes_and_crisp_at_2x(qtbot: Any, window: MainWindow) -> None:
    model = window.sidebar.model
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    decoration = model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole)
    assert decoration.cacheKey() == theme.icon("pin", False).cacheKey()
    light = decoration.pixmap(QSize(16, 16), 1.0).toImage()
    assert stroke(light).lightness() < 100  # dark strokes on the light sidebar
    sharp = decoration.pixmap(QSize(16, 16), 2.0)
    assert sharp.size() == QSize(32, 32)  # drawn at 2x from the SVG, not a 16 px picture scaled up
    assert sharp.devicePixelRatio() == 2.0

    changed: list[Any] = []
    model.dataChanged.connect(lambda *args: changed.append(args))
    choose(qtbot, window, "dark", theme.DARK)
    assert changed  # the view repaints the marker
    decoration = model.data(model.index(0, 0), Qt.ItemDataRole.DecorationRole)
    assert decoration.cacheKey() == theme.icon("pin", True).cacheKey()
    assert stroke(decoration.pixmap(QSize(16, 16), 1.0).toImage()).lightness() > 150  # light on dark
    # Drawn in the list: the row shows the light strokes of the dark set.
    rect = window.sidebar.list.visualRect(model.index(0, 0))
    row = window.sidebar.list.viewport().grab(rect).toImage()
    assert any(row.pixelColor(x, y).lightness() > 150 for x in range(24) for y in range(row.height()))


def _rules(sheet: str) -> dict[str, str]:
    """Each selector of a Qt style sheet with the body of its rule."""
    rules: dict[str, str] = {}
    for chunk in sheet.split("}"):
        if "{" not in chunk:
            continue
        selectors, body = chunk.split("{", 1)
        for selector in selectors.split(","):
            rules[" ".join(selector.split())] = rules.get(" ".join(selector.split()), "") + body
    return rules


@pytest.mark.parametrize("dark", [False, True])
def test_a_field_given_a_border_draws_its_own_arrows(dark: bool) -> None:
    # A spin box or combo box whose frame a sheet styles loses the style's native arrows: without its own
    # arrow images it shows broken buttons (the chat settings' Temperature and Tool choice once did).
    for sheet in (theme.style_sheet(QPalette(), dark), theme.app_sheet(dark)):
        rules = _rules(sheet)
        for selector, body in rules.items():
            for kind, arrows in (
                ("QSpinBox", ("up-arrow", "down-arrow")),
                ("QDoubleSpinBox", ("up-arrow", "down-arrow")),
                ("QComboBox", ("down-arrow",)),
            ):
                if selector.split(" ")[-1] != kind or "border:" not in body:
                    continue
                for arrow in arrows:
                    assert "image: url(" in rules.get(f"{selector}::{arrow}", ""), f"{selector}::{arrow}"


def test_a_window_shut_down_no_longer_restyles_the_application(
    qtbot: Any, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A closed window whose theme was dark put the dark palette back over the next window's light one at every
    # palette change (the app has one window, but a window left alive after its shutdown must stay quiet).
    window = open_window(qtbot, app_paths)
    qtbot.addWidget(window)
    run(qtbot, window.shutdown())
    run(qtbot, window.store.close())
    restyled: list[bool] = []
    monkeypatch.setattr(theme, "apply_app", restyled.append)
    QApplication.setPalette(theme.palette(True))
    QApplication.styleHints().setColorScheme(Qt.ColorScheme.Dark)
    for _ in range(5):
        QApplication.processEvents()
    QApplication.styleHints().unsetColorScheme()
    assert restyled == []
