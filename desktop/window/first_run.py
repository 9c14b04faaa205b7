"""First start on a fresh machine: the window shows the vLLM runtime install and the built-in model's
preparation as they happen (minutes, not a frozen window), then the server starts as usual."""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QFrame, QLabel, QListWidget, QProgressBar, QVBoxLayout, QWidget

STEPS_SHOWN = 6


def tr(text: str) -> str:
    return QCoreApplication.translate("first_run", text)


class FirstRunPanel(QFrame):
    """ "Setting up vLLM Desk": the current step, a progress bar and the last few steps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("firstRun")
        self.setAccessibleName(tr("Setting up"))
        self.title = QLabel(f"<b>{tr('Setting up vLLM Desk')}</b>", self)
        self.explain = QLabel(
            tr(
                "The first start installs the vLLM runtime and prepares the built-in model. "
                "This happens once."
            ),
            self,
        )
        self.explain.setWordWrap(True)
        self.step = QLabel(self)
        self.step.setAccessibleName(tr("Current step"))
        self.step.setWordWrap(True)
        self.bar = QProgressBar(self)
        self.bar.setAccessibleName(tr("Setup progress"))
        self.history = QListWidget(self)
        self.history.setAccessibleName(tr("Setup steps"))
        self.history.setMaximumHeight(110)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addWidget(self.title)
        layout.addWidget(self.explain)
        layout.addWidget(self.step)
        layout.addWidget(self.bar)
        layout.addWidget(self.history)
        self._started = time.monotonic()
        self.hide()

    def show_step(self, what: str, message: str, fraction: float | None) -> None:
        """One progress report (``what``: "runtime" or "model"); shows the panel if it was hidden."""
        if not self.isVisible():
            self._started = time.monotonic()
            self.show()
        label = tr("vLLM runtime") if what == "runtime" else tr("Built-in model")
        elapsed = int(time.monotonic() - self._started)
        self.step.setText(f"{label}: {message} ({elapsed // 60}:{elapsed % 60:02d})")
        if fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        last = self.history.item(self.history.count() - 1)
        line = f"{label}: {message}"
        if last is None or last.text() != line:
            self.history.addItem(line)
            while self.history.count() > STEPS_SHOWN:
                self.history.takeItem(0)
            self.history.scrollToBottom()

    def finish(self) -> None:
        self.hide()
        self.history.clear()
