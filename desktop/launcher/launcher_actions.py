"""The launcher's actions, shared by the tray menu and the window's menu where no tray exists.

:class:`LauncherActions` holds the ``QAction``s (server profiles with the active one checked, "Stop server",
recent conversations, "New chat", "Open vLLM Desk", "Preferences…", "Quit") and fills any ``QMenu`` with them
(:meth:`LauncherActions.fill_menu`). Starts and switches go to the window's
:class:`~desktop.window.server_link.ServerLink` (``server``), the one place every start goes through (runtime
install, messages queued meanwhile, errors to the one renderer); other server calls run as an
:class:`~desktop.operations.Operation`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QObject, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu
from shiboken6 import isValid

from desktop.bridge import EventBridge
from desktop.operations import Operation
from desktop.server_states import state_kind
from engine.events import Event

log = logging.getLogger(__name__)

RECENT_LIMIT = 5


def tr(text: str) -> str:
    return QCoreApplication.translate("tray", text)


class SupervisorLike(Protocol):
    """What the launcher needs of ``engine.server.supervisor.Supervisor``."""

    state_changed: Event[Any]
    metrics: Event[Any]

    @property
    def state(self) -> Any: ...

    async def shutdown(self) -> None: ...


class ServerControl(Protocol):
    """Where the launcher's starts and stops go: ``desktop.window.server_link.ServerLink``."""

    @property
    def starting(self) -> bool: ...

    def start(self, profile: Any = None) -> asyncio.Task[None]: ...

    def stop(self) -> asyncio.Task[None]: ...


class SettingsLike(Protocol):
    """What the launcher needs of ``engine.settings.store.SettingsStore``."""

    changed: Event[Any]

    @property
    def settings(self) -> Any: ...


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
    dashboard_requested = Signal()
    conversation_requested = Signal(int)
    # Emitted once every server the app started has been stopped: the app may now exit.
    quit_requested = Signal()
    # The profile the user asked for (name), before the server call runs.
    profile_requested = Signal(str)
    # The list of profiles or the active one changed (the model picker follows it).
    profiles_changed = Signal()

    def __init__(
        self,
        supervisor: SupervisorLike | None,
        settings: SettingsLike,
        parent: QObject | None = None,
        *,
        server: ServerControl | None = None,
    ) -> None:
        """``supervisor``: whose state the actions show and whose servers Quit stops. ``server``: where
        starts and stops go (the window's server link); without it no profile can be started from here."""
        super().__init__(parent)
        self.supervisor = supervisor
        self.server = server
        self.settings = settings
        self.active_profile = ""
        self.profile_group = QActionGroup(self)
        self.profile_group.setExclusive(True)
        self.profile_actions: list[QAction] = []
        self.recent: list[RecentConversation] = []
        self.recent_actions: list[QAction] = []
        self._store: Any = None
        self._recent_task: asyncio.Task[None] | None = None
        self._recent_menus: list[QMenu] = []

        self.stop_action = self._make(tr("Stop server"), self.stop_server)
        self.new_chat_action = self._make(tr("New chat"), self.new_chat_requested.emit)
        self.open_action = self._make(tr("Open vLLM Desk"), self.open_window_requested.emit)
        self.preferences_action = self._make(tr("Preferences…"), self.preferences_requested.emit)
        self.dashboard_action = self._make(tr("Server dashboard…"), self.dashboard_requested.emit)
        self.dashboard_action.setToolTip(
            tr("Live charts of the server: tokens/s, time to first token, KV cache")
        )
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
        self.profiles_changed.emit()
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
        changed = name != self.active_profile
        self.active_profile = name
        for action in self.profile_actions:
            action.setChecked(action.data() == name)
        if changed:
            self.profiles_changed.emit()

    def _server_up(self) -> bool:
        """A server runs or starts; also while the runtime installs (the supervisor is still stopped then)."""
        if self.server is None:
            return False
        kind = state_kind(getattr(self.supervisor, "state", None)) if self.supervisor else "stopped"
        return self.server.starting or kind in ("starting", "ready")

    def _sync_enabled(self) -> None:
        self.stop_action.setEnabled(self._server_up())
        for action in self.profile_actions:
            action.setEnabled(self.server is not None)

    def _profile_chosen(self, name: str, _checked: bool = False) -> None:
        self.choose_profile(name)

    def choose_profile(self, name: str) -> asyncio.Task[None] | None:
        """Start the profile ``name``, or switch to it from the one running; returns the start's task."""
        profile = next((p for p in self.profiles() if p.name == name), None)
        if profile is None or self.server is None:
            return None
        if name == self.active_profile and self._server_up():
            self.set_active_profile(name)  # clicking the checked one keeps it checked
            return None
        self.set_active_profile(name)
        self.profile_requested.emit(name)
        task = self.server.start(profile)  # it stops (or cancels the start of) the one before
        self._sync_enabled()  # Stop works at once, also during the runtime install
        task.add_done_callback(lambda _task: self._sync_enabled() if isValid(self.stop_action) else None)
        return task

    def stop_server(self) -> asyncio.Task[None] | None:
        return self.server.stop() if self.server is not None else None

    # --- recent conversations ------------------------------------------------------------------------

    def set_recent_conversations(self, items: Sequence[Any]) -> None:
        """The last few conversations (objects with ``id`` and ``title``, newest first)."""
        recent = [RecentConversation(int(c.id), str(c.title)) for c in items[:RECENT_LIMIT]]
        if recent != self.recent:
            self.recent = recent
            self._rebuild_recent()

    async def load_recent(self, store: Any) -> None:
        """Refresh the recent list from ``engine.history.async_store.AsyncHistoryStore`` (again when a menu
        opens)."""
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
        if include_open:  # the tray's menu; the window has the dashboard in its Server menu
            menu.addAction(self.open_action)
            menu.addAction(self.dashboard_action)
        menu.addAction(self.preferences_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)

    def close(self) -> None:
        self._bridge.close()


def _elide(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
