"""Appearance and behaviour: theme, font size, close-to-tray vs quit, send key, notifications, autostart."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QShowEvent
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
from engine.settings.store import Settings

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
        self.font_size.setSuffix(tr(" pt"))
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
        self._loading = False
        self.load()
        # Each widget writes only its own field: the Profiles page also sets start_server_with_app, and a
        # rewrite of every field from this page's widgets would silently undo that.
        self.theme.currentIndexChanged.connect(
            lambda _i: self._set("appearance", "theme", self.theme.currentData())
        )
        self.font_size.valueChanged.connect(lambda v: self._set("appearance", "font_size", v))
        self.send_key.currentIndexChanged.connect(
            lambda _i: self._set("general", "send_key", self.send_key.currentData())
        )
        self.close_to_tray.toggled.connect(lambda on: self._set("general", "close_to_tray", on))
        self.notifications.toggled.connect(lambda on: self._set("general", "notifications", on))
        self.autostart.toggled.connect(lambda on: self._set("general", "autostart", on))
        self.start_server.toggled.connect(lambda on: self._set("general", "start_server_with_app", on))
        self.vllm_path.textChanged.connect(self._set_vllm_path)

    def load(self) -> None:
        """Show the draft's values (again when the page is shown: another page may have changed them)."""
        general, appearance = self.draft.general, self.draft.appearance
        self._loading = True
        try:
            self.theme.setCurrentIndex(self.theme.findData(appearance.theme))
            self.font_size.setValue(appearance.font_size)
            self.send_key.setCurrentIndex(self.send_key.findData(general.send_key))
            (self.close_to_tray if general.close_to_tray else self.close_quits).setChecked(True)
            self.notifications.setChecked(general.notifications)
            self.autostart.setChecked(general.autostart)
            self.start_server.setChecked(general.start_server_with_app)
            typed = self.vllm_path.text().strip()
            # Leave what the user typed (e.g. "~/bin/vllm") alone while it still means the same path.
            if (Path(typed).expanduser() if typed else None) != general.vllm_path:
                self.vllm_path.setText(str(general.vllm_path) if general.vllm_path else "")
        finally:
            self._loading = False

    def showEvent(self, event: QShowEvent) -> None:
        self.load()
        super().showEvent(event)

    def _set(self, section: str, field: str, value: object) -> None:
        if not self._loading:
            setattr(getattr(self.draft, section), field, value)

    def _set_vllm_path(self, text: str) -> None:
        text = text.strip()
        self._set("general", "vllm_path", Path(text).expanduser() if text else None)
