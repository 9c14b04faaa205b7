"""Model output as safe rich text: Markdown (markdown-it-py) to Qt rich text, code highlighted by Pygments.

Model output is untrusted. Raw HTML in it is escaped (``html: False``), images become plain links (nothing
is ever fetched), and :class:`SafeBrowser` refuses every resource load and opens links only when clicked.

Streaming: :class:`StreamSplitter` finds where the text can be cut into blocks that are already closed, so a
long reply is parsed piece by piece (each closed piece once) and only the open tail is parsed again. Tight
lists are cut between their items; an open code block or table is reported, so the view can grow it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QTextBlock,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextDocumentFragment,
    QTextLength,
    QTextList,
    QTextListFormat,
    QTextTable,
)
from PySide6.QtWidgets import QSizePolicy, QTextBrowser, QWidget

if TYPE_CHECKING:
    # markdown-it (~30 ms) and Pygments (~10 ms) are imported at the first render, not before the window is
    # shown (the cold start, issue 17): see _checks() and MarkdownRenderer._parser().
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from markdown_it.utils import OptionsDict
    from pygments.formatters import HtmlFormatter

# What the first render imports; the app imports them on its import thread once the window is up
# (desktop.app._after_show), so that the first reply does not wait for them.
RENDER_MODULES = (
    "markdown_it",
    "mdit_py_plugins.dollarmath",
    "pygments.lexers",
    "pygments.formatters.html",
    "pygments.styles.friendly",
    "pygments.styles.monokai",
)
COPY_SCHEME = "desk-copy"  # href of a code block's copy link: desk-copy:<index>
COPY_LABEL = "Copy code"
COPIED_LABEL = "Copied"
MONO_FAMILIES = ("DejaVu Sans Mono", "Noto Sans Mono", "monospace")
MONO = ", ".join(f"'{name}'" if " " in name else name for name in MONO_FAMILIES)
# A top-level code block is a stack of tables of this many lines each (see MarkdownRenderer._render_fence).
CODE_LINES_PER_TABLE = 30
# Between two of them: a line of no height (Qt keeps a block between two tables), and the mark where a view
# may cut a rendered piece's HTML to insert it a table at a time (a comment: Qt's parser skips it).
_CODE_JOIN = '<p style="margin-top:0px; margin-bottom:0px; line-height:0px; -qt-line-height-type:fixed;"></p>'
CODE_CUT = "<!--desk-cut-->"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r"^(?:([-*+])|\d{1,9}([.)]))(?:[ \t]|$)")
_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")  # a thematic break, not a list item
_DELIMITER = re.compile(r"^\|[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_NUMBERED = {
    QTextListFormat.Style.ListDecimal,
    QTextListFormat.Style.ListLowerAlpha,
    QTextListFormat.Style.ListUpperAlpha,
    QTextListFormat.Style.ListLowerRoman,
    QTextListFormat.Style.ListUpperRoman,
}


@cache
def _checks() -> tuple[MarkdownIt, MarkdownIt]:
    """The splitter's parsers: tables alone, and the renderer's block rules (math blocks too), which say
    whether a table interrupts the block before it. Made at the first use (see the imports)."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    table = MarkdownIt("commonmark").enable("table")
    return table, MarkdownIt("commonmark").enable("table").use(dollarmath_plugin, double_inline=True)


