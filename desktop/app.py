"""The application: the one place where the engine objects are made and wired to the window and the tray.

Start order, for a fast first paint: Qt and the light engine modules, the window shown, *then* the history
restored, the server started (if "start with the app"), and Haystack imported in the background at the
first keystroke in the composer, so an idle window never loads it and the first message does not wait
for it. ``run_app`` returns the process exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from engine import APP_ID, APP_NAME, __version__, assets
from engine.chat.warm_imports import CHAT_MODULES, IMPORTS, ImportGate
from engine.errors import DeskError

log = logging.getLogger(__name__)

# For the benchmarks (bench/cold_start.py, bench/memory.py): with VLLM_DESK_BENCH_STARTUP=1 the app
# prints "VLLM_DESK_BENCH_STARTUP shown <epoch>" once the window is on screen, "... painted <epoch>
# <conversation id|None>" once the last conversation is (before the engine is attached) and "... ready
# <epoch>" once the engine is attached, then quits; =stay keeps it running. With "shown" goes "... shown_cpu
# <seconds>": the process's CPU time until then (all threads); a busy machine disturbs it less than a clock.
# Unset (always, for users): nothing happens.
BENCH_STARTUP_ENV = "VLLM_DESK_BENCH_STARTUP"


def _bench_mark(name: str, app: QCoreApplication | None = None, detail: object = "") -> None:
    mode = os.environ.get(BENCH_STARTUP_ENV)
    if not mode:
        return
    from PySide6.QtCore import QTimer

    def mark() -> None:  # on the next loop turn: after the window's pending show/paint events
        sys.stdout.write(f"{BENCH_STARTUP_ENV} {name} {time.time():.6f} {detail}\n")
        if name == "shown":
            sys.stdout.write(f"{BENCH_STARTUP_ENV} shown_cpu {time.process_time():.6f}\n")
        sys.stdout.flush()
        if app is not None and mode != "stay":
            app.quit()

    QTimer.singleShot(0, mark)


@dataclass
class AppParts:
    """What :func:`build` made; ``close`` undoes it in order. Used by ``run_app``, tests and benchmarks."""

    window: Any
    store: Any
    supervisor: Any
    chat: Any
    settings: Any
    tray: Any = None
    actions: Any = None
    dashboards: Any = None
    instance: Any = None
    undo_hook: Any = None
    shown_at: float = 0.0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.window.shutdown()
        tool_turns = getattr(self.window, "tool_turns", None)
        if tool_turns is not None:  # the MCP servers the chats started: none is left behind
            await tool_turns.aclose()
        await self.supervisor.shutdown()
        await self.store.close()
        if self.tray is not None:
            self.tray.close()
        if self.actions is not None:
            self.window.model_picker.close_picker()
            self.actions.close()
        if self.dashboards is not None:
            self.dashboards.close()
        if self.instance is not None:
            self.instance.close()
        if self.undo_hook is not None:
            self.undo_hook()


def make_qapplication() -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName(APP_ID)
    app.setApplicationVersion(__version__)
    app.setWindowIcon(QIcon(str(assets.app_icon_svg())))
    return app


async def build(
    args: argparse.Namespace,
    app: QApplication,
    *,
    runtime: Any = None,
    ensure_runtime: bool = True,
    single_instance: bool = True,
) -> AppParts | None:
    """Make and wire everything, show the window, start the background work. ``None``: another copy runs.

    ``runtime`` replaces the located vLLM (tests pass the stand-in's runtime); ``ensure_runtime`` installs
    the managed runtime on a fresh machine.

    Order: the window frame first (Qt, sqlite, the last run's theme), shown, its history restored; then the
    heavy engine modules are imported on a thread (the loop keeps painting) and attached to the window.
    """
    from PySide6.QtWidgets import QSystemTrayIcon

    from desktop import errors, theme
    from desktop.window.main_window import MainWindow, saved_theme, window_state
    from engine.history.async_store import AsyncHistoryStore
    from engine.paths import AppPaths

    paths = AppPaths.resolve(args.data_dir).ensure()
    instance = None
    if single_instance:
        from desktop.single_instance import SingleInstance

        instance = SingleInstance.for_paths(paths)
        if not instance.acquire(sys.argv[1:]):
            return None
    undo_hook = errors.install_excepthook()
    store = await AsyncHistoryStore.open(paths.history_db)
    # The last run's theme from the start: a dark window is not styled light first and then again (each
    # sheet polishes every widget; the second one was ~10 ms of the cold start).
    ui_state = window_state(paths.config)
    window = MainWindow(
        store=store, paths=paths, ui_state=ui_state, dark=theme.apply(app, saved_theme(ui_state))
    )
    ui_state.setParent(window)
    if instance is not None:  # a second launch may hand over at once (it needs no engine)
        from desktop.single_instance import bring_to_front

        instance.message_received.connect(lambda argv: _handover(window, argv, bring_to_front))
    window.restore_geometry()
    # The tray's own check is cheap; the tray itself is made once the engine is there.
    if not (getattr(args, "tray", False) and QSystemTrayIcon.isSystemTrayAvailable()):
        window.show()
    shown_at = time.perf_counter()
    _bench_mark("shown")
    try:
        await window.restore()  # the sidebar's first page and the last conversation: sqlite only
        _bench_mark("painted", None, window.conversation_id)
        settings, supervisor, chat = await _make_engine(paths, store, runtime)
    except BaseException:
        await window.shutdown()
        await store.close()
        undo_hook()
        if instance is not None:
            instance.close()
        raise
    vllm_path = str(settings.settings.general.vllm_path) if settings.settings.general.vllm_path else None

    async def ensure(progress: Any) -> object:
        from engine.runtime.install import ensure_runtime_async

        return await ensure_runtime_async(paths, vllm_path, progress)

    window.attach(
        chat=chat,
        settings=settings,
        supervisor=supervisor,
        ensure_runtime=ensure if ensure_runtime and runtime is None else None,
    )
    parts = AppParts(window, store, supervisor, chat, settings, instance=instance, undo_hook=undo_hook)
    parts.shown_at = shown_at
    _wire_tray(parts, app)
    new_chat = bool(getattr(args, "new_chat", False))  # the launcher's "New chat" action
    parts.tasks.append(asyncio.ensure_future(_after_show(parts, new_chat=new_chat)))
    return parts


async def _make_engine(paths: Any, store: Any, runtime: Any) -> tuple[Any, Any, Any]:
    """Settings, supervisor and chat engine; their modules (pydantic, httpx, ...) imported on a thread."""
    await IMPORTS.ready(*_ENGINE_MODULES)  # the one import thread: never beside a second importer
    from engine.chat.engine import ChatEngine
    from engine.server.supervisor import Supervisor
    from engine.settings.store import SettingsStore

    settings = SettingsStore.open(paths.settings_file)
    general = settings.settings.general
    supervisor = Supervisor(
        paths, runtime, runtime_path=str(general.vllm_path) if general.vllm_path else None
    )
    chat = ChatEngine(store, lambda: supervisor.endpoint)
    return settings, supervisor, chat


_ENGINE_MODULES = (
    "engine.settings.store",
    "engine.server.supervisor",
    "engine.chat.engine",
    "engine.runtime.install",
    "desktop.window.server_link",
    "desktop.launcher.tray",
    "desktop.window.transfer_actions",
)


def _wire_tray(parts: AppParts, app: QApplication) -> None:
    from desktop.dialogs.dashboard import DashboardOpener
    from desktop.launcher.tray import LauncherActions, TrayLauncher
    from desktop.notifications import Notifier
    from desktop.single_instance import bring_to_front

    window, settings = parts.window, parts.settings
    actions = LauncherActions(parts.supervisor, settings, server=window.server_link)

    def notify_in_window(title: str, message: str) -> None:
        # No tray (offscreen, many Wayland/GNOME desktops): the status bar says it, and the taskbar entry
        # asks for attention when the window is behind others.
        window.server_status.show_notice(title, message)
        if not window.isActiveWindow():
            QApplication.alert(window)

    notifier = Notifier(
        enabled=lambda: bool(settings.settings.general.notifications), fallback=notify_in_window
    )
    tray = TrayLauncher(actions, parts.supervisor, settings, notifier, paths=window.paths)
    actions.open_window_requested.connect(lambda: bring_to_front(window))

    def new_chat() -> None:
        bring_to_front(window)
        window.new_chat()

    def open_conversation(conversation_id: int) -> None:
        bring_to_front(window)
        window.open_conversation(conversation_id)

    actions.new_chat_requested.connect(new_chat)
    actions.preferences_requested.connect(window.open_preferences)
    dashboards = DashboardOpener(parts.supervisor)
    actions.dashboard_requested.connect(dashboards.open)
    window.server_menu.addAction(actions.dashboard_action)
    actions.conversation_requested.connect(open_conversation)
    actions.quit_requested.connect(app.quit)
    window.hide_on_close = tray.hide_on_close
    window.quit_requested.connect(actions.quit)
    if not tray.available:
        actions.fill_menu(window.launcher_menu, include_open=False)  # the tray's actions, from the window
    window.model_picker.bind(actions)
    parts.tray, parts.actions, parts.dashboards = tray, actions, dashboards


def _handover(window: Any, argv: list[str], bring_to_front: Any) -> None:
    bring_to_front(window)
    if "--new-chat" in argv:
        window.new_chat()


async def _after_show(parts: AppParts, *, new_chat: bool = False) -> None:
    """Everything that may wait until the window is on screen."""
    from desktop import errors

    window, settings = parts.window, parts.settings
    problems = settings.take_problems()
    if problems is not None:
        errors.report(problems)
    if new_chat:
        window.new_chat()
    _bench_mark("ready", QCoreApplication.instance())  # the engine attached too; =1 quits here
    from desktop.window.strays import offer_stray_cleanup

    offer_stray_cleanup(window)  # vLLM processes a crashed run left: found off the GUI thread, offered
    from desktop.widgets.markdown_view import RENDER_MODULES

    IMPORTS.submit(*RENDER_MODULES)  # markdown-it and Pygments, kept out of the cold start, before any reply
    if parts.actions is not None:
        await parts.actions.load_recent(parts.store)
    if settings.settings.general.start_server_with_app and window.server_link is not None:
        window.server_link.start()
    warm_on_first_edit(window.composer.editor)


def warm_on_first_edit(editor: Any, imports: ImportGate | None = None) -> None:
    """Import Haystack (~60 MB, ~0.7 s) when the user starts writing, on the process's one import thread
    (``engine.chat.warm_imports``): an idle window never pays for it, the import overlaps the typing, and a
    message sent at once waits for this same import instead of starting a second one."""
    started = False

    def start() -> None:
        nonlocal started
        if started:
            return
        started = True
        editor.textChanged.disconnect(start)
        (imports or IMPORTS).submit(*CHAT_MODULES)  # a failure is reported by the send that needs it

    editor.textChanged.connect(start)
    if editor.toPlainText():
        start()


def run_app(args: argparse.Namespace) -> int:
    """Open the window (or only the tray with ``--tray``) and run until the user quits."""
    from desktop.event_loop import make_event_loop  # imports qasync: only when the app runs

    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # before anything imports Haystack
    app = make_qapplication()
    app.setQuitOnLastWindowClosed(False)  # quitting goes through the launcher, which stops servers first
    loop = make_event_loop(app)
    asyncio.set_event_loop(loop)
    with loop:
        main = loop.create_task(_main(args, app))
        for _attempt in range(3):
            try:
                code: int = loop.run_until_complete(main)
            except RuntimeError:
                if main.done():
                    raise
                # QApplication.quit() ended the Qt loop under us (the session ending, a hook): aboutToQuit
                # has told _main to quit; run the loop again so it stops the servers and closes the store.
                log.info("Qt quit before the app's shutdown ran; finishing the shutdown")
                continue
            loop.run_until_complete(loop.shutdown_asyncgens())  # streams dropped mid-reply close cleanly
            return code
    return 1


async def _main(args: argparse.Namespace, app: QApplication) -> int:
    # One coroutine for the app's whole life, so every task runs while the asyncio loop is running.
    quitting = asyncio.Event()
    stopped_by = _quit_on_signals(quitting)
    try:
        parts = await build(args, app)
    except DeskError as problem:
        QMessageBox.critical(None, problem.title, f"{problem}\n\n{problem.fix.hint if problem.fix else ''}")
        return 1
    if parts is None:
        return 0
    parts.actions.quit_requested.disconnect(app.quit)
    parts.actions.quit_requested.connect(quitting.set)  # emitted once the servers are stopped
    app.aboutToQuit.connect(quitting.set)  # the session ends
    await quitting.wait()
    await parts.close()
    if stopped_by:
        with contextlib.suppress(OSError, ValueError):  # after SIGHUP the terminal may be gone
            sys.stderr.write(f"stopped by signal {signal.Signals(stopped_by[0]).name}.\n")
        return 128 + stopped_by[0]
    return 0


def _quit_on_signals(quitting: asyncio.Event) -> list[int]:
    """SIGTERM, SIGHUP and SIGINT (``kill``, the terminal or session closing, Ctrl-C) quit the app as its Quit
    does: every server it started is stopped (Python's default would end it and leave them running; Qt
    catches none of them). The list gets the signal received."""
    received: list[int] = []
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        received.append(signum)
        quitting.set()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)  # qasync's Unix loop wakes on asyncio's signal pipe
    return received


def translate(text: str) -> str:
    return QCoreApplication.translate("app", text)
