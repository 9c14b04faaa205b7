"""This chat's system prompt and temperature, in a panel beside the transcript (Conversation > Chat settings,
Ctrl+Shift+S), as LM Studio and Jan have one.

For a conversation on screen, Apply writes them into its row (the next reply uses them; earlier replies keep
what they were answered with). In a new chat the panel starts from the model's preset, and what the user
changes there goes into the conversation the first message creates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.operations import Operation
from desktop.widgets.tool_settings import ToolSettingsBox
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import ConversationTree

if TYPE_CHECKING:  # imported by the engine (pydantic) on the import thread, not with the window
    from engine.chat.generation import GenerationSettings

DEFAULT_TEMPERATURE = -0.1  # the spin box's lowest value, shown as "model default" (no temperature sent)


def tr(text: str) -> str:
    return QCoreApplication.translate("chat_settings", text)


class ChatSettingsPanel(QFrame):
    """The panel; :meth:`show_conversation` / :meth:`show_new_chat` fill it, Apply saves (``saved`` then
    fires with the conversation id)."""

    saved = Signal(int)

    def __init__(self, store: AsyncHistoryStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatSettings")
        self.setAccessibleName(tr("Chat settings"))
        self.store = store
        self.conversation_id: int | None = None
        self._settings: dict[str, Any] = {}  # the conversation's stored generation settings
        self._loading = False
        self.changed = False  # edited since shown (a new chat takes the edits when it is created)
        title = QLabel(f"<b>{tr('Chat settings')}</b>", self)
        self.system_edit = QPlainTextEdit(self)
        self.system_edit.setAccessibleName(tr("System prompt"))
        self.system_edit.setPlaceholderText(tr("No system prompt"))
        self.system_edit.setTabChangesFocus(True)
        system_label = QLabel(tr("&System prompt"), self)
        system_label.setBuddy(self.system_edit)
        self.temperature = QDoubleSpinBox(self)
        self.temperature.setAccessibleName(tr("Temperature"))
        self.temperature.setRange(DEFAULT_TEMPERATURE, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(2)
        self.temperature.setSpecialValueText(tr("model default"))
        temperature_label = QLabel(tr("&Temperature"), self)
        temperature_label.setBuddy(self.temperature)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setObjectName("chatSettingsNote")
        self.apply_button = QPushButton(tr("Apply"), self)
        self.apply_button.setAccessibleName(tr("Apply the chat settings"))
        self.apply_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(temperature_label)
        row.addWidget(self.temperature, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(title)
        layout.addWidget(system_label)
        layout.addWidget(self.system_edit, 1)
        layout.addLayout(row)
        self.tools = ToolSettingsBox(self)  # this chat's tools and tool choice (widgets/tool_settings.py)
        self.tools.edited.connect(self._edited)
        layout.addWidget(self.tools)
        layout.addWidget(self.note)
        layout.addWidget(self.apply_button)
        self.system_edit.textChanged.connect(self._edited)
        self.temperature.valueChanged.connect(lambda _v: self._edited())
        self.apply_button.clicked.connect(self.apply)
        self.setMinimumWidth(200)

    # --- what is shown --------------------------------------------------------------------------------

    def show_conversation(self, tree: ConversationTree) -> None:
        conversation = tree.conversation
        settings = dict(conversation.settings or {})
        self.conversation_id = conversation.id
        # The prompt the chat sends: the conversation's own, else its settings' (a preset's).
        self._fill(conversation.system_prompt or str(settings.get("system_prompt") or ""), settings)
        self.note.setText(tr("Used from this chat's next reply on."))

    def show_new_chat(self, preset: GenerationSettings | None) -> None:
        """``preset``: what a new chat starts from (the model's preset; ``None`` before there is a server)."""
        self.conversation_id = None
        settings = preset.to_json_dict() if preset is not None else {}
        self._fill(str(settings.get("system_prompt") or ""), settings)
        self.note.setText(tr("Used by the chat your next message starts."))

    def _fill(self, system_prompt: str, settings: dict[str, Any]) -> None:
        self._loading = True
        try:
            self._settings = settings
            self.system_edit.setPlainText(system_prompt)
            temperature = settings.get("temperature")
            number = float(temperature) if isinstance(temperature, int | float) else DEFAULT_TEMPERATURE
            self.temperature.setValue(number)
            self.tools.load(settings)
        finally:
            self._loading = False
        self.changed = False
        self.apply_button.setEnabled(False)

    def _edited(self) -> None:
        if self._loading:
            return
        self.changed = True
        self.apply_button.setEnabled(self.conversation_id is not None)

    # --- the values -----------------------------------------------------------------------------------

    def values(self) -> tuple[str, float | None]:
        value = self.temperature.value()
        return self.system_edit.toPlainText().strip(), (None if value < 0 else round(value, 2))

    def for_new_chat(self, preset: GenerationSettings) -> GenerationSettings:
        """``preset`` with what the user set here for the new chat (``preset`` itself if nothing)."""
        if self.conversation_id is not None or not self.changed:
            return preset
        system_prompt, temperature = self.values()
        return preset.updated(system_prompt=system_prompt, temperature=temperature, **self.tools.values())

    def apply(self) -> None:
        conversation_id = self.conversation_id
        if conversation_id is None:
            return
        system_prompt, temperature = self.values()
        # The stored settings with these two changed (the spin box keeps the temperature in range).
        settings = {k: v for k, v in self._settings.items() if k not in ("system_prompt", "temperature")}
        tools = self.tools.values()
        settings.pop("tools", None)
        settings.pop("tool_choice", None)
        if tools["tools"]:
            settings["tools"] = list(tools["tools"])
        if tools["tool_choice"] != "auto":
            settings["tool_choice"] = tools["tool_choice"]
        if system_prompt:
            settings["system_prompt"] = system_prompt
        if temperature is not None:
            settings["temperature"] = temperature

        async def save() -> None:
            await self.store.update_conversation(
                conversation_id, system_prompt=system_prompt, settings=settings
            )

        def done(_result: object) -> None:
            self._settings = settings
            self.changed = False
            self.apply_button.setEnabled(False)
            self.saved.emit(conversation_id)

        Operation(self.apply_button, save).success(done).run()
