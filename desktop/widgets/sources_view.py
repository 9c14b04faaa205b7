"""The sources under a reply grounded in documents: each numbered as the reply cites it ([1], [2]…), with its
file, page or section and the quoted passage. Clicking a source's name asks to open the file
(:attr:`SourcesView.open_requested`); "In context" asks to show the passage among its neighbours
(:attr:`SourcesView.context_requested`). The sources are the ones stored with the reply
(``meta["sources"]``, see engine.documents.grounding)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from desktop.labels import WrappingLabel
from engine.documents.grounding import source_place

EXCERPT_CHARS = 280


def tr(text: str) -> str:
    return QCoreApplication.translate("sources", text)


def excerpt(passage: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(passage.split())
    return f"“{text[:limit]}…”" if len(text) > limit else f"“{text}”"


class SourceRow(QWidget):
    """One source: "[1] report.pdf, page 3" (a link), "In context", and the quoted passage below."""

    def __init__(self, source: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        number = source.get("number", "?")
        self.link = QToolButton(self)
        self.link.setObjectName("sourceLink")
        self.link.setAutoRaise(True)
        self.link.setText(f"[{number}] {source_place(source)}")
        self.link.setToolTip(tr("Open {0}").format(source.get("file", "")))
        self.link.setCursor(Qt.CursorShape.PointingHandCursor)
        self.context_button = QToolButton(self)
        self.context_button.setAutoRaise(True)
        self.context_button.setText(tr("In context"))
        self.context_button.setToolTip(tr("Show this passage among the text around it"))
        self.quote = WrappingLabel(self)
        self.quote.setText(excerpt(str(source.get("passage", ""))))
        self.quote.setObjectName("sourceQuote")
        self.quote.setToolTip(str(source.get("passage", ""))[:2000])
        self.quote.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.link)
        head.addWidget(self.context_button)
        head.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 4)
        column.setSpacing(0)
        column.addLayout(head)
        column.addWidget(self.quote)


class SourcesView(QFrame):
    """The list of a reply's sources; emits the source (a dict as stored) the user asked for."""

    open_requested = Signal(dict)
    context_requested = Signal(dict)

    def __init__(self, sources: list[dict[str, Any]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourcesView")
        self.setAccessibleName(tr("Sources"))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(2)
        title = QLabel(tr("Sources"), self)
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        layout.addWidget(title)
        self.rows: list[SourceRow] = []
        for source in sources:
            row = SourceRow(source, self)
            row.link.clicked.connect(lambda _c=False, s=source: self.open_requested.emit(s))
            row.context_button.clicked.connect(lambda _c=False, s=source: self.context_requested.emit(s))
            layout.addWidget(row)
            self.rows.append(row)
