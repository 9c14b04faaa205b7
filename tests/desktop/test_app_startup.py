"""Cold start order: the window frame (Qt + sqlite) is shown and its history browsable before the heavy engine
modules (pydantic settings, httpx, Haystack) are loaded; what needs them waits until they are attached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from desktop import theme
from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.settings.store import SettingsStore
from tests.support.fresh_window import run_offscreen, window_script
from tests.support.qasync_loop import qloop, run  # noqa: F401

HEAVY = (
    "engine.chat.engine",
    "engine.settings.store",
    "engine.server.supervisor",
    "engine.server.profiles",
    "engine.transfer",
    "pydantic",
    "httpx",
    "haystack",
)


def loaded_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    loaded: list[str] = json.loads(run_offscreen(probe)[-1])
    return loaded


def test_the_window_module_loads_none_of_the_heavy_engine() -> None:
    assert loaded_after("import desktop.window.main_window") == []


def test_the_window_is_shown_with_its_history_before_any_heavy_module(tmp_path: Path) -> None:
    code = window_script(tmp_path, "pass")
    assert loaded_after(code) == []


def test_opening_the_window_from_the_command_line_skips_the_subcommand_modules() -> None:
    code = "from engine.cli import main\nmain([], gui=lambda args: 0)"
    assert loaded_after(code) == []
    # A subcommand still gets its module (and its help lists every command).
    entry = (
        "import runpy, sys; sys.argv = ['vllm-desk', '--help']; "
        "runpy.run_module('desktop.main', run_name='__main__')"
    )
    listed = "\n".join(run_offscreen(entry))
    assert "doctor" in listed
    assert "export" in listed


@pytest.mark.gui
@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("This plugin does not support")
def test_history_is_browsable_before_the_engine_and_send_waits_for_it(
    qtbot, qapp, app_paths: AppPaths
) -> None:  # type: ignore[no-untyped-def]
    history = HistoryStore(app_paths.history_db)
    chat_row = history.create_conversation(title="Earlier chat")
    history.add_message(chat_row.id, None, "user", "a question from yesterday")
    history.close()
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    ui_state = QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(store=store, paths=app_paths, ui_state=ui_state)
    qtbot.addWidget(window)
    try:
        window.show()
        run(qtbot, window.restore())
        assert window.conversation_id == chat_row.id
        assert [w.data.text for w in window.transcript.messages()] == ["a question from yesterday"]
        # Without the engine: Send, Preferences and regenerate wait; typing does not.
        assert not window.engine_ready
        assert not window.composer.send_button.isEnabled()
        assert not window.preferences_action.isEnabled()
        window.composer.editor.setPlainText("typed early")
        window.composer._send()
        assert window.composer.editor.toPlainText() == "typed early"  # kept, not sent into the void
        settings = SettingsStore.open(app_paths.settings_file)
        settings.update(
            settings.settings.model_copy(
                update={
                    "appearance": settings.settings.appearance.model_copy(
                        update={"theme": "dark", "font_size": 15}
                    )
                }
            )
        )
        window.attach(chat=ChatEngine(store, lambda: None), settings=settings)
        assert window.engine_ready
        assert window.composer.send_button.isEnabled()
        assert window.preferences_action.isEnabled()
        # The settings are applied on attach, and remembered so the next start colours the frame right away.
        assert window.transcript.cache.renderer.dark
        assert window.transcript.font().pointSize() == 15
        assert window.saved_theme() == "dark"
        # Saving the preferences later (settings.changed) applies them live.
        current = settings.settings
        settings.update(
            current.model_copy(
                update={
                    "appearance": current.appearance.model_copy(update={"theme": "light", "font_size": 9})
                }
            )
        )
        qtbot.waitUntil(lambda: window.transcript.font().pointSize() == 9, timeout=5000)
        assert not window.transcript.cache.renderer.dark
        assert window.composer.editor.font().pointSize() == 9
        assert window.saved_theme() == "light"
    finally:
        theme.apply(qapp, "system")  # the colour scheme is the application's: leave it as found
        run(qtbot, window.shutdown())
        run(qtbot, store.close())


def test_the_window_is_shown_before_markdown_and_pygments_load(tmp_path: Path) -> None:
    # markdown-it and Pygments (~40 ms) wait for the first message to render, the tools' engine (~10 ms) for
    # a chat with tools (issue 17's cold start).
    body = """
