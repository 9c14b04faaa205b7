"""A remote server that goes away after the app reached it: the send that finds nothing answering has the
server checked again, so the header and the status bar say "Not reachable" instead of "Ready" and the banner
offers "Check the address"; once a server answers at that address again, they say "Ready" again by
themselves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from PySide6.QtCore import SIGNAL
from pytestqt.qtbot import QtBot

from desktop import errors
from desktop.launcher.tray import LauncherActions
from desktop.window import server_link
from desktop.window.main_window import MainWindow
from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from engine.server.supervisor import ServerState, Supervisor
from engine.settings.store import SettingsStore
from tests.desktop.window.test_server_link import linked_window, send, wait_ready, with_profiles
from tests.support.qasync_loop import qloop, run  # noqa: F401 - a fixture
from tests.support.standin.launch import StandinRuntime, running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


@contextmanager
def header_bound(window: MainWindow, sup: Supervisor, settings: SettingsStore) -> Iterator[None]:
    """The header (the model picker) follows the supervisor, as the app binds it."""
    actions = LauncherActions(sup, settings, server=window.server_link)
    window.model_picker.bind(actions)
    try:
        yield
    finally:
        actions.close()


def header(window: MainWindow) -> str:
    return window.model_picker.state.text()


def test_a_send_to_a_remote_server_gone_away_says_not_reachable_until_it_answers_again(
    qtbot: QtBot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_link, "REMOTE_RECHECK_MS", 200)
    sup = Supervisor(app_paths, StandinRuntime(["--fail-with", "port-in-use"]))
    with running_standin("--reply", "Hello from afar.", model="lab-model") as first:
        lab = ServerProfile(name="Lab", kind="remote", base_url=first.base_url)
        settings: SettingsStore = with_profiles(app_paths, lab)
        port = first.port
        with linked_window(qtbot, app_paths, sup, settings) as window, header_bound(window, sup, settings):
            window.start_action.trigger()
            wait_ready(qtbot, sup, kind="remote", model="lab-model", profile_name="Lab")
            assert header(window) == "Ready"
            first.stop()  # the server goes away; the app is not told

            send(qtbot, window, "Anyone there?")
            qtbot.waitUntil(lambda: sup.state is ServerState.FAILED, timeout=15_000)
            qtbot.waitUntil(lambda: header(window) == "Not reachable", timeout=5_000)
            assert window.server_status.state_label.text().startswith("Not reachable")
            problem = window.banner.problem
            assert problem is not None
            assert problem.fix is not None
            assert problem.fix.label == "Check the address"

            with running_standin("--reply", "Back again.", "--port", str(port), model="lab-model"):
                wait_ready(qtbot, sup, kind="remote", model="lab-model", profile_name="Lab")
                qtbot.waitUntil(lambda: header(window) == "Ready", timeout=5_000)
                assert window.banner.problem is None  # the server's problem is history


def test_a_closed_link_asks_the_lost_server_no_more(
    qtbot: QtBot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The window shuts down while the lost server is being asked again: nothing is left asking it (a task
    # left pending at the end), and the app-wide reporter no longer reaches the closed link.
    monkeypatch.setattr(server_link, "REMOTE_RECHECK_MS", 50)
    sup = Supervisor(app_paths, StandinRuntime(["--fail-with", "port-in-use"]))
    with running_standin("--reply", "Hello from afar.", model="lab-model") as first:
        lab = ServerProfile(name="Lab", kind="remote", base_url=first.base_url)
        settings: SettingsStore = with_profiles(app_paths, lab)
        with linked_window(qtbot, app_paths, sup, settings) as window:
            window.start_action.trigger()
            wait_ready(qtbot, sup, kind="remote", model="lab-model", profile_name="Lab")
            first.stop()
            send(qtbot, window, "Anyone there?")
            qtbot.waitUntil(lambda: sup.state is ServerState.FAILED, timeout=15_000)
            link = window.server_link
            assert link is not None
            qtbot.waitUntil(lambda: link._rechecking is not None, timeout=5_000)  # asked again already
            listeners = errors.reporter().receivers(SIGNAL("problem(PyObject)"))
            run(qtbot, link.aclose())
            assert not link._lost.isActive()
            assert link._rechecking.done()
            assert errors.reporter().receivers(SIGNAL("problem(PyObject)")) == listeners - 1
