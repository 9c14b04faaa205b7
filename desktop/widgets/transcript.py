"""The conversation on screen: a :class:`MessageWidget` per message in a scrolling :class:`TranscriptView`.

Streaming stays calm: tokens go into the streamed message's
:class:`~desktop.widgets.markdown_view.StreamSplitter`;
a timer renders at most every ~50 ms. Closed pieces are rendered once and appended (QTextCursor.insertHtml)
to the end of a shared document, a new one every 32 pieces so each append and paint stays small; only the
open tail is rendered again, in a small view of its own. A long open block is not rendered whole on each
flush either: an open code block gets only its new text, plain (highlighted once, when it closes), and an
open table renders its rows a few at a time. When the reply ends its tail joins the last document: no
full re-render, so a long reply costs time linear in its length. The view follows the end unless the user
scrolled up.

The look: the user's messages are bubbles on the right, replies are full width and unframed; a message's
actions (copy, edit, regenerate, versions, delete) are drawn while the pointer is over it or one of them has
the keyboard focus. They stay in the layout and in Tab's order all the time (only their painting waits), so
nothing moves when they appear and a keyboard user reaches them as before; no effect or filter per message.

A long conversation is shown lazily: only the newest :data:`PAGE` messages get widgets; older ones are
materialised a page at a time when the user scrolls to the top (or asks for them), so memory stays bounded.
A search hit far up shows a page around the hit instead; the later messages then come a page at a time
when the user scrolls down, and a new message brings the newest page back.

Showing a conversation builds its newest page in slices on the GUI thread, newest first, each within
:data:`BUILD_BUDGET_S` (at least one message), one slice per turn of the event loop: the bottom of the
conversation is there at once, the rest goes in above it without moving the view, and no step stalls a frame.
Showing another conversation drops the slices still waiting; a search hit among them is built at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from PySide6.QtCore import QCoreApplication, QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QEnterEvent,
    QFocusEvent,
    QFontMetrics,
    QGuiApplication,
    QPaintEvent,
    QResizeEvent,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop import theme
from desktop.labels import ElidedLabel, WrappingLabel
from desktop.widgets.markdown_view import (
    CODE_CUT,
    ListItems,
    MarkdownRenderer,
    Rendered,
    SafeBrowser,
    StreamSplitter,
    html_document,
)
from desktop.widgets.render_worker import PieceRenderer

RENDER_INTERVAL_MS = 50
COPIED_MS = 1500  # how long a Copy button says "Copied"
BUBBLE_SHARE = 0.8  # a user's bubble is at most this share of the transcript's width
BUBBLE_PADDING = (14, 8)  # inside a bubble, left/right and top/bottom (px)
PAGE = 40  # messages materialised at once (newest first); older ones come a page at a time
# Closed pieces are appended per timer tick until this much time went by (at least one step): a burst of
# text cannot stall a frame. They are rendered to HTML beforehand, on the render thread. The layout and paint
# of what went in follow in the same turn of the loop (~5 ms more): 3 ms, not 6, keeps the two under ~10 ms.
APPEND_BUDGET_S = 0.003
BUILD_BUDGET_S = 0.006  # a shown conversation's messages are built per tick until this much time
# A closed piece whose HTML is at least this long (a highlighted code block of ~40 lines or more) is parsed in
# a turn of the event loop of its own and inserted in the next, with nothing else in either turn.
HEAVY_PIECE_HTML_CHARS = 8000
BACKLOG_INTERVAL_MS = 16  # the next tick, while closed pieces wait (instead of RENDER_INTERVAL_MS)
PIECES_PER_VIEW = 32  # closed pieces per document: Qt's cost to append and paint grows with its size
TABLE_ROWS_PER_PIECE = 4  # rows of a table still being written that are rendered (once) together
# An open one-line paragraph longer than this has its sentences up to the last ~KEEP characters shown once
# (frozen above the rest), so each flush renders a bounded rest, not the whole paragraph again.
PARAGRAPH_FREEZE_CHARS = 600
PARAGRAPH_KEEP_CHARS = 100
_FENCE_START = re.compile(r" {0,3}[`~]*$")  # a partial line that may become a code block's closing fence
_TABLE_HEAD = re.compile(r"<thead>.*?</thead>\s*", re.DOTALL)


def _row_context(head: str) -> str:
    """The shortest header that parses rows like ``head`` does: as many empty cells, the same delimiter row
    (it holds the alignment). Rows after the first group are rendered under it, and its header dropped."""
    delimiter = head.rstrip("\n").rsplit("\n", 1)[-1]
    columns = delimiter.strip().strip("|").count("|") + 1
    return "|" + " |" * columns + "\n" + delimiter + "\n"


def _joins(whole: str, first: str, rest: str) -> bool:
    """Whether a paragraph's HTML is that of its two parts (split at a space) joined by that space."""
    head, end = "<p>", "</p>\n"
    parts = (whole, first, rest)
    if not all(p.startswith(head) and p.endswith(end) and p.count(head) == 1 for p in parts):
        return False
    return whole == first[: -len(end)] + " " + rest[len(head) :]


def _set_margins(
    document: QTextDocument, *, last: bool, top: float | None = None, bottom: float | None = None
) -> None:
    """Set the margins of the document's first (or ``last``) block."""
    block = document.lastBlock() if last else document.begin()
    block_format = block.blockFormat()
    if top is not None:
        block_format.setTopMargin(top)
    if bottom is not None:
        block_format.setBottomMargin(bottom)
    QTextCursor(block).setBlockFormat(block_format)


def _column_shares(table: str) -> list[float]:
    """Percent of the width for each column of a Markdown table: in step with its longest cell."""
    lines = table.splitlines()
    cells = [line.strip().strip("|").split("|") for line in lines[:1] + lines[2:]]
    longest = [max(3, *(len(row[c].strip()) for row in cells if c < len(row))) for c in range(len(cells[0]))]
    return [100 * length / sum(longest) for length in longest]


def tr(text: str) -> str:
    return QCoreApplication.translate("transcript", text)


@dataclass
class MessageData:
    """What the transcript shows of one message (the window builds it from the engine's records)."""

    id: int | str
    role: str  # "user" | "assistant" | "system"
    text: str = ""
    reasoning: str = ""
    model: str = ""
    branch_index: int = 0  # 0-based position among its siblings
    branch_count: int = 1
    state: str = "complete"  # "streaming" | "complete" | "stopped" | "error" | "queued"
    error: str = ""
    completion_tokens: int | None = None
    tokens_per_s: float | None = None
    ttft_s: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


