"""A conversation as one self-contained HTML file: inline styles, highlighted code, nothing runs or loads.

Message text is untrusted model output. It is rendered by markdown-it-py with raw HTML disabled, links are
kept only for http, https and mailto, images become plain links (never loaded), and a
Content-Security-Policy meta tag forbids scripts and every fetch as a second wall. ``for_print`` gives
the variant Qt's PDF writer understands (inline colours, code that wraps).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

from engine.transfer import meta
from engine.transfer.meta import shared_note
from engine.transfer.model import ExportedConversation, ExportedMessage

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"
PRINT_CODE_BACKGROUND = "#f6f8fa"

_PAGE_CSS = """
:root { color-scheme: light dark; --fg: #1d1f23; --bg: #ffffff; --muted: #5f6670; --line: #d9dde3;
  --user: #f1f4f9; --code: #f6f8fa; --accent: #2257a8; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8eb; --bg: #16181c; --muted: #9aa2ad; --line: #33383f;
    --user: #1f242c; --code: #0d1117; --accent: #7fb0ff; }
}
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
  background: var(--bg); max-width: 52rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .4rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; color: var(--muted);
  font-size: .9rem; margin: 0 0 1.5rem; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
article { border-top: 1px solid var(--line); padding: .6rem 0 .4rem; }
article.user { background: var(--user); border-radius: 8px; padding: .6rem 1rem; border-top: none;
  margin: .8rem 0; }
h2.role, h3.role { font-size: .95rem; color: var(--muted); margin: .2rem 0 .4rem; }
h2.branch { font-size: 1.15rem; margin-top: 2rem; }
a { color: var(--accent); }
pre { overflow-x: auto; padding: .7rem .9rem; border-radius: 6px; background: var(--code);
  white-space: pre-wrap; word-wrap: break-word; }
code { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: .9em; }
details.reasoning { color: var(--muted); border-left: 3px solid var(--line); padding-left: .8rem;
  margin: .3rem 0 .6rem; }
details.reasoning summary { cursor: pointer; font-size: .9rem; }
p.numbers { color: var(--muted); font-size: .8rem; margin: .2rem 0; }
.lang { display: block; font-size: .75rem; color: var(--muted); margin-bottom: -.3rem; }
footer { color: var(--muted); font-size: .8rem; border-top: 1px solid var(--line); margin-top: 2rem;
  padding-top: .5rem; }
