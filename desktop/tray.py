"""The system-tray model launcher: server state at a glance; start, stop and switch models without the window.

Two parts, so that the window can offer the same actions where no tray exists:

- :class:`LauncherActions` holds the ``QAction``s (server profiles, "Stop server", recent conversations,
  "New chat", "Open vLLM Desk", "Preferences…", "Quit") and fills any ``QMenu`` with them
  (:meth:`LauncherActions.fill_menu`): the tray's context menu, or the window's "Server" menu.
- :class:`TrayLauncher` owns the ``QSystemTrayIcon``: its icon and tooltip follow the supervisor's state and
  metrics, it sends the "model ready" / "model failed" notifications, and it decides close-vs-hide.

Use (``desktop/app.py``)::

    actions = LauncherActions(supervisor, settings_store)
    tray = TrayLauncher(actions, supervisor, settings_store, notifier)
    actions.open_window_requested.connect(lambda: bring_to_front(window))
    actions.quit_requested.connect(app.quit)      # emitted after every server the app started is stopped
    if not tray.available:
        actions.fill_menu(window.server_menu)      # the same actions from the window

``window.closeEvent`` asks :meth:`TrayLauncher.hide_on_close` whether to hide instead of quit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon
from shiboken6 import isValid

from desktop import errors
from desktop.bridge import EventBridge
from desktop.notifications import Level, Notifier, one_line
from desktop.operations import Operation
from engine import APP_NAME, assets
from engine.autostart import set_autostart
from engine.errors import DeskError
from engine.events import Event

log = logging.getLogger(__name__)

RECENT_LIMIT = 5
STATE_LABELS = {
    "stopped": "Stopped",
    "preparing": "Preparing",
    "starting": "Starting",
    "ready": "Ready",
    "stopping": "Stopping",
    "failed": "Failed",
}


def tr(text: str) -> str:
    return QCoreApplication.translate("tray", text)


class SupervisorLike(Protocol):
    """What the launcher needs of ``engine.supervisor.Supervisor``."""

    state_changed: Event[Any]
    metrics: Event[Any]

    @property
    def state(self) -> Any: ...

    async def start(self, profile: Any) -> Any: ...

    async def stop(self) -> None: ...

    async def switch(self, profile: Any) -> Any: ...

    async def shutdown(self) -> None: ...


class SettingsLike(Protocol):
    """What the launcher needs of ``engine.settings.SettingsStore``."""

    changed: Event[Any]

    @property
    def settings(self) -> Any: ...


# The supervisor's states (engine.supervisor.ServerState values) -> the tray icon's four looks.
_LOOKS = {
    "stopped": "stopped",
    "preparing": "starting",
    "starting": "starting",
    "ready": "ready",
    "stopping": "starting",
    "failed": "failed",
}


def state_name(state: Any) -> str:
    """``"ready"`` from a ``ServerState``, a ``StateChange`` or a plain string."""
    state = getattr(state, "state", state)
    return str(getattr(state, "value", state) or "stopped").lower()


def state_kind(state: Any) -> str:
    """The tray's look (stopped/starting/ready/failed) for a supervisor state or state change."""
    return _LOOKS.get(state_name(state), "stopped")


