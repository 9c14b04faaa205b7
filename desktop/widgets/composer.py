"""Where the user writes: one rounded field with the message editor, an attach button and Send (Stop while a
reply is written, in the same place), and the context meter below it.

Enter sends and Shift+Enter starts a new line (or Ctrl+Enter sends, per the ``send_key`` setting); Esc stops
a reply being written.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop import theme
from desktop.labels import WrappingLabel

BUTTON = 34  # the round buttons' size (px)


def tr(text: str) -> str:
    return QCoreApplication.translate("composer", text)


class MessageEdit(QPlainTextEdit):
    """A plain-text editor that turns the send key into :attr:`submitted` and Esc into :attr:`escaped`."""

    submitted = Signal()
    escaped = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.send_key = "enter"
        self.setTabChangesFocus(True)  # keyboard-only use: Tab leaves the editor

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        mods = event.modifiers()
        if key == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
            shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
            sends = ctrl if self.send_key == "ctrl+enter" else not (shift or ctrl)
            if sends:
                self.submitted.emit()
                return
            self.insertPlainText("\n")
            return
        super().keyPressEvent(event)


class Composer(QWidget):
    """The editor with its buttons; emits :attr:`send_requested` with the text and :attr:`stop_requested`.

    :attr:`attach_requested`: the attach button (documents) was pressed. The button is shown only once
    something handles it (:meth:`set_attach_enabled`): a button that does nothing would be a lie.
    """

    send_requested = Signal(str)
    stop_requested = Signal()
    attach_requested = Signal()
    busy_changed = Signal(bool)  # a reply started (True) or ended (False) in the shown conversation

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.field = QFrame(self)  # the one rounded field around the editor and the buttons
        self.field.setObjectName("composerField")
        self.editor = MessageEdit(self.field)
        self.editor.setObjectName("composerEditor")
        self.editor.setAccessibleName(tr("Message"))
        self.editor.setPlaceholderText(tr("Write a message…"))
        self.editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.editor.setFixedHeight(52)  # about two lines; the transcript gets the rest
        self.editor.setFrameShape(QFrame.Shape.NoFrame)
        self.editor.installEventFilter(self)  # its focus lights the field's border
        self.attach_button = self._round_button("attachButton", tr("Attach documents"))
        self.attach_button.setToolTip(tr("Attach documents to this chat"))
        self.attach_button.clicked.connect(self.attach_requested)
        self.attach_button.hide()
        # Send and Stop are one button to the eye: the same place, one shown at a time (each keeps its own
        # accessible name, so a screen reader says which it is).
        self.send_button = self._round_button("sendButton", tr("Send message"))
        self.send_button.setText(tr("Send"))
        self.stop_button = self._round_button("stopButton", tr("Stop the reply"))
        self.stop_button.setText(tr("Stop"))
        self.stop_button.setToolTip(tr("Stop the reply (Esc)"))
        self.stop_button.hide()
        self.meter = QProgressBar(self)
        self.meter.setObjectName("contextMeter")
        self.meter.setAccessibleName(tr("Context used"))
        # A slim bar with its numbers in a label beside it: text drawn on (or by) the bar overlapped it or
        # wrapped, depending on the style.
        self.meter.setTextVisible(False)
        self.meter.setFixedWidth(120)
        self.meter.setFixedHeight(6)
        self.meter_label = QLabel(self)
        self.meter_label.setObjectName("contextMeterText")
        self.meter_label.setAccessibleName(tr("Context used, in tokens"))
        self.meter.setRange(0, 1)
        self.meter.setValue(0)
        self._set_meter_text(tr("context: ?"))
        self.notice = WrappingLabel(self)
        self.notice.setObjectName("composerNotice")
        self.notice.setAccessibleName(tr("Composer notice"))
        self.notice.hide()

        # The text on top, the buttons in a row under it: attach on the left, Send/Stop on the right.
        inside = QVBoxLayout(self.field)
        inside.setContentsMargins(12, 8, 8, 8)
        inside.setSpacing(2)
        inside.addWidget(self.editor)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.attach_button)
        row.addStretch(1)
        row.addWidget(self.send_button)
        row.addWidget(self.stop_button)
        inside.addLayout(row)
        info = QHBoxLayout()
        info.setContentsMargins(6, 0, 6, 0)
        info.addWidget(self.notice, 1)
        info.addStretch(0)
        info.addWidget(self.meter, 0, Qt.AlignmentFlag.AlignVCenter)
        info.addWidget(self.meter_label)
        layout = self._layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 6, 16, 8)
        layout.setSpacing(4)
        layout.addWidget(self.field)
        layout.addLayout(info)

        self.editor.submitted.connect(self._send)
        self.editor.escaped.connect(self.stop_requested)
        self.send_button.clicked.connect(self._send)
        self.stop_button.clicked.connect(self.stop_requested)
        self._busy = False
        self._ready = True
        self.set_icons(False)

    def resizeEvent(self, event: QResizeEvent) -> None:
        theme.centre_column(self._layout, event.size().width())  # lined up with the conversation's column
        super().resizeEvent(event)

    def _round_button(self, name: str, accessible: str) -> QToolButton:
        button = QToolButton(self.field)
        button.setObjectName(name)
        button.setAccessibleName(accessible)
        button.setToolTip(accessible)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        button.setFixedSize(BUTTON, BUTTON)
        button.setIconSize(QSize(18, 18))
        button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        return button

    def set_icons(self, dark: bool) -> None:
        """The buttons' icons for the light or dark theme."""
        for button, name in (
            (self.attach_button, "attach"),
            (self.send_button, "send"),
            (self.stop_button, "stop"),
        ):
            button.setIcon(theme.icon(name, dark))

    def set_attach_enabled(self, enabled: bool) -> None:
        """Show the attach button (something handles :attr:`attach_requested`) or hide it."""
        self.attach_button.setVisible(enabled)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.editor and event.type() in (QEvent.Type.FocusIn, QEvent.Type.FocusOut):
            self.field.setProperty("focused", event.type() == QEvent.Type.FocusIn)
            self.field.style().unpolish(self.field)
            self.field.style().polish(self.field)
        return super().eventFilter(watched, event)

    @property
    def busy(self) -> bool:
        return self._busy

    def set_send_key(self, key: str) -> None:
        self.editor.send_key = key
        hint = tr("Ctrl+Enter sends") if key == "ctrl+enter" else tr("Enter sends, Shift+Enter: new line")
        self.send_button.setToolTip(hint)

    def set_busy(self, busy: bool) -> None:
        """While a reply is being written, Send becomes Stop."""
        changed = busy != self._busy
        self._busy = busy
        self.send_button.setVisible(not busy)
        self.stop_button.setVisible(busy)
        if changed:
            self.busy_changed.emit(busy)

    def set_ready(self, ready: bool) -> None:
        """Send waits for the app to finish starting (a fraction of a second); typing does not."""
        self._ready = ready
        self.send_button.setEnabled(ready)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def set_context(self, used: int | None, maximum: int | None, *, exact: bool = True) -> None:
        """The meter: tokens used by the conversation (and the draft) out of the model's maximum; "~" when
        estimated (the server cannot count), marked when it is over."""
        approx = "" if exact else "~"
        over = bool(maximum) and (used or 0) > (maximum or 0)
        if self.meter.property("over") != over:
            # Over the limit: the bar turns the error colour (the sheet's [over="true"] rule, polished again).
            self.meter.setProperty("over", over)
            self.meter.style().unpolish(self.meter)
            self.meter.style().polish(self.meter)
        self.meter.setToolTip(tr("More than the model's context") if over else "")
        self.meter_label.setToolTip(self.meter.toolTip())
        if not maximum:
            self.meter.setRange(0, 1)
            self.meter.setValue(0)
            text = tr("context: {a}{n} tokens").format(a=approx, n=used) if used else tr("context: ?")
            self._set_meter_text(text)
            return
        value = min(used or 0, maximum)
        self.meter.setRange(0, maximum)
        self.meter.setValue(value)
        self._set_meter_text(tr("{a}{used:,} / {max:,} tokens").format(a=approx, used=used or 0, max=maximum))

    def _set_meter_text(self, text: str) -> None:
        self.meter.setFormat(text)  # also the bar's accessible text
        self.meter_label.setText(text)

    def _send(self) -> None:
        if self._busy or not self._ready:
            return
        text = self.editor.toPlainText()
        if not text.strip():
            return
        self.editor.clear()
        self.send_requested.emit(text)
