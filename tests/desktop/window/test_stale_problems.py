"""After a failed start, what the window says about it goes once a working server is there: the "could not
start" banner and the note that a message was not sent; the server log says why it is empty for a remote
server; Preferences refuse a profile whose model folder is not there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop.preferences.dialog import PreferencesDialog
from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.server.profiles import ServerProfile
from engine.server.supervisor import ServerState, Supervisor
from engine.settings.store import SettingsStore
from tests.support.main_window import supervised_window
from tests.support.memory_keyring import MemoryKeyring
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import StandinRuntime, running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def with_profiles(app_paths: AppPaths, *profiles: ServerProfile) -> SettingsStore:
    store = SettingsStore.open(app_paths.settings_file)
    new = store.settings.model_copy(update={"profiles": list(profiles)}, deep=True)
    new.general.default_profile = profiles[0].name
    store.update(new)
    return store


@contextmanager
def window_over(
    qtbot: QtBot, app_paths: AppPaths, supervisor: Supervisor, settings: SettingsStore
) -> Iterator[MainWindow]:
    try:
        with supervised_window(qtbot, app_paths, supervisor, settings) as window:
            yield window
    finally:
        run(qtbot, supervisor.shutdown(), timeout=30)


def test_switching_to_a_working_server_clears_the_old_failure_and_the_not_sent_note(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    with running_standin("--reply", "Hello from afar.", model="lab-model") as remote:
        broken = ServerProfile(name="Broken", source="hf_cache", model="org/standin", served_name="tiny")
        lab = ServerProfile(name="Lab", kind="remote", base_url=remote.base_url)
        settings = with_profiles(app_paths, broken, lab)
        sup = Supervisor(app_paths, StandinRuntime(["--fail-with", "port-in-use"]))  # every local start fails
        with window_over(qtbot, app_paths, sup, settings) as window:
            window.start_action.trigger()
            qtbot.waitUntil(lambda: sup.state is ServerState.FAILED, timeout=30_000)
            qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
            assert window.banner.problem is not None
            failed_title = window.banner.problem.title
            # A message sent now has no server: it comes back into the box, with a note and a banner.
            window.composer.editor.setPlainText("Anyone there?")
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: window.composer.notice.isVisible(), timeout=5000)
            assert "not sent" in window.composer.notice.text()

            window.server_link.start(lab)  # the user switches to a working profile
            qtbot.waitUntil(lambda: sup.state is ServerState.READY, timeout=30_000)
            qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=5000)
            assert window.banner.problem is None, failed_title
            assert not window.composer.notice.isVisible()
            assert window.composer.editor.toPlainText() == "Anyone there?"  # the message itself is kept

            # The server log of a remote profile says why it is empty.
            window.show_server_log()
            dialog = window.log_dialog
            assert dialog is not None
            assert dialog.note.isVisible()
            assert remote.base_url in dialog.note.text()
            assert "log is kept on that machine" in dialog.note.text()
            dialog.close()


def test_an_unrelated_problem_stays_when_a_server_becomes_ready(qtbot: QtBot, app_paths: AppPaths) -> None:
    with running_standin("--reply", "Hi.", model="lab-model") as remote:
        lab = ServerProfile(name="Lab", kind="remote", base_url=remote.base_url)
        settings = with_profiles(app_paths, lab)
        sup = Supervisor(app_paths, StandinRuntime([]))
        history = HistoryStore(app_paths.history_db)
        doomed = history.create_conversation(title="Doomed").id
        history.close()
        with window_over(qtbot, app_paths, sup, settings) as window:
            window.conversations.delete([doomed])  # a banner about something else than the server
            qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
            window.start_action.trigger()
            qtbot.waitUntil(lambda: sup.state is ServerState.READY, timeout=30_000)
            qtbot.wait(50)
            assert window.banner.isVisible()
            assert window.banner.problem is not None
            assert window.banner.problem.title == "Conversation deleted"


def test_preferences_refuse_a_model_folder_that_is_not_there(
    qtbot: QtBot, app_paths: AppPaths, tmp_path: Path
) -> None:
    dialog = PreferencesDialog(
        SettingsStore.open(app_paths.settings_file),
        paths=app_paths,
        gpus=[],
        secrets=SecretStore(backend=MemoryKeyring()),
    )
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_page("Server profiles")
    form = dialog.profiles_page.form
    source = form.rows["source"].editor
    source.setCurrentIndex(source.findText("folder"))
    missing = tmp_path / "models" / "qwen-that-was-moved"
    model = form.rows["model"].editor
    model.setText(str(missing))
    qtbot.waitUntil(lambda: bool(form.rows["model"].error.text()), timeout=2000)
    assert form.rows["model"].error.text() == f"there is no folder {missing}"
    assert form.rows["model"].error.isVisible()
    assert not dialog.apply()
    assert "Not saved" in dialog.problem.text()
    assert not app_paths.settings_file.exists() or all(
        p.model != str(missing) for p in SettingsStore.open(app_paths.settings_file).settings.profiles
    )
    missing.mkdir(parents=True)  # the folder is back: the same profile is accepted
    model.clear()
    model.setText(str(missing))
    qtbot.waitUntil(lambda: not form.rows["model"].error.text(), timeout=2000)
    assert dialog.apply()
    assert any(p.model == str(missing) for p in dialog.store.settings.profiles)
