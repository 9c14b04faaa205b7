"""The tray launcher, exercised through its menu and actions (this platform has no tray): looks per state,
tooltip, notifications, switching profiles through the window's server link over the real supervisor and
the stand-in process (runtime install and queued messages included), Quit, and the no-tray fallback in the
window's menu."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QPainter
from PySide6.QtWidgets import QMenu, QSystemTrayIcon
from pytestqt.qtbot import QtBot

from desktop.launcher.tray import LauncherActions, TrayLauncher, format_uptime, state_kind
from desktop.notifications import Notification, Notifier
from desktop.window.main_window import MainWindow
from desktop.window.server_link import RuntimeEnsurer
from engine import assets
from engine.diagnosis.problems import PortInUse
from engine.endpoint import Endpoint
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.runtime.install import Progress
from engine.server.metrics import MetricsSample
from engine.server.profiles import ServerProfile
from engine.server.remote import RemoteUnreachable
from engine.server.supervisor import ServerState, StateChange, Supervisor
from engine.settings.store import SettingsStore
from tests.support.main_window import supervised_window
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import StandinRuntime

pytestmark = pytest.mark.gui
SHOTS = Path(__file__).resolve().parents[3] / "shots"


def profile(name: str, served: str) -> ServerProfile:
    return ServerProfile(name=name, source="hf_cache", model="org/standin", served_name=served)


@pytest.fixture
def settings(app_paths: AppPaths) -> SettingsStore:
    store = SettingsStore.open(app_paths.settings_file)
    store.update(
        store.settings.model_copy(update={"profiles": [profile("Alpha", "alpha"), profile("Beta", "beta")]})
    )
    return store


class Launcher:
    """A launcher wired like the app does it, recording what it tells the user."""

    def __init__(
        self,
        supervisor: Supervisor | None,
        settings: SettingsStore,
        tray_available: bool = False,
        window: MainWindow | None = None,
    ):
        self.posted: list[Notification] = []
        self.status: list[str] = []
        self.notifier = Notifier(
            enabled=lambda: settings.settings.general.notifications,
            fallback=lambda title, message: self.status.append(f"{title}: {message}"),
        )
        self.notifier.posted.connect(self.posted.append)
        # Starts go through the window's server link, as in the app.
        self.actions = LauncherActions(supervisor, settings, server=window.server_link if window else None)
        self.tray = TrayLauncher(
            self.actions, supervisor, settings, self.notifier, tray_available=tray_available
        )

    def close(self) -> None:
        self.tray.close()
        self.actions.close()


@pytest.fixture
def launcher(qtbot: QtBot, settings: SettingsStore) -> Iterator[Launcher]:
    made = Launcher(None, settings)
    yield made
    made.close()


def change(state: ServerState, previous: ServerState, **kw: object) -> StateChange:
    return StateChange(state, previous, "Alpha", **kw)  # type: ignore[arg-type]


def image(icon: QIcon) -> QImage:
    return icon.pixmap(32, 32).toImage()


def menu_texts(menu: QMenu) -> list[str]:
    return [a.text() if not a.isSeparator() or a.text() else "---" for a in menu.actions()]


def test_state_names_map_to_four_looks() -> None:
    assert [state_kind(s) for s in ServerState] == [
        "stopped",
        "starting",
        "starting",
        "ready",
        "starting",
        "failed",
    ]
    assert format_uptime(42) == "42 s"
    assert format_uptime(125) == "2 min"
    assert format_uptime(3 * 3600 + 5 * 60) == "3 h 05 min"


def test_each_state_changes_icon_and_tooltip(launcher: Launcher) -> None:
    tray = launcher.tray
    assert image(tray.icon.icon()) == image(QIcon(str(assets.tray_icon("stopped"))))
    assert tray.icon.toolTip() == "vLLM Desk\nServer: Stopped"
    for state, previous in [
        (ServerState.PREPARING, ServerState.STOPPED),
        (ServerState.STARTING, ServerState.PREPARING),
    ]:
        tray.on_state(change(state, previous))
        assert image(tray.icon.icon()) == image(QIcon(str(assets.tray_icon("starting"))))
        assert f"Server: {state.value.title()}" in tray.icon.toolTip()
        assert "Model: alpha (Alpha)" in tray.icon.toolTip()
    endpoint = Endpoint(base_url="http://127.0.0.1:1/v1", model="alpha", profile_name="Alpha")
    tray.on_state(change(ServerState.READY, ServerState.STARTING, endpoint=endpoint))
    assert image(tray.icon.icon()) == image(QIcon(str(assets.tray_icon("ready"))))
    assert "Server: Ready · up 0 s" in tray.icon.toolTip()
    tray.on_metrics(
        MetricsSample(running=1, waiting=0, kv_cache_usage=0.372, prompt_tokens=5, generation_tokens=9, at=0)
    )
    assert tray.icon.toolTip().endswith("KV cache: 37% used")
    assert tray.ready_since is not None
    tray.ready_since -= 125
    tray._update_tooltip()
    assert "Server: Ready · up 2 min" in tray.icon.toolTip()
    tray.on_state(change(ServerState.FAILED, ServerState.READY, problem=PortInUse(8000)))
    assert image(tray.icon.icon()) == image(QIcon(str(assets.tray_icon("failed"))))
    assert "Server: Failed" in tray.icon.toolTip()
    assert "KV cache" not in tray.icon.toolTip()
    # The four looks really differ from each other.
    rendered = {state: image(QIcon(str(assets.tray_icon(state)))) for state in assets.TRAY_STATES}
    assert len({bytes(img.constBits()) for img in rendered.values()}) == 4


def test_ready_and_failed_are_notified_in_one_line(launcher: Launcher) -> None:
    tray = launcher.tray
    tray.on_state(change(ServerState.STARTING, ServerState.STOPPED))
    assert launcher.posted == []
    endpoint = Endpoint(base_url="http://127.0.0.1:1/v1", model="alpha", profile_name="Alpha")
    tray.on_state(change(ServerState.READY, ServerState.STARTING, endpoint=endpoint))
    assert launcher.status == ["Model ready: alpha is ready to chat."]
    problem = PortInUse(8000)
    tray.on_state(change(ServerState.FAILED, ServerState.STARTING, problem=problem))
    last = launcher.posted[-1]
    assert last.title == "Model failed to start"
    assert last.channel == "fallback"  # no tray here: the window's status takes it
    assert "\n" not in last.message
    assert last.message.startswith("alpha: ")
    assert str(problem).splitlines()[0][:40] in last.message


def test_a_remote_server_that_cannot_be_reached_is_named_by_its_profile(
    launcher: Launcher, settings: SettingsStore
) -> None:
    remote = ServerProfile(name="Team", kind="remote", base_url="http://127.0.0.1:1/v1")
    settings.update(settings.settings.model_copy(update={"profiles": [*settings.settings.profiles, remote]}))
    problem = RemoteUnreachable("http://127.0.0.1:1", "All connection attempts failed")
    launcher.tray.on_state(StateChange(ServerState.FAILED, ServerState.STARTING, "Team", problem=problem))
    # Not the built-in model's name: the remote server never said what it serves.
    assert launcher.status == [
        "Model failed to start: Team: No answer from http://127.0.0.1:1 (All connection attempts failed)."
    ]
    assert "Model:" not in launcher.tray.icon.toolTip()


def test_notifications_can_be_switched_off(launcher: Launcher, settings: SettingsStore) -> None:
    off = settings.settings.model_copy(deep=True)
    off.general.notifications = False
    settings.update(off)
    endpoint = Endpoint(base_url="http://127.0.0.1:1/v1", model="alpha", profile_name="Alpha")
    launcher.tray.on_state(change(ServerState.READY, ServerState.STARTING, endpoint=endpoint))
    assert launcher.status == []
    assert [n.channel for n in launcher.posted] == ["none"]


def test_menu_holds_every_launcher_action(launcher: Launcher) -> None:
    menu = launcher.tray.menu
    assert menu_texts(menu) == [
        "Server profiles",
        "Alpha",
        "Beta",
        "Stop server",
        "---",
        "Recent conversations",
        "New chat",
        "---",
        "Open vLLM Desk",
        "Server dashboard…",
        "Preferences…",
        "---",
        "Quit",
    ]
    assert not launcher.actions.stop_action.isEnabled()  # nothing to stop
    requested: list[str] = []
    launcher.actions.new_chat_requested.connect(lambda: requested.append("new"))
    launcher.actions.open_window_requested.connect(lambda: requested.append("open"))
    launcher.actions.dashboard_requested.connect(lambda: requested.append("dashboard"))
    launcher.actions.preferences_requested.connect(lambda: requested.append("prefs"))
    for text in ("New chat", "Open vLLM Desk", "Server dashboard…", "Preferences…"):
        next(a for a in menu.actions() if a.text() == text).trigger()
    launcher.tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)
    assert requested == ["new", "open", "dashboard", "prefs", "open"]


def test_profiles_in_the_menu_follow_the_settings(launcher: Launcher, settings: SettingsStore) -> None:
    more = settings.settings.model_copy(
        update={"profiles": [*settings.settings.profiles, profile("Gamma", "g")]}
    )
    settings.update(more)
    assert [a.text() for a in launcher.actions.profile_actions] == ["Alpha", "Beta", "Gamma"]
    assert "Gamma" in menu_texts(launcher.tray.menu)


@pytest.mark.usefixtures("qloop")
def test_recent_conversations_open_from_the_menu(
    qtbot: QtBot, launcher: Launcher, app_paths: AppPaths
) -> None:
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    try:
        made = [run(qtbot, store.create_conversation(title=f"Chat {i}")) for i in range(7)]
        run(qtbot, launcher.actions.load_recent(store))
        recent = next(a for a in launcher.tray.menu.actions() if a.text() == "Recent conversations").menu()
        assert recent.isEnabled()
        assert [a.text() for a in recent.actions()] == [f"Chat {i}" for i in range(6, 1, -1)]
        # A chat made since: opening the menu refreshes the list.
        made.append(run(qtbot, store.create_conversation(title="Newest chat")))
        launcher.tray.menu.aboutToShow.emit()
        qtbot.waitUntil(lambda: recent.actions()[0].text() == "Newest chat")
        assert len(recent.actions()) == 5
    finally:
        run(qtbot, store.close())
    chosen: list[int] = []
    launcher.actions.conversation_requested.connect(chosen.append)
    recent.actions()[1].trigger()
    assert chosen == [made[6].id]


def test_without_a_tray_the_window_gets_the_same_actions_and_close_quits(
    qtbot: QtBot, launcher: Launcher, settings: SettingsStore
) -> None:
    assert QSystemTrayIcon.isSystemTrayAvailable() is False  # offscreen: no tray host
    auto = TrayLauncher(launcher.actions, None, settings, Notifier())
    try:
        assert auto.available is False
        assert not auto.icon.isVisible()
    finally:
        auto.close()
    wants_tray = settings.settings.model_copy(deep=True)
    wants_tray.general.close_to_tray = True
    settings.update(wants_tray)
    assert launcher.tray.hide_on_close() is False  # never hide into a tray that does not exist
    window_menu = launcher.actions.fill_menu(QMenu("Server"), include_open=False)
    tray_actions = {id(a) for a in launcher.tray.menu.actions() if not a.isSeparator()}
    window_actions = [a for a in window_menu.actions() if not a.isSeparator()]
    assert "Open vLLM Desk" not in menu_texts(window_menu)
    assert all(id(a) in tray_actions for a in window_actions if a.text() != "Recent conversations")


# Forcing the icon visible without a tray host makes Qt say it cannot follow the tray window.
@pytest.mark.qt_log_ignore("systemTrayWindowChanged")
def test_first_hide_to_tray_explains_how_to_quit(qtbot: QtBot, settings: SettingsStore) -> None:
    made = Launcher(None, settings, tray_available=True)
    try:
        assert made.tray.hide_on_close() is False  # the user did not choose it
        wants_tray = settings.settings.model_copy(deep=True)
        wants_tray.general.close_to_tray = True
        wants_tray.general.notifications = False  # the hint comes anyway: it says where the window went
        settings.update(wants_tray)
        made.tray.icon.setVisible(True)
        if not made.tray.icon.isVisible():
            pytest.fail("QSystemTrayIcon.setVisible(True) did not take")
        assert made.tray.hide_on_close() is True
        assert made.tray.hide_on_close() is True
        hints = [n for n in made.posted if n.title == "vLLM Desk is still running"]
        assert len(hints) == 1
        assert "Quit" in hints[0].message
        assert "keeps running" in hints[0].message
    finally:
        made.close()


def server_pids(sup: Supervisor) -> set[int]:
    return {p.pid for p in sup.processes()}


@contextmanager
def window_over(
    qtbot: QtBot,
    app_paths: AppPaths,
    sup: Supervisor,
    settings: SettingsStore,
    ensure_runtime: RuntimeEnsurer | None = None,
) -> Iterator[MainWindow]:
    """The window the app makes over ``sup`` (with its server link), not shown yet."""
    with supervised_window(qtbot, app_paths, sup, settings, ensure_runtime, shown=False) as window:
        yield window


@pytest.mark.slow
@pytest.mark.usefixtures("qloop")
def test_switching_profiles_stops_one_server_and_starts_the_other_then_quit(
    qtbot: QtBot,
    app_paths: AppPaths,
    settings: SettingsStore,
) -> None:
    sup = Supervisor(app_paths, StandinRuntime([]), metrics_interval_s=0.1)
    with window_over(qtbot, app_paths, sup, settings) as window:
        made = Launcher(sup, settings, window=window)
        try:
            switch_then_quit(qtbot, sup, made)
        finally:
            if sup.state is not ServerState.STOPPED:
                run(qtbot, sup.shutdown())
            made.close()


def switch_then_quit(qtbot: QtBot, sup: Supervisor, made: Launcher) -> None:
    states: list[str] = []
    sup.state_changed.connect(lambda c: states.append(c.state.value))
    alpha = next(a for a in made.actions.profile_actions if a.text() == "Alpha")
    beta = next(a for a in made.actions.profile_actions if a.text() == "Beta")

    alpha.trigger()
    qtbot.waitUntil(lambda: sup.state is ServerState.READY, timeout=30000)
    assert alpha.isChecked()
    assert not beta.isChecked()
    assert made.actions.stop_action.isEnabled()
    assert made.tray.kind == "ready"
    assert "Model: alpha (Alpha)" in made.tray.icon.toolTip()
    qtbot.waitUntil(lambda: "KV cache: 0% used" in made.tray.icon.toolTip(), timeout=10000)
    first = server_pids(sup)
    assert first

    states.clear()
    beta.trigger()
    qtbot.waitUntil(lambda: sup.endpoint is not None and sup.endpoint.model == "beta", timeout=30000)
    assert states == ["stopping", "stopped", "preparing", "starting", "ready"]
    assert beta.isChecked()
    assert not alpha.isChecked()
    assert sup.endpoint is not None
    assert sup.endpoint.model == "beta"
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in first)
    assert "Model: beta (Beta)" in made.tray.icon.toolTip()
    assert [n.message for n in made.posted if n.title == "Model ready"] == [
        "alpha is ready to chat.",
        "beta is ready to chat.",
    ]
    save_menu_shot(made.tray.menu, "tray-menu.png")

    quitted: list[bool] = []
    made.actions.quit_requested.connect(lambda: quitted.append(True))
    second = server_pids(sup)
    made.actions.quit_action.trigger()
    qtbot.waitUntil(lambda: quitted == [True], timeout=30000)
    assert sup.state is ServerState.STOPPED
    assert sup.processes() == []
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in second)


@pytest.mark.slow
@pytest.mark.usefixtures("qloop")
def test_stop_server_from_the_menu(qtbot: QtBot, app_paths: AppPaths, settings: SettingsStore) -> None:
    sup = Supervisor(app_paths, StandinRuntime([]))
    with window_over(qtbot, app_paths, sup, settings) as window:
        made = Launcher(sup, settings, window=window)
        try:
            run(qtbot, made.actions.choose_profile("Beta"))
            assert made.tray.kind == "ready"
            made.actions.stop_action.trigger()
            qtbot.waitUntil(lambda: sup.state is ServerState.STOPPED, timeout=30000)
            assert made.tray.kind == "stopped"
            assert not made.actions.stop_action.isEnabled()
            assert sup.processes() == []
        finally:
            run(qtbot, sup.shutdown())
            made.close()


@pytest.mark.slow
@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("does not support propagateSizeHints")
def test_a_start_from_the_tray_installs_the_runtime_and_queues_what_is_written_meanwhile(
    qtbot: QtBot, app_paths: AppPaths, settings: SettingsStore
) -> None:
    gate = asyncio.Event()
    installs: list[str] = []

    async def install(progress: Callable[[Progress], object]) -> None:  # a fresh machine: no vLLM yet
        installs.append("install")
        progress(Progress("install", "Installing packages (this takes a while)", 0.4))
        await gate.wait()
        progress(Progress("done", "vLLM runtime ready", 1.0))

    sup = Supervisor(app_paths, StandinRuntime(["--reply", "Here I am."]))
    with window_over(qtbot, app_paths, sup, settings, install) as window:
        made = Launcher(sup, settings, window=window)
        try:
            window.show()
            next(a for a in made.actions.profile_actions if a.text() == "Alpha").trigger()
            qtbot.waitUntil(lambda: installs == ["install"])
            panel = window.first_run
            qtbot.waitUntil(lambda: panel.isVisible() and panel.bar.value() == 400)
            assert "Installing the vLLM runtime" in window.server_status.state_label.text()
            assert window.isEnabled()
            assert window.server_starting()  # before the supervisor has even begun
            window.composer.editor.setPlainText("Are you up?")
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            assert [w.data.state for w in window.transcript.messages()] == ["queued"]
            gate.set()
            qtbot.waitUntil(lambda: sup.state is ServerState.READY, timeout=30000)
            assert made.tray.kind == "ready"
            qtbot.waitUntil(
                lambda: [w.data.text for w in window.transcript.messages()] == ["Are you up?", "Here I am."],
                timeout=10000,
            )
            qtbot.waitUntil(lambda: window.chat.running_turn(window.conversation_id or 0) is None)
            history = HistoryStore(app_paths.history_db)
            try:
                [only] = history.list_conversations(limit=10).items
                assert [m.text for m in history.load(only.id).branch()] == ["Are you up?", "Here I am."]
            finally:
                history.close(purge=False)
        finally:
            run(qtbot, sup.shutdown())
            made.close()


def save_menu_shot(menu: QMenu, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    # Rendered without popping up (offscreen cannot grab the keyboard for a popup).
    menu.ensurePolished()
    menu.adjustSize()
    pixmap = menu.grab()
    # The tray icons beside the menu, as a desktop would show them.
    canvas = QImage(pixmap.width() + 60, max(pixmap.height(), 4 * 40), QImage.Format.Format_ARGB32)
    canvas.fill(0xFFE8E8E8)
    painter = QPainter(canvas)
    painter.drawPixmap(60, 0, pixmap)
    for i, state in enumerate(assets.TRAY_STATES):
        painter.drawPixmap(14, 8 + i * 40, QIcon(str(assets.tray_icon(state))).pixmap(32, 32))
    painter.end()
    assert canvas.save(str(SHOTS / name))


def set_general(settings: SettingsStore, **values: object) -> None:
    new = settings.settings.model_copy(deep=True)
    for key, value in values.items():
        setattr(new.general, key, value)
    settings.update(new)


def test_the_autostart_preference_writes_and_removes_the_login_entry(
    launcher: Launcher, settings: SettingsStore, isolated_dirs: Path
) -> None:
    entry = isolated_dirs / "config" / "autostart" / "vllm-desk.desktop"
    assert not entry.exists()
    set_general(settings, autostart=True)
    assert entry.is_file()
    assert "--tray" in next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    set_general(settings, send_key="ctrl+enter")  # other changes leave it alone
    assert entry.is_file()
    set_general(settings, autostart=False)
    assert not entry.exists()


def test_an_unwritable_autostart_folder_is_reported(
    qtbot: QtBot, settings: SettingsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop import errors

    blocker = tmp_path / "config-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    made = Launcher(None, settings)
    try:
        before = len(errors.reporter().reported)
        set_general(settings, autostart=True)
        problems = errors.reporter().reported[before:]
        assert [p.title for p in problems] == ["The desktop launcher could not be written"]
        assert str(blocker) in problems[0].message
    finally:
        made.close()


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.usefixtures("qloop", "builtin_model_dir")
def test_switching_between_two_real_vllm_profiles_from_the_menu(
    qtbot: QtBot,
    app_paths: AppPaths,
    vllm_paths: AppPaths,
    vllm_runtime: object,
) -> None:
    from engine.server.profiles import builtin_profile

    base = builtin_profile()
    first = base.model_copy(update={"name": "Small", "served_name": "small"})
    second = base.model_copy(
        update={"name": "Small, second", "served_name": "small-2", "max_model_len": 1024}
    )
    store = SettingsStore.open(app_paths.settings_file)
    store.update(store.settings.model_copy(update={"profiles": [first, second]}))
    sup = Supervisor(vllm_paths, vllm_runtime, ready_timeout_s=900)  # type: ignore[arg-type]
    with window_over(qtbot, app_paths, sup, store) as window:
        made = Launcher(sup, store, window=window)
        try:
            switch_real_profiles_then_quit(qtbot, sup, made)
        finally:
            if sup.state is not ServerState.STOPPED:
                run(qtbot, sup.shutdown(), timeout=120)
            made.close()


def switch_real_profiles_then_quit(qtbot: QtBot, sup: Supervisor, made: Launcher) -> None:
    made.actions.profile_actions[0].trigger()
    qtbot.waitUntil(lambda: sup.endpoint is not None and sup.endpoint.model == "small", timeout=600_000)
    assert made.tray.kind == "ready"
    first_pids = server_pids(sup)
    assert len(first_pids) >= 2  # the API server and VLLM::EngineCore at least

    made.actions.profile_actions[1].trigger()
    qtbot.waitUntil(lambda: sup.endpoint is not None and sup.endpoint.model == "small-2", timeout=600_000)
    assert made.actions.profile_actions[1].isChecked()
    assert sup.endpoint.max_model_len == 1024
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in first_pids)
    assert "Model: small-2 (Small, second)" in made.tray.icon.toolTip()

    quitted: list[bool] = []
    made.actions.quit_requested.connect(lambda: quitted.append(True))
    second_pids = server_pids(sup)
    made.actions.quit_action.trigger()
    qtbot.waitUntil(lambda: quitted == [True], timeout=120_000)
    assert sup.processes() == []
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in second_pids)


# --- wired into the app as desktop/app.py does it -----------------------------------------------------


def build_app(qtbot: QtBot, app_paths: AppPaths, *, tray_only: bool, new_chat: bool = False) -> object:
    import argparse

    from PySide6.QtWidgets import QApplication

    from desktop.app import build

    args = argparse.Namespace(data_dir=str(app_paths.config.parent), tray=tray_only, new_chat=new_chat)
    parts = run(
        qtbot, build(args, QApplication.instance(), runtime=StandinRuntime([]), single_instance=False)
    )
    assert parts is not None
    qtbot.addWidget(parts.window)
    # Quit ends the app's loop in run_app; here a recorder stands in for QApplication.quit.
    parts.actions.quit_requested.disconnect(QApplication.instance().quit)
    return parts


@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("does not support propagateSizeHints")
def test_tray_only_start_without_a_tray_shows_the_window_with_the_launcher_menu(
    qtbot: QtBot, app_paths: AppPaths, settings: SettingsStore
) -> None:
    parts = build_app(qtbot, app_paths, tray_only=True)
    try:
        assert parts.tray.available is False
        assert parts.window.isVisible()  # `--tray` with no tray would otherwise leave nothing on screen
        texts = menu_texts(parts.window.launcher_menu)
        for text in ("Alpha", "Beta", "Stop server", "New chat", "Preferences…", "Quit"):
            assert text in texts
        assert "Open vLLM Desk" not in texts  # the window is already open
        save_menu_shot(parts.window.launcher_menu, "tray-window-menu.png")
    finally:
        run(qtbot, parts.close(), timeout=30)


@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("does not support propagateSizeHints")
def test_closing_or_file_quit_without_a_tray_quits_even_when_close_to_tray_is_chosen(
    qtbot: QtBot, app_paths: AppPaths, settings: SettingsStore
) -> None:
    set_general(settings, close_to_tray=True)
    parts = build_app(qtbot, app_paths, tray_only=False)
    try:
        quits: list[bool] = []
        parts.actions.quit_requested.connect(lambda: quits.append(True))
        parts.window.close()
        qtbot.waitUntil(lambda: quits == [True])
        assert not parts.window.isVisible()
        parts.actions.quit_action.setEnabled(True)
        parts.window.show()
        parts.window.quit_action.trigger()
        qtbot.waitUntil(lambda: quits == [True, True])
    finally:
        run(qtbot, parts.close(), timeout=30)


@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("does not support propagateSizeHints")
def test_the_new_chat_action_starts_on_an_empty_conversation(
    qtbot: QtBot, app_paths: AppPaths, settings: SettingsStore
) -> None:
    from engine.history.store import HistoryStore

    history = HistoryStore(app_paths.history_db)
    history.add_message(history.create_conversation(title="Earlier").id, None, "user", "an earlier question")
    history.close()
    parts = build_app(qtbot, app_paths, tray_only=False, new_chat=True)
    try:
        qtbot.waitUntil(parts.tasks[0].done, timeout=10000)
        assert parts.window.conversation_id is None  # not the restored last conversation
        assert parts.window.windowTitle().startswith("New chat")
        assert parts.window.sidebar.model.rowCount() == 1  # the earlier chat is still listed
    finally:
        run(qtbot, parts.close(), timeout=30)


@pytest.mark.usefixtures("qloop")
@pytest.mark.qt_log_ignore("does not support propagateSizeHints")
def test_the_models_menu_starts_through_the_window_server_link(
    qtbot: QtBot, app_paths: AppPaths, settings: SettingsStore
) -> None:
    parts = build_app(qtbot, app_paths, tray_only=False)
    try:
        window = parts.window
        beta = next(a for a in window.launcher_menu.actions() if a.text() == "Beta")
        assert beta.isEnabled()
        beta.trigger()
        assert window.server_starting()  # the link has it: a message written now waits for the server
        qtbot.waitUntil(lambda: parts.supervisor.state is ServerState.READY, timeout=30000)
        assert window.server_link.chosen_profile().name == "Beta"  # what Server > Start restarts
    finally:
        run(qtbot, parts.close(), timeout=30)


@pytest.mark.usefixtures("qloop")
def test_while_the_runtime_installs_the_tray_knows_a_server_starts(
    qtbot: QtBot, app_paths: AppPaths, settings: SettingsStore
) -> None:
    gate = asyncio.Event()
    installs: list[str] = []

    async def install(progress: Callable[[Progress], object]) -> None:
        installs.append("install")
        await gate.wait()

    sup = Supervisor(app_paths, StandinRuntime([]))
    with window_over(qtbot, app_paths, sup, settings, install) as window:
        made = Launcher(sup, settings, window=window)
        try:
            alpha = next(a for a in made.actions.profile_actions if a.text() == "Alpha")
            assert not made.actions.stop_action.isEnabled()
            alpha.trigger()
            qtbot.waitUntil(lambda: installs == ["install"])
            assert sup.state is ServerState.STOPPED  # the supervisor has not begun yet
            assert made.actions.stop_action.isEnabled()  # but the start can be stopped
            alpha.trigger()  # the checked one again: the start in flight carries on
            qtbot.wait(100)
            assert installs == ["install"]
            assert alpha.isChecked()
            made.actions.stop_action.trigger()
            qtbot.waitUntil(lambda: not window.server_starting())
            qtbot.waitUntil(lambda: not made.actions.stop_action.isEnabled())
        finally:
            run(qtbot, sup.shutdown())
            made.close()