table { border-collapse: collapse; } th, td { border: 1px solid var(--line); padding: .2rem .5rem; }
"""

# Qt's rich text engine understands a small CSS subset: plain colours, margins, pre-wrap.
_PRINT_CSS = """
body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; color: #1d1f23; }
h1 { font-size: 16pt; } h2, h3 { font-size: 11pt; color: #5f6670; }
pre { white-space: pre-wrap; font-family: "DejaVu Sans Mono", monospace; font-size: 8.5pt; }
code { font-family: "DejaVu Sans Mono", monospace; }
.numbers, .meta, footer { color: #5f6670; font-size: 8pt; }
.reasoning { color: #5f6670; }
table { border-collapse: collapse; } th, td { border: 1px solid #d9dde3; padding: 2px 6px; }
table.meta td { border: none; }
"""


def render_html(
    conv: ExportedConversation,
    *,
    all_branches: bool = False,
    exported_at: datetime | None = None,
    for_print: bool = False,
) -> str:
    """The whole page as a string (UTF-8 when written)."""
    md = _markdown(for_print)
    title = " ".join(conv.title.split()) or "Untitled conversation"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="{_e(meta.exported_by())}">',
        f"<title>{_e(title)}</title>",
        f"<style>{_PRINT_CSS if for_print else _page_css()}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_e(title)}</h1>",
        _header(conv, for_print),
        "</header>",
    ]
    system = meta.system_prompt(conv)
    if system:
        parts += [
            '<section class="system">',
            "<h2>System prompt</h2>",
            md.render(system),
            "</section>",
        ]
    parts.append("<main>")
    if all_branches:
        forks = conv.forks()
        for number, (branch, shared, with_branch) in enumerate(forks, 1):
            shown = " (shown)" if number == 1 else ""
            parts.append(f'<h2 class="branch">Branch {number} of {len(forks)}{shown}</h2>')
            if shared:
                parts.append(f'<p class="numbers">{_e(shared_note(shared, with_branch))}</p>')
            parts += [_message(md, m, "h3") for m in branch[shared:]]
    else:
        parts += [_message(md, m, "h2") for m in conv.shown_branch()]
    stamp = meta.when(exported_at or datetime.now(UTC))
    parts += [
        "</main>",
        f"<footer>Exported {_e(stamp)} by {_e(meta.exported_by())}</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def _header(conv: ExportedConversation, for_print: bool = False) -> str:
    rows = meta.header_rows(conv)
    if for_print:
        # Qt's rich text has no grid layout for <dl>; a table keeps label and value on one line.
        cells = "".join(f"<tr><td><b>{_e(label)}</b></td><td>{_e(value)}</td></tr>" for label, value in rows)
        return f'<table class="meta" cellpadding="2">{cells}</table>'
    body = "".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in rows)
    return f'<dl class="meta">{body}</dl>'


def _message(md: MarkdownIt, message: ExportedMessage, tag: str) -> str:
    out = [
        f'<article class="msg {_e(message.role)}">',
        f'<{tag} class="role">{_e(meta.message_heading(message))}</{tag}>',
    ]
    if message.reasoning:
        out += [
            '<details class="reasoning"><summary>Reasoning</summary>',
            md.render(message.reasoning),
            "</details>",
        ]
    out.append(md.render(meta.body_markdown(message)))
    numbers = meta.numbers_line(message)
    if numbers:
        out.append(f'<p class="numbers">{_e(numbers)}</p>')
    out.append("</article>")
    return "\n".join(out)


def safe_link(url: str) -> bool:
    """Only web and mail links survive; ``javascript:``, ``data:``, ``file:`` and relative links do not."""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return False
    return scheme in SAFE_SCHEMES


@cache
def _markdown(for_print: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable(["table", "strikethrough"])
    md.validateLink = safe_link  # type: ignore[method-assign]
    formatter = _formatter(for_print)

    def fence(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        token = tokens[idx]
        language = token.info.strip().split(" ")[0] if token.info else ""
        try:
            lexer = get_lexer_by_name(language) if language else TextLexer()
        except ClassNotFound:
            lexer = TextLexer()
        if for_print:
            # One shaded cell around the block: Qt shades a <pre>'s background line by line, in stripes.
            return (
                f'<table class="code" width="100%" cellspacing="0" cellpadding="6">'
                f'<tr><td bgcolor="{PRINT_CODE_BACKGROUND}">{highlight(token.content, lexer, formatter)}'
                "</td></tr></table>"
            )
        label = f'<span class="lang">{_e(language)}</span>' if language else ""
        return label + highlight(token.content, lexer, formatter)

    def image(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        # Never load an image: show it as a link the reader may choose to follow.
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children or [], options, env) or "image"
        src = str(token.attrGet("src") or "")
        if safe_link(src):
            return f'<a href="{_e(src)}" rel="noopener noreferrer nofollow">[image: {_e(alt)}]</a>'
        return f"[image: {_e(alt)}]"

    def link_open(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("fence", fence)
    md.add_render_rule("code_block", fence)
    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return md


def _formatter(for_print: bool) -> HtmlFormatter[str]:
    if for_print:
        return HtmlFormatter(
            style=LIGHT_STYLE, noclasses=True, nobackground=True, prestyles="white-space: pre-wrap"
        )
    return HtmlFormatter(style=LIGHT_STYLE, cssclass="hl", wrapcode=True)


@cache
def _page_css() -> str:
    light = HtmlFormatter(style=LIGHT_STYLE, cssclass="hl").get_style_defs(".hl")  # type: ignore[no-untyped-call]
    dark = HtmlFormatter(style=DARK_STYLE, cssclass="hl").get_style_defs(".hl")  # type: ignore[no-untyped-call]
    return f"{_PAGE_CSS}\n{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
