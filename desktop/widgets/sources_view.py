"""The sources under a reply grounded in documents: each numbered as the reply cites it ([1], [2]…), with its
file, page or section and the quoted passage. Clicking a source's name asks to open the file
(:attr:`SourcesView.open_requested`); "In context" asks to show the passage among its neighbours
(:attr:`SourcesView.context_requested`). The sources are the ones stored with the reply
(``meta["sources"]``, see engine.documents.grounding).

The sources the reply used come first, under a line that says how that is known: the reply cites them
([n] markers), or — a reply without markers — the app matched the reply's wording to them (each such row
says "matched by the app", never "cited"; engine.documents.attribution). The other passages given to the
model follow, collapsed under "Also given to the model (n)". A reply stored before replies were attributed
lists all its sources as it always did.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from desktop.labels import WrappingLabel
from engine.documents.attribution import grouped, use_of
from engine.documents.grounding import source_place

EXCERPT_CHARS = 280


def tr(text: str) -> str:
    return QCoreApplication.translate("sources", text)


def excerpt(passage: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(passage.split())
    return f"“{text[:limit]}…”" if len(text) > limit else f"“{text}”"


class SourceRow(QWidget):
    """One source: "[1] report.pdf, page 3" (a link), "In context", a tag for a passage the app matched to the
    reply ("matched by the app"), and the quoted passage below."""

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
        self.tag: QLabel | None = None
        if use_of(source) == "matched":
            share = round(100 * float(source.get("match") or 0))
            self.tag = QLabel(tr("matched by the app"), self)
            self.tag.setObjectName("sourceMatched")
            # A pill beside the name: a passage the app matched is never mistaken for one the model cited.
            self.tag.setStyleSheet(
                "QLabel#sourceMatched { border: 1px solid palette(mid); border-radius: 7px; padding: 0 6px; }"
            )
            self.tag.setToolTip(
                tr(
                    "The reply does not cite its sources. The app found {0}% of the words of one of its "
                    "sentences in this passage."
                ).format(share)
            )
            head.addWidget(self.tag)
        head.addWidget(self.context_button)
        head.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 4)
        column.setSpacing(0)
        column.addLayout(head)
        column.addWidget(self.quote)


NOTES = {
    "cited": "Cited by the reply",
    "matched": "The reply cites no source; the app matched its wording to these passages",
    "none": "The reply neither cites the passages given to the model nor matches their wording",
}


class SourcesView(QFrame):
    """The list of a reply's sources; emits the source (a dict as stored) the user asked for.

    ``rows`` holds every source's row, the used ones first; ``used_rows`` and ``other_rows`` split them, the
    others inside ``others_box`` (hidden until ``others_toggle`` is clicked)."""

    open_requested = Signal(dict)
    context_requested = Signal(dict)

    def __init__(self, sources: list[dict[str, Any]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourcesView")
        self.setAccessibleName(tr("Sources"))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.attribution, used, others = grouped(sources)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(2)
        title = QLabel(tr("Sources"), self)
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        layout.addWidget(title)
        self.note: QLabel | None = None
        if self.attribution in NOTES:
            self.note = WrappingLabel(self)
            self.note.setObjectName("sourcesNote")
            self.note.setText(tr(NOTES[self.attribution]))
            note_font = self.note.font()
            note_font.setItalic(True)
            self.note.setFont(note_font)
            layout.addWidget(self.note)
        self.used_rows = [self._row(source, layout) for source in used]
        self.others_toggle: QToolButton | None = None
        self.others_box: QWidget | None = None
        box_layout = layout
        if others and self.attribution != "unknown":
            self.others_toggle = QToolButton(self)
            self.others_toggle.setObjectName("sourcesOthers")
            self.others_toggle.setAutoRaise(True)
            self.others_toggle.setCheckable(True)
            self.others_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            self.others_toggle.setArrowType(Qt.ArrowType.RightArrow)
            label = tr("Also given to the model ({0})") if used else tr("Given to the model ({0})")
            self.others_toggle.setText(label.format(len(others)))
            self.others_toggle.setToolTip(
                tr("Passages that went with the question but that the reply did not use")
            )
            self.others_toggle.toggled.connect(self._show_others)
            layout.addWidget(self.others_toggle)
            self.others_box = QWidget(self)
            box_layout = QVBoxLayout(self.others_box)
            box_layout.setContentsMargins(12, 0, 0, 0)
            box_layout.setSpacing(2)
            layout.addWidget(self.others_box)
            self.others_box.setVisible(False)
        self.other_rows = [self._row(source, box_layout, self.others_box) for source in others]
        self.rows: list[SourceRow] = [*self.used_rows, *self.other_rows]

    def _row(self, source: dict[str, Any], layout: QVBoxLayout, parent: QWidget | None = None) -> SourceRow:
        row = SourceRow(source, parent or self)
        row.link.clicked.connect(lambda _c=False, s=source: self.open_requested.emit(s))
        row.context_button.clicked.connect(lambda _c=False, s=source: self.context_requested.emit(s))
        layout.addWidget(row)
        return row

    def _show_others(self, shown: bool) -> None:
        assert self.others_box is not None
        assert self.others_toggle is not None
        self.others_box.setVisible(shown)
        self.others_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
