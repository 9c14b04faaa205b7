"""The model picker above the chat: the launcher's profiles, the server's state, and switching from it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from desktop.app import build
from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from engine.server.supervisor import ServerState
from engine.settings.store import SettingsStore
from tests.support.qasync_loop import qloop, run  # noqa: F401 - qloop is a fixture
from tests.support.standin.launch import StandinRuntime

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def test_the_picker_lists_the_profiles_shows_the_state_and_switches(
    qtbot: Any, app_paths: AppPaths, tmp_path: Path
) -> None:
    store = SettingsStore.open(app_paths.settings_file)
    alpha = ServerProfile(name="Alpha", source="hf_cache", model="org/alpha", served_name="alpha")
    beta = ServerProfile(name="Beta", source="hf_cache", model="org/beta", served_name="beta")
    chosen = store.settings.model_copy(deep=True)
    chosen.profiles = [alpha, beta]
    chosen.general.start_server_with_app = False
    store.update(chosen)
    args = argparse.Namespace(data_dir=str(app_paths.config.parent), tray=False, new_chat=False)
    parts = run(
        qtbot, build(args, QApplication.instance(), runtime=StandinRuntime([]), single_instance=False)
    )
    assert parts is not None
    qtbot.addWidget(parts.window)
    picker = parts.window.model_picker
    try:
        assert picker.isVisible()
        assert [picker.combo.itemText(i) for i in range(picker.combo.count())] == ["Alpha", "Beta"]
        assert picker.state.text() == "Server stopped"
        picker.combo.setCurrentIndex(1)
        picker.combo.activated.emit(1)  # what choosing it with the mouse or keyboard does
        qtbot.waitUntil(lambda: parts.supervisor.state is ServerState.READY, timeout=30000)
        assert parts.supervisor.endpoint.model == "beta"
        qtbot.waitUntil(lambda: picker.state.text() == "Ready", timeout=5000)
        assert parts.actions.profile_actions[1].isChecked()  # the tray and the menus agree
        # Switching from the tray's list shows in the picker.
        parts.actions.profile_actions[0].trigger()
        qtbot.waitUntil(
            lambda: parts.supervisor.endpoint is not None and parts.supervisor.endpoint.model == "alpha",
            timeout=30000,
        )
        qtbot.waitUntil(lambda: picker.combo.currentText() == "Alpha", timeout=5000)
        # A new profile in the settings appears in the picker.
        more = parts.settings.settings.model_copy(deep=True)
        more.profiles = [*more.profiles, ServerProfile(name="Gamma", source="hf_cache", model="org/g")]
        parts.settings.update(more)
        qtbot.waitUntil(lambda: picker.combo.count() == 3, timeout=5000)
        assert picker.combo.currentText() == "Alpha"
        # Tab reaches it between the message box's buttons and the conversation.
        from desktop.window.focus_order import focus_stops

        stops = focus_stops(parts.window)
        assert stops.index(picker.combo) == stops.index(parts.window.transcript) - 1
        parts.window.resize(1000, 700)
        parts.window.grab().save(str(tmp_path / "picker.png"))
        parts.window.grab().save("/tmp/picker.png")
    finally:
        run(qtbot, parts.close(), timeout=60)