def format_uptime(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class RecentConversation:
    id: int
    title: str


class LauncherActions(QObject):
    """The launcher's actions; the tray menu and the window's menu are both filled from them."""

    new_chat_requested = Signal()
    open_window_requested = Signal()
    preferences_requested = Signal()
    conversation_requested = Signal(int)
    # Emitted once every server the app started has been stopped: the app may now exit.
    quit_requested = Signal()
    # The profile the user asked for (name), before the server call runs.
    profile_requested = Signal(str)

    def __init__(
        self, supervisor: SupervisorLike | None, settings: SettingsLike, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.supervisor = supervisor
        self.settings = settings
        self.active_profile = ""
        self.profile_group = QActionGroup(self)
        self.profile_group.setExclusive(True)
        self.profile_actions: list[QAction] = []
        self.recent: list[RecentConversation] = []
        self.recent_actions: list[QAction] = []
        self._profile_task: asyncio.Task[None] | None = None
        self._store: Any = None
        self._recent_task: asyncio.Task[None] | None = None
        self._recent_menus: list[QMenu] = []

        self.stop_action = self._make(tr("Stop server"), self.stop_server)
        self.new_chat_action = self._make(tr("New chat"), self.new_chat_requested.emit)
        self.open_action = self._make(tr("Open vLLM Desk"), self.open_window_requested.emit)
        self.preferences_action = self._make(tr("Preferences…"), self.preferences_requested.emit)
        self.quit_action = self._make(tr("Quit"), self.quit)
        self.quit_action.setToolTip(tr("Stop every server vLLM Desk started and exit"))
        self._menus: list[tuple[QMenu, bool]] = []
        self._bridge = EventBridge(self)
        self._bridge.connect_event(settings.changed, lambda _s: self.rebuild())
        if supervisor is not None:
            self._bridge.connect_event(supervisor.state_changed, lambda _s: self._sync_enabled())
        self.rebuild()

    def _make(self, text: str, slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    # --- profiles ------------------------------------------------------------------------------------

    def profiles(self) -> list[Any]:
        return list(getattr(self.settings.settings, "profiles", []))

    def rebuild(self) -> None:
        """Recreate the profile and recent-conversation actions and refill every menu."""
        for action in self.profile_actions:
            self.profile_group.removeAction(action)
            action.deleteLater()
        self.profile_actions = []
        for profile in self.profiles():
            action = QAction(profile.name, self)
            action.setCheckable(True)
            action.setChecked(profile.name == self.active_profile)
            action.setData(profile.name)
            action.triggered.connect(partial(self._profile_chosen, profile.name))
            self.profile_group.addAction(action)
            self.profile_actions.append(action)
        self._sync_enabled()
        self._recent_menus = []
        for menu, include_open in self._menus:
            self._fill(menu, include_open)
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        for action in self.recent_actions:
            action.deleteLater()
        self.recent_actions = []
        for item in self.recent:
            action = QAction(_elide(item.title or tr("Untitled"), 48), self)
            action.setData(item.id)
            action.triggered.connect(partial(self._conversation_chosen, item.id))
            self.recent_actions.append(action)
        for submenu in self._recent_menus:
            if not isValid(submenu):
                continue
            submenu.clear()
            submenu.addActions(self.recent_actions)
            submenu.setEnabled(bool(self.recent_actions))

    def set_active_profile(self, name: str) -> None:
        self.active_profile = name
        for action in self.profile_actions:
            action.setChecked(action.data() == name)

    def _sync_enabled(self) -> None:
        kind = state_kind(getattr(self.supervisor, "state", None)) if self.supervisor else "stopped"
        self.stop_action.setEnabled(self.supervisor is not None and kind in ("starting", "ready"))
        for action in self.profile_actions:
            action.setEnabled(self.supervisor is not None)

    def _profile_chosen(self, name: str, _checked: bool = False) -> None:
        self.choose_profile(name)

    def choose_profile(self, name: str) -> asyncio.Task[None] | None:
        """Start the profile ``name``, or switch to it from the one running; returns the operation's task."""
        profile = next((p for p in self.profiles() if p.name == name), None)
        if profile is None or self.supervisor is None:
            return None
        supervisor = self.supervisor
        kind = state_kind(supervisor.state)
        if name == self.active_profile and kind in ("starting", "ready"):
            self.set_active_profile(name)  # clicking the checked one keeps it checked
            return None
        self.set_active_profile(name)
        self.profile_requested.emit(name)
        prior = self._profile_task
        call: Callable[[], Awaitable[Any]]
        if kind in ("starting", "ready"):
            call = partial(supervisor.switch, profile)
        else:
            call = partial(supervisor.start, profile)

        async def after_prior() -> Any:
            if prior is not None and not prior.done():
                # A start still in flight: cancelling it stops that launch; wait until it has.
                prior.cancel()
                await asyncio.wait([prior])
            return await call()

        self._profile_task = Operation(None, after_prior).run()
        return self._profile_task

    def stop_server(self) -> asyncio.Task[None] | None:
        if self.supervisor is None:
            return None
        return Operation(None, self.supervisor.stop).run()

    # --- recent conversations ------------------------------------------------------------------------

    def set_recent_conversations(self, items: Sequence[Any]) -> None:
        """The last few conversations (objects with ``id`` and ``title``, newest first)."""
        recent = [RecentConversation(int(c.id), str(c.title)) for c in items[:RECENT_LIMIT]]
        if recent != self.recent:
            self.recent = recent
            self._rebuild_recent()

    async def load_recent(self, store: Any) -> None:
        """Refresh the recent list from ``engine.store.AsyncHistoryStore`` (again whenever a menu opens)."""
        self._store = store
        page = await store.list_conversations(limit=RECENT_LIMIT)
        self.set_recent_conversations(page.items)

    def _refresh_recent(self) -> None:
        # The menu shows what is known now; a changed list replaces the submenu's entries in place.
        if self._store is None or (self._recent_task is not None and not self._recent_task.done()):
            return
        store = self._store
        self._recent_task = Operation(None, lambda: self.load_recent(store)).run()

    def _conversation_chosen(self, conversation_id: int, _checked: bool = False) -> None:
        self.conversation_requested.emit(conversation_id)

    # --- quit ----------------------------------------------------------------------------------------

    def quit(self) -> asyncio.Task[None]:
        """Stop every server the app started, then emit :attr:`quit_requested`."""
        self.quit_action.setEnabled(False)

        async def stop_all() -> None:
            if self.supervisor is not None:
                await self.supervisor.shutdown()

        def done(_result: object) -> None:
            self.quit_requested.emit()

        def failed(exc: BaseException) -> None:
            # Quitting must not get stuck on a server that refuses to stop: log it, still quit.
            log.error("stopping the servers at quit failed: %s", exc)
            self.quit_requested.emit()

        return Operation(None, stop_all).success(done).failure(failed).run()

    # --- menus ---------------------------------------------------------------------------------------

    def fill_menu(self, menu: QMenu, *, include_open: bool = True) -> QMenu:
        """Put the launcher's actions into ``menu`` (and keep them current when profiles change)."""
        self._menus.append((menu, include_open))
        menu.destroyed.connect(lambda _obj=None, m=menu: self._forget(m))
        menu.aboutToShow.connect(self._refresh_recent)
        self._fill(menu, include_open)
        return menu

    def build_menu(self, parent: Any = None) -> QMenu:
        return self.fill_menu(QMenu(parent))

    def _forget(self, menu: QMenu) -> None:
        self._menus = [(m, o) for m, o in self._menus if m is not menu]
        # The submenus of a destroyed menu may already be gone on the C++ side.
        self._recent_menus = [r for r in self._recent_menus if isValid(r) and r.parent() is not menu]

    def _fill(self, menu: QMenu, include_open: bool) -> None:
        menu.clear()
        if self.profile_actions:
            menu.addSection(tr("Server profiles"))
            for action in self.profile_actions:
                menu.addAction(action)
        else:
            empty = menu.addAction(tr("No server profiles"))
            empty.setEnabled(False)
        menu.addAction(self.stop_action)
        menu.addSeparator()
        recent = menu.addMenu(tr("Recent conversations"))
        recent.setEnabled(bool(self.recent_actions))
        recent.addActions(self.recent_actions)
        self._recent_menus.append(recent)
        menu.addAction(self.new_chat_action)
        menu.addSeparator()
        if include_open:
            menu.addAction(self.open_action)
        menu.addAction(self.preferences_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)

    def close(self) -> None:
        self._bridge.close()


class TrayLauncher(QObject):
    """The tray icon over the supervisor. Works (minus the icon on screen) where no tray exists."""

    def __init__(
        self,
        actions: LauncherActions,
        supervisor: SupervisorLike | None,
        settings: SettingsLike,
        notifier: Notifier,
        *,
        tray_available: bool | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.actions = actions
        self.supervisor = supervisor
        self.settings = settings
        self.notifier = notifier
        self.available = QSystemTrayIcon.isSystemTrayAvailable() if tray_available is None else tray_available
        self.kind = "stopped"
        self.state = "stopped"
        self.model = ""
        self.kv_cache: float | None = None
        self.ready_since: float | None = None
        self.hide_hint_shown = False
        self._icons = {state: QIcon(str(assets.tray_icon(state))) for state in assets.TRAY_STATES}
        self.icon = QSystemTrayIcon(self._icons["stopped"], self)
        self.menu = actions.build_menu()
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self._uptime = QTimer(self)
        self._uptime.setInterval(1000)
        self._uptime.timeout.connect(self._update_tooltip)
        self._bridge = EventBridge(self)
        if supervisor is not None:
            self._bridge.connect_event(supervisor.state_changed, self.on_state)
            self._bridge.connect_event(supervisor.metrics, self.on_metrics)
            self.on_state(supervisor.state, notify=False)
        self._update_tooltip()
        self.notifier.set_tray(self.icon)
        self._autostart: bool | None = None
        self._bridge.connect_event(settings.changed, self.sync_autostart)
        self.sync_autostart(settings.settings)
        if self.available:
            self.icon.show()

    # --- state ---------------------------------------------------------------------------------------

    def on_state(self, change: Any, *, notify: bool = True) -> None:
        """The supervisor's state changed (a ``StateChange``): icon, tooltip, notification if ready/failed."""
        self.state = state_name(change)
        kind = state_kind(change)
        previous, self.kind = self.kind, kind
        endpoint = getattr(change, "endpoint", None) or getattr(self.supervisor, "endpoint", None)
        profile = getattr(change, "profile_name", "") or getattr(endpoint, "profile_name", "") or ""
        if profile:
            self.actions.set_active_profile(profile)
        self.model = getattr(endpoint, "model", "") or self._served_name(profile) or self.model
        self.icon.setIcon(self._icons[kind])
        if kind == "ready":
            if previous != "ready":
                self.ready_since = time.monotonic()
            self._uptime.start()
        else:
            self.ready_since = None
            self.kv_cache = None
            self._uptime.stop()
        self._update_tooltip()
        if notify and kind != previous:
            problem = getattr(change, "problem", None) or getattr(self.supervisor, "problem", None)
            self._notify_transition(kind, problem)

    def _served_name(self, profile_name: str) -> str:
        profile = next((p for p in self.actions.profiles() if p.name == profile_name), None)
        return str(getattr(profile, "served_model_name", "") or "") if profile is not None else ""

    def on_metrics(self, sample: Any) -> None:
        usage = getattr(sample, "kv_cache_usage", None)
        self.kv_cache = float(usage) if usage is not None else None
        self._update_tooltip()

    def _notify_transition(self, kind: str, problem: object) -> None:
        name = self.model or self.actions.active_profile or tr("The model")
        if kind == "ready":
            self.notifier.notify(tr("Model ready"), tr("{name} is ready to chat.").format(name=name))
        elif kind == "failed":
            reason = one_line(str(problem)) if problem else tr("see the server log for details")
            self.notifier.notify(
                tr("Model failed to start"),
                tr("{name}: {reason}").format(name=name, reason=reason),
                Level.ERROR,
            )

    def tooltip(self) -> str:
        lines = [APP_NAME]
        if self.model:
            profile = self.actions.active_profile
            lines.append(tr("Model: {model}").format(model=self.model) + (f" ({profile})" if profile else ""))
        state = tr(STATE_LABELS.get(self.state, self.state.title()))
        if self.ready_since is not None:
            uptime = format_uptime(time.monotonic() - self.ready_since)
            state += " · " + tr("up {uptime}").format(uptime=uptime)
        lines.append(tr("Server: {state}").format(state=state))
        if self.kv_cache is not None:
            lines.append(tr("KV cache: {percent:.0f}% used").format(percent=self.kv_cache * 100))
        return "\n".join(lines)

    def _update_tooltip(self) -> None:
        self.icon.setToolTip(self.tooltip())

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.actions.open_window_requested.emit()

    # --- close vs quit -------------------------------------------------------------------------------

    def hide_on_close(self) -> bool:
        """Whether closing the window should hide it (the user chose it AND a tray icon is there).

        The first time it does, a notification says the server keeps running and how to quit.
        """
        general = getattr(self.settings.settings, "general", None)
        wanted = bool(getattr(general, "close_to_tray", False))
        if not (wanted and self.available and self.icon.isVisible()):
            return False
        if not self.hide_hint_shown:
            self.hide_hint_shown = True
            self.notifier.notify(
                tr("vLLM Desk is still running"),
                tr("The model server keeps running. To stop it, choose Quit in the tray menu."),
                always=True,
            )
        return True

    # --- autostart ----------------------------------------------------------------------------------

    def sync_autostart(self, settings: Any) -> None:
        """Keep the XDG autostart file in step with the "start at login" preference.

        Acts when the preference changes (and once at start when it is on, which also refreshes the
        command the file runs after a reinstall); a file made by hand while it is off is left alone.
        """
        wanted = bool(getattr(getattr(settings, "general", None), "autostart", False))
        if wanted == self._autostart or (self._autostart is None and not wanted):
            self._autostart = wanted
            return
        self._autostart = wanted
        try:
            set_autostart(wanted)
        except DeskError as problem:
            errors.report(problem)

    def close(self) -> None:
        self._uptime.stop()
        self._bridge.close()
        self.notifier.set_tray(None)
        self.icon.hide()


def _elide(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