def format_stats(tokens: int | None, tokens_per_s: float | None, ttft_s: float | None) -> str:
    """'128 tokens · 39.5 tok/s · first token 0.08 s' (parts that are unknown are left out)."""
    parts: list[str] = []
    if tokens is not None:
        parts.append(tr("{n} tokens").format(n=tokens))
    if tokens_per_s is not None:
        parts.append(tr("{v:.1f} tok/s").format(v=tokens_per_s))
    if ttft_s is not None:
        parts.append(tr("first token {s:.2f} s").format(s=ttft_s))
    return " · ".join(parts)


class RenderCache:
    """Rendered Markdown of finished messages, keyed by text (switching conversations re-renders nothing)."""

    def __init__(self, renderer: MarkdownRenderer, limit: int = 2000) -> None:
        self.renderer = renderer
        self._limit = limit
        self._items: dict[str, Rendered] = {}

    def get(self, text: str) -> Rendered:
        hit = self._items.pop(text, None)
        if hit is None:
            hit = self.renderer.render(text)
        self.put(text, hit)
        return hit

    def put(self, text: str, rendered: Rendered) -> None:
        """Remember ``rendered`` for ``text`` (a streamed reply, assembled from its pieces)."""
        self._items.pop(text, None)
        self._items[text] = rendered  # most recent last
        if len(self._items) > self._limit:
            self._items.pop(next(iter(self._items)))


class ActionButton(QToolButton):
    """A message's action: an icon (its words in the tooltip and accessible name). Drawn only while its
    message is :attr:`~MessageWidget.revealed` (hovered, or an action has the focus)."""

    def __init__(self, message: MessageWidget) -> None:
        super().__init__(message)
        self._message = message
        self.setObjectName("messageAction")
        self.setAutoRaise(True)
        self.setIconSize(QSize(16, 16))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._message.revealed:
            super().paintEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        self._message.update_revealed()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self._message.update_revealed()


