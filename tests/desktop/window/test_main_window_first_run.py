"""First start: the window shows the runtime install's progress, then the server starts and the panel goes.

The 3 GB pip install itself is exercised for real by the session fixtures (tests/support/vllm_fixtures.py);
here the installer is replaced at that boundary by one that reports the same Progress steps, and the server
is the stand-in launched by the real supervisor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from PySide6.QtCore import QSettings, Qt

from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.history.async_store import AsyncHistoryStore
from engine.runtime.install import Progress
from engine.server.profiles import ServerProfile
from engine.server.supervisor import Supervisor
from engine.settings.store import SettingsStore
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import StandinRuntime

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def test_runtime_install_progress_then_ready(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    settings = SettingsStore.open(app_paths.settings_file)
    profile = ServerProfile(name="Stand-in", source="hf_cache", model="org/standin")
    settings.update(settings.settings.model_copy(update={"profiles": [profile]}))
    gate = asyncio.Event()
    steps_seen: list[str] = []

    async def install(progress: Callable[[Progress], object]) -> None:
        progress(Progress("venv", "Creating the virtual environment", 0.02))
        progress(Progress("install", "Installing packages (this takes a while)", 0.6))
        await gate.wait()
        progress(Progress("done", "vLLM runtime ready", 1.0))

    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    supervisor = Supervisor(app_paths, StandinRuntime(["--startup-delay", "1"]))
    window = MainWindow(
        store=store,
        chat=ChatEngine(store, lambda: supervisor.endpoint),
        settings=settings,
        supervisor=supervisor,
        ensure_runtime=install,
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    try:
        window.show()
        assert window.server_link is not None
        window.server_link.start()
        panel = window.first_run
        qtbot.waitUntil(lambda: panel.isVisible() and panel.bar.value() == 600, timeout=5000)
        steps_seen = [panel.history.item(i).text() for i in range(panel.history.count())]
        assert steps_seen == [
            "vLLM runtime: Creating the virtual environment",
            "vLLM runtime: Installing packages (this takes a while)",
        ]
        assert "Installing the vLLM runtime" in window.server_status.state_label.text()
        assert window.server_starting()
        qtbot.wait(200)
        assert window.grab().save(str(app_paths.state / "first-run.png"))
        gate.set()
        qtbot.waitUntil(lambda: window.server_status.state_label.property("state") == "ready", timeout=20000)
        assert not panel.isVisible()
        assert not window.server_starting()
        assert "org/standin" in window.server_status.server_label.text()
        # Keyboard: Ctrl+L opens the live server log with what vLLM printed.
        qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        assert window.log_dialog is not None
        assert window.log_dialog.isVisible()
        assert "Starting vLLM server on" in window.log_dialog.view.toPlainText()
        window.log_dialog.close()
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, supervisor.shutdown(), timeout=30)
        run(qtbot, store.close())
