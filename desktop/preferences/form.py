"""A form generated from a pydantic model: one row per field with a short explanation, checked as you type.

Each field is a line edit, a check box or a combo box (chosen from the field's type); the whole form is
validated with the model on every change and each error is shown under its field, in the model's own words.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

ERROR_STYLE = "color: #c0392b;"
HELP_STYLE = "color: palette(placeholder-text); font-size: 90%;"
TRI_STATE = ("default", "on", "off")


def tr(text: str) -> str:
    return QCoreApplication.translate("preferences", text)


def bold_label(text: str) -> QLabel:
    """A plain-text label in bold (no markup, so a buddy's accessible name is the bare text)."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


def _args(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _literal_choices(annotation: Any) -> list[str] | None:
    for arg in _args(annotation):
        others = [a for a in _args(annotation) if a is not type(None)]
        only = len(others) == 1
        literal = typing.get_origin(arg) is Literal
        if only and literal and all(isinstance(a, str) for a in typing.get_args(arg)):
            return [str(a) for a in typing.get_args(arg)]
    return None


def parse_mapping(text: str) -> dict[str, str]:
    """``NAME=value`` lines as a dict; blank lines and ``#`` comments are skipped, and a line without ``=``
    becomes a name with an empty value, which the model's own check then names as not a valid name."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        out[name.strip()] = value.strip()
    return out


class FieldRow:
    """The widget of one field and how to read and write it."""

    def __init__(self, name: str, annotation: Any, multiline: bool = False) -> None:
        self.name = name
        members = _args(annotation)
        self.nullable = type(None) in members
        self.is_tuple = any(typing.get_origin(a) in (tuple, list) for a in members)
        self.is_mapping = any(typing.get_origin(a) is dict for a in members)
        choices = _literal_choices(annotation)
        self.editor: QWidget
        if self.is_mapping:
            # NAME=value, one a line (an environment); pydantic checks the names.
            self.kind = "mapping"
            edit = QPlainTextEdit()
            edit.setFixedHeight(70)
            edit.setPlaceholderText(tr("none (one NAME=value a line)"))
            self.editor = edit
        elif members in ((bool,),):
            self.kind = "bool"
            self.editor = QCheckBox()
        elif set(members) == {bool, type(None)}:
            self.kind = "tristate"
            combo = QComboBox()
            combo.addItems([tr(t) for t in TRI_STATE])
            self.editor = combo
        elif choices is not None:
            self.kind = "choice"
            combo = QComboBox()
            combo.addItems(choices)
            self.editor = combo
        elif multiline:
            self.kind = "multiline"
            edit = QPlainTextEdit()
            edit.setFixedHeight(70)
            self.editor = edit
        else:
            self.kind = "text"
            line = QLineEdit()
            if self.nullable:
                line.setPlaceholderText(tr("default"))
            if self.is_tuple:
                line.setPlaceholderText(tr("none (separate several with |)"))
            self.editor = line
        self.editor.setObjectName(f"field_{name}")
        self.error = QLabel()
        self.error.setObjectName(f"error_{name}")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()

    def connect(self, slot: Callable[[], None]) -> None:
        editor = self.editor
        if isinstance(editor, QCheckBox):
            editor.toggled.connect(lambda _v: slot())
        elif isinstance(editor, QComboBox):
            editor.currentIndexChanged.connect(lambda _v: slot())
        elif isinstance(editor, QPlainTextEdit):
            editor.textChanged.connect(slot)
        elif isinstance(editor, QLineEdit):
            editor.textChanged.connect(lambda _v: slot())

    def value(self) -> Any:
        """The raw value for the model (strings are converted by pydantic, which also explains bad ones)."""
        editor = self.editor
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            if self.kind == "tristate":
                return {0: None, 1: True, 2: False}[editor.currentIndex()]
            return editor.currentText()
        if isinstance(editor, QPlainTextEdit):
            if self.kind == "mapping":
                return parse_mapping(editor.toPlainText())
            return editor.toPlainText()
        assert isinstance(editor, QLineEdit)
        text = editor.text().strip()
        if self.is_tuple:
            return [part for part in (p.strip() for p in editor.text().split("|")) if part]
        if not text and self.nullable:
            return None
        return text

    def set_value(self, value: Any) -> None:
        editor = self.editor
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            if self.kind == "tristate":
                editor.setCurrentIndex({None: 0, True: 1, False: 2}[value])
            else:
                editor.setCurrentIndex(max(0, editor.findText(str(value))))
        elif isinstance(editor, QPlainTextEdit):
            if self.kind == "mapping":
                editor.setPlainText("\n".join(f"{k}={v}" for k, v in dict(value or {}).items()))
            else:
                editor.setPlainText(str(value or ""))
        elif isinstance(editor, QLineEdit):
            if self.is_tuple:
                editor.setText(" | ".join(value or ()))
            else:
                editor.setText("" if value is None else str(value))

    def show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))


class ModelForm(QWidget):
    """Rows for ``fields`` of ``model``; :attr:`edited` fires with the validated model or ``None``."""

    edited = Signal(object)

    def __init__(
        self,
        model: type[BaseModel],
        fields: Sequence[str],
        help_texts: dict[str, str],
        labels: dict[str, str] | None = None,
        multiline: Sequence[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.rows: dict[str, FieldRow] = {}
        self._fixed: dict[str, Any] = {}
        self._loading = False
        self.last_valid: BaseModel | None = None
        # Checks beyond the model's own (e.g. that a folder exists): field -> problem, for a valid model.
        self.checks: list[Callable[[BaseModel], dict[str, str]]] = []
        # One column (label, field, explanation, error): a plain box layout keeps word-wrapped explanations
        # at their real height inside a scroll area, where a form layout's rows overlapped.
        self.box = layout = QVBoxLayout(self)
        layout.setSpacing(2)
        self.labels: dict[str, QLabel] = {}
        self.hints: dict[str, QLabel] = {}
        self._widgets: dict[str, list[QWidget]] = {}
        for name in fields:
            row = FieldRow(name, model.model_fields[name].annotation, name in multiline)
            self.rows[name] = row
            text = tr((labels or {}).get(name, name.replace("_", " ").capitalize()))
            label = bold_label(text)
            # The label is the field's buddy (Alt+letter, and how screen readers name it); the name and
            # explanation are also set on the field itself, since a check box here has no text of its own.
            label.setBuddy(row.editor)
            row.editor.setAccessibleName(text)
            hint = QLabel(tr(help_texts[name]) if help_texts.get(name) else "")
            hint.setWordWrap(True)
            hint.setStyleSheet(HELP_STYLE)
            row.editor.setAccessibleDescription(hint.text())
            self.labels[name] = label
            self.hints[name] = hint
            self.add_row(name, label, row.editor, hint, row.error)
            row.connect(self._changed)
        layout.addStretch(1)
        self._closed = True

    def label_text(self, name: str) -> str:
        """The (translated) label of ``name``'s row, for messages that name the field."""
        return self.labels[name].text()

    def add_row(self, name: str, *widgets: QWidget) -> None:
        """Add widgets as one row (before the closing stretch), shown and hidden together by ``name``."""
        index = self.box.count() - 1 if getattr(self, "_closed", False) else self.box.count()
        for offset, widget in enumerate(widgets):
            self.box.insertWidget(index + offset, widget)
        spacer = QWidget()
        spacer.setFixedHeight(8)
        self.box.insertWidget(index + len(widgets), spacer)
        self._widgets[name] = [*widgets, spacer]

    def set_row_visible(self, name: str, visible: bool) -> None:
        row = self.rows.get(name)
        for widget in self._widgets[name]:
            # An error line stays hidden while there is no error to show.
            empty_error = row is not None and widget is row.error and not row.error.text()
            widget.setVisible(visible and not empty_error)

    def load(self, values: dict[str, Any], fixed: dict[str, Any] | None = None) -> None:
        """Show ``values``; ``fixed`` are model fields not on the form (e.g. the profile's name)."""
        self._loading = True
        try:
            self._fixed = dict(fixed or {})
            for name, row in self.rows.items():
                row.set_value(values.get(name, self.model.model_fields[name].default))
        finally:
            self._loading = False
        self._changed()

    def raw(self) -> dict[str, Any]:
        return {**self._fixed, **{name: row.value() for name, row in self.rows.items()}}

    def validate(self) -> BaseModel | None:
        """Validate the form; show each problem under its field; return the model or ``None``."""
        for row in self.rows.values():
            row.show_error("")
        try:
            result = self.model.model_validate(self.raw())
        except ValidationError as exc:
            general: list[str] = []
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else ""
                message = err["msg"].removeprefix("Value error, ")
                if field not in self.rows:
                    # A check of the whole profile ("a remote profile needs a base_url"): shown under the
                    # field it names, in the words of that field's label.
                    field, message = self._named_field(message)
                if field in self.rows:
                    row = self.rows[field]
                    row.show_error((row.error.text() + "; " if row.error.text() else "") + message)
                else:
                    general.append(message)
            if general:
                first = next(iter(self.rows.values()))
                first.show_error("; ".join(general))
            return None
        problems = {field: message for check in self.checks for field, message in check(result).items()}
        for field, message in problems.items():
            (self.rows.get(field) or next(iter(self.rows.values()))).show_error(message)
        return None if problems else result

    def _named_field(self, message: str) -> tuple[str, str]:
        """The row a whole-model message is about (the field key it names first) and the message with the
        key in the label's words; ``("", message)`` if it names none."""
        found = [
            (match.start(), name)
            for name in self.rows
            if (match := re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message)) is not None
        ]
        if not found:
            return "", message
        _, name = min(found)
        label = self.label_text(name).replace("&", "")
        words = label if label.isupper() else label.lower()
        return name, re.sub(rf"(?<![\w]){re.escape(name)}(?![\w])", words, message)

    @property
    def errors(self) -> dict[str, str]:
        return {name: row.error.text() for name, row in self.rows.items() if row.error.text()}

    def _changed(self) -> None:
        if self._loading:
            return
        self.last_valid = self.validate()
        self.edited.emit(self.last_valid)