@dataclass
class Rendered:
    """HTML for Qt's rich text plus the raw text of each code block (for its copy link)."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


class MarkdownRenderer:
    """Markdown to Qt rich-text HTML. ``dark`` picks the code colour scheme to match the palette."""

    def __init__(self, *, dark: bool = False) -> None:
        self.dark = dark
        self.code_background = "#272822" if dark else "#f3f3f3"
        self.code_header = "#34352f" if dark else "#e6e6e9"  # a code block's header: language, Copy code
        self._header_text = "#b4b4ba" if dark else "#55555e"
        self._md: MarkdownIt | None = None  # made at the first render (see the imports)
        self._formatter: HtmlFormatter[str] | None = None

    def _parser(self) -> MarkdownIt:
        if self._md is not None:
            return self._md
        from markdown_it import MarkdownIt
        from mdit_py_plugins.dollarmath import dollarmath_plugin

        md = (
            MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
            .enable(["table", "strikethrough"])
            .use(dollarmath_plugin, double_inline=True)
        )
        for name, rule in (
            ("fence", self._render_fence),
            ("code_block", self._render_fence),
            ("image", self._render_image),
            ("math_inline", self._render_math_inline),
            ("math_inline_double", self._render_math_inline),
            ("math_block", self._render_math_block),
            ("math_block_label", self._render_math_block),
            ("table_open", self._render_table_open),
        ):
            md.add_render_rule(name, _unbound(rule))
        self._md = md
        return md

    def render(self, text: str, *, first_code_index: int = 0, highlight_code: bool = True) -> Rendered:
        """Render ``text``; code blocks are numbered from ``first_code_index`` (a message's pieces share one
        numbering). ``highlight_code=False`` skips Pygments for a block that is still being written."""
        env: dict[str, Any] = {"code": [], "first": first_code_index, "highlight": highlight_code}
        body = self._parser().render(text, env)
        return Rendered(body, env["code"])

    # Render rules are bound methods: markdown-it-py calls them as (tokens, idx, options, env).
    def _render_fence(self, tokens: Sequence[Token], idx: int, _o: OptionsDict, env: dict[str, Any]) -> str:
        token = tokens[idx]
        code = token.content
        lang = token.info.strip().split(" ")[0] if token.info else ""
        index = env["first"] + len(env["code"])
        env["code"].append(code)
        body = self._highlight(code, lang) if env["highlight"] else html.escape(code)
        label = html.escape(lang) if lang else "code"
        background, header, ink = self.code_background, self.code_header, self._header_text
        # A header row (the language; Copy code on the right) over the code, as chat apps show it.
        head = (
            f'<tr><td style="background-color:{header}; color:{ink};"><small>{label}</small></td>'
            f'<td align="right" style="background-color:{header};"><small>'
            f'<a href="{COPY_SCHEME}:{index}" style="color:{ink}; text-decoration:none;">{COPY_LABEL}</a>'
            "</small></td></tr>"
        )
        # On the top level, a long block is a stack of tables of CODE_LINES_PER_TABLE lines that looks like
        # one (no padding or margin where they meet, a zero-height line between them): Qt lays out a table
        # cell whole on every change, so a view inserts (and lays out) them one at a time (CODE_CUT).
        chunks = _code_chunks(body, CODE_LINES_PER_TABLE if token.level == 0 else 0)
        tables = []
        for k, chunk in enumerate(chunks):
            first, last = k == 0, k == len(chunks) - 1
            # Where two meet, neither the cell's padding nor the <pre>'s margin.
            cell = " ".join((["padding-top:0px;"] * (not first)) + (["padding-bottom:0px;"] * (not last)))
            pre = "".join(([" margin-top:0px;"] * (not first)) + ([" margin-bottom:0px;"] * (not last)))
            cell_style = f' style="{cell}"' if cell else ""
            tables.append(
                f'<table width="100%" cellspacing="0" cellpadding="6" style="background-color:{background};">'
                f'{head if first else ""}<tr><td colspan="2"{cell_style}>'
                f'<pre style="font-family:{MONO}; white-space:pre-wrap;{pre}">{chunk}</pre></td></tr></table>'
            )
        return (_CODE_JOIN + CODE_CUT).join(tables) + "\n"

    def _render_table_open(self, *_args: object) -> str:
        return '<table border="1" cellspacing="0" cellpadding="4" style="border-collapse:collapse;">'

    def _highlight(self, code: str, lang: str) -> str:
        from pygments import highlight
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound

        try:
            lexer = get_lexer_by_name(lang) if lang else None
        except ClassNotFound:
            lexer = None
        if lexer is None:
            return html.escape(code)
        if self._formatter is None:
            from pygments.formatters import HtmlFormatter

            self._formatter = HtmlFormatter(
                nowrap=True, noclasses=True, style="monokai" if self.dark else "friendly"
            )
        return highlight(code, lexer, self._formatter)

    def _render_image(self, tokens: Sequence[Token], idx: int, _o: OptionsDict, _env: object) -> str:
        # Never an <img>: a remote image would be a request the model's output makes on the user's behalf.
        token = tokens[idx]
        src = html.escape(str(token.attrGet("src") or ""), quote=True)
        alt = html.escape(token.content or "image")
        return f'[image: <a href="{src}">{alt}</a>]'

    def _render_math_inline(self, tokens: Sequence[Token], idx: int, _o: OptionsDict, _env: object) -> str:
        return f'<code style="font-family:{MONO};">{html.escape(tokens[idx].content)}</code>'

    def _render_math_block(self, tokens: Sequence[Token], idx: int, _o: OptionsDict, _env: object) -> str:
        return f'<pre style="font-family:{MONO};">{html.escape(tokens[idx].content.strip())}</pre>\n'


def _code_chunks(body: str, lines_per_chunk: int) -> list[str]:
    """A code block's HTML (Pygments closes its spans at every line end) cut into chunks of whole lines;
    every chunk ends with a newline but the last, which keeps the body's own end. 0: one chunk."""
    lines = body.split("\n")
    ends_in_newline = len(lines) > 1 and lines[-1] == ""
    if ends_in_newline:
        lines.pop()
    if lines_per_chunk <= 0 or len(lines) <= lines_per_chunk:
        return [body]
    chunks = ["\n".join(lines[i : i + lines_per_chunk]) + "\n" for i in range(0, len(lines), lines_per_chunk)]
    if not ends_in_newline:
        chunks[-1] = chunks[-1][:-1]
    return chunks