class MessageWidget(QFrame):
    """One message: role, collapsed reasoning, the text (a bubble for the user's), stats and its actions."""

    action = Signal(str, object)  # (action name, message id): copy, edit, regenerate, delete, prev, next
    edited = Signal(object, str)  # (message id, new text): "Save & send" of the inline editor
    copied = Signal(str)  # what went to the clipboard, in words ("Code copied", "Message copied")

    def __init__(self, data: MessageData, cache: RenderCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.data = data
        self._cache = cache
        self._code_blocks: list[str] = []
        self._splitter: StreamSplitter | None = None
        # Closed pieces not shown yet, each with its HTML being rendered on the render thread.
        self._pending: list[tuple[str, Future[Rendered]]] = []
        self._piece_renderer: PieceRenderer | None = None  # this stream's closed pieces, in order
        self._parsed: QTextDocument | None = None  # the next closed piece's HTML, parsed, to insert next
        # The first pending piece's parts not inserted yet (a long code block goes in a table at a time).
        self._parts: list[str] = []
        self._part_index = 0
        self._closed_html: list[str] = []  # HTML of the rendered closed pieces (cached whole at the end)
        # A list cut between its items is joined in the view, not in the HTML: such a reply is not cached.
        self._stitched = False
        self._stream_renderer: MarkdownRenderer | None = None  # the palette the reply streamed in
        self._in_view = 0  # closed pieces in the newest closed-pieces view
        # A long open block (code, table) is shown piece by piece, not parsed whole on every flush: where it
        # starts in the streamed text (-1: none), and how far it is shown.
        self._open_at = -1
        self._code_shown = 0  # open code: where the text not shown yet starts
        self._rows_shown = 0  # open table: how many of its rows are frozen above the re-rendered rest
        self._open_widths: list[float] = []  # an open table's column shares, once its first rows are in
        self._frozen: SafeBrowser | None = None  # an open table's rows so far, above the re-rendered rest
        self._para_to = -1  # open paragraph: where its text not frozen yet starts (-1: none)
        self._para_retry = 0  # open paragraph: no cut was safe; try again once the text is this long
        self._dirty = False
        # The reply ended and what was still open joins the document a slice per tick (see finish()).
        self._finishing: MessageData | None = None
        self.renders = 0  # how many times the streamed tail was rendered (for tests and benchmarks)
        self.rendered_chars = 0  # characters parsed while streaming: stays linear in the reply's length
        self.setObjectName("userMessage" if data.role == "user" else "assistantMessage")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._hovered = False
        self.revealed = False  # its actions are drawn (see ActionButton)
        self.setAccessibleName(tr("Your message") if data.role == "user" else tr("Reply"))

        self._role = ElidedLabel(parent=self, mode=Qt.TextElideMode.ElideMiddle)  # a model path can be long
        self._role.setObjectName("messageRole")
        role_font = self._role.font()
        role_font.setBold(True)
        self._role.setFont(role_font)
        self.reasoning_button = QToolButton(self)
        self.reasoning_button.setObjectName("reasoningToggle")
        self.reasoning_button.setCheckable(True)
        self.reasoning_button.setAutoRaise(True)
        self.reasoning_button.setAccessibleName(tr("Show reasoning"))
        self.reasoning_button.toggled.connect(self._toggle_reasoning)
        self._reasoning_view: SafeBrowser | None = None  # made on first use: most messages never show one

        # The text: in a bubble on the right for the user's words, full width and unframed for a reply.
        self._bubble: QFrame | None = None
        self._natural_width = 0  # the user's text's widest line (px), for the bubble's width
        if data.role == "user":
            self._content: QWidget = QWidget(self)
            row = QHBoxLayout(self._content)
            row.setContentsMargins(0, 0, 0, 0)
            row.addStretch(1)
            bubble = self._bubble = QFrame(self._content)
            bubble.setObjectName("userBubble")
            bubble.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            row.addWidget(bubble, 1000)  # all the room up to its maximum width; the stretch takes the rest
            self._body = QWidget(bubble)
            inside = QVBoxLayout(bubble)
            inside.setContentsMargins(*BUBBLE_PADDING, *BUBBLE_PADDING)
            inside.addWidget(self._body)
        else:
            self._body = self._content = QWidget(self)
        self._body_layout = QVBoxLayout(self._body)
        self._body_layout.setContentsMargins(0, 0, 0, 0)
        self._body_layout.setSpacing(0)
        self._pieces: list[SafeBrowser] = []
        self._tail: SafeBrowser | None = None
        self._editor: QWidget | None = None
        self.editor: QPlainTextEdit | None = None  # the inline editor while editing
        self.save_edit_button: QPushButton | None = None

        # A failure's words wrap beside the actions instead of making the message wider than the view.
        self.stats_label = WrappingLabel(self)
        self.stats_label.setObjectName("messageStats")
        self.stats_label.setAccessibleName(tr("Reply statistics"))
        footer = QHBoxLayout()
        footer.setContentsMargins(0, 0, 0, 0)
        footer.setSpacing(2)
        self.prev_button = self._tool("‹", tr("Previous version"), "prev")
        self.branch_label = QLabel(self)
        self.branch_label.setObjectName("branchLabel")
        self.branch_label.setAccessibleName(tr("Version"))
        self.next_button = self._tool("›", tr("Next version"), "next")
        self.copy_button = self._tool(tr("Copy"), tr("Copy message"), "copy")
        self.copy_button.clicked.connect(self.copy_text)
        self.edit_button = self._tool(tr("Edit"), tr("Edit message and resend"), "edit")
        self.regenerate_button = self._tool(tr("Regenerate"), tr("Regenerate reply"), "regenerate")
        self.delete_button = self._tool(
            tr("Delete"), tr("Delete this message and the replies under it"), "delete"
        )
        actions = (self.copy_button, self.edit_button, self.regenerate_button, self.delete_button)
        versions = (self.prev_button, self.branch_label, self.next_button)
        # The numbers (or a failure's words) on the left, where they stay; the actions on the right, drawn on
        # hover (before the numbers, the undrawn buttons would leave a gap in front of them).
        footer.addWidget(self.stats_label, 1)
        for w in (*versions, *actions):
            footer.addWidget(w)
        self.set_icons(cache.renderer.dark)

        layout = self._layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 2)
        layout.setSpacing(4)
        layout.addWidget(self._role)
        layout.addWidget(self.reasoning_button)
        layout.addWidget(self._content)
        layout.addLayout(footer)
        # Exactly as tall as the content: spare room in the transcript goes below the last message.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.update_data(data)

    def add_attachment(self, widget: QWidget) -> None:
        """Show ``widget`` (a tool-call card) in the message, above its text, in the order added."""
        widget.setParent(self)
        self._layout.insertWidget(self._layout.indexOf(self._body), widget)

    def _tool(self, text: str, name: str, action: str) -> QToolButton:
        button = ActionButton(self)
        button.setText(text)
        button.setToolTip(name)
        button.setAccessibleName(name)
        button.clicked.connect(lambda: self.action.emit(action, self.data.id))
        return button

    def set_icons(self, dark: bool) -> None:
        """The actions' icons for the light or dark theme."""
        for button, name in (
            (self.prev_button, "previous"),
            (self.next_button, "next"),
            (self.copy_button, "check" if self.copy_button.text() == tr("Copied") else "copy"),
            (self.edit_button, "edit"),
            (self.regenerate_button, "regenerate"),
            (self.delete_button, "delete"),
        ):
            button.setIcon(theme.icon(name, dark))

    # --- hover and focus -----------------------------------------------------------------------------

    def update_revealed(self) -> None:
        """Draw the actions while the pointer is over the message, one of them has the focus, or the reply
        failed (its Retry is what the user wants next)."""
        focus = QApplication.focusWidget()
        revealed = (
            self._hovered
            or self.data.state == "error"
            or (isinstance(focus, ActionButton) and focus.parent() is self)
        )
        if revealed != self.revealed:
            self.revealed = revealed
            for button in self.action_buttons():
                button.update()

    def enterEvent(self, event: QEnterEvent) -> None:
        self._hovered = True
        self.update_revealed()
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._hovered = False
        self.update_revealed()
        super().leaveEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_bubble()

    def _fit_bubble(self) -> None:
        # As wide as the text's widest line, at most BUBBLE_SHARE of the width (then the text wraps). A
        # maximum, not a fixed width: the window can always be made narrower.
        if self._bubble is None:
            return
        natural = self._natural_width + 2 * BUBBLE_PADDING[0] + 12  # the document's margins and cursor
        self._bubble.setMaximumWidth(max(48, min(natural, int(self.width() * BUBBLE_SHARE))))

    def action_buttons(self) -> list[QToolButton]:
        """The message's buttons in the order they are shown (for Tab)."""
        return [
            self.prev_button,
            self.next_button,
            self.copy_button,
            self.edit_button,
            self.regenerate_button,
            self.delete_button,
        ]

    def context_menu(self) -> QMenu:
        """The message's actions as a menu (right click outside the text; the text keeps its own)."""
        menu = QMenu(self)
        for button in (self.copy_button, self.edit_button, self.regenerate_button, self.delete_button):
            if not button.isHidden() and button.isEnabled():
                menu.addAction(button.text(), button.click)
        return menu

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.context_menu()
        menu.exec(event.globalPos())
        menu.deleteLater()

    # --- content -------------------------------------------------------------------------------------

    @property
    def reasoning_view(self) -> SafeBrowser:
        if self._reasoning_view is None:
            view = self._reasoning_view = SafeBrowser(self)
            view.setObjectName("reasoning")
            view.setAccessibleName(tr("Reasoning"))
            view.hide()
            self._layout.insertWidget(self._layout.indexOf(self.reasoning_button) + 1, view)
        return self._reasoning_view

    @property
    def code_blocks(self) -> list[str]:
        return list(self._code_blocks)

    @property
    def streaming(self) -> bool:
        return self._splitter is not None

    @property
    def finishing(self) -> bool:
        """The reply ended, and its last pieces are still being inserted (:meth:`flush` does it)."""
        return self._finishing is not None

    def update_data(self, data: MessageData) -> None:
        """Show ``data`` (a finished message, or the start of a streamed one)."""
        self._show_meta(data)
        if data.state == "streaming":
            self._splitter = StreamSplitter()
            self._stream_renderer = self._cache.renderer
            self._clear_body()
            self._new_piece()  # the closed pieces, appended
            self._tail = self._new_piece()  # the open tail, re-rendered
            self._piece_renderer = PieceRenderer(self._cache.renderer)
            if data.text:
                self.append(data.text)
                self._render_closed(None)
                self.flush()
        else:
            self._splitter = None
            self._show_whole(data.text)

    def _show_meta(self, data: MessageData) -> None:
        self.data = data
        user = data.role == "user"
        who = tr("You") if user else (data.model or tr("Assistant"))
        self._role.setText(who)
        self._role.setVisible(not user)  # the bubble on the right says whose it is
        self._update_footer()
        self._set_reasoning(data.reasoning)

    def set_branch(self, index: int, count: int) -> None:
        """Which version of its message this is (after a regenerate or an edit added one)."""
        self.data.branch_index, self.data.branch_count = index, count
        self._update_footer()

    def set_cache(self, cache: RenderCache) -> None:
        """Render with ``cache`` from now on (a new palette)."""
        self._cache = cache

    def _update_footer(self) -> None:
        data = self.data
        user = data.role == "user"
        finished = data.state != "streaming"
        many = data.branch_count > 1
        for w in (self.prev_button, self.branch_label, self.next_button):
            w.setVisible(many)
        self.branch_label.setText(f"{data.branch_index + 1}/{data.branch_count}")
        self.prev_button.setEnabled(finished and data.branch_index > 0)
        self.next_button.setEnabled(finished and data.branch_index < data.branch_count - 1)
        queued = data.state == "queued"  # written while the server starts; not stored yet
        self.edit_button.setVisible(user and not queued)
        self.regenerate_button.setVisible(not user)
        # Stopped, failed and interrupted replies are answered again the same way; a failed one says so.
        failed = data.state == "error"
        self.regenerate_button.setText(tr("Retry") if failed else tr("Regenerate"))
        self.regenerate_button.setToolTip(tr("Try this reply again") if failed else tr("Regenerate reply"))
        self.delete_button.setVisible(not queued)
        for w in (self.copy_button, self.edit_button, self.regenerate_button, self.delete_button):
            w.setEnabled(finished)
        self.update_revealed()
        stats = format_stats(data.completion_tokens, data.tokens_per_s, data.ttft_s)
        if data.state == "stopped":
            stats = " · ".join(s for s in (tr("stopped"), stats) if s)
        elif data.state == "error" and data.error:
            stats = " · ".join(s for s in (tr("failed: {e}").format(e=data.error), stats) if s)
        elif data.state == "streaming":
            stats = tr("writing…")
        elif queued:
            stats = tr("queued until the server is ready")
        self.stats_label.setText(stats)

    def _set_reasoning(self, text: str) -> None:
        self._update_reasoning_button(text)
        if text and self._reasoning_view is not None and not self._reasoning_view.isHidden():
            self.reasoning_view.setPlainText(text)

    def _update_reasoning_button(self, text: str) -> None:
        self.reasoning_button.setVisible(bool(text))
        self.reasoning_button.setText(
            tr("▾ Reasoning") if self.reasoning_button.isChecked() else tr("▸ Reasoning")
        )

    def _toggle_reasoning(self, shown: bool) -> None:
        self.reasoning_view.setVisible(shown)
        self._set_reasoning(self.data.reasoning)  # sets the text, once, when it is shown

    def _clear_body(self) -> None:
        for piece in self._pieces:
            piece.hide()  # gone now, not at the next turn of the loop (deleteLater) at its old place
            piece.deleteLater()
            self._body_layout.removeWidget(piece)
        self._pieces.clear()
        self._tail = None
        self._drop_frozen()
        self._open_at = -1
        self._code_blocks.clear()
        self._pending.clear()
        self._parsed = None
        self._parts = []
        self._closed_html.clear()
        self._stitched = False
        self._in_view = 0
        self._finishing = None

    def _new_piece(self, before: SafeBrowser | None = None) -> SafeBrowser:
        piece = SafeBrowser(self._body)
        piece.ensurePolished()  # the sheet's chat font now, before the text: laid out once, in its font
        piece.setAccessibleName(tr("Message text"))
        piece.copy_requested.connect(self._copy_code)
        if before is None:
            self._body_layout.addWidget(piece)
            self._pieces.append(piece)
        else:
            self._body_layout.insertWidget(self._body_layout.indexOf(before), piece)
            self._pieces.insert(self._pieces.index(before), piece)
        return piece

    def _show_whole(self, text: str) -> None:
        self._clear_body()
        if self.data.role == "user":
            # What the user typed is shown as typed (no Markdown surprises in their own words).
            piece = self._new_piece()
            piece.setPlainText(text)
            metrics = QFontMetrics(piece.font())
            self._natural_width = max(
                (metrics.horizontalAdvance(line) for line in text.splitlines()), default=0
            )
            self._fit_bubble()
            return
        rendered = self._cache.get(text)
        self._code_blocks = list(rendered.code_blocks)
        self._new_piece().set_markdown_html(rendered.html)

    # --- streaming -----------------------------------------------------------------------------------

    def append(self, text: str) -> None:
        """Buffer streamed text (cheap: no parsing, no layout); :meth:`flush` renders it."""
        if self._splitter is None:
            return
        for piece in self._splitter.feed(text):
            self._submit(piece)
        # A long paragraph on one line is shown sentence by sentence once it is the tail alone.
        if piece := self._splitter.close_before_open_line(PARAGRAPH_FREEZE_CHARS):
            self._submit(piece)
        self.data.text = self._splitter.text
        self._dirty = True

    def _submit(self, piece: str) -> None:
        # Rendered (parsed, highlighted) on the render thread from now on; shown by a later flush.
        assert self._piece_renderer is not None  # made when the stream started
        self._pending.append((piece, self._piece_renderer.submit(piece)))

    def wait_rendered(self, timeout: float = 10.0) -> None:
        """Block until the render thread has rendered every closed piece handed to it so far (for tests: the
        next :meth:`flush` then shows them; the end of a reply waits in :meth:`finish` the same way)."""
        for _piece, future in list(self._pending):
            future.result(timeout)

    def _render_closed(self, budget_s: float | None) -> bool:
        """Show closed pieces: each is parsed once (on the render thread) and appended here, in order, to the
        newest of this message's few documents — pieces already rendered, until ``budget_s`` is spent (at
        least one step); without a budget (the reply ended) every piece, waiting for those still being
        rendered. A piece goes in a part at a time (a long code block is a stack of tables, cut at
        ``CODE_CUT``), each parsed in one step and inserted in another. Returns whether this turn ended on a
        heavy step (then nothing else should follow it)."""
        started = time.perf_counter()
        steps = 0
        while self._pending:
            piece_text, future = self._pending[0]
            if budget_s is not None and not future.done():
                return False  # the next flush shows it
            rendered = future.result()
            if not self._parts:
                self._parts = rendered.html.split(CODE_CUT)
                self._part_index = 0
            part = self._parts[0]
            # A heavy part (a long table or list: Qt lays a table cell out whole, in two passes) gets a turn
            # of its own for its parse and another for its insert: with anything else in the same turn, the
            # two costs add up to one long stall.
            heavy = budget_s is not None and len(part) >= HEAVY_PIECE_HTML_CHARS
            if heavy and steps:
                return False  # the next flush starts with it
            if self._parsed is None:
                # Qt's half, in two steps: parse the HTML (a long code block: ~5-10 ms), then insert it.
                self._parsed = html_document(part)
                steps += 1
                if heavy:
                    return True
                if budget_s is not None and time.perf_counter() - started >= budget_s:
                    return False  # inserted by the next flush
            document, self._parsed = self._parsed, None
            continues = self._part_index == 0 and isinstance(piece_text, ListItems)
            if self._part_index == 0:
                self._start_piece(piece_text, rendered)
            view = self._pieces[-2 if self._tail is not None else -1]
            view.append_document(document, continues_list=continues, code_continues=len(self._parts) > 1)
            del self._parts[0]
            self._part_index += 1
            if not self._parts:
                del self._pending[0]
            steps += 1
            if heavy:
                return True
            if budget_s is not None and time.perf_counter() - started >= budget_s:
                return False
        return False

    def _start_piece(self, piece_text: str, rendered: Rendered) -> None:
        # Counted when its first part goes in (its code blocks' Copy links work from then on).
        self.rendered_chars += len(piece_text)
        self._code_blocks += rendered.code_blocks
        self._closed_html.append(rendered.html)
        # A fresh document keeps each append small; a list goes on in its own document (Qt appends to a list
        # at no extra cost, and a list cut between documents would show a gap).
        continues = isinstance(piece_text, ListItems)
        self._stitched = self._stitched or continues
        if self._in_view >= PIECES_PER_VIEW and self._tail is not None and not continues:
            self._new_piece(before=self._tail)
            self._in_view = 0
        self._in_view += 1

    def append_reasoning(self, text: str) -> None:
        self.data.reasoning += text
        self._update_reasoning_button(self.data.reasoning)
        view = self._reasoning_view
        if view is not None and not view.isHidden():
            # Only the new text: setting all of it on every batch made a long reasoning quadratic.
            cursor = QTextCursor(view.document())
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(text)

    def flush(self) -> bool:
        """Render what arrived (called by the transcript's timer, at most every ~50 ms): a few closed pieces
        and the open tail; after the reply's end, a slice of what is left of it. Returns whether closed pieces
        are still waiting (then call again soon)."""
        if self._finishing is not None:
            return not self._finish_step(APPEND_BUDGET_S)
        if self._splitter is None or not self._dirty or self._tail is None:
            return False
        if self._pending:
            self._drop_frozen()  # the open table it showed is closed now: it is among these pieces
        if self._render_closed(APPEND_BUDGET_S) or self._pending:
            return True  # the tail comes after them (and after a heavy step's turn); shown once they are in
        self._dirty = False
        self._render_tail(self._splitter, self._tail)
        self.renders += 1
        return False

    def _render_tail(self, splitter: StreamSplitter, view: SafeBrowser) -> None:
        code = splitter.open_code()
        if code is not None:
            self._show_open_code(splitter, view, code)
            return
        rows = splitter.open_table()
        if rows is not None:
            self._show_open_table(splitter, view, rows)
            return
        paragraph = splitter.open_paragraph()
        if paragraph is not None and len(splitter.text) - paragraph > PARAGRAPH_FREEZE_CHARS:
            self._show_open_paragraph(splitter, view, paragraph)
            return
        self._open_at = -1
        self._drop_frozen()
        tail = splitter.tail
        # The tail's code is highlighted only once its fence closes (then it is a closed piece).
        rendered = self._cache.renderer.render(
            tail, first_code_index=len(self._code_blocks), highlight_code=not splitter.in_fence
        )
        view.set_markdown_html(rendered.html)
        if splitter.tail_continues_list:
            view.continue_list(self._pieces[-2])
        self.rendered_chars += len(tail)

    def _show_open_code(self, splitter: StreamSplitter, view: SafeBrowser, code_start: int) -> None:
        # Only the text that came since the last flush is added, unparsed; the block is highlighted once,
        # when its fence closes and it becomes a closed piece.
        if self._open_at != splitter.cut:
            self._drop_frozen()
            self._open_at, self._code_shown = splitter.cut, code_start
            view.start_code(self._cache.renderer.code_background)
        text = splitter.text
        newline = text.rfind("\n", self._code_shown)
        line = newline + 1 if newline >= 0 else self._code_shown
        end = line if _FENCE_START.match(text, line) else len(text)
        if end > self._code_shown:
            view.append_code(text[self._code_shown : end])
            self.rendered_chars += end - self._code_shown
            self._code_shown = end

    def _show_open_table(self, splitter: StreamSplitter, view: SafeBrowser, rows: list[int]) -> None:
        # Full groups of rows are rendered once (under the table's header) and appended above; only the rest
        # is rendered again on each flush. The whole table is rendered once more when it is closed.
        frozen = self._frozen
        if self._open_at != splitter.cut or frozen is None:
            self._drop_frozen()
            frozen = self._frozen = self._new_view(view)
            self._open_at, self._rows_shown = splitter.cut, 0
            self._open_widths = []
        text = splitter.text
        header = text[splitter.block_start : rows[0]]
        context = _row_context(header)
        head = context if self._rows_shown else header
        while len(rows) - 1 - self._rows_shown >= TABLE_ROWS_PER_PIECE:
            first, last = rows[self._rows_shown], rows[self._rows_shown + TABLE_ROWS_PER_PIECE]
            if not self._open_widths:  # fixed by the header and the first rows, so that the groups line up
                self._open_widths = _column_shares(head + text[first:last])
            frozen.append_markdown_html(self._render_rows(head, text[first:last], self._rows_shown > 0))
            frozen.set_last_table_widths(self._open_widths)
            self._rows_shown += TABLE_ROWS_PER_PIECE
            head = context
        rest = text[rows[self._rows_shown] :]
        headless = self._rows_shown > 0
        # Without rows a headless table would be an empty frame.
        shown = self._render_rows(head, rest, headless) if rest.strip() or not headless else ""
        view.set_markdown_html(shown)
        if self._open_widths:
            view.set_last_table_widths(self._open_widths)

    def _show_open_paragraph(self, splitter: StreamSplitter, view: SafeBrowser, start: int) -> None:
        # Whole sentences are rendered once into a view above (each a block of its own, no gap between
        # them: a line break at a sentence's end while it streams); only the rest is rendered again. When the
        # paragraph closes it is rendered whole, once, like any closed piece.
        if self._para_to < start or self._frozen is None:
            self._open_at = -1
            self._drop_frozen()
            self._frozen = self._new_view(view)
            self._para_to, self._para_retry = start, 0
        text = splitter.text
        if len(text) - self._para_to > PARAGRAPH_FREEZE_CHARS and len(text) >= self._para_retry:
            self._freeze_sentences(text, self._frozen)
        rest = text[self._para_to :]
        view.set_markdown_html(self._cache.renderer.render(rest).html)
        self.rendered_chars += len(rest)
        if not self._frozen.document().isEmpty():
            _set_margins(view.document(), last=False, top=0)

    def _freeze_sentences(self, text: str, frozen: SafeBrowser) -> None:
        cut = text.rfind(". ", self._para_to, len(text) - PARAGRAPH_KEEP_CHARS)
        if cut > self._para_to:
            renderer = self._cache.renderer
            parts = (text[self._para_to :], text[self._para_to : cut + 1], text[cut + 2 :])
            whole, first, rest = (renderer.render(part).html for part in parts)
            self.rendered_chars += sum(len(part) for part in parts)
            # Only where the two parts render as the whole does (no emphasis, link or code span across).
            if _joins(whole, first, rest):
                had = not frozen.document().isEmpty()
                frozen.append_markdown_html(first)
                _set_margins(frozen.document(), last=True, top=0 if had else None, bottom=0)
                self._para_to = cut + 2
                return
        self._para_retry = len(text) + PARAGRAPH_FREEZE_CHARS // 2

    def _render_rows(self, head: str, rows: str, headless: bool) -> str:
        html = self._cache.renderer.render(head + rows, first_code_index=len(self._code_blocks)).html
        self.rendered_chars += len(head) + len(rows)
        return _TABLE_HEAD.sub("", html, count=1) if headless else html

    def _new_view(self, before: SafeBrowser) -> SafeBrowser:
        view = SafeBrowser(self._body)
        view.ensurePolished()
        view.setAccessibleName(tr("Message text"))
        self._body_layout.insertWidget(self._body_layout.indexOf(before), view)
        return view

    def _drop_frozen(self) -> None:
        self._para_to = -1
        if self._frozen is not None:
            self._body_layout.removeWidget(self._frozen)
            self._frozen.hide()
            self._frozen.deleteLater()
            self._frozen = None

    def finish(self, data: MessageData) -> None:
        """The reply ended (done, stopped or failed): shown with its stats at once; its tail (rendered on the
        render thread) and the closed pieces not shown yet join the document like streamed pieces, within
        ``APPEND_BUDGET_S`` per tick — the first slice now, the rest by :meth:`flush` (``finishing`` until
        then). At once, the end of a reply that stopped inside a long code block stalled the window ~60 ms."""
        splitter, tail_view = self._splitter, self._tail
        self._splitter = None
        self._dirty = False
        # The stored text differs from what streamed, or the palette changed while it streamed (its pieces
        # have both): show it whole, rendered with the current palette.
        if (
            splitter is None
            or tail_view is None
            or data.text != splitter.text
            or self._stream_renderer is not self._cache.renderer
        ):
            self.update_data(data)
            return
        if self._pending:
            self._drop_frozen()  # as flush() does: an open table it showed may be among these pieces
        tail = splitter.tail
        if tail.strip():  # blank lines after a closed block would only add an empty line at the end
            self._submit(ListItems(tail) if splitter.tail_continues_list else tail)
        self._finishing = data
        self._show_meta(data)
        self._finish_step(APPEND_BUDGET_S)

    def _finish_step(self, budget_s: float) -> bool:
        """One slice of the end of a reply; returns whether it is all shown (the tail view then goes)."""
        heavy = self._render_closed(budget_s)  # no full re-render: only what was still open is parsed
        data = self._finishing
        if self._pending or heavy or data is None:
            return data is None  # after a heavy step the tail view goes (relayout, paint) in the next turn
        self._finishing = None
        tail_view = self._tail
        if tail_view is not None:
            self._pieces.remove(tail_view)
            self._body_layout.removeWidget(tail_view)
            tail_view.hide()  # gone now, not at the next turn of the loop (deleteLater) at its old place
            tail_view.deleteLater()
        self._tail = None
        self._drop_frozen()
        self._open_at = -1
        # Pieces of one list are separate lists in their HTML (joined only in the view): the next show of
        # such a reply renders it whole instead.
        if not self._stitched:
            self._cache.put(data.text, Rendered("".join(self._closed_html), list(self._code_blocks)))
        self._closed_html.clear()
        self._stitched = False
        return True

    # --- actions -------------------------------------------------------------------------------------

    def _copy_code(self, index: int) -> None:
        if 0 <= index < len(self._code_blocks):
            QGuiApplication.clipboard().setText(self._code_blocks[index])
            # The block's header says "Copied" for a moment.
            for piece in self._pieces:
                if piece.mark_copied(index, COPIED_MS):
                    break
            self.copied.emit(tr("Code copied to the clipboard"))

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self.data.text)
        # The button says it for a moment (a check mark, "Copied" to a screen reader), the status bar too.
        self._set_copied(True)
        QTimer.singleShot(COPIED_MS, self, lambda: self._set_copied(False))
        self.copied.emit(tr("Message copied to the clipboard"))

    def _set_copied(self, copied: bool) -> None:
        button = self.copy_button
        button.setText(tr("Copied") if copied else tr("Copy"))
        name = tr("Copied") if copied else tr("Copy message")
        button.setToolTip(name)
        button.setAccessibleName(name)
        button.setIcon(theme.icon("check" if copied else "copy", self._cache.renderer.dark))

    def highlight(self, needle: str) -> bool:
        """Select the first occurrence of ``needle`` (a search hit) in this message."""
        for piece in self._pieces:
            doc: QTextDocument = piece.document()
            cursor = doc.find(needle, 0)
            if not cursor.isNull():
                piece.setTextCursor(cursor)
                return True
        return False

    def begin_edit(self) -> QPlainTextEdit:
        """Replace the text by an inline editor with "Save & send" and "Cancel"."""
        if self.editor is not None:
            return self.editor
        box = QWidget(self)
        editor = QPlainTextEdit(box)
        editor.setAccessibleName(tr("Edit message"))
        editor.setPlainText(self.data.text)
        editor.moveCursor(QTextCursor.MoveOperation.End)
        save = QPushButton(tr("Save && send"), box)
        save.setAccessibleName(tr("Save and send"))
        cancel = QPushButton(tr("Cancel"), box)
        cancel.setAccessibleName(tr("Cancel editing"))
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(cancel)
        row.addWidget(save)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(editor)
        layout.addLayout(row)
        save.clicked.connect(lambda: self._save_edit(editor.toPlainText()))
        cancel.clicked.connect(self.end_edit)
        self._content.hide()
        self._layout.insertWidget(self._layout.indexOf(self._content) + 1, box)
        self._editor = box
        self.editor = editor
        self.save_edit_button = save
        editor.setFocus()
        return editor

    def end_edit(self) -> None:
        if self._editor is not None:
            self._editor.deleteLater()
            self._editor = None
            self.editor = None
            self.save_edit_button = None
        self._content.show()

    def _save_edit(self, text: str) -> None:
        if text.strip():
            self.end_edit()
            self.edited.emit(self.data.id, text)


