"""This chat's tools, in the chat settings panel: which tools the model may call (built-in tools and MCP
servers), the tool choice (auto / required / none / one named tool), and the model's warning when its chat
template does not describe tools (:func:`engine.tools.parsers.choice_warning`).

The values live in the conversation's settings (``tools``, ``tool_choice``); the panel's Apply saves them
with the rest, and a new chat takes them from here when its first message creates it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QGroupBox, QLabel, QVBoxLayout, QWidget

CHOICES = ("auto", "required", "none")


def tr(text: str) -> str:
    return QCoreApplication.translate("tool_settings", text)


class ToolSettingsBox(QGroupBox):
    """Check boxes for the tools, a tool-choice box and the warning. ``available`` returns the names to offer
    as ``(name, description)``; ``support`` returns the current model's
    :class:`engine.tools.parsers.ToolSupport` (or ``None``)."""

    edited = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(tr("Tools"), parent)
        self.setObjectName("toolSettings")
        self.available: Callable[[], list[tuple[str, str]]] = lambda: []
        self.support: Callable[[], Any] = lambda: None
        self.boxes: dict[str, QCheckBox] = {}
        # What was loaded (the stored ticks and choice): the user's edits since are the difference.
        self._base: tuple[tuple[str, ...], str] = ((), "auto")
        self._loading = False
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(6, 6, 6, 6)
        self._list = QVBoxLayout()
        self._layout.addLayout(self._list)
        self.choice = QComboBox(self)
        self.choice.setEditable(True)  # a tool's name: MCP tools are known once their server runs
        self.choice.setAccessibleName(tr("Tool choice"))
        self.choice.addItems(list(CHOICES))
        self.choice.setToolTip(
            tr("auto: the model decides; required: it must call a tool; none: no tools; or a tool's name")
        )
        choice_label = QLabel(tr("Tool &choice"), self)
        choice_label.setBuddy(self.choice)
        self._layout.addWidget(choice_label)
        self._layout.addWidget(self.choice)
        self.warning = QLabel(self)
        self.warning.setObjectName("toolWarning")
        self.warning.setTextFormat(Qt.TextFormat.PlainText)
        self.warning.setWordWrap(True)
        self.warning.hide()
        self._layout.addWidget(self.warning)
        self.choice.currentTextChanged.connect(lambda _t: self._changed())

    def load(self, settings: dict[str, Any]) -> None:
        """Show the conversation's (or the new chat's) stored ``tools`` and ``tool_choice``."""
        self._show(settings)
        self._base = self._stored(settings)

    def refresh(self) -> None:
        """Offer the tools there are now (MCP servers added or removed), the ticks and edits kept."""
        self._show(self.values())

    def rename(self, old: str, new: str) -> None:
        """The server ``old`` is called ``new`` now (the stored chats were renamed too): its tick moves, in
        what was loaded as in what is shown (else the panel's next Apply would write the old name back)."""
        base_tools, base_choice = self._base
        self._base = (tuple(dict.fromkeys(new if n == old else n for n in base_tools)), base_choice)
        values = self.values()
        tools = tuple(dict.fromkeys(new if n == old else n for n in values["tools"]))
        self._show({**values, "tools": tools})

    def rebase(self, settings: dict[str, Any]) -> None:
        """The conversation's stored ``tools`` / ``tool_choice`` are ``settings`` now (written by another
        process, e.g. ``vllm-desk tools edit-mcp --name`` renaming a server in them): show those, with what
        the user ticked, unticked or chose here since the last load kept on top."""
        base_tools, base_choice = self._base
        stored_tools, stored_choice = self._stored(settings)
        values = self.values()
        added = [n for n in values["tools"] if n not in base_tools]
        removed = {n for n in base_tools if n not in values["tools"]}
        tools = [n for n in stored_tools if n not in removed] + [n for n in added if n not in stored_tools]
        choice = values["tool_choice"] if values["tool_choice"] != base_choice else stored_choice
        self._show({"tools": tools, "tool_choice": choice})
        self._base = (stored_tools, stored_choice)

    @staticmethod
    def _stored(settings: dict[str, Any]) -> tuple[tuple[str, ...], str]:
        tools = tuple(dict.fromkeys(str(n) for n in settings.get("tools") or ()))
        return tools, str(settings.get("tool_choice") or "auto").strip() or "auto"

    def _show(self, settings: dict[str, Any]) -> None:
        from engine.tools.builtin import BUILTIN_NAMES  # here: not loaded before the window is shown

        self._loading = True
        try:
            for box in self.boxes.values():
                self._list.removeWidget(box)
                box.deleteLater()
            self.boxes.clear()
            enabled = [str(n) for n in settings.get("tools") or ()]
            offered = list(self.available())
            names = [name for name, _ in offered]
            offered += [(name, tr("not configured any more")) for name in enabled if name not in names]
            for name, description in offered:
                box = QCheckBox(name, self)
                box.setToolTip(description)
                box.setAccessibleDescription(description)
                box.setChecked(name in enabled)
                box.toggled.connect(lambda _on: self._changed())
                self._list.addWidget(box)
                self.boxes[name] = box
            # The built-in tools can be named at once; an MCP tool's name is typed (known once it runs).
            self.choice.clear()
            self.choice.addItems([*CHOICES, *(n for n in BUILTIN_NAMES if n in self.boxes)])
            self.choice.setCurrentText(str(settings.get("tool_choice") or "auto"))
        finally:
            self._loading = False
        self._show_warning()

    def values(self) -> dict[str, Any]:
        """``tools`` and ``tool_choice`` as the conversation's settings keep them."""
        tools = tuple(name for name, box in self.boxes.items() if box.isChecked())
        return {"tools": tools, "tool_choice": self.choice.currentText().strip() or "auto"}

    def _changed(self) -> None:
        self._show_warning()
        if not self._loading:
            self.edited.emit()

    def _show_warning(self) -> None:
        from engine.tools.parsers import choice_warning

        values = self.values()
        support = self.support() if values["tools"] else None
        text = choice_warning(support, values["tool_choice"]) if support is not None else ""
        self.warning.setText(text)
        self.warning.setVisible(bool(text))