def _unbound(rule: Callable[..., str]) -> Callable[..., str]:
    # markdown-it-py binds a rule to its renderer (first argument); ours are methods of this class instead.
    def call(_renderer: object, *args: Any) -> str:
        return rule(*args)

    return call


class ListItems(str):
    """A closed piece that goes on with the list the piece before it ended with (the next items of a tight
    list): shown as part of that list, not as a list of its own."""

    __slots__ = ()


class StreamSplitter:
    """Cuts growing Markdown into closed pieces and an open tail.

    A cut is made, outside any fence, before a line at column 0 that follows a blank line or a closed code
    fence, opens a fence, or starts the next item of a list (same marker: a tight list is cut between its
    items, the later pieces are :class:`ListItems`); and right after a fence that opened the tail closes.
    Blank lines after such a fence stay in the tail, before its first block (:attr:`block_start`).
    What lies before such a cut cannot change meaning when more text arrives. Each character is scanned
    once, so the total cost is linear in the length of the reply.

    The open tail may be one long block: :meth:`open_code` and :meth:`open_table` say so, so a view can add
    to it piece by piece instead of parsing all of it again.
    """

    def __init__(self) -> None:
        self._text = ""
        self._scan = 0  # start of the first line not yet scanned
        self._cut = 0  # end of the text already handed out as closed pieces
        self._block = 0  # where the tail's first block starts (after the blank lines it may begin with)
        self._fence: str | None = None  # the opening fence marker while inside a fence
        self._code_at: int | None = None  # where its code starts, while the fence is the whole open tail
        self._boundary = False  # the previous line ended a block
        self._item: str | None = None  # marker of the list item the previous lines belong to
        self._previous = (0, "")  # start and text of the previous line (a table's header)
        self._rows: list[int] = []  # while the tail is a table: where its body starts, then each row's end
        self._tail_continues = False  # the tail starts with the next items of a tight list

    @property
    def text(self) -> str:
        return self._text

    @property
    def cut(self) -> int:
        """Where the open tail starts in :attr:`text`."""
        return self._cut

    @property
    def tail(self) -> str:
        return self._text[self._cut :]

    @property
    def block_start(self) -> int:
        """Where the tail's first block starts in :attr:`text`: after the blank lines it may begin with (a
        cut right after a closed fence leaves them in the tail)."""
        return self._block

    @property
    def tail_continues_list(self) -> bool:
        """Whether the tail, once closed, is :class:`ListItems` (the next items of the list before it)."""
        return self._tail_continues

    @property
    def in_fence(self) -> bool:
        return self._fence is not None

    def open_code(self) -> int | None:
        """Where the code starts in :attr:`text`, while the tail is one code fence, still open."""
        return self._code_at

    def open_paragraph(self) -> int | None:
        """Where the tail's block starts while it is one paragraph on one line still being written (no line
        break since it began): a view may show its first sentences once and render only the rest again."""
        if self._fence is not None or self._scan > self._block or self._tail_continues:
            return None
        start = self._text[self._block : self._block + 4]
        if not start or start[0].isspace() or start[0] in "#>|$" or _FENCE.match(start):
            return None
        return None if _item_marker(start) or _BREAK.match(start) else self._block

    def close_before_open_line(self, min_length: int) -> str:
        """When the line being written (no newline yet) is at least ``min_length`` long, starts at column 0
        and follows a blank line or a closed fence, what comes before it cannot change any more: cut it off
        now (the closed piece, or "") instead of when the line ends, so the long line is the tail alone."""
        start = self._scan
        if self._fence is not None or not self._boundary or start == self._block:
            return ""
        if len(self._text) - start < min_length or self._text[start].isspace():
            return ""
        return self._take(start)

    def open_table(self) -> list[int] | None:
        """While the tail is one table: where its body starts in :attr:`text`, then where each complete row
        ends (the header and delimiter lines come before the first offset)."""
        return self._rows or None

    def feed(self, chunk: str) -> list[str]:
        """Add streamed text; return the pieces that became closed (usually none or one)."""
        self._text += chunk
        closed: list[str] = []
        while True:
            end = self._text.find("\n", self._scan)
            if end < 0:
                return closed
            start, line = self._scan, self._text[self._scan : end]
            self._scan = end + 1
            piece = self._scan_line(start, line)
            if piece:
                closed.append(piece)
            self._previous = (start, line)

    def _take(self, until: int) -> str:
        piece = self._text[self._cut : until]
        if self._tail_continues:
            piece = ListItems(piece)
            self._tail_continues = False
        self._cut = self._block = until
        self._rows = []
        return piece

    def _scan_line(self, start: int, line: str) -> str:
        fence = _FENCE.match(line)
        if self._fence is not None:
            closes = fence and fence.group(1)[0] == self._fence[0] and len(fence.group(1)) >= len(self._fence)
            if closes and not line.strip().strip(self._fence[0]):
                self._fence = None
                self._boundary = True
                if self._code_at is not None:  # the whole block is known now: it is closed
                    self._code_at = None
                    return self._take(self._scan)
            return ""
        column0 = bool(line) and not line[0].isspace()
        item = _item_marker(line) if column0 else None
        opens = start == self._block  # the line starts the tail's first block: only blank lines before it
        if item and not (self._boundary or opens or item == self._item or _interrupts(line)):
            item = None  # a lazy line of the paragraph above, not an item
        if self._rows and not (column0 and line.startswith("|")):
            self._rows = []  # no longer a plain row: the tail is parsed whole until the next cut
        piece = ""
        next_item = bool(item) and item == self._item
        cuts = self._boundary or fence or next_item
        # A cut needs a block before it (blank lines after a closed fence stay in the tail, before its block).
        if column0 and cuts and not opens:
            piece = self._take(start)
            self._tail_continues = next_item and not self._boundary
        elif self._rows:
            self._rows.append(self._scan)
        elif column0:
            piece = self._follow_table(line)
        if fence:
            self._fence = fence.group(1)
            self._code_at = self._scan if (opens or piece) and column0 else None
        if column0:
            self._item = item
        self._boundary = not line.strip()
        if opens and self._boundary:
            self._block = self._scan
        return piece

    def _follow_table(self, line: str) -> str:
        """If ``line`` is the delimiter row of a table that starts the tail or interrupts its first block,
        the table's rows are followed from now on; returns what came before such an interrupting table, cut
        off (the table ended it), or ""."""
        if self._starts_table(line):
            self._rows = [self._scan]
            return ""
        header = self._table_interrupts(line)
        if header is None:
            return ""
        piece = self._take(header)
        self._rows = [self._scan]
        return piece

    def _table_interrupts(self, line: str) -> int | None:
        """Where the header of a table starts that follows the tail's first block with no blank line before
        it (``line`` is its delimiter row), if markdown-it parses the tail so far with that table on the top
        level; None otherwise. Parsed once per such delimiter row, not per flush."""
        start, header = self._previous
        if start == self._block or not header.startswith("|") or not _DELIMITER.match(line):
            return None
        header_line = self._text.count("\n", self._block, start)
        for token in _checks()[1].parse(self._text[self._block : self._scan]):
            if token.type == "table_open" and token.level == 0 and token.map and token.map[0] == header_line:
                return start
        return None

    def _starts_table(self, line: str) -> bool:
        # ``line`` is a delimiter row under a header that opens the tail (both start with "|", as models write
        # them); markdown-it decides, on these two lines alone, whether they open a table. A header that does
        # not open the tail may be a lazy line of a list item or quote: that tail is parsed whole.
        start, header = self._previous
        if start != self._block or not header.startswith("|") or not _DELIMITER.match(line):
            return False
        tokens = _checks()[0].parse(f"{header}\n{line}\n")
        return bool(tokens) and tokens[0].type == "table_open"


