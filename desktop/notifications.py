"""Desktop notifications: through the tray icon when there is one, else through the window's fallback.

Server ready / failed and the first hide-to-tray are worth telling the user about while the window is
not in front. :class:`Notifier` picks the channel: ``QSystemTrayIcon.showMessage`` when a tray icon is
visible, otherwise a fallback callable the main window provides (its status bar). Notifications can be
switched off in the settings (``general.notifications``); the hide-to-tray hint is always shown because it
explains where the window went.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSystemTrayIcon

log = logging.getLogger(__name__)

MESSAGE_MS = 8000


class Level(Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_TRAY_ICONS = {
    Level.INFO: QSystemTrayIcon.MessageIcon.Information,
    Level.WARNING: QSystemTrayIcon.MessageIcon.Warning,
    Level.ERROR: QSystemTrayIcon.MessageIcon.Critical,
}


@dataclass(frozen=True)
class Notification:
    title: str
    message: str
    level: Level = Level.INFO
    # Where it went: "tray", "fallback", or "none" (no channel, or switched off).
    channel: str = "none"


def one_line(text: str, limit: int = 160) -> str:
    """The first line of ``text``, shortened to ``limit`` characters (notifications are glanced at)."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


class Notifier(QObject):
    """Sends notifications through the best channel available right now."""

    # Every notification, also those switched off (channel "none"): the window can log or show them.
    posted = Signal(object)

    def __init__(
        self,
        *,
        enabled: Callable[[], bool] = lambda: True,
        fallback: Callable[[str, str], object] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._enabled = enabled
        self._fallback = fallback
        self._tray: QSystemTrayIcon | None = None

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        self._tray = tray

    def set_fallback(self, fallback: Callable[[str, str], object] | None) -> None:
        """Where notifications go without a tray (e.g. ``lambda t, m: status_bar.showMessage(...)``)."""
        self._fallback = fallback

    def notify(
        self, title: str, message: str, level: Level = Level.INFO, *, always: bool = False
    ) -> Notification:
        """Show ``title``/``message`` unless notifications are off (``always`` ignores that switch)."""
        message = one_line(message, limit=300)
        channel = "none"
        if always or self._enabled():
            if self._tray is not None and self._tray.isVisible() and QSystemTrayIcon.supportsMessages():
                self._tray.showMessage(title, message, _TRAY_ICONS[level], MESSAGE_MS)
                channel = "tray"
            elif self._fallback is not None:
                self._fallback(title, message)
                channel = "fallback"
            else:
                log.info("notification with nowhere to go: %s: %s", title, message)
        note = Notification(title, message, level, channel)
        self.posted.emit(note)
        return note
