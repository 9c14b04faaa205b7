"""The server log, readable: what ``vllm serve`` prints, with search, a warnings-and-errors filter,
follow-the-end, copy, and the log file one click away.

The app's own polling is kept out of vLLM's access log at launch (``--disable-access-log-for-endpoints``), so
what is left here is vLLM's own lines and the chat requests.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

LOG_LINES_KEPT = 5000
# vLLM's and uvicorn's level words, Python's tracebacks and the usual error shapes.
PROBLEM_LINE = re.compile(r"\b(WARNING|WARN|ERROR|CRITICAL|FATAL|Traceback|\w*Error|\w*Exception)\b")


def tr(text: str) -> str:
    return QCoreApplication.translate("status", text)


def is_problem(line: str) -> bool:
    return PROBLEM_LINE.search(line) is not None


class ServerLogDialog(QDialog):
    """The live server log, newest at the bottom. ``log_path`` says where the whole log file is."""

    def __init__(
        self, parent: QWidget | None = None, log_path: Callable[[], Path | None] | None = None
    ) -> None:
        super().__init__(parent)
        self._log_path = log_path or (lambda: None)
        self._lines: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self.setWindowTitle(tr("Server log"))
        self.setAccessibleName(tr("Server log"))
        self.view = QPlainTextEdit(self)
        self.view.setReadOnly(True)
        self.view.setAccessibleName(tr("Server log lines"))
        self.view.setMaximumBlockCount(LOG_LINES_KEPT)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        # Why the log is empty when it must be (a remote server keeps its log on its own machine).
        self.note = QLabel(self)
        self.note.setObjectName("logNote")
        self.note.setWordWrap(True)
        self.note.hide()

        self.search = QLineEdit(self)
        self.search.setPlaceholderText(tr("Show lines containing…"))
        self.search.setAccessibleName(tr("Search the log"))
        self.search.setClearButtonEnabled(True)
        self.problems_only = QCheckBox(tr("Warnings and errors only"), self)
        self.follow = QCheckBox(tr("Follow the end"), self)
        self.follow.setChecked(True)
        self.copy_button = QPushButton(tr("Copy"), self)
        self.copy_button.setToolTip(tr("Copy the selected lines, or every line shown"))
        self.open_button = QPushButton(tr("Open log file"), self)
        self.count = QLabel(self)
        tools = QHBoxLayout()
        tools.addWidget(self.search, 1)
        tools.addWidget(self.problems_only)
        tools.addWidget(self.follow)
        tools.addWidget(self.copy_button)
        tools.addWidget(self.open_button)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count, 1)
        bottom.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(tools)
        layout.addWidget(self.view)
        layout.addLayout(bottom)
        self.resize(900, 500)
        self.setWindowModality(Qt.WindowModality.NonModal)

        self.search.textChanged.connect(lambda _text: self._refilter())
        self.problems_only.toggled.connect(lambda _on: self._refilter())
        self.follow.toggled.connect(lambda on: self._scroll_to_end() if on else None)
        self.copy_button.clicked.connect(self.copy)
        self.open_button.clicked.connect(self.open_log_file)
        self._refresh_count()

    # --- what the window feeds in ----------------------------------------------------------------------
    def set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def set_lines(self, lines: list[str]) -> None:
        self._lines.clear()
        self._lines.extend(lines[-LOG_LINES_KEPT:])
        self._refilter()

    def append_line(self, line: str) -> None:
        self._lines.append(line)
        if self.shows(line):
            bar = self.view.verticalScrollBar()
            kept = bar.value()
            self.view.appendPlainText(line)
            if self.follow.isChecked():
                self._scroll_to_end()
            else:
                bar.setValue(kept)  # reading something further up: stay there
        self._refresh_count()

    # --- filtering -------------------------------------------------------------------------------------
    def shows(self, line: str) -> bool:
        wanted = self.search.text().strip().lower()
        if wanted and wanted not in line.lower():
            return False
        return not self.problems_only.isChecked() or is_problem(line)

    def shown_lines(self) -> list[str]:
        return [line for line in self._lines if self.shows(line)]

    def _refilter(self) -> None:
        self.view.setPlainText("\n".join(self.shown_lines()))
        if self.follow.isChecked():
            self._scroll_to_end()
        self._refresh_count()

    def _refresh_count(self) -> None:
        shown, total = len(self.shown_lines()), len(self._lines)
        filtered = self.search.text().strip() or self.problems_only.isChecked()
        self.count.setText(
            tr("{shown} of {total} lines").format(shown=shown, total=total)
            if filtered
            else tr("{total} lines").format(total=total)
        )
        path = self._log_path()
        self.open_button.setEnabled(path is not None and path.exists())
        self.open_button.setToolTip(str(path) if path is not None else tr("No server has written a log yet"))

    def _scroll_to_end(self) -> None:
        bar = self.view.verticalScrollBar()
        bar.setValue(bar.maximum())

    # --- actions ---------------------------------------------------------------------------------------
    def copy(self) -> str:
        """Copy the selection, or every line shown; returns what was copied."""
        selected = self.view.textCursor().selectedText().replace("\u2029", "\n")
        text = selected or self.view.toPlainText()
        QGuiApplication.clipboard().setText(text)
        return text

    def open_log_file(self) -> bool:
        path = self._log_path()
        if path is None or not path.exists():
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