def _item_marker(line: str) -> str | None:
    """The marker of a list item starting ``line`` ("-", "*", "+", "." or ")"), or None."""
    match = _ITEM.match(line)
    if match is None or _BREAK.match(line):
        return None
    return match.group(1) or match.group(2)


def _interrupts(line: str) -> bool:
    """Whether a list item line may interrupt a paragraph: not empty, and if numbered, numbered 1."""
    match = _ITEM.match(line)
    if match is None or not line[match.end() :].strip():
        return False
    return match.group(1) is not None or int(line[: match.start(2)]) == 1


def _join_lists(before: QTextBlock, first: QTextBlock) -> None:
    """Close the gap between the list that ends at ``before`` and the list that starts at ``first``, one
    list split in two pieces (``before`` may sit in a nested list of the previous item).

    They stay two lists to Qt: the second one is numbered on by its own start, and moving its items into
    the first (QTextList.add) would make Qt lay out the whole list again for every piece. The two may be
    in different documents (a list that goes on in the open tail).
    """
    new = first.textList() if first.isValid() else None
    if new is None:
        return
    indent = new.format().indent()
    block = before
    # Back over the previous item's nested lists (only that item: it is one closed piece).
    while block.isValid() and block.textList() is not None and block.textList().format().indent() != indent:
        block = block.previous()
    if not block.isValid() or block.textList() is None:
        return
    for changed, side in ((block, "bottom"), (before, "bottom"), (first, "top")):
        block_format = changed.blockFormat()
        (block_format.setBottomMargin if side == "bottom" else block_format.setTopMargin)(0)
        QTextCursor(changed).setBlockFormat(block_format)
    _number_on(block.textList(), new)


