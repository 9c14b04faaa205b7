"""Where the user writes: the message editor, Send/Stop and the context meter.

Enter sends and Shift+Enter starts a new line (or Ctrl+Enter sends, per the ``send_key`` setting); Esc stops
a reply being written.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets.labels import WrappingLabel


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
    """The editor with its buttons; emits :attr:`send_requested` with the text and :attr:`stop_requested`."""

    send_requested = Signal(str)
    stop_requested = Signal()
    busy_changed = Signal(bool)  # a reply started (True) or ended (False) in the shown conversation

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.editor = MessageEdit(self)
        self.editor.setObjectName("composerEditor")
        self.editor.setAccessibleName(tr("Message"))
        self.editor.setPlaceholderText(tr("Write a message…"))
        self.editor.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.editor.setFixedHeight(72)  # about three lines; the transcript gets the rest
        self.send_button = QPushButton(tr("Send"), self)
        self.send_button.setAccessibleName(tr("Send message"))
        self.send_button.setDefault(False)
        self.stop_button = QPushButton(tr("Stop"), self)
        self.stop_button.setAccessibleName(tr("Stop the reply"))
        self.stop_button.setToolTip(tr("Stop the reply (Esc)"))
        self.stop_button.hide()
        self.meter = QProgressBar(self)
        self.meter.setObjectName("contextMeter")
        self.meter.setAccessibleName(tr("Context used"))
        # A slim bar with its numbers in a label beside it: text drawn on (or by) the bar overlapped it or
        # wrapped, depending on the style.
        self.meter.setTextVisible(False)
        self.meter.setFixedWidth(120)
        self.meter.setMaximumHeight(10)
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

        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.editor, 1)
        row.addLayout(buttons)
        info = QHBoxLayout()
        info.addWidget(self.notice, 1)
        info.addStretch(0)
        info.addWidget(self.meter, 0, Qt.AlignmentFlag.AlignVCenter)
        info.addWidget(self.meter_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 4, 12, 8)
        layout.addLayout(row)
        layout.addLayout(info)

        self.editor.submitted.connect(self._send)
        self.editor.escaped.connect(self.stop_requested)
        self.send_button.clicked.connect(self._send)
        self.stop_button.clicked.connect(self.stop_requested)
        self._busy = False
        self._ready = True

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
        self.meter.setProperty("over", over)
        # Over the limit: the bar turns the error colour (a palette change keeps the style's own look).
        palette = self.palette()
        if over:
            palette.setColor(QPalette.ColorRole.Highlight, QColor("#c62828"))
        self.meter.setPalette(palette)
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
