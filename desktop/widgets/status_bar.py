"""The server, always visible: profile and model, state (phase, progress, elapsed/expected), metrics, log.

The widgets only show what they are told; :class:`~desktop.window.server_link.ServerLink` feeds them from the
supervisor's events, in the words of desktop/server_states.py.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtWidgets import (
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QWidget,
)

from desktop import theme
from desktop.labels import ElidedLabel
from desktop.server_states import look_of

NOTICE_MS = 10000  # how long a notification stays in the status bar when there is no tray to show it


def tr(text: str) -> str:
    return QCoreApplication.translate("status", text)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ServerStatusBar(QStatusBar):
    """Profile · model | state (+ progress) | KV cache and requests | "Server log" button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serverStatus")
        self.setSizeGripEnabled(False)
        # Long profile names, model paths and failure words are cut short, never widen the window.
        self.server_label = ElidedLabel(parent=self, mode=Qt.TextElideMode.ElideMiddle)
        self.server_label.setAccessibleName(tr("Server profile and model"))
        self.state_label = ElidedLabel(parent=self)
        self.state_label.setObjectName("serverState")
        self.state_label.setAccessibleName(tr("Server state"))
        self.progress = QProgressBar(self)
        self.progress.setAccessibleName(tr("Server start progress"))
        self.progress.setMaximumWidth(160)
        self.progress.setMaximumHeight(16)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.time_label = QLabel(self)
        self.time_label.setAccessibleName(tr("Elapsed and expected time"))
        self.metrics_label = QLabel(self)
        self.metrics_label.setAccessibleName(tr("Server load"))
        self.log_button = QPushButton(tr("Server log"), self)
        self.log_button.setAccessibleName(tr("Open the server log"))
        self.log_button.setFlat(True)
        self.addWidget(self.server_label)
        self.addWidget(self.state_label)
        self.addWidget(self.progress)
        self.addWidget(self.time_label)
        self.addPermanentWidget(self.metrics_label)
        self.addPermanentWidget(self.log_button)
        self._started_at: float | None = None
        self._expected_s: float | None = None
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        stopped = look_of("stopped")
        self.set_state(stopped.bar, stopped.words)

    def set_server(self, profile: str, model: str) -> None:
        parts = [p for p in (profile, model) if p]
        self.server_label.setText(" · ".join(parts) if parts else tr("No server profile"))

    def set_state(self, kind: str, text: str) -> None:
        """``kind``: starting/ready/failed/stopped/stopping (it picks the colour); ``text``: the words."""
        self.state_label.setProperty("state", kind)
        self.state_label.setText(text)
        self.state_label.setStyleSheet(theme.state_style(kind, self.palette()))
        starting = kind == "starting"
        self.progress.setVisible(starting)
        self.time_label.setVisible(starting)
        if starting:
            if self._started_at is None:
                self._started_at = time.monotonic()
                self._clock.start()
            self._tick()
        else:
            self._started_at = None
            self._expected_s = None
            self._clock.stop()
        if kind != "ready":
            self.metrics_label.clear()

    def set_progress(self, fraction: float | None, expected_s: float | None = None) -> None:
        """``fraction`` in 0..1, or ``None`` for "busy, unknown how far"."""
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        if expected_s is not None:
            self._expected_s = expected_s
        self._tick()

    def set_metrics(self, kv_cache: float | None, running: int | None, waiting: int | None) -> None:
        parts: list[str] = []
        if kv_cache is not None:
            parts.append(tr("KV cache {p:.0f}%").format(p=kv_cache * 100))
        if running is not None:
            parts.append(tr("{n} running").format(n=running))
        if waiting:
            parts.append(tr("{n} waiting").format(n=waiting))
        self.metrics_label.setText(" · ".join(parts))

    def show_notice(self, title: str, message: str) -> None:
        """A notification in the status bar (where there is no system tray): "title: message" for a while."""
        self.showMessage(f"{title}: {message}" if message else title, NOTICE_MS)

    def _tick(self) -> None:
        if self._started_at is None:
            return
        elapsed = time.monotonic() - self._started_at
        text = format_duration(elapsed)
        if self._expected_s:
            text += " / ~" + format_duration(self._expected_s)
        self.time_label.setText(text)