def _number_on(previous: QTextList, new: QTextList) -> None:
    """Number ``new`` on from ``previous``: a whole render counts items up whatever their numbers say
    ("1. a" then "1. b" is 1., 2.), and each piece's own start is the number its first item says."""
    if previous.format().style() in _NUMBERED and new.format().style() in _NUMBERED:
        list_format = new.format()
        list_format.setStart(previous.format().start() + previous.count())
        new.setFormat(list_format)


@cache
def _code_join_format() -> QTextBlockFormat:
    """The format of the zero-height line between two tables of a code block, as Qt's parser makes it."""
    document = QTextDocument()
    table = "<table><tr><td>a</td></tr></table>"
    document.setHtml(f"{table}{_CODE_JOIN}{table}")  # between two tables: kept (alone it is dropped)
    block = document.begin()
    while block.blockFormat().lineHeightType() != QTextBlockFormat.LineHeightTypes.FixedHeight.value:
        block = block.next()
    return block.blockFormat()


def html_document(body: str) -> QTextDocument:
    """Rendered HTML parsed into a document of its own: the costlier half of appending a piece (on the GUI
    thread, as all QTextDocument work)."""
    piece = QTextDocument()
    piece.setHtml(body.strip())
    return piece


class SafeBrowser(QTextBrowser):
    """A read-only rich-text view that never loads a resource and grows to fit its text (no own scrollbar).

    Links: ``http``/``https``/``mailto`` open in the system browser on click; ``desk-copy:N`` emits
    :attr:`copy_requested`; everything else is ignored.
    """

    copy_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QTextBrowser.Shape.NoFrame)
        # Not a Tab stop: it shows no focus, and a long chat would need a stop per piece of text.
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setVerticalScrollBarPolicy(self.verticalScrollBarPolicy().ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(self.horizontalScrollBarPolicy().ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().setDocumentMargin(2)
        # Read-only: no undo steps to record for every appended piece (a long code block's insert cost more).
        self.document().setUndoRedoEnabled(False)
        self.anchorClicked.connect(self._on_anchor)
        # The height follows the laid-out document (after every change of text or width).
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self.opened_links: list[str] = []  # what was handed to the system browser (for the log and tests)
        self.link_opener: Callable[[QUrl], object] = QDesktopServices.openUrl
        self._code_format = QTextCharFormat()

    def loadResource(self, kind: int, name: QUrl | str) -> Any:
        # Refuse every resource: the HTML comes from us, but its URLs come from the model.
        del kind, name
        return None

    def set_markdown_html(self, body: str) -> None:
        self.setHtml(body)

    def start_code(self, background: str) -> None:
        """Show a code block that is still being written, as plain lines added by :meth:`append_code`.

        Its lines are blocks of the document's own flow (not a table cell, as in a rendered block): Qt lays
        out only what was added, where a cell would be laid out whole again on every change.
        """
        self.clear()
        block = QTextBlockFormat()
        block.setBackground(QColor(background))
        block.setNonBreakableLines(False)  # long lines wrap, as in the finished block (pre-wrap)
        block.setLeftMargin(6)
        QTextCursor(self.document()).setBlockFormat(block)
        self._code_format = QTextCharFormat()
        self._code_format.setFontFamilies(list(MONO_FAMILIES))
        self._code_format.setFontFixedPitch(True)

    def append_code(self, text: str) -> None:
        """Add text at the end of the code started by :meth:`start_code` (new lines inherit its look)."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text, self._code_format)

    def set_last_table_widths(self, shares: Sequence[float]) -> None:
        """Give the document's last table the full width, its columns these shares of it (percent): the
        groups of rows of a table still being written are tables of their own, and so they line up."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        table = cursor.currentTable()
        if table is None and cursor.movePosition(QTextCursor.MoveOperation.PreviousBlock):
            table = cursor.currentTable()
        if not isinstance(table, QTextTable) or table.columns() != len(shares):
            return
        percent = QTextLength.Type.PercentageLength
        table_format = table.format()
        table_format.setWidth(QTextLength(percent, 100))
        table_format.setColumnWidthConstraints([QTextLength(percent, share) for share in shares])
        table.setFormat(table_format)

    def continue_list(self, previous: SafeBrowser) -> None:
        """This view starts with the next items of the list ``previous`` ends with (its open tail): no gap
        between them, numbered on (they join that list once they are closed)."""
        _join_lists(previous.document().lastBlock(), self.document().begin())

    def append_markdown_html(self, body: str, *, continues_list: bool = False) -> None:
        """Add a closed piece at the end as its own blocks; only the new blocks are parsed and laid out.

        ``continues_list``: the piece starts with the next items of the list the document ends with
        (:class:`ListItems`); they follow it without a gap, numbered on, as in one rendered list.
        """
        self.append_document(html_document(body), continues_list=continues_list)

    def append_document(
        self, piece: QTextDocument, *, continues_list: bool = False, code_continues: bool = False
    ) -> None:
        """:meth:`append_markdown_html` of a piece already parsed by :func:`html_document` (a streamed reply
        parses a long piece in one event-loop turn and inserts it in the next: two short stalls, not one).

        ``code_continues``: the piece is a part of a code block cut at :data:`CODE_CUT` and more of its
        tables follow: it ends in the zero-height line between two of them (Qt's parser drops an empty
        paragraph at the end of a document: the line gets its format here, and keeps it when the next table
        goes in after it)."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        last = self.document().lastBlock()
        after_join = last.blockFormat() == _code_join_format()  # the last part of a code block went in
        added = -1
        # Inserted HTML merges its first paragraph into the block at the cursor: give it a fresh one, outside
        # any list (after a table this leaves the same blank line a whole render has).
        if not self.document().isEmpty():
            cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
            added = cursor.position()
        cursor.insertFragment(QTextDocumentFragment(piece))
        if added >= 0:
            block = self.document().findBlock(added)
            if block.length() == 1 and block.next().isValid():
                # A piece that starts with a list or table opens its own block: drop the one we made.
                cursor.setPosition(added)
                cursor.deletePreviousChar()
                if after_join:  # Qt merged our block's format into the empty line before it
                    QTextCursor(self.document().findBlock(added - 1)).setBlockFormat(_code_join_format())
            else:
                # The merge kept our empty block's format: give the piece's first block its own (a
                # paragraph's or heading's margins, a quote's indent), as the finished message shows it.
                QTextCursor(block).mergeBlockFormat(piece.begin().blockFormat())
        if continues_list:
            _join_lists(last, last.next())
        if code_continues:
            QTextCursor(self.document().lastBlock()).setBlockFormat(_code_join_format())

    def mark_copied(self, index: int, ms: int) -> bool:
        """Code block ``index``'s "Copy code" says "Copied" for ``ms`` milliseconds; ``False`` if the block
        is not in this view."""
        href = f"{COPY_SCHEME}:{index}"
        if not self._set_link_text(href, COPIED_LABEL):
            return False
        QTimer.singleShot(ms, self, lambda: self._set_link_text(href, COPY_LABEL))
        return True

    def _set_link_text(self, href: str, text: str) -> bool:
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                char_format = fragment.charFormat()
                if char_format.anchorHref() == href:
                    cursor = QTextCursor(self.document())
                    cursor.setPosition(fragment.position())
                    cursor.setPosition(
                        fragment.position() + fragment.length(), QTextCursor.MoveMode.KeepAnchor
                    )
                    cursor.insertText(text, char_format)
                    return True
                it += 1
            block = block.next()
        return False

    def _on_anchor(self, url: QUrl) -> None:
        if url.scheme() == COPY_SCHEME:
            index = url.path()
            if index.isdigit():
                self.copy_requested.emit(int(index))
        elif url.scheme() in ("http", "https", "mailto"):
            self.opened_links.append(url.toString())
            self.link_opener(url)

    def _fit_height(self, _size: object = None) -> None:
        # QTextEdit lays the document out at the viewport's width (no scrollbars here); follow its height.
        height = int(self.document().size().height()) + 2 * self.frameWidth() + 2
        if height != self.height():
            self.setFixedHeight(height)
