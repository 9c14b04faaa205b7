"""Model output as safe rich text: Markdown (markdown-it-py) to Qt rich text, code highlighted by Pygments.

Model output is untrusted. Raw HTML in it is escaped (``html: False``), images become plain links (nothing
is ever fetched), and :class:`SafeBrowser` refuses every resource load and opens links only when clicked.

Streaming: :class:`StreamSplitter` finds where the text can be cut into blocks that are already closed, so a
long reply is parsed piece by piece (each closed piece once) and only the open tail is parsed again.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import OptionsDict
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QSizePolicy, QTextBrowser, QWidget

COPY_SCHEME = "desk-copy"  # href of a code block's copy link: desk-copy:<index>
MONO = "'DejaVu Sans Mono', 'Noto Sans Mono', monospace"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass
class Rendered:
    """HTML for Qt's rich text plus the raw text of each code block (for its copy link)."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


class MarkdownRenderer:
    """Markdown to Qt rich-text HTML. ``dark`` picks the code colour scheme to match the palette."""

    def __init__(self, *, dark: bool = False) -> None:
        self.dark = dark
        self._formatter = HtmlFormatter(nowrap=True, noclasses=True, style="monokai" if dark else "friendly")
        self._code_bg = "#272822" if dark else "#f3f3f3"
        self._md = (
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
            self._md.add_render_rule(name, _unbound(rule))

    def render(self, text: str, *, first_code_index: int = 0, highlight_code: bool = True) -> Rendered:
        """Render ``text``; code blocks are numbered from ``first_code_index`` (a message's pieces share one
        numbering). ``highlight_code=False`` skips Pygments for a block that is still being written."""
        env: dict[str, Any] = {"code": [], "first": first_code_index, "highlight": highlight_code}
        body = self._md.render(text, env)
        return Rendered(body, env["code"])

    # Render rules are bound methods: markdown-it-py calls them as (tokens, idx, options, env).
    def _render_fence(self, tokens: Sequence[Token], idx: int, _o: OptionsDict, env: dict[str, Any]) -> str:
        token = tokens[idx]
        code = token.content
        lang = token.info.strip().split(" ")[0] if token.info else ""
        index = env["first"] + len(env["code"])
        env["code"].append(code)
        body = self._highlight(code, lang) if env["highlight"] else html.escape(code)
        label = html.escape(lang) + " · " if lang else ""
        return (
            f'<table width="100%" cellspacing="0" cellpadding="6" style="background-color:{self._code_bg};">'
            f'<tr><td><pre style="font-family:{MONO};">{body}</pre></td></tr></table>'
            f'<p style="margin-top:2px;"><small>{label}<a href="{COPY_SCHEME}:{index}">Copy code</a>'
            "</small></p>\n"
        )

    def _render_table_open(self, *_args: object) -> str:
        return '<table border="1" cellspacing="0" cellpadding="4" style="border-collapse:collapse;">'

    def _highlight(self, code: str, lang: str) -> str:
        try:
            lexer = get_lexer_by_name(lang) if lang else None
        except ClassNotFound:
            lexer = None
        if lexer is None:
            return html.escape(code)
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


def _unbound(rule: Callable[..., str]) -> Callable[..., str]:
    # markdown-it-py binds a rule to its renderer (first argument); ours are methods of this class instead.
    def call(_renderer: object, *args: Any) -> str:
        return rule(*args)

    return call


class StreamSplitter:
    """Cuts growing Markdown into closed pieces and an open tail.

    A cut is made before a line that starts at column 0 and follows a blank line or a closed code fence (or
    opens a fence), outside any fence: what lies before such a line cannot change meaning when more text
    arrives. Each character is scanned once, so the total cost is linear in the length of the reply.
    """

    def __init__(self) -> None:
        self._text = ""
        self._scan = 0  # start of the first line not yet scanned
        self._cut = 0  # end of the text already handed out as closed pieces
        self._fence: str | None = None  # the opening fence marker while inside a fence
        self._boundary = False  # the previous line ended a block

    @property
    def text(self) -> str:
        return self._text

    @property
    def tail(self) -> str:
        return self._text[self._cut :]

    @property
    def in_fence(self) -> bool:
        return self._fence is not None

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

    def _scan_line(self, start: int, line: str) -> str:
        piece = ""
        fence = _FENCE.match(line)
        if self._fence is not None:
            closes = fence and fence.group(1)[0] == self._fence[0] and len(fence.group(1)) >= len(self._fence)
            if closes and not line.strip().strip(self._fence[0]):
                self._fence = None
                self._boundary = True
            return piece
        starts_block = bool(line) and not line[0].isspace()
        if starts_block and start > self._cut and (self._boundary or fence):
            piece = self._text[self._cut : start]
            self._cut = start
        if fence:
            self._fence = fence.group(1)
            self._boundary = False
        else:
            self._boundary = not line.strip()
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
        self.setVerticalScrollBarPolicy(self.verticalScrollBarPolicy().ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(self.horizontalScrollBarPolicy().ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().setDocumentMargin(2)
        self.anchorClicked.connect(self._on_anchor)
        # The height follows the laid-out document (after every change of text or width).
        self.document().documentLayout().documentSizeChanged.connect(self._fit_height)
        self.opened_links: list[str] = []  # what was handed to the system browser (for the log and tests)
        self.link_opener: Callable[[QUrl], object] = QDesktopServices.openUrl

    def loadResource(self, kind: int, name: QUrl | str) -> Any:
        # Refuse every resource: the HTML comes from us, but its URLs come from the model.
        del kind, name
        return None

    def set_markdown_html(self, body: str) -> None:
        self.setHtml(body)

    def append_markdown_html(self, body: str) -> None:
        """Add a closed piece at the end as its own blocks; only the new blocks are parsed and laid out."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        added = -1
        # insertHtml merges its first paragraph into the block at the cursor: give it a fresh one, outside
        # any list (after a table this leaves the same blank line a whole render has).
        if not self.document().isEmpty():
            cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
            added = cursor.position()
        cursor.insertHtml(body.strip())
        if added >= 0:
            block = self.document().findBlock(added)
            # A piece that starts with a list or table opens its own block: drop the one we made.
            if block.length() == 1 and block.next().isValid():
                cursor.setPosition(added)
                cursor.deletePreviousChar()

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
