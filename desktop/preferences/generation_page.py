"""Generation presets: named sampling settings, the default preset per model, and "reset to defaults"."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop.preferences.form import ModelForm, tr
from engine.chat.generation import GenerationSettings
from engine.settings.store import Settings, default_model_presets, default_presets

FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
    "max_tokens",
    "seed",
    "stop",
    "system_prompt",
)
HELP = {
    "temperature": "0–2. Lower is more predictable; 0 always picks the likeliest word.",
    "top_p": "0–1 (above 0). Sample only from the words making up this share of probability.",
    "top_k": "Sample only from the k likeliest words; -1 turns it off.",
    "min_p": "0–1. Drop words less likely than this share of the likeliest one.",
    "repetition_penalty": "Above 0, up to 2. Above 1 discourages repeating the prompt and itself.",
    "presence_penalty": "-2 to 2. Positive values push towards new topics.",
    "frequency_penalty": "-2 to 2. Positive values discourage repeating the same words.",
    "max_tokens": "Longest answer, in tokens (1 or more).",
    "seed": "A whole number makes sampling repeatable.",
    "stop": "Text that ends the answer; separate several with |.",
    "system_prompt": "Instructions sent before every conversation that uses this preset.",
}
SERVER_DEFAULTS = "(server defaults)"


class GenerationPage(QWidget):
    """Edits ``presets`` and ``model_presets`` of the draft settings."""

    def __init__(self, draft: Settings, models: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.draft = draft
        self._models = list(models)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.preset = QComboBox()
        self.preset.setObjectName("preset_choice")
        self.preset.setAccessibleName(tr("Preset"))
        top.addWidget(self.preset, 1)
        self.new_button = QPushButton(tr("New…"))
        self.delete_button = QPushButton(tr("Delete"))
        self.reset_button = QPushButton(tr("Reset to defaults"))
        for button in (self.new_button, self.delete_button, self.reset_button):
            top.addWidget(button)
        layout.addLayout(top)
        self.form = ModelForm(GenerationSettings, FIELDS, HELP, multiline=("system_prompt",))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        layout.addWidget(scroll, 1)
        per_model = QGroupBox(tr("Default preset per model"))
        per_layout = QFormLayout(per_model)
        self.model_choice = QComboBox()
        self.model_choice.setEditable(True)
        self.model_preset = QComboBox()
        per_layout.addRow(tr("Model"), self.model_choice)
        per_layout.addRow(tr("Starts with"), self.model_preset)
        layout.addWidget(per_model)
        self.preset.currentTextChanged.connect(self._show_preset)
        self.form.edited.connect(self._edited)
        self.new_button.clicked.connect(self._new)
        self.delete_button.clicked.connect(self.delete_preset)
        self.reset_button.clicked.connect(self.reset_to_defaults)
        self.model_choice.currentTextChanged.connect(self._show_model_preset)
        self.model_preset.currentTextChanged.connect(self._set_model_preset)
        self.reload()

    @property
    def invalid(self) -> str:
        """Why the page cannot be applied (``""`` if it can)."""
        if self.form.errors:
            field, message = next(iter(self.form.errors.items()))
            label = self.form.label_text(field)
            return tr("Preset “{0}”: {1}: {2}").format(self.preset.currentText(), label, message)
        return ""

    def set_models(self, models: list[str]) -> None:
        """Offer ``models`` (the profiles' served names) for per-model presets."""
        self._models = list(models)
        # Only the model lists: a full reload would reload the preset form and drop an invalid value the
        # user is still typing, with its error.
        self._reload_models()

    def reload(self) -> None:
        current = self.preset.currentText()
        self.preset.blockSignals(True)
        self.preset.clear()
        self.preset.addItems(list(self.draft.presets))
        self.preset.blockSignals(False)
        index = self.preset.findText(current)
        self.preset.setCurrentIndex(index if index >= 0 else 0)
        self._show_preset(self.preset.currentText())
        self._reload_models()

    def _reload_models(self) -> None:
        model = self.model_choice.currentText()
        self.model_choice.blockSignals(True)
        self.model_choice.clear()
        self.model_choice.addItems(sorted(set(self._models) | set(self.draft.model_presets)))
        self.model_choice.blockSignals(False)
        if model:
            self.model_choice.setCurrentText(model)
        self._show_model_preset(self.model_choice.currentText())

    def add_preset(self, name: str) -> None:
        base = self.draft.presets.get(self.preset.currentText(), GenerationSettings())
        self.draft.presets = {**self.draft.presets, name: base}
        self.reload()
        self.preset.setCurrentText(name)

    def delete_preset(self) -> None:
        name = self.preset.currentText()
        if len(self.draft.presets) <= 1:
            return
        self.draft.presets = {k: v for k, v in self.draft.presets.items() if k != name}
        self.draft.model_presets = {m: p for m, p in self.draft.model_presets.items() if p != name}
        self.reload()

    def reset_to_defaults(self) -> None:
        """Back to the built-in presets and per-model defaults (applied only with OK/Apply)."""
        self.draft.presets = default_presets()
        self.draft.model_presets = default_model_presets()
        self.reload()

    def _new(self) -> None:
        name, ok = QInputDialog.getText(self, tr("New preset"), tr("Name of the new preset:"))
        if ok and name.strip() and name.strip() not in self.draft.presets:
            self.add_preset(name.strip())

    def _show_preset(self, name: str) -> None:
        settings = self.draft.presets.get(name)
        if settings is not None:
            self.form.load(settings.model_dump())
        self.delete_button.setEnabled(len(self.draft.presets) > 1)

    def _edited(self, value: object) -> None:
        name = self.preset.currentText()
        if isinstance(value, GenerationSettings) and name in self.draft.presets:
            self.draft.presets = {**self.draft.presets, name: value}

    def _show_model_preset(self, model: str) -> None:
        self.model_preset.blockSignals(True)
        self.model_preset.clear()
        # Row 0 is "no preset" (shown translated, so it is told apart by its place, not its text).
        self.model_preset.addItems([tr(SERVER_DEFAULTS), *self.draft.presets])
        preset = self.draft.model_presets.get(model)
        self.model_preset.setCurrentIndex(max(0, self.model_preset.findText(preset)) if preset else 0)
        self.model_preset.blockSignals(False)

    def _set_model_preset(self, preset: str) -> None:
        model = self.model_choice.currentText().strip()
        if not model:
            return
        mapping = {m: p for m, p in self.draft.model_presets.items() if m != model}
        if preset and self.model_preset.currentIndex() > 0:
            mapping[model] = preset
        self.draft.model_presets = mapping
