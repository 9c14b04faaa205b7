"""The system-tray model launcher: server state at a glance; start, stop and switch models without the window.

Two parts, so that the window can offer the same actions where no tray exists:

- :class:`~desktop.launcher.launcher_actions.LauncherActions` holds the ``QAction``s (server profiles, "Stop
server",
  recent conversations, "New chat", "Open vLLM Desk", "Preferences…", "Quit") and fills any ``QMenu`` with
  them: the tray's context menu, or the window's "Models" menu.
- :class:`TrayLauncher` owns the ``QSystemTrayIcon``: its icon and tooltip follow the supervisor's state and
  metrics, it sends the "model ready" / "model failed" notifications, decides close-vs-hide and keeps the
  login-autostart file in step with the preference.

Use (``desktop/app.py``)::

    actions = LauncherActions(supervisor, settings_store)
    tray = TrayLauncher(actions, supervisor, settings_store, notifier)
    actions.open_window_requested.connect(lambda: bring_to_front(window))
    actions.quit_requested.connect(app.quit)      # emitted after every server the app started is stopped
    if not tray.available:
        actions.fill_menu(window.launcher_menu, include_open=False)  # the same actions, from the window

``window.closeEvent`` asks :meth:`TrayLauncher.hide_on_close` whether to hide instead of quit.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon

from desktop import errors
from desktop.bridge import EventBridge
from desktop.launcher.launcher_actions import (
    LauncherActions,
    SettingsLike,
    SupervisorLike,
    format_uptime,
)
from desktop.notifications import Level, Notifier, one_line
from desktop.server_states import look_of, state_kind, state_name
from engine import APP_NAME, assets
from engine.errors import DeskError
from engine.integration.autostart import set_autostart
from engine.paths import AppPaths

# LauncherActions is re-exported: the app makes both from here.
__all__ = ["LauncherActions", "TrayLauncher", "format_uptime", "state_kind"]

log = logging.getLogger(__name__)


def tr(text: str) -> str:
    return QCoreApplication.translate("tray", text)


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
        paths: AppPaths | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths  # the data folders the app runs with: autostart starts on the same ones
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
        if profile is None:
            return ""
        if getattr(profile, "kind", "local") == "remote":
            # A remote server says what it serves once it answers; before that only a name the user gave is
            # known (served_model_name would be the built-in model's, which it does not run).
            return str(getattr(profile, "served_name", "") or "")
        return str(getattr(profile, "served_model_name", "") or "")

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
        state = look_of(self.state).short
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
            set_autostart(wanted, paths=self.paths)
        except DeskError as problem:
            errors.report(problem)

    def close(self) -> None:
        self._uptime.stop()
        self._bridge.close()
        self.notifier.set_tray(None)
        self.icon.hide()
