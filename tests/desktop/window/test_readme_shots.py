"""The README's screenshots, taken from the whole app as ``run_app`` wires it (window, supervisor, chat,
store, tray actions) with the stand-in server process launched by the real supervisor: the window in light
and in dark after a streamed answer, the server dashboard after a few chats, and the first start's progress
(the runtime install reported step by step; the installer is replaced at that boundary, as in
test_main_window_first_run). They land in ``shots/`` (docs/images/ holds the copies the README shows; the
light window with the real vLLM is test_main_window_vllm's ``shots/real-vllm.png``)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtGui import QEnterEvent, QPalette
from PySide6.QtWidgets import QApplication

from desktop import theme
from desktop.app import AppParts, build
from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.runtime.install import Progress
from engine.server.profiles import ServerProfile
from engine.server.supervisor import Supervisor
from engine.settings.store import SettingsStore
from tests.support.main_window import replies
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import StandinRuntime

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path(__file__).resolve().parents[3] / "shots"
QUESTION = "How do I sort a dict by value in Python?"
ANSWER = (
    "Use `sorted()` on the dict's items, with a key that reads the value:\n\n"
    "```python\nprices = {'apple': 3, 'pear': 1, 'fig': 2}\n"
    "by_price = dict(sorted(prices.items(), key=lambda item: item[1]))\n"
    "print(by_price)  # {'pear': 1, 'fig': 2, 'apple': 3}\n```\n\n"
    "A few things to know:\n\n"
    "- `sorted()` returns a new list of `(key, value)` pairs; `dict()` turns it back into a dict.\n"
    "- Dicts keep insertion order (Python 3.7+), so the result stays sorted.\n"
    "- For the largest first, pass `reverse=True`.\n"
)


def seed(paths: AppPaths) -> None:
    """Chats a user would have in the sidebar: a pinned one, some from earlier days."""
    store = HistoryStore(paths.history_db)
    try:
        for title, pinned in (
            ("Trip to Lisbon: a three-day plan", True),
            ("Explain KV cache in vLLM", False),
            ("Regex for ISO dates", False),
        ):
            conversation = store.create_conversation(title=title)
            store.add_message(conversation.id, None, "user", title)
            store.update_conversation(conversation.id, pinned=pinned)
    finally:
        store.close()
    settings = SettingsStore.open(paths.settings_file)
    profile = ServerProfile(name="Stand-in", source="hf_cache", model="Qwen/Qwen3-8B")
    current = settings.settings
    general = current.general.model_copy(
        update={"start_server_with_app": True, "default_profile": "Stand-in"}
    )
    settings.update(current.model_copy(update={"profiles": [profile], "general": general}))


def start_app(qtbot: Any, paths: AppPaths, runtime: StandinRuntime) -> AppParts:
    args = argparse.Namespace(data_dir=str(paths.config.parent), tray=False, new_chat=True)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    parts = run(qtbot, build(args, app, runtime=runtime, single_instance=False))
    assert parts is not None
    qtbot.addWidget(parts.window)
    return parts


def settle(qtbot: Any) -> None:
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(30)


def set_theme(parts: AppParts, name: str) -> None:
    current = parts.settings.settings
    parts.settings.update(
        current.model_copy(update={"appearance": current.appearance.model_copy(update={"theme": name})})
    )


def test_the_window_in_light_and_dark_and_the_dashboard(qtbot: Any, app_paths: AppPaths) -> None:
    seed(app_paths)
    parts = start_app(qtbot, app_paths, StandinRuntime(["--reply", ANSWER, "--tokens-per-second", "400"]))
    window: MainWindow = parts.window
    try:
        window.resize(1280, 800)
        qtbot.waitUntil(lambda: window.server_status.state_label.property("state") == "ready", timeout=20000)
        window.composer.editor.setFocus()
        qtbot.keyClicks(window.composer.editor, QUESTION)
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
        qtbot.waitUntil(
            lambda: bool(replies(window)) and replies(window)[-1].data.state == "complete", timeout=20000
        )
        reply = replies(window)[-1]
        point = QPointF(20, 20)
        QApplication.sendEvent(reply, QEnterEvent(point, point, point))  # the pointer over the reply
        assert reply.revealed
        window.composer.editor.clearFocus()
        SHOTS.mkdir(exist_ok=True)
        settle(qtbot)
        assert window.grab().save(str(SHOTS / "window-light.png"))
        set_theme(parts, "dark")
        qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Base).name() == theme.DARK.chat)
        settle(qtbot)
        assert window.grab().save(str(SHOTS / "window-dark.png"))
        set_theme(parts, "light")

        # The dashboard, from the Server menu, after a few more chats.
        parts.actions.dashboard_action.trigger()
        dashboard = parts.dashboards.dashboard
        qtbot.waitUntil(dashboard.isVisible, timeout=5000)
        dashboard.resize(1100, 760)
        endpoint = parts.supervisor.endpoint
        for _ in range(4):
            httpx.post(
                f"{endpoint.base_url}/chat/completions",
                json={
                    "model": endpoint.model,
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 200,
                },
                headers={"Authorization": f"Bearer {endpoint.api_key}"},
                timeout=30,
                trust_env=False,
            ).raise_for_status()
            qtbot.wait(1200)
        qtbot.waitUntil(lambda: len(dashboard.history.points()) >= 4, timeout=10000)
        dashboard.refresh_processes()
        settle(qtbot)
        assert dashboard.grab().save(str(SHOTS / "dashboard.png"))
    finally:
        QApplication.styleHints().unsetColorScheme()
        run(qtbot, parts.close(), timeout=30)


def test_the_first_start_shows_its_progress(qtbot: Any, app_paths: AppPaths) -> None:
    settings = SettingsStore.open(app_paths.settings_file)
    profile = ServerProfile(name="Built-in model", source="hf_cache", model="SmolLM2-135M-Instruct")
    settings.update(settings.settings.model_copy(update={"profiles": [profile]}))
    gate = asyncio.Event()

    async def install(progress: Callable[[Progress], object]) -> None:
        progress(Progress("venv", "Creating the virtual environment", 0.02))
        progress(Progress("download", "Downloading vLLM and PyTorch (3.4 GB)", 0.3))
        progress(Progress("install", "Installing packages (this takes a while)", 0.62))
        await gate.wait()
        progress(Progress("done", "vLLM runtime ready", 1.0))

    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    supervisor = Supervisor(app_paths, StandinRuntime([]))
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
        window.resize(1280, 800)
        window.show()
        run(qtbot, window.restore())
        assert window.server_link is not None
        window.server_link.start()
        panel = window.first_run
        qtbot.waitUntil(lambda: panel.isVisible() and panel.bar.value() == 620, timeout=5000)
        window.composer.editor.setFocus()
        qtbot.keyClicks(window.composer.editor, "What can you do?")
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)  # queued until the server is ready
        qtbot.waitUntil(lambda: len(window.transcript.messages()) >= 1, timeout=5000)
        SHOTS.mkdir(exist_ok=True)
        settle(qtbot)
        assert window.grab().save(str(SHOTS / "first-start.png"))
        gate.set()
        qtbot.waitUntil(lambda: window.server_status.state_label.property("state") == "ready", timeout=20000)
        assert not panel.isVisible()
    finally:
        run(qtbot, window.shutdown())
        if supervisor.endpoint is not None:
            run(qtbot, supervisor.shutdown())
        run(qtbot, store.close())