class TranscriptView(QScrollArea):
    """All messages of the open conversation, newest at the bottom."""

    action = Signal(str, object)  # re-emitted from the messages
    edited = Signal(object, str)
    copied = Signal(str)

    def __init__(self, renderer: MarkdownRenderer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setAccessibleName(tr("Conversation"))
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.cache = RenderCache(renderer)
        self._inner = QWidget(self)
        self._inner.setObjectName("transcriptInner")
        self._layout = QVBoxLayout(self._inner)
        self._layout.setContentsMargins(16, 16, 16, 16)
        self._layout.setSpacing(8)
        self._placeholder = QLabel(
            tr("Ask anything. Enter sends, Shift+Enter starts a new line."), self._inner
        )
        self._placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._placeholder.setObjectName("placeholder")
        self.older_button = QPushButton(self._inner)
        self.older_button.setObjectName("olderMessages")
        self.older_button.setFlat(True)
        self.older_button.clicked.connect(lambda: self.load_older())
        self.older_button.hide()
        self.newer_button = QPushButton(self._inner)
        self.newer_button.setObjectName("newerMessages")
        self.newer_button.setFlat(True)
        self.newer_button.clicked.connect(lambda: self.load_newer())
        self.newer_button.hide()
        self._layout.addWidget(self.older_button)
        self._layout.addWidget(self._placeholder)
        self._layout.addWidget(self.newer_button)
        self._layout.addStretch(1)
        self.setWidget(self._inner)
        self._widgets: dict[int | str, MessageWidget] = {}
        # Called with each new message widget (after it has its data): adds parts such as tool-call cards.
        self.widget_hooks: list[Callable[[MessageWidget], None]] = []
        self._order: list[int | str] = []
        self._older: list[MessageData] = []  # not materialised yet, oldest first
        self._newer: list[MessageData] = []  # below a window around a search hit, oldest first
        self._keep_from_bottom: int | None = None  # scroll distance from the end to restore after a page
        self._follow = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RENDER_INTERVAL_MS)
        self._timer.timeout.connect(self._flush)
        # One page per visit to an edge, however many scroll events asked for it.
        self._edge_timer = QTimer(self)
        self._edge_timer.setSingleShot(True)
        self._edge_timer.setInterval(0)
        self._edge_timer.timeout.connect(self._page_in_at_edge)
        self._paged_newer = False  # a page went in below; cleared when the range has grown
        # The newest this-many of _older are still to be built, a slice per tick (a conversation just shown).
        self._build_left = 0
        self._build_timer = QTimer(self)
        self._build_timer.setSingleShot(True)
        self._build_timer.setInterval(0)
        self._build_timer.timeout.connect(self._build_step)

    def resizeEvent(self, event: QResizeEvent) -> None:
        theme.centre_column(self._layout, event.size().width())
        super().resizeEvent(event)

    # --- content -------------------------------------------------------------------------------------

    def messages(self) -> list[MessageWidget]:
        """The materialised messages, oldest first (older ones wait in :attr:`older_count`)."""
        return [self._widgets[i] for i in self._order]

    @property
    def older_count(self) -> int:
        """How many older messages have no widget yet (shown when the user scrolls up to them)."""
        return len(self._older)

    @property
    def newer_count(self) -> int:
        """How many later messages have no widget yet (after a jump to a search hit far up)."""
        return len(self._newer)

    def message(self, message_id: int | str) -> MessageWidget | None:
        return self._widgets.get(message_id)

    def set_renderer(self, renderer: MarkdownRenderer) -> None:
        """A new palette: re-render what is shown with the new colours."""
        self.cache = RenderCache(renderer)
        for widget in self._widgets.values():
            widget.set_cache(self.cache)
            widget.set_icons(renderer.dark)
            if not widget.streaming:
                widget.update_data(widget.data)

    @property
    def building(self) -> bool:
        """Whether messages of the conversation just shown are still being built (a slice per tick)."""
        return self._build_left > 0

    def show_messages(self, messages: Sequence[MessageData]) -> None:
        """Show a conversation (replacing what was shown) and follow its end: its newest message now, the
        rest of its newest page a slice per tick (see :attr:`building`)."""
        self._timer.stop()
        self._build_timer.stop()
        self._build_left = 0
        for widget in self._widgets.values():
            self._layout.removeWidget(widget)
            widget.deleteLater()
        self._widgets.clear()
        self._order.clear()
        self._follow = True
        self._keep_from_bottom = None
        self._newer = []
        # Only the newest page gets widgets: a 2,000-message conversation costs what 40 messages cost.
        self._older = list(messages)
        self._build_left = min(PAGE, len(messages))
        self._placeholder.setVisible(not messages)
        self._build_step()

    def finish_building(self) -> None:
        """Build the rest of the page being built now, in one step."""
        self._build_timer.stop()
        self._build(None)

    def _build_step(self) -> None:
        self._build(BUILD_BUDGET_S)
        if self._build_left:
            self._build_timer.start()

    def _build(self, budget_s: float | None) -> None:
        """Build the newest messages still waiting, each above the last, until ``budget_s`` went by (at least
        one; ``None``: all). The view stays where it is: at the end, or where the user scrolled to."""
        if not self._build_left or not self._older:
            self._build_left = 0
            return
        bar = self.verticalScrollBar()
        if not self._follow and self.isVisible() and self._keep_from_bottom is None:
            self._keep_from_bottom = bar.maximum() - bar.value()
        start = time.perf_counter()
        first = self._layout.indexOf(self._placeholder) + 1
        while self._build_left and self._older:
            data = self._older.pop()
            self._build_left -= 1
            self._layout.insertWidget(first, self._make_widget(data))
            self._order.insert(0, data.id)
            if budget_s is not None and time.perf_counter() - start >= budget_s:
                break
        if not self._older:
            self._build_left = 0
        self._update_paging_buttons()

    def _all_data(self) -> list[MessageData]:
        return [*self._older, *(self._widgets[i].data for i in self._order), *self._newer]

    def _show_window(self, messages: Sequence[MessageData], first: int) -> None:
        """Widgets for ``messages[first:first + PAGE]`` only; those above and below wait for scrolling."""
        self.show_messages(messages[: first + PAGE])
        self.finish_building()  # the hit is among them, and is scrolled to now
        if len(messages) > first + PAGE:
            self._newer = list(messages[first + PAGE :])
            self._follow = False
            self._update_paging_buttons()

    def _make_widget(self, data: MessageData) -> MessageWidget:
        widget = MessageWidget(data, self.cache, self._inner)
        widget.action.connect(self.action)
        widget.copied.connect(self.copied)
        widget.edited.connect(self.edited)
        self._widgets[data.id] = widget
        for hook in self.widget_hooks:  # e.g. the tool-call cards (desktop.window.tool_turns)
            hook(widget)
        return widget

    def add_message(self, data: MessageData) -> MessageWidget:
        if self._newer:  # a new message at the end: back from a search hit to the newest page
            self.show_messages(self._all_data())
        widget = self._make_widget(data)
        self._layout.insertWidget(self._layout.indexOf(self.newer_button), widget)
        self._order.append(data.id)
        self._placeholder.hide()
        return widget

    def load_older(self, count: int = PAGE) -> int:
        """Give widgets to up to ``count`` more older messages (above the shown ones, the view stays put)."""
        page = self._older[-count:] if count > 0 else []
        if not page:
            return 0
        del self._older[-len(page) :]
        self._build_left = max(0, self._build_left - len(page))  # those were built now
        bar = self.verticalScrollBar()
        if self.isVisible():  # a hidden view gets no range change to restore the position in
            self._keep_from_bottom = bar.maximum() - bar.value()
        first = self._layout.indexOf(self._placeholder) + 1
        for offset, data in enumerate(page):
            self._layout.insertWidget(first + offset, self._make_widget(data))
        self._order[0:0] = [data.id for data in page]
        self._update_paging_buttons()
        return len(page)

    def load_newer(self, count: int = PAGE) -> int:
        """Give widgets to up to ``count`` more later messages (below the shown ones)."""
        page = self._newer[:count] if count > 0 else []
        if not page:
            return 0
        del self._newer[: len(page)]
        self._paged_newer = self.isVisible()  # a hidden view gets no range change to clear it
        at = self._layout.indexOf(self.newer_button)
        for offset, data in enumerate(page):
            self._layout.insertWidget(at + offset, self._make_widget(data))
        self._order.extend(data.id for data in page)
        self._update_paging_buttons()
        return len(page)

    def _update_paging_buttons(self) -> None:
        waiting = len(self._older) - self._build_left  # those being built now are not offered
        self.older_button.setVisible(waiting > 0)
        self.older_button.setText(tr("Show {n} earlier messages").format(n=waiting))
        self.newer_button.setVisible(bool(self._newer))
        self.newer_button.setText(tr("Show {n} later messages").format(n=len(self._newer)))

    def update_message(self, data: MessageData) -> None:
        widget = self._widgets.get(data.id)
        for waiting in (self._older, self._newer):
            index = next((i for i, d in enumerate(waiting) if d.id == data.id), None)
            if index is not None:
                waiting[index] = data  # shown when it is materialised
                return
        if widget is None:
            self.add_message(data)
        elif widget.streaming:
            widget.finish(data)
            if widget.finishing:  # the rest of its end, a slice per tick
                self._timer.start(BACKLOG_INTERVAL_MS)
        else:
            widget.update_data(data)

    def remove_message(self, message_id: int | str) -> None:
        widget = self._widgets.pop(message_id, None)
        if widget is not None:
            self._order.remove(message_id)
            self._layout.removeWidget(widget)
            widget.deleteLater()
        else:
            index = next((i for i, d in enumerate(self._older) if d.id == message_id), None)
            if index is not None:
                if index >= len(self._older) - self._build_left:
                    self._build_left -= 1  # one of those being built
                del self._older[index]
            self._newer = [d for d in self._newer if d.id != message_id]
            self._update_paging_buttons()

    def truncate_from(self, message_id: int | str) -> None:
        """Remove a message and every one after it (an edit or regenerate starts a new branch there)."""
        if message_id in self._order:
            for later in self._order[self._order.index(message_id) :]:
                self.remove_message(later)
            self._newer = []
            self._update_paging_buttons()

    # --- streaming -----------------------------------------------------------------------------------

    def append_token(self, message_id: int | str, text: str) -> None:
        widget = self._widgets.get(message_id)
        if widget is not None:
            widget.append(text)
            self._schedule()

    def append_reasoning(self, message_id: int | str, text: str) -> None:
        widget = self._widgets.get(message_id)
        if widget is not None:
            widget.append_reasoning(text)

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start(RENDER_INTERVAL_MS)

    def _flush(self) -> None:
        more = False
        for widget in self._widgets.values():
            if widget.streaming or widget.finishing:
                more = widget.flush() or more
        if more:  # a burst of closed pieces: the rest a frame later
            self._timer.start(BACKLOG_INTERVAL_MS)

    # --- scrolling -----------------------------------------------------------------------------------

    @property
    def following(self) -> bool:
        return self._follow

    def follow(self) -> None:
        """Go to the end and stay there as it grows: the user sent something and wants to see it, however
        far up they had scrolled or jumped (a search hit)."""
        if self._newer:
            self.show_messages(self._all_data())
        self._follow = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 8 and not self._newer
        if (value == 0 and self._older) or (value >= bar.maximum() - 8 and self._newer):
            self._edge_timer.start()

    def _page_in_at_edge(self) -> None:
        """The user reached the top (or the bottom of a window around a hit): the next page there.

        Checked again when it runs: a jump to another hit may have come in between.
        """
        bar = self.verticalScrollBar()
        if bar.maximum() <= 0 or self._keep_from_bottom is not None or self._paged_newer:
            return  # a page went in and the range has not caught up yet
        if bar.value() == 0 and self._older:
            self.load_older()
        elif bar.value() >= bar.maximum() - 8 and self._newer:
            self.load_newer()

    def _on_range(self, _minimum: int, maximum: int) -> None:
        bar = self.verticalScrollBar()
        self._paged_newer = False
        if self._keep_from_bottom is not None:
            # Older messages went in above: keep what the user looked at in place.
            bar.setValue(max(0, maximum - self._keep_from_bottom))
            self._keep_from_bottom = None
        elif self._follow:
            bar.setValue(maximum)

    def _materialise(self, message_id: int | str) -> None:
        """Give a widget to a message waiting above or below the shown ones."""
        older = next((i for i, d in enumerate(self._older) if d.id == message_id), None)
        newer = next((i for i, d in enumerate(self._newer) if d.id == message_id), None)
        streaming = any(w.streaming for w in self._widgets.values())
        if older is not None and (len(self._older) - older <= PAGE or streaming):
            self.load_older(len(self._older) - older)  # near: materialise down to it
            self._keep_from_bottom = None
        elif newer is not None and newer < PAGE:
            self.load_newer(newer + 1)
        elif older is not None or newer is not None:
            # Far away: a page around it, not widgets for everything in between (seconds for ~2,000).
            everything = self._all_data()
            at = next(i for i, d in enumerate(everything) if d.id == message_id)
            self._show_window(everything, max(0, at - PAGE // 2))

    def scroll_to(self, message_id: int | str, needle: str = "") -> bool:
        """Show a message (a search hit): scroll to it and select ``needle`` in it."""
        if message_id not in self._widgets:
            self._materialise(message_id)
        widget = self._widgets.get(message_id)
        if widget is None:
            return False
        self._follow = False
        # A widget added to a shown layout is shown (and placed) only on the next turn of the event loop:
        # place the new ones now, or there is nothing to scroll to yet.
        for placed in self._widgets.values():
            placed.show()
        self._layout.activate()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        self.ensureWidgetVisible(widget, 0, 40)
        if needle:
            widget.highlight(needle)
        self._follow = False
        return True
