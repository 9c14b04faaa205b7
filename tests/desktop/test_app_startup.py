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
