"""A tool call in the transcript: which tool of which server, its arguments, the user's decision, its result.

While a turn waits for the user, the card asks: Allow once / Always allow this tool / Deny (``decided`` fires
with the call's id and the decision). Stored calls (after a restart, another branch) show read-only.

Everything a tool or the model wrote is untrusted text: arguments and results are shown in plain-text widgets
(``QPlainTextEdit``, ``Qt.PlainText`` labels), never as HTML, and the result is collapsed under the card. A
huge result is cut for display with a notice saying how much was left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

SHOWN_RESULT_CHARS = 4_000  # of a result, in the card (the model got up to the loop's own cap)
MAX_LINES = 12  # a text box taller than this scrolls


def tr(text: str) -> str:
    return QCoreApplication.translate("tool_card", text)


@dataclass
class CallView:
    """What a card shows of one call (built from the loop's events, or from the stored messages)."""

    call_id: str
    tool: str
    server: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    raw_arguments: str = ""  # what the model sent when it was not a JSON object
    decision: str = ""  # "", "allow_once", "allow_always", "deny"
    result: str | None = None
    error: bool = False
    asking: bool = False  # the turn waits for the user's decision on this card

    def arguments_text(self) -> str:
        if self.raw_arguments:
            return self.raw_arguments
        return json.dumps(dict(self.arguments), indent=2, ensure_ascii=False, default=str)


def shown_result(text: str, limit: int = SHOWN_RESULT_CHARS) -> tuple[str, str]:
    """The part of ``text`` the card shows and a notice when some was left out (``""``: none)."""
    if len(text) <= limit:
        return text, ""
    return text[:limit], tr("Showing the first {shown:,} of {total:,} characters.").format(
        shown=limit, total=len(text)
    )


DECISION_WORDS = {
    "allowed": "Allowed",  # a call that ran, stored before the decision was kept with it
    "allow_once": "Allowed once",
    "allow_always": "Always allowed",
    "deny": "Denied: the model was told it was not run",
}


class _TextBox(QPlainTextEdit):
    """A read-only text box as tall as its lines (up to :data:`MAX_LINES`), measured again whenever its font
    or style changes: the window's sheet gives the transcript's boxes the chat font and a padding only once
    the card is in the transcript, after it was made."""

    _REFIT = (QEvent.Type.Polish, QEvent.Type.FontChange, QEvent.Type.StyleChange)

    def __init__(self, text: str, name: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setPlainText(text)
        self.setAccessibleName(name)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self._lines = min(max(text.count("\n") + 1, 1), MAX_LINES)
        self._fit()

    def event(self, event: QEvent) -> bool:
        done = super().event(event)
        if event.type() in self._REFIT:
            self._fit()
        return done

    def _fit(self) -> None:
        edges = self.contentsMargins()  # the frame and the sheet's padding, once polished
        margins = 2 * int(self.document().documentMargin()) + edges.top() + edges.bottom()
        self.setFixedHeight(self.fontMetrics().lineSpacing() * self._lines + margins + 4)


def _plain_box(text: str, name: str, parent: QWidget) -> QPlainTextEdit:
    return _TextBox(text, name, parent)


def _plain_label(text: str, parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setText(text)
    return label


class ToolCard(QFrame):
    """One call: :meth:`ask` shows the buttons; :meth:`set_decision` and :meth:`set_result` update it."""

    decided = Signal(str, str)  # (call id, "allow_once" | "allow_always" | "deny")

    def __init__(self, call: CallView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.call = call
        self.setObjectName("toolCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(tr("Tool call {tool}").format(tool=call.tool))
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.title = _plain_label(
            tr("Tool call: {tool} · {server}").format(tool=call.tool, server=call.server), self
        )
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.arguments = _plain_box(call.arguments_text(), tr("Arguments"), self)
        self.status = _plain_label("", self)
        self.status.setObjectName("toolCardStatus")
        self.allow_once_button = QPushButton(tr("Allow once"), self)
        self.allow_always_button = QPushButton(tr("Always allow this tool"), self)
        self.deny_button = QPushButton(tr("Deny"), self)
        self.allow_always_button.setToolTip(
            tr("Run {tool} without asking for the rest of this session of the chat").format(tool=call.tool)
        )
        self._buttons = QWidget(self)
        row = QHBoxLayout(self._buttons)
        row.setContentsMargins(0, 0, 0, 0)
        for button, decision in (
            (self.allow_once_button, "allow_once"),
            (self.allow_always_button, "allow_always"),
            (self.deny_button, "deny"),
        ):
            button.clicked.connect(lambda _checked=False, d=decision: self._decide(d))
            row.addWidget(button)
        row.addStretch(1)
        self.result_button = QToolButton(self)
        self.result_button.setCheckable(True)
        self.result_button.setAutoRaise(True)
        self.result_button.toggled.connect(self._toggle_result)
        self.result_view: QPlainTextEdit | None = None
        self.result_notice = _plain_label("", self)
        self.result_notice.hide()

        layout = self._layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.arguments)
        layout.addWidget(self._buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.result_button)
        layout.addWidget(self.result_notice)
        self._show_state()

    # --- state ----------------------------------------------------------------------------------------

    def ask(self) -> None:
        """The turn waits for the user: show the three buttons."""
        self.call.asking = True
        self._show_state()
        # No focus grab: a space typed in the message box meanwhile must never press "Allow once".

    def set_decision(self, decision: str) -> None:
        self.call.decision = decision
        self.call.asking = False
        self._show_state()

    def set_result(self, text: str, error: bool) -> None:
        self.call.result = text
        self.call.error = error
        self.call.asking = False
        if self.result_view is not None:  # shown again with the new text
            self.result_view.deleteLater()
            self.result_view = None
        self._show_state()

    def _decide(self, decision: str) -> None:
        self.set_decision(decision)
        self.decided.emit(self.call.call_id, decision)

    def _show_state(self) -> None:
        call = self.call
        self._buttons.setVisible(call.asking)
        if call.asking:
            status = tr("Run this tool? Nothing runs until you decide.")
        elif call.decision:
            status = tr(DECISION_WORDS.get(call.decision, call.decision))
        elif call.result is None:
            status = tr("Waiting…")
        else:
            status = ""
        if call.result is not None and call.error and call.decision != "deny":
            status = (status + " · " if status else "") + tr("The call failed")
        self.status.setText(status)
        self.status.setVisible(bool(status))
        has_result = call.result is not None
        self.result_button.setVisible(has_result)
        if has_result:
            assert call.result is not None
            self.result_button.setText(
                tr("Result ({n:,} characters)").format(n=len(call.result))
                if not self.result_button.isChecked()
                else tr("Hide result")
            )
            self.result_button.setAccessibleName(tr("Show or hide the result"))

    def _toggle_result(self, shown: bool) -> None:
        if shown and self.result_view is None and self.call.result is not None:
            text, notice = shown_result(self.call.result)
            self.result_view = _plain_box(text, tr("Result"), self)
            self.result_view.setObjectName("toolResult")
            self._layout.insertWidget(self._layout.indexOf(self.result_notice), self.result_view)
            self.result_notice.setText(notice)
        if self.result_view is not None:
            self.result_view.setVisible(shown)
        self.result_notice.setVisible(shown and bool(self.result_notice.text()))
        self._show_state()
