"""Appearance and behaviour: theme, font size, close-to-tray vs quit, send key, notifications, autostart."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.preferences.form import HELP_STYLE, tr
from engine.settings import Settings

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))
SEND_KEYS = (("enter", "Enter sends, Shift+Enter starts a new line"), ("ctrl+enter", "Ctrl+Enter sends"))


class AppearancePage(QWidget):
    """Edits ``general`` and ``appearance`` of the dialog's draft settings."""

    def __init__(
        self, draft: Settings, overridden: set[tuple[str, str]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.draft = draft
        form = QFormLayout(self)
        self.theme = QComboBox()
        for key, label in THEMES:
            self.theme.addItem(tr(label), key)
        form.addRow(tr("Theme"), self.theme)
        self.font_size = QSpinBox()
        self.font_size.setRange(6, 32)
        self.font_size.setSuffix(" pt")
        form.addRow(tr("Chat font size"), self.font_size)
        self.send_key = QComboBox()
        for key, label in SEND_KEYS:
            self.send_key.addItem(tr(label), key)
        form.addRow(tr("Send key"), self.send_key)
        close_box = QWidget()
        close_layout = QVBoxLayout(close_box)
        close_layout.setContentsMargins(0, 0, 0, 0)
        self.close_quits = QRadioButton(tr("Quit the app (and stop its server)"))
        self.close_to_tray = QRadioButton(tr("Keep running in the tray"))
        group = QButtonGroup(self)
        group.addButton(self.close_quits)
        group.addButton(self.close_to_tray)
        close_layout.addWidget(self.close_quits)
        close_layout.addWidget(self.close_to_tray)
        form.addRow(tr("Closing the window"), close_box)
        self.notifications = QCheckBox(tr("Notify me when the server is ready or a long answer is done"))
        form.addRow(tr("Notifications"), self.notifications)
        self.autostart = QCheckBox(tr("Start vLLM Desk when I log in"))
        form.addRow(tr("Autostart"), self.autostart)
        self.start_server = QCheckBox(tr("Start the default profile's server when the app starts"))
        form.addRow(tr("Server"), self.start_server)
        self.vllm_path = QLineEdit()
        self.vllm_path.setPlaceholderText(tr("the managed vLLM (leave empty)"))
        form.addRow(tr("vLLM executable"), self.vllm_path)
        hint = QLabel(tr("Advanced: a vllm command to use instead of the one vLLM Desk installs."))
        hint.setStyleSheet(HELP_STYLE)
        form.addRow("", hint)
        if overridden:
            names = ", ".join(f"{s}.{k}" for s, k in sorted(overridden))
            note = QLabel(tr("Set by environment variables for this run: ") + names)
            note.setWordWrap(True)
            note.setStyleSheet(HELP_STYLE)
            form.addRow("", note)
        self.load()
        self.theme.currentIndexChanged.connect(self._store)
        self.font_size.valueChanged.connect(self._store)
        self.send_key.currentIndexChanged.connect(self._store)
        self.close_to_tray.toggled.connect(self._store)
        for box in (self.notifications, self.autostart, self.start_server):
            box.toggled.connect(self._store)
        self.vllm_path.textChanged.connect(self._store)

    def load(self) -> None:
        general, appearance = self.draft.general, self.draft.appearance
        self.theme.setCurrentIndex(self.theme.findData(appearance.theme))
        self.font_size.setValue(appearance.font_size)
        self.send_key.setCurrentIndex(self.send_key.findData(general.send_key))
        (self.close_to_tray if general.close_to_tray else self.close_quits).setChecked(True)
        self.notifications.setChecked(general.notifications)
        self.autostart.setChecked(general.autostart)
        self.start_server.setChecked(general.start_server_with_app)
        self.vllm_path.setText(str(general.vllm_path) if general.vllm_path else "")

    def _store(self, *_args: object) -> None:
        general, appearance = self.draft.general, self.draft.appearance
        appearance.theme = self.theme.currentData()
        appearance.font_size = self.font_size.value()
        general.send_key = self.send_key.currentData()
        general.close_to_tray = self.close_to_tray.isChecked()
        general.notifications = self.notifications.isChecked()
        general.autostart = self.autostart.isChecked()
        general.start_server_with_app = self.start_server.isChecked()
        text = self.vllm_path.text().strip()
        general.vllm_path = Path(text).expanduser() if text else None
