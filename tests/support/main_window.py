"""One way to open and close a real ``MainWindow`` in GUI tests: a real history store, a real chat engine
aimed at whatever endpoint the test supplies (a stand-in server, or none), settings and window state under the
test's ``app_paths``. Tests that need a supervisor or a shared store build their window inline."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

from desktop.main_window import MainWindow
from desktop.transcript import MessageWidget
from engine.chat import ChatEngine, EndpointProvider
from engine.paths import AppPaths
from engine.settings import SettingsStore
from engine.store_async import AsyncHistoryStore
from tests.support.qasync_loop import run


def open_window(
    qtbot: Any,
    app_paths: AppPaths,
    endpoint: EndpointProvider = lambda: None,
    *,
    size: tuple[int, int] | None = None,
) -> MainWindow:
    """Show a window on a fresh store and restore it (sidebar filled, last conversation open)."""
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=store,
        chat=ChatEngine(store, endpoint),
        settings=SettingsStore.open(app_paths.settings_file),
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    if size is not None:
        window.resize(*size)
    window.show()
    try:
        run(qtbot, window.restore())
    except BaseException:
        # The caller never gets the window, so nobody else would close the store it holds.
        close_window(qtbot, window)
        raise
    return window


def close_window(qtbot: Any, window: MainWindow) -> None:
    """Stop the window's turns and subscriptions, then close its store."""
    run(qtbot, window.shutdown())
    run(qtbot, window.store.close())


def replies(window: MainWindow) -> list[MessageWidget]:
    """The assistant messages in the transcript, top to bottom."""
    return [w for w in window.transcript.messages() if w.data.role == "assistant"]
