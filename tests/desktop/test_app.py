"""The whole app as ``run_app`` wires it (window, supervisor, chat, store, tray actions), with the stand-in
server process launched by the real supervisor: restore at start, a failed start shown in words with its
one-click fix, a message queued while the server starts."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.app import AppParts, build
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from engine.settings.store import SettingsStore
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import StandinRuntime

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path(__file__).resolve().parents[2] / "shots"


def configure(app_paths: AppPaths, *, start_with_app: bool, **profile_fields: Any) -> None:
    store = SettingsStore.open(app_paths.settings_file)
    profile = ServerProfile(name="Stand-in", source="hf_cache", model="org/standin", **profile_fields)
    current = store.settings
    general = current.general.model_copy(
        update={"start_server_with_app": start_with_app, "default_profile": "Stand-in"}
    )
    store.update(current.model_copy(update={"profiles": [profile], "general": general}))


def start_app(qtbot, app_paths: AppPaths, runtime: StandinRuntime) -> AppParts:  # type: ignore[no-untyped-def]
    args = argparse.Namespace(data_dir=str(app_paths.config.parent), tray=False)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    parts = run(qtbot, build(args, app, runtime=runtime, single_instance=False))
    assert parts is not None
    qtbot.addWidget(parts.window)
    return parts


def close_app(qtbot, parts: AppParts) -> None:  # type: ignore[no-untyped-def]
    run(qtbot, parts.close(), timeout=30)


def test_window_opens_and_restores_the_last_conversation(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    configure(app_paths, start_with_app=False)
    history = HistoryStore(app_paths.history_db)
    older = history.create_conversation(title="Older chat")
    history.add_message(older.id, None, "user", "first question")
    newer = history.create_conversation(title="Newer chat")
    history.add_message(newer.id, None, "user", "the latest question")
    history.close()
    parts = start_app(qtbot, app_paths, StandinRuntime([]))
    try:
        window = parts.window
        assert window.isVisible()
        qtbot.waitUntil(lambda: window.conversation_id == newer.id, timeout=5000)
        assert [w.data.text for w in window.transcript.messages()] == ["the latest question"]
        assert window.sidebar.model.rowCount() == 2
        # The server was not asked to start with the app.
        assert window.server_status.state_label.text() == "Server stopped"
        # Every control a user can reach has a name for screen readers.
        from PySide6.QtWidgets import QAbstractButton, QLineEdit, QListView, QPlainTextEdit

        for kind in (QAbstractButton, QLineEdit, QPlainTextEdit, QListView):
            for control in window.findChildren(kind):
                if control.isVisibleTo(window) and not control.objectName().startswith("qt_"):
                    label = control.text() if hasattr(control, "text") else ""
                    assert control.accessibleName(), (
                        f"{type(control).__name__} {label!r} has no accessible name"
                    )
    finally:
        close_app(qtbot, parts)
    # Reopening shows the same conversation again (chosen by the user this time).
    parts = start_app(qtbot, app_paths, StandinRuntime([]))
    try:
        qtbot.waitUntil(lambda: parts.window.conversation_id == newer.id, timeout=5000)
        parts.window.sidebar.conversation_chosen.emit(older.id)
        qtbot.waitUntil(lambda: parts.window.conversation_id == older.id, timeout=5000)
    finally:
        close_app(qtbot, parts)
    parts = start_app(qtbot, app_paths, StandinRuntime([]))
    try:
        qtbot.waitUntil(lambda: parts.window.conversation_id == older.id, timeout=5000)
    finally:
        close_app(qtbot, parts)


def test_failed_start_shows_the_diagnosis_and_its_fix(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    configure(app_paths, start_with_app=True, max_model_len=32768)
    runtime = StandinRuntime(["--fail-with", "kv-cache-too-small"])
    parts = start_app(qtbot, app_paths, runtime)
    try:
        window = parts.window
        banner = window.banner
        qtbot.waitUntil(lambda: banner.isVisible() and banner.problem is not None, timeout=20000)
        assert "10,912" in banner.fix_button.text()
        assert banner.fix_button.isVisible()
        assert "Traceback" not in banner.text
        assert window.server_status.state_label.property("state") == "failed"
        SHOTS.mkdir(exist_ok=True)
        qtbot.wait(200)
        assert window.grab().save(str(SHOTS / "server-failed.png"))
        # The machine now has room (the stand-in stops failing): one click retries with the suggested length.
        runtime.options.clear()
        qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.server_status.state_label.property("state") == "ready", timeout=20000)
        assert not banner.isVisible()
        saved = SettingsStore.open(app_paths.settings_file).settings.profile("Stand-in")
        assert saved is not None
        assert saved.max_model_len == 10912
    finally:
        close_app(qtbot, parts)


def test_a_message_sent_while_starting_is_queued_then_answered(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    configure(app_paths, start_with_app=True)
    parts = start_app(qtbot, app_paths, StandinRuntime(["--startup-delay", "3", "--reply", "Queued answer."]))
    try:
        window = parts.window
        qtbot.waitUntil(window.server_starting, timeout=5000)
        window.composer.editor.setFocus()
        qtbot.keyClicks(window.composer.editor, "Are you there?")
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
        assert "will be sent when it is ready" in window.composer.notice.text()
        assert [w.data.text for w in window.transcript.messages()] == ["Are you there?"]
        queued = window.transcript.messages()[0]
        assert queued.stats_label.text() == "queued until the server is ready"
        assert queued.edit_button.isHidden()  # not stored yet: nothing to edit
        # The supervisor's first progress event may still be on its way under load.
        qtbot.waitUntil(window.server_status.progress.isVisible, timeout=10000)
        assert re.match(r"\d+:\d\d", window.server_status.time_label.text())
        SHOTS.mkdir(exist_ok=True)
        qtbot.wait(200)  # let the layout settle before the picture
        assert window.grab().save(str(SHOTS / "queued-while-starting.png"))
        qtbot.waitUntil(
            lambda: any(
                w.data.role == "assistant" and w.data.state == "complete"
                for w in window.transcript.messages()
            ),
            timeout=30000,
        )
        texts = [w.data.text for w in window.transcript.messages()]
        assert texts == ["Are you there?", "Queued answer."]
        assert window.composer.notice.isHidden()
        assert window.server_status.state_label.text() == "Ready"
        # Live load from /metrics while the server is ready.
        qtbot.waitUntil(lambda: "KV cache" in window.server_status.metrics_label.text(), timeout=10000)
    finally:
        close_app(qtbot, parts)


def test_without_a_tray_ready_and_failed_are_told_in_the_status_bar(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QSystemTrayIcon

    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen: no tray host, as on many desktops
    configure(app_paths, start_with_app=True)
    runtime = StandinRuntime([])
    parts = start_app(qtbot, app_paths, runtime)
    try:
        window = parts.window
        posted: list[Any] = []
        parts.tray.notifier.posted.connect(posted.append)
        qtbot.waitUntil(lambda: "Model ready" in window.server_status.currentMessage(), timeout=20000)
        assert "is ready to chat" in window.server_status.currentMessage()
        # The server fails on its next start: that is told the same way, with the reason.
        runtime.options[:] = ["--fail-with", "kv-cache-too-small"]
        window.start_action.trigger()
        qtbot.waitUntil(
            lambda: "Model failed to start" in window.server_status.currentMessage(), timeout=20000
        )
        assert "KV cache" in window.server_status.currentMessage()
        assert [note.channel for note in posted] == ["fallback", "fallback"]
    finally:
        close_app(qtbot, parts)
