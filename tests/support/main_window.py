"""One way to open and close a real ``MainWindow`` in GUI tests: a real history store, a real chat engine
aimed at whatever endpoint the test supplies (a stand-in server, or none), settings and window state under the
test's ``app_paths``. Tests that need a supervisor or a shared store build their window inline."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings

from desktop.widgets.transcript import MessageWidget
from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine, EndpointProvider
from engine.history.async_store import AsyncHistoryStore
from engine.paths import AppPaths
from engine.settings.store import SettingsStore
from tests.support.qasync_loop import run

if TYPE_CHECKING:
    from desktop.window.server_link import RuntimeEnsurer
    from engine.server.supervisor import Supervisor


def open_window(
    qtbot: Any,
    app_paths: AppPaths,
    endpoint: EndpointProvider = lambda: None,
    *,
    size: tuple[int, int] | None = None,
    paths: AppPaths | None = None,
) -> MainWindow:
    """Show a window on a fresh store and restore it (sidebar filled, last conversation open). ``paths``:
    the window's, as the app gives them (Preferences, documents and tools read their files there); without,
    it has none."""
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=store,
        chat=ChatEngine(store, endpoint),
        settings=SettingsStore.open(app_paths.settings_file),
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
        paths=paths,
    )
    qtbot.addWidget(window)
    if size is not None:
        window.resize(*size)
    window.show()
    try:
        run(qtbot, window.restore())
        # The restored conversation's newest message is built at once, the rest of its page a slice per tick
        # (one message per tick under load): a test starts from the whole page.
        qtbot.waitUntil(lambda: not window.transcript.building, timeout=10000)
    except BaseException:
        # The caller never gets the window, so nobody else would close the store it holds.
        close_window(qtbot, window)
        raise
    return window


def close_window(qtbot: Any, window: MainWindow) -> None:
    """Stop the window's turns and subscriptions, then close its store."""
    run(qtbot, window.shutdown())
    run(qtbot, window.store.close())


@contextmanager
def fixture_window(request: Any, qtbot: Any, window: MainWindow) -> Iterator[MainWindow]:
    """For a fixture that yields ``window``: closes it in the fixture's teardown, before it is deleted.

    pytest-qt closes and deletes the widgets it was given *before* fixtures are torn down, so a fixture's
    ``close_window`` could run while the window is being deleted under it (flaky "already deleted" errors).
    """
    request.node.qt_widgets = [
        (ref, func) for ref, func in getattr(request.node, "qt_widgets", []) if ref() is not window
    ]
    try:
        yield window
    finally:
        close_window(qtbot, window)
        window.close()
        window.deleteLater()


def replies(window: MainWindow) -> list[MessageWidget]:
    """The assistant messages in the transcript, top to bottom."""
    return [w for w in window.transcript.messages() if w.data.role == "assistant"]


@contextmanager
def supervised_window(
    qtbot: Any,
    app_paths: AppPaths,
    supervisor: Supervisor,
    settings: SettingsStore,
    ensure_runtime: RuntimeEnsurer | None = None,
    *,
    shown: bool = True,
) -> Iterator[MainWindow]:
    """The window the app makes over ``supervisor`` (so with its server link), shown and restored unless
    ``shown`` is false; closed with its store afterwards (the supervisor stays the caller's)."""
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=store,
        chat=ChatEngine(store, lambda: supervisor.endpoint),
        settings=settings,
        supervisor=supervisor,
        ensure_runtime=ensure_runtime,
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    try:
        if shown:
            window.show()
            run(qtbot, window.restore())
        yield window
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, store.close())
