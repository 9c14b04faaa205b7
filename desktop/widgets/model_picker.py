"""The model picker at the top of the chat: which server profile runs, in what state, and a switch to another
one — what LM Studio and Jan put above their conversations.

It shows :class:`~desktop.launcher.launcher_actions.LauncherActions`' profiles (the tray menu's and the
Models menu's
own list) and starts one through them, so the window, the tray and the menus always agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

from desktop import theme
from desktop.bridge import EventBridge
from desktop.labels import ElidedLabel
from desktop.server_states import state_kind, state_words

if TYPE_CHECKING:
    from desktop.launcher.launcher_actions import LauncherActions


def tr(text: str) -> str:
    return QCoreApplication.translate("picker", text)


class ModelPicker(QWidget):
    """A profile chooser and the server's state; hidden until :meth:`bind` gives it the launcher's actions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        self.launcher: LauncherActions | None = None
        self._bridge = EventBridge(self)
        self.combo = QComboBox(self)
        self.combo.setAccessibleName(tr("Model"))
        self.combo.setToolTip(tr("The server profile this chat talks to; choose another to switch"))
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setMinimumContentsLength(12)
        self.combo.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.state = ElidedLabel("", self)
        self.state.setObjectName("pickerState")
        self.state.setAccessibleName(tr("Server state"))
        label = QLabel(tr("Model:"), self)
        label.setBuddy(self.combo)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.addWidget(label)
        layout.addWidget(self.combo)
        layout.addWidget(self.state, 1)
        self.combo.activated.connect(self._chosen)
        self.hide()

    def bind(self, actions: LauncherActions) -> None:
        """Follow ``actions``' profiles and the supervisor's state; choosing starts through ``actions``."""
        self.launcher = actions
        actions.profiles_changed.connect(self.refresh)
        supervisor = actions.supervisor
        if supervisor is not None:
            self._bridge.connect_event(supervisor.state_changed, self.show_state)
            self.show_state(getattr(supervisor, "state", None))
        self.refresh()
        self.show()

    def refresh(self) -> None:
        actions = self.launcher
        if actions is None:
            return
        self.combo.blockSignals(True)
        self.combo.clear()
        for action in actions.profile_actions:
            self.combo.addItem(action.text(), action.data())
        self.combo.setCurrentIndex(self.combo.findData(actions.active_profile))  # -1: none chosen yet
        self.combo.setPlaceholderText(tr("Choose a model"))
        self.combo.blockSignals(False)

    def show_state(self, state: Any) -> None:
        self.state.setText(state_words(state))
        self.state.setProperty("state", state_kind(state))
        self._colour_state()

    def _colour_state(self) -> None:
        """The state's colour from the theme (good, busy, bad or muted: the server-state table's look)."""
        kind = self.state.property("state")
        self.state.setStyleSheet(theme.state_style(kind, self.palette()) if isinstance(kind, str) else "")

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # light or dark changed
            self._colour_state()

    def _chosen(self, index: int) -> None:
        if self.launcher is None or index < 0:
            return
        self.launcher.choose_profile(str(self.combo.itemData(index)))

    def close_picker(self) -> None:
        self._bridge.close()
