"""HTML export: golden file, self-contained, and nothing in a message can run or load anything."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.transfer.html_format import CSP, render_html, safe_link
from engine.transfer.model import ExportedMessage
from tests.engine.golden_files import assert_golden
from tests.engine.transfer_trees import EXPORTED_AT, T0, hostile_conversation, sample_conversation

_URL_ATTRS = {"src", "href", "action", "data", "poster", "srcset", "background", "formaction", "xlink:href"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collector()
    parser.feed(page)
    return parser.tags


def test_sample_matches_golden_file() -> None:
    assert_golden("sample.html", render_html(sample_conversation(), exported_at=EXPORTED_AT))


def test_page_is_self_contained_with_a_strict_policy() -> None:
    page = render_html(sample_conversation(), exported_at=EXPORTED_AT)
    tags = _tags(page)
    csp = [a for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == [{"http-equiv": "Content-Security-Policy", "content": CSP}]
    assert "default-src 'none'" in CSP
    assert "script-src" not in CSP
    names = {t for t, _ in tags}
    assert not names & {"script", "img", "link", "iframe", "object", "embed"}
    assert "@media (prefers-color-scheme: dark)" in page
    # Pygments classes for the Python block, and the reasoning collapsed.
    assert '<span class="nb">print</span>' in page
    assert '<details class="reasoning"><summary>Reasoning</summary>' in page
    assert "vLLM Desk 0.1.0" in page


def test_hostile_message_content_cannot_run_or_load() -> None:
    page = render_html(hostile_conversation("http://127.0.0.1:9"), exported_at=EXPORTED_AT)
    for tag, attrs in _tags(page):
        assert tag not in {"script", "img", "iframe", "svg", "link", "object", "embed", "form", "base"}, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in _URL_ATTRS and value is not None:
                assert value.startswith(("http://", "https://", "mailto:")), (tag, name, value)
    # The remote image became a link, the javascript: and data: links plain text.
    image = '<a href="http://127.0.0.1:9/markdown-image.png" rel="noopener noreferrer nofollow">'
    assert image + "[image: remote]</a>" in page
    assert "[click me](javascript:document.title=" in page
    assert "&lt;script&gt;document.title=&#x27;PWNED-title&#x27;&lt;/script&gt;" in page


def test_safe_link() -> None:
    assert safe_link("https://example.org/x")
    assert safe_link("mailto:a@example.org")
    assert safe_link("HTTP://EXAMPLE.ORG")
    for bad in (
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,x",
        "file:///etc/passwd",
        "x.html",
        "//host/x",
        "vbscript:x",
    ):
        assert not safe_link(bad), bad


def test_all_branches_and_print_variant() -> None:
    page = render_html(sample_conversation(), all_branches=True, exported_at=EXPORTED_AT)
    assert "Branch 2 of 2" in page
    assert "changes the list itself" in page
    printable = render_html(sample_conversation(), for_print=True, exported_at=EXPORTED_AT)
    assert "white-space: pre-wrap" in printable
    assert 'class="nb"' not in printable  # inline colours: Qt has no stylesheet classes for Pygments
    assert "changes the list itself" not in printable


_PIECES = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<a href='javascript:x'>",
        "javascript:alert(1)",
        "JaVaScRiPt:",
        "data:text/html,<script>x</script>",
        "[link](",
        "](",
        "![img](",
        ")",
        "<",
        ">",
        '"',
        "'",
        "`",
        "```html\n",
        "\n```\n",
        "\n",
        " onload=",
        "&#106;avascript:",
        "http://127.0.0.1:9/x.png",
        "<http://127.0.0.1:9/y>",
        "<svg/onload=alert(1)>",
        "<style>@import url(http://x)</style>",
        "\\",
        "%0a",
    ]
)
_HOSTILE_TEXT = st.lists(_PIECES | st.text(max_size=8), max_size=30).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=_HOSTILE_TEXT, reasoning=_HOSTILE_TEXT, title=_HOSTILE_TEXT)
def test_no_generated_text_gets_an_active_element_through(text: str, reasoning: str, title: str) -> None:
    conv = replace(
        sample_conversation(),
        title=title,
        system_prompt=reasoning,
        messages=(ExportedMessage("1", None, "assistant", text, T0, reasoning=reasoning, model=title),),
        shown_leaf="1",
    )
    for page in (render_html(conv, exported_at=EXPORTED_AT), render_html(conv, for_print=True)):
        tags = _tags(page)
        assert [t for t, _ in tags].count("style") == 1  # ours only
        assert [t for t, _ in tags].count("meta") == 5  # charset, CSP, referrer, viewport, generator
        for tag, attrs in tags:
            assert tag not in {"script", "img", "iframe", "svg", "link", "object", "embed", "form", "base"}, (
                tag
            )
            for name, value in attrs.items():
                assert not name.startswith("on"), (tag, name)
                if name in _URL_ATTRS and value is not None:
                    assert safe_link(value), (tag, name, value)