print(sorted(m for m in ("markdown_it", "mdit_py_plugins", "pygments", "engine.tools") if m in sys.modules))
from desktop.widgets.markdown_view import MarkdownRenderer, StreamSplitter
rendered = MarkdownRenderer(dark=True).render("| a |\\n|---|\\n| 1 |\\n\\n```python\\nx = 1\\n```\\n")
print("<table" in rendered.html, "<span style=" in rendered.html, rendered.code_blocks == ["x = 1\\n"])
splitter = StreamSplitter()
print(sorted(m for m in ("markdown_it", "mdit_py_plugins", "pygments") if m in sys.modules))
"""
    lines = run_offscreen(window_script(tmp_path, body))
    assert lines[-3:] == ["[]", "True True True", "['markdown_it', 'mdit_py_plugins', 'pygments']"]


@pytest.mark.gui
@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("This plugin does not support")
def test_a_saved_dark_theme_styles_the_window_dark_from_the_start(
    qtbot, qapp, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The last run's theme is known before the window's widgets are made: a dark window is not styled light
    first and then again (each sheet polishes every widget)."""
    import argparse

    from PySide6.QtWidgets import QMainWindow

    from desktop.app import build

    settings = SettingsStore.open(app_paths.settings_file)
    current = settings.settings
    settings.update(
        current.model_copy(
            update={
                "appearance": current.appearance.model_copy(update={"theme": "dark"}),
                "general": current.general.model_copy(update={"start_server_with_app": False}),
            }
        )
    )
    (app_paths.config / "window.ini").write_text("[window]\ntheme=dark\n")
    sheets: list[str] = []

    def set_sheet(window: QMainWindow, sheet: str) -> None:
        sheets.append(sheet)
        QMainWindow.setStyleSheet(window, sheet)

    monkeypatch.setattr(MainWindow, "setStyleSheet", set_sheet)
    args = argparse.Namespace(data_dir=str(app_paths.config.parent), tray=False)
    parts = run(qtbot, build(args, qapp, runtime=None, ensure_runtime=False, single_instance=False))
    assert parts is not None
    try:
        window = parts.window
        assert window.isVisible()
        assert window.transcript.cache.renderer.dark
        assert sheets
        assert all(theme.DARK.side in sheet and theme.LIGHT.side not in sheet for sheet in sheets)
        assert window.palette().color(window.palette().ColorRole.Base).name() == theme.DARK.chat
    finally:
        theme.apply(qapp, "system")
        run(qtbot, parts.close(), timeout=30)


@pytest.mark.gui
@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("This plugin does not support")
def test_the_last_chat_text_size_is_in_the_windows_first_sheet(
    qtbot, qapp, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The chat's text size of the last run is known before the settings load: the window is shown in it, and
    the settings (the same size) set no second sheet, which would polish every widget again."""
    from PySide6.QtWidgets import QMainWindow

    from desktop.window.main_window import saved_points

    ui_state = QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat)
    ui_state.setValue("window/chat_points", 15)
    sheets: list[str] = []

    def set_sheet(window: QMainWindow, sheet: str) -> None:
        sheets.append(sheet)
        QMainWindow.setStyleSheet(window, sheet)

    monkeypatch.setattr(MainWindow, "setStyleSheet", set_sheet)
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(store=store, paths=app_paths, ui_state=ui_state)
    qtbot.addWidget(window)
    try:
        window.show()
        assert window.transcript.font().pointSize() == 15  # before any settings are loaded
        settings = SettingsStore.open(app_paths.settings_file)
        current = settings.settings
        appearance = current.appearance.model_copy(update={"theme": "light", "font_size": 15})
        settings.update(current.model_copy(update={"appearance": appearance}))
        window.attach(chat=ChatEngine(store, lambda: None), settings=settings)
        assert len(sheets) == 1
        # Another size in the settings: applied, and remembered for the next start.
        current = settings.settings
        appearance = current.appearance.model_copy(update={"font_size": 9})
        settings.update(current.model_copy(update={"appearance": appearance}))
        qtbot.waitUntil(lambda: window.transcript.font().pointSize() == 9, timeout=5000)
        assert len(sheets) == 2
        assert saved_points(ui_state) == 9
    finally:
        theme.apply(qapp, "system")
        run(qtbot, window.shutdown())
        run(qtbot, store.close())
