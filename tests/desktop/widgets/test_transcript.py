"""The transcript: safe Markdown, highlighted code with copy links, calm linear streaming, follow-the-end."""

from __future__ import annotations

import re
import threading

import pytest
from PySide6.QtCore import QPoint, QUrl
from PySide6.QtGui import QGuiApplication, QImage, QTextDocument, QTextTable
from PySide6.QtWidgets import QApplication

from desktop.widgets import transcript
from desktop.widgets.markdown_view import (
    CODE_LINES_PER_TABLE,
    ListItems,
    MarkdownRenderer,
    SafeBrowser,
    StreamSplitter,
)
from desktop.widgets.render_worker import THREAD_NAME
from desktop.widgets.transcript import (
    PIECES_PER_VIEW,
    TABLE_ROWS_PER_PIECE,
    MessageData,
    MessageWidget,
    RenderCache,
    TranscriptView,
    format_stats,
)

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]


def _flush(widget: MessageWidget | None) -> None:
    """What the transcript's timer does, once the render thread has rendered what closed so far: every
    closed piece is shown, then the open tail."""
    assert widget is not None
    widget.wait_rendered()
    while widget.flush():
        widget.wait_rendered()


SAMPLE = """# Title

Some **bold** text and <script>alert('x')</script> and <b>raw</b>.

```python
def add(a, b):
    return a + b
```

| a | b |
|---|---|
| 1 | 2 |

- one
- two

Inline math $E = mc^2$ and a ![cat](http://example.invalid/cat.png) picture, [docs](https://example.org).
"""


def test_markdown_is_rendered_and_model_html_is_not_executed() -> None:
    rendered = MarkdownRenderer().render(SAMPLE)
    assert "<h1>Title</h1>" in rendered.html
    assert "<strong>bold</strong>" in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "<script>" not in rendered.html
    assert "&lt;b&gt;raw&lt;/b&gt;" in rendered.html
    assert "<th>a</th>" in rendered.html
    assert "<li>one</li>" in rendered.html
    # No image element at all: the picture becomes a link that is only followed on click.
    assert "<img" not in rendered.html
    assert '[image: <a href="http://example.invalid/cat.png">cat</a>]' in rendered.html
    assert "E = mc^2" in rendered.html
    assert rendered.code_blocks == ["def add(a, b):\n    return a + b\n"]
    # Pygments coloured the keyword.
    assert 'font-weight: bold">def</span>' in rendered.html
    assert 'href="desk-copy:0"' in rendered.html


def test_unclosed_code_is_not_highlighted_until_it_closes() -> None:
    renderer = MarkdownRenderer()
    plain = renderer.render("```python\ndef f():\n", highlight_code=False)
    assert "<span" not in plain.html
    assert "def f():" in plain.html
    assert "<span" in renderer.render("```python\ndef f():\n```\n").html


def test_browser_never_loads_resources_and_opens_links_only_on_click(qtbot) -> None:  # type: ignore[no-untyped-def]
    browser = SafeBrowser()
    qtbot.addWidget(browser)
    opened: list[str] = []
    browser.link_opener = lambda url: opened.append(url.toString())
    browser.set_markdown_html(MarkdownRenderer().render(SAMPLE).html)
    assert browser.loadResource(int(QTextDocument.ResourceType.ImageResource), QUrl("http://x/y.png")) is None
    assert opened == []
    browser.anchorClicked.emit(QUrl("https://example.org"))
    browser.anchorClicked.emit(QUrl("file:///etc/passwd"))
    assert opened == ["https://example.org"]


def test_copy_link_of_a_code_block_copies_its_code(qtbot) -> None:  # type: ignore[no-untyped-def]
    widget = MessageWidget(MessageData(id=1, role="assistant", text=SAMPLE), RenderCache(MarkdownRenderer()))
    qtbot.addWidget(widget)
    widget._pieces[0].anchorClicked.emit(QUrl("desk-copy:0"))
    assert QGuiApplication.clipboard().text() == "def add(a, b):\n    return a + b\n"
    widget.copy_button.click()
    assert QGuiApplication.clipboard().text() == SAMPLE


def test_splitter_cuts_only_between_closed_blocks() -> None:
    text = "para one\nstill one\n\npara two\n\n```py\nx = 1\n\ny = 2\n```\nafter\n\n    indented\n\ntail"
    splitter = StreamSplitter()
    pieces: list[str] = []
    for ch in text:  # one character at a time, the worst case
        pieces += splitter.feed(ch)
    assert "".join(pieces) + splitter.tail == text
    assert pieces[:3] == ["para one\nstill one\n\n", "para two\n\n", "```py\nx = 1\n\ny = 2\n```\n"]
    # The blank line inside the fence did not cut it; the indented line stayed with its paragraph.
    assert all(p.count("```") in (0, 2) for p in pieces)
    # "tail" has no newline yet: its line is not judged, so all after the fence is still open.
    assert splitter.tail == "after\n\n    indented\n\ntail"
    assert splitter.feed("\n") == ["after\n\n    indented\n\n"]
    assert splitter.tail == "tail\n"


def test_streaming_cost_grows_linearly_with_the_reply(qtbot) -> None:  # type: ignore[no-untyped-def]
    widget = MessageWidget(
        MessageData(id=7, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    paragraph = "A sentence with some words that goes on for a while. " * 3 + "\n\n"
    text = ""
    for i in range(400):
        chunk = paragraph if i % 10 else "```python\nprint('block')\n```\n\n"
        for token in re.findall(r"\s*\S+|\s+$", chunk):  # tokens carry their leading space, like a model's
            widget.append(token)
            text += token
        _flush(widget)  # as if the 50 ms timer fired after every paragraph
    assert widget.renders >= 300
    # Every character is parsed about once as a closed piece plus a bounded tail: linear, not quadratic.
    assert widget.rendered_chars < 3 * len(text)
    assert len(widget.code_blocks) == 40
    widget.finish(MessageData(id=7, role="assistant", text=widget.data.text, completion_tokens=10))
    _flush(widget)  # the end is shown a slice per tick, as the transcript's timer does
    assert not widget.streaming
    # No view per block: closed pieces share a few documents (32 each), the last one took the tail.
    assert 1 < len(widget._pieces) <= 400 // PIECES_PER_VIEW + 1
    assert "".join(p.toPlainText() for p in widget._pieces).count("print('block')") == 40


def test_transcript_renders_tail_on_a_timer_and_follows_the_end(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = TranscriptView(MarkdownRenderer())
    qtbot.addWidget(view)
    view.resize(500, 300)
    view.show()
    view.show_messages([MessageData(id=1, role="user", text="hello")])
    widget = view.add_message(MessageData(id=2, role="assistant", state="streaming"))
    for i in range(200):
        view.append_token(2, f"line {i} of a long answer\n\n")
    assert widget.renders == 0  # nothing rendered synchronously per token: the timer batches them
    qtbot.waitUntil(lambda: widget.renders >= 1, timeout=2000)
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=2000)
    # The user scrolls up: new text no longer pulls the view down.
    bar.setValue(0)
    assert not view.following
    for i in range(50):
        view.append_token(2, f"more {i}\n\n")
    qtbot.waitUntil(lambda: "more 49" in widget.data.text, timeout=2000)
    qtbot.wait(120)
    assert bar.value() == 0


def test_stats_and_branch_switcher(qtbot) -> None:  # type: ignore[no-untyped-def]
    assert format_stats(120, 39.46, 0.081) == "120 tokens · 39.5 tok/s · first token 0.08 s"
    data = MessageData(id=3, role="assistant", text="hi", branch_index=1, branch_count=3, completion_tokens=5)
    widget = MessageWidget(data, RenderCache(MarkdownRenderer()))
    qtbot.addWidget(widget)
    assert widget.branch_label.text() == "2/3"
    assert widget.prev_button.isEnabled()
    assert widget.next_button.isEnabled()
    seen: list[tuple[str, object]] = []
    widget.action.connect(lambda name, mid: seen.append((name, mid)))
    widget.next_button.click()
    widget.regenerate_button.click()
    assert seen == [("next", 3), ("regenerate", 3)]
    assert widget.edit_button.isHidden()


@pytest.mark.parametrize(
    ("state", "label"), [("complete", "Regenerate"), ("stopped", "Regenerate"), ("error", "Retry")]
)
def test_every_finished_reply_can_be_answered_again_or_deleted(qtbot, state: str, label: str) -> None:  # type: ignore[no-untyped-def]
    # "stopped" is also how interrupted replies (the app quit mid-reply) are shown.
    error = "boom" if state == "error" else ""
    data = MessageData(id=7, role="assistant", text="partial", state=state, error=error)
    widget = MessageWidget(data, RenderCache(MarkdownRenderer()))
    qtbot.addWidget(widget)
    assert not widget.regenerate_button.isHidden()
    assert widget.regenerate_button.isEnabled()
    assert widget.regenerate_button.text() == label
    menu = widget.context_menu()
    assert [a.text() for a in menu.actions()] == ["Copy", label, "Delete"]
    seen: list[tuple[str, object]] = []
    widget.action.connect(lambda name, mid: seen.append((name, mid)))
    menu.actions()[2].trigger()
    assert seen == [("delete", 7)]
    writing = MessageData(id=8, role="assistant", state="streaming")
    streaming = MessageWidget(writing, RenderCache(MarkdownRenderer()))
    qtbot.addWidget(streaming)
    assert streaming.context_menu().actions() == []  # nothing to redo or delete while it is written


def test_a_dark_palette_re_renders_code_in_dark_colours(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = TranscriptView(MarkdownRenderer(dark=False))
    qtbot.addWidget(view)
    view.show_messages([MessageData(id=1, role="assistant", text="```python\nx = 1\n```\n")])
    light = view.message(1)._pieces[0].toHtml()  # type: ignore[union-attr]
    view.set_renderer(MarkdownRenderer(dark=True))
    dark = view.message(1)._pieces[0].toHtml()  # type: ignore[union-attr]
    assert "#f3f3f3" in light
    assert "#272822" in dark
    assert "#272822" not in light


def test_a_streamed_reply_fills_a_few_documents_and_is_not_rendered_again_at_the_end(qtbot) -> None:  # type: ignore[no-untyped-def]
    cache = RenderCache(MarkdownRenderer())
    widget = MessageWidget(MessageData(id=9, role="assistant", state="streaming"), cache)
    qtbot.addWidget(widget)
    text = "".join(f"Para {i} text.\n\n- item {i}\n- more\n\n```python\nx = {i}\n```\n\n" for i in range(30))
    text += "last open line"
    for token in re.findall(r"\s*\S+|\s+$", text):
        widget.append(token)
        _flush(widget)
    # 120 closed pieces (paragraph, two list items, code block each) in documents of 32 (no widget per
    # block), and one more view for the open tail.
    assert PIECES_PER_VIEW == 32
    assert len(widget._pieces) == 5
    closed = "".join(p.toPlainText() for p in widget._pieces[:-1])
    # A code block is closed as soon as its fence closes: nothing after it can change it.
    assert closed.count("x = ") == 30
    assert "last open" in widget._pieces[-1].toPlainText()
    open_tail = widget._splitter.tail  # type: ignore[union-attr]
    assert open_tail == "\nlast open line"
    chars_before = widget.rendered_chars
    widget.finish(MessageData(id=9, role="assistant", text=text, completion_tokens=99))
    _flush(widget)  # the end is shown a slice per tick, as the transcript's timer does
    # Only the open tail was parsed at the end, not the whole reply.
    assert widget.rendered_chars - chars_before == len(open_tail)
    assert len(widget._pieces) == 4  # the tail joined the last document
    shown = "\n".join(p.toPlainText() for p in widget._pieces)
    assert shown.count("x = ") == 30
    assert shown.rstrip().endswith("last open line")
    assert "Para 0 text." in shown.splitlines()  # paragraphs stay their own lines, not merged
    assert widget.code_blocks[29] == "x = 29\n"
    widget._pieces[3].anchorClicked.emit(QUrl("desk-copy:29"))
    assert QGuiApplication.clipboard().text() == "x = 29\n"
    # The assembled reply is cached: opening the conversation again parses nothing.
    assert cache.get(text).code_blocks == widget.code_blocks


def test_a_burst_of_closed_pieces_is_shown_a_slice_per_tick_in_order(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    widget = MessageWidget(
        MessageData(id=4, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    widget.append("".join(f"paragraph {i}\n\n" for i in range(20)) + "tail")
    widget.wait_rendered()
    # No time left in a tick: one step per tick (parse a piece's HTML, or insert it), never none, so a
    # burst cannot stall a frame.
    monkeypatch.setattr(transcript, "APPEND_BUDGET_S", 0.0)
    assert widget.flush() is True  # parsed the first of 19 closed pieces: more to do
    assert widget._pieces[0].toPlainText() == ""
    assert widget.flush() is True
    assert widget._pieces[0].toPlainText().split() == ["paragraph", "0"]
    ticks = 3  # the two above, and the one that shows the last piece and the tail
    while widget.flush():
        ticks += 1
    assert ticks == 2 * 19
    # Paragraph 19 is closed only once the line after it is complete: it is still in the tail.
    shown = widget._pieces[0].toPlainText().split()
    assert shown == [word for i in range(19) for word in ("paragraph", str(i))]  # every piece, in order
    assert widget._pieces[1].toPlainText().split() == ["paragraph", "19", "tail"]


def _steps_per_flush(widget: MessageWidget, monkeypatch) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Flush until nothing is left (as the transcript's timer does), noting the Qt steps of each flush: a
    piece's HTML parsed ("parse N": its HTML's length), a parsed piece inserted ("insert"), the tail shown."""
    ticks: list[list[str]] = []
    parse, insert = transcript.html_document, SafeBrowser.append_document

    def parsed(body: str) -> QTextDocument:
        ticks[-1].append(f"parse {len(body)}")
        return parse(body)

    def inserted(view: SafeBrowser, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        ticks[-1].append("insert")
        insert(view, *args, **kwargs)

    def tail(self: MessageWidget, *args) -> None:  # type: ignore[no-untyped-def]
        ticks[-1].append("tail")

    monkeypatch.setattr(transcript, "html_document", parsed)
    monkeypatch.setattr(SafeBrowser, "append_document", inserted)
    render_tail = MessageWidget._render_tail
    monkeypatch.setattr(MessageWidget, "_render_tail", lambda self, *a: (tail(self), render_tail(self, *a)))
    more = True
    while more:
        ticks.append([])
        more = widget.flush()
        widget.wait_rendered()
    return ticks


def test_a_long_table_gets_a_tick_for_its_parse_and_one_for_its_insert(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Qt lays a table cell out whole: a long closed piece's parse and its insert are the longest steps of a
    # stream, and with anything else in the same tick they added up to one long stall.
    rows = "".join(f"| row {i} | {i * 37} | **ok** |\n" for i in range(150))
    text = (
        "One.\n\nTwo.\n\n| name | value | state |\n|---|---|---|\n" + rows + "\nThree.\n\nFour.\n\nopen tail"
    )
    widget = MessageWidget(
        MessageData(id=17, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    widget.append(text)
    widget.wait_rendered()
    monkeypatch.setattr(transcript, "APPEND_BUDGET_S", 60.0)  # time is no limit here: only the rule is
    ticks = _steps_per_flush(widget, monkeypatch)
    heavy = [
        i
        for i, tick in enumerate(ticks)
        for step in tick
        if step.startswith("parse") and int(step.split()[1]) >= transcript.HEAVY_PIECE_HTML_CHARS
    ]
    assert len(heavy) == 1
    at = heavy[0]
    # The pieces before it in one tick; its parse alone; its insert alone (the tail waits); then the rest.
    kinds = [[step.split()[0] for step in tick] for tick in ticks]
    assert kinds[at - 1] == ["parse", "insert", "parse", "insert"]  # One. Two.
    assert len(ticks[at]) == 1
    assert ticks[at + 1] == ["insert"]
    assert kinds[at + 2 :] == [["parse", "insert", "tail"]]  # Three. (Four. is still open, in the tail)
    shown = "\n".join(p.toPlainText() for p in widget._pieces)
    assert shown.split() == _plain_words(text, qtbot)  # the same text as the whole reply rendered at once


def _long_code(lines: int) -> str:
    return "".join(f"    value_{i} = compute({i}, {i + 1})  # step {i}\n" for i in range(lines))


def _whole_and_streamed(qtbot, text: str, streamed: MessageWidget) -> tuple[QImage, QImage]:  # type: ignore[no-untyped-def]
    """The finished streamed reply and the same reply shown whole, as the user sees them (same width)."""
    whole = MessageWidget(MessageData(id=19, role="assistant", text=text), RenderCache(MarkdownRenderer()))
    qtbot.addWidget(whole)
    images = []
    for widget in (whole, streamed):
        widget.resize(520, 400)
        widget.show()
        widget.adjustSize()
        QApplication.processEvents()
        images.append(widget._pieces[0].grab().toImage())
    return images[0], images[1]


@pytest.mark.parametrize("lines", [75, 150])
def test_a_long_code_block_goes_in_a_table_at_a_time_and_looks_as_a_whole_render(
    qtbot, monkeypatch, lines: int
) -> None:  # type: ignore[no-untyped-def]
    code = _long_code(lines)
    text = "Intro.\n\n```python\n" + code + "```\n\nAfter it.\n"
    widget = MessageWidget(
        MessageData(id=17, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    widget.append(text)
    widget.wait_rendered()
    monkeypatch.setattr(transcript, "APPEND_BUDGET_S", 0.0)  # one step per tick
    ticks = _steps_per_flush(widget, monkeypatch)
    parses = [int(step.split()[1]) for tick in ticks for step in tick if step.startswith("parse")]
    # Intro., then the block a table of CODE_LINES_PER_TABLE lines at a time: work per step bounded by the
    # table, not the block (twice the lines, twice the steps), each parsed in a tick and inserted in the next.
    tables = -(-lines // CODE_LINES_PER_TABLE)
    assert len(parses) == 1 + tables
    assert all(len([step for step in tick if step != "tail"]) <= 1 for tick in ticks)
    assert max(parses) < 1.1 * min(parses[1:-1] or parses[1:])
    assert max(parses) < transcript.HEAVY_PIECE_HTML_CHARS
    widget.finish(MessageData(id=17, role="assistant", text=text, completion_tokens=lines))
    while widget.flush():
        widget.wait_rendered()
    assert len(widget._pieces) == 1
    assert widget.code_blocks == [code]
    # The same document as the whole reply rendered at once, and the same pixels on screen.
    reference = SafeBrowser()
    qtbot.addWidget(reference)
    reference.set_markdown_html(MarkdownRenderer().render(text).html)
    # (A whole render keeps a paragraph's closing newline as a space at its end, a streamed tail does not.)
    assert widget._pieces[0].toHtml() == reference.toHtml().replace(" </p>", "</p>")
    whole, streamed = _whole_and_streamed(qtbot, text, widget)
    assert whole == streamed


def test_a_reply_that_stops_inside_a_long_code_block_shows_it_a_table_at_a_time(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code = _long_code(150)
    text = "Intro.\n\n```python\n" + code  # stopped before its fence closed
    widget = MessageWidget(
        MessageData(id=18, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    widget.append(text)
    _flush(widget)
    monkeypatch.setattr(transcript, "APPEND_BUDGET_S", 0.0)
    widget.finish(MessageData(id=18, role="assistant", text=text, state="stopped", completion_tokens=600))
    widget.wait_rendered()
    ticks = _steps_per_flush(widget, monkeypatch)
    kinds = [step.split()[0] for tick in ticks for step in tick]
    assert kinds == ["parse", "insert"] * 5  # 150 lines: five tables, a step per tick
    assert not widget.finishing
    assert len(widget._pieces) == 1  # the tail view is gone: one document, as a whole render
    assert widget.code_blocks == [code]
    whole, streamed = _whole_and_streamed(qtbot, text, widget)
    assert whole == streamed


def test_closed_pieces_are_rendered_off_the_gui_thread_and_shown_as_a_whole_render(qtbot) -> None:  # type: ignore[no-untyped-def]
    threads: list[str] = []

    class Recording(MarkdownRenderer):
        def _highlight(self, code: str, lang: str) -> str:
            threads.append(threading.current_thread().name)
            return super()._highlight(code, lang)

    renderer = Recording()
    widget = MessageWidget(MessageData(id=5, role="assistant", state="streaming"), RenderCache(renderer))
    qtbot.addWidget(widget)
    text = SAMPLE + "".join(f"\n\n```python\nx = {i}\n```\n\nStep {i}." for i in range(12))
    tokens = re.findall(r"\s*\S+|\s+$", text)
    for i, token in enumerate(tokens):
        widget.append(token)
        if i % 5 == 0:
            widget.flush()  # the timer, whether the render thread is done or not
    # Stopped here: what was still open or not yet rendered is shown too, nothing lost.
    widget.finish(MessageData(id=5, role="assistant", text=text, state="stopped"))
    _flush(widget)  # the end is shown a slice per tick, as the transcript's timer does
    # Every closed code block was highlighted on the render thread (the open tail is shown plain).
    assert threads == [THREAD_NAME] * 13
    whole = SafeBrowser()
    qtbot.addWidget(whole)
    whole.set_markdown_html(MarkdownRenderer().render(text).html)
    shown = "\n".join(p.toPlainText() for p in widget._pieces)
    assert shown.split() == whole.toPlainText().split()
    assert widget.code_blocks == MarkdownRenderer().render(text).code_blocks  # numbered in order


def _on_screen(view: TranscriptView, message_id: int) -> bool:
    """Whether the message's top is inside the visible part of the transcript, right now."""
    widget = view.message(message_id)
    assert widget is not None
    top = widget.mapTo(view.viewport(), QPoint(0, 0)).y()
    return 0 <= top < view.viewport().height()


def _long_conversation(qtbot, count: int) -> TranscriptView:  # type: ignore[no-untyped-def]
    """A shown transcript of ``count`` messages (ids 0 .. count-1), three short paragraphs each."""
    view = TranscriptView(MarkdownRenderer())
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    view.show_messages(
        [
            MessageData(id=i, role="user" if i % 2 else "assistant", text=f"message {i}\n\n" * 3)
            for i in range(count)
        ]
    )
    qtbot.waitUntil(lambda: not view.building, timeout=5000)  # its newest page is built a slice per tick
    return view


def test_a_long_conversation_gets_widgets_only_for_its_newest_page(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = _long_conversation(qtbot, 300)
    assert [w.data.id for w in view.messages()] == list(range(260, 300))
    assert view.older_count == 260
    assert view.message(5) is None
    assert view.older_button.isVisible()
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=3000)
    # Scrolling to the top brings the previous page, and what was on screen stays where it was.
    bar.setValue(0)
    qtbot.waitUntil(lambda: view.older_count == 220, timeout=3000)
    qtbot.waitUntil(lambda: bar.value() > 0, timeout=3000)
    assert [w.data.id for w in view.messages()][:2] == [220, 221]
    # An old message is edited or removed while it has no widget: nothing is lost or resurrected.
    view.update_message(MessageData(id=10, role="assistant", text="changed"))
    view.remove_message(11)
    assert view.older_count == 219
    assert view.message(10) is None
    # A search hit within a page of the shown ones materialises the messages down to it and selects the word.
    assert view.scroll_to(190, "message")
    assert _on_screen(view, 190)
    assert view.older_count == 189  # 0..189 less the removed 11
    assert view.newer_count == 0
    assert view.message(190)._pieces[0].textCursor().selectedText() == "message"  # type: ignore[union-attr]
    # One far up gets a page around it (see below); the edited text is what is shown.
    assert view.scroll_to(10, "changed")
    assert _on_screen(view, 10)
    assert view.message(10).data.text == "changed"  # type: ignore[union-attr]
    assert view.message(11) is None
    assert view.older_count == 0
    assert view.message(10)._pieces[0].textCursor().selectedText() == "changed"  # type: ignore[union-attr]
    view.newer_button.click()
    assert not view.older_button.isVisible()
    assert len(view.messages()) == 80


def test_pieces_appended_one_by_one_read_like_the_whole_reply_rendered_at_once(qtbot) -> None:  # type: ignore[no-untyped-def]
    renderer = MarkdownRenderer()
    text = SAMPLE + "\n1. first\n2. second\n\n> a quote\n\n| x |\n|---|\n| 9 |\n\n## After the table\n\nend\n"
    # Tight lists are cut between their items; a long code block right after its closing fence.
    text += "Steps:\n- one\n- two **bold**\n  more\n  - nested a\n  - nested b\n- three\n\n"
    text += "1. first\n2. second\n3. third\n```\ncode\n```\nlast words\n"
    splitter = StreamSplitter()
    pieces = [*splitter.feed(text), splitter.tail]
    assert len(pieces) > 14
    assert sum(isinstance(p, ListItems) for p in pieces) == 6
    whole, stepwise = SafeBrowser(), SafeBrowser()
    qtbot.addWidget(whole)
    qtbot.addWidget(stepwise)
    whole.set_markdown_html(renderer.render(text).html)
    for piece in pieces:
        html = renderer.render(piece).html
        stepwise.append_markdown_html(html, continues_list=isinstance(piece, ListItems))
    # Same blocks and lines: no paragraph merged into the one before it, no list swallowing what follows.
    assert stepwise.toPlainText().rstrip() == whole.toPlainText().rstrip()
    assert stepwise.document().blockCount() == whole.document().blockCount()
    # A list cut between its items is one list again: numbered on, no gap between its items.
    assert _list_blocks(stepwise) == _list_blocks(whole)


def _list_blocks(view: SafeBrowser) -> list[tuple[str, str, float, float]]:
    """Each list item: text, its number ("3.", empty for a bullet), space above and below."""
    items = []
    block = view.document().begin()
    while block.isValid():
        listed = block.textList()
        if listed is not None:
            fmt = block.blockFormat()
            items.append((block.text(), listed.itemText(block), fmt.topMargin(), fmt.bottomMargin()))
        block = block.next()
    return items


def test_a_search_hit_far_up_gets_a_page_around_it_and_the_later_ones_come_on_scrolling(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = _long_conversation(qtbot, 2000)
    assert view.scroll_to(100, "message")
    assert _on_screen(view, 100)
    # Widgets only for a page around the hit, not for the 1,900 messages below it.
    shown = [w.data.id for w in view.messages()]
    assert shown == list(range(80, 120))
    assert (view.older_count, view.newer_count) == (80, 1880)
    assert view.newer_button.isVisible()
    assert not view.following  # a stream or a resize must not yank the view away from the hit
    # An edit of a message below the window is kept for when it is shown.
    view.update_message(MessageData(id=500, role="user", text="edited later"))
    view.remove_message(501)
    assert view.newer_count == 1879
    # Another hit further down: near ones page in, far ones get a window of their own.
    assert view.scroll_to(125)
    assert view.newer_count == 1873  # 120..125 paged in
    assert view.scroll_to(1500)
    assert _on_screen(view, 1500)
    assert view.messages()[0].data.id == 1480
    assert view.scroll_to(100)
    assert view.messages()[0].data.id == 80
    assert view.newer_count == 1879
    # Scrolling to the bottom of the window brings the next page below (one page, however many
    # scroll events asked for it before the layout caught up).
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=3000)
    bar.setValue(bar.maximum())
    qtbot.waitUntil(lambda: view.newer_count == 1839, timeout=3000)
    qtbot.wait(200)
    assert view.newer_count == 1839
    assert [w.data.id for w in view.messages()][-1] == 159
    assert view.load_newer(400) == 400
    assert view.message(500).data.text == "edited later"  # type: ignore[union-attr]
    assert view.message(501) is None
    # A new message at the end goes back to the newest page, with the new one last.
    view.add_message(MessageData(id=5000, role="user", text="new question"))
    assert view.newer_count == 0
    qtbot.waitUntil(lambda: not view.building, timeout=5000)
    assert not view.newer_button.isVisible()
    ids = [w.data.id for w in view.messages()]
    assert ids[-2:] == [1999, 5000]
    assert len(ids) == 41
    assert view.older_count == 1999 - 40  # 2,000 less the one removed, less the newest page


def _conversation(first: int, count: int) -> list[MessageData]:
    return [
        MessageData(id=i, role="user" if i % 2 else "assistant", text=f"message {i}\n\n" * 3)
        for i in range(first, first + count)
    ]


def _laid_out(view: TranscriptView) -> list[tuple[int | str, str, str]]:
    """The message widgets in the transcript's layout, top to bottom: id, role and the text they show."""
    shown = []
    for index in range(view._layout.count()):
        widget = view._layout.itemAt(index).widget()
        if isinstance(widget, MessageWidget):
            text = "".join(piece.toPlainText() for piece in widget._pieces)
            shown.append((widget.data.id, widget.data.role, text))
    return shown


def _shown_view(qtbot) -> TranscriptView:  # type: ignore[no-untyped-def]
    view = TranscriptView(MarkdownRenderer())
    qtbot.addWidget(view)
    view.resize(500, 400)
    view.show()
    return view


def test_a_shown_conversation_is_built_newest_first_per_tick_as_in_one_step(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    messages = _conversation(0, 300)
    whole = _shown_view(qtbot)
    whole.show_messages(messages)
    whole.finish_building()  # the same page in one step
    assert not whole.building
    # No time left in a tick: one message per tick (never none), the newest at once.
    monkeypatch.setattr(transcript, "BUILD_BUDGET_S", 0.0)
    view = _shown_view(qtbot)
    view.show_messages(messages)
    assert [w.data.id for w in view.messages()] == [299]
    assert view.building
    assert not view.older_button.isVisible() or view.older_button.text() == "Show 260 earlier messages"
    after_ticks: list[list[int | str]] = []  # what is built after each tick of the build's timer
    view._build_timer.timeout.connect(lambda: after_ticks.append([w.data.id for w in view.messages()]))
    qtbot.waitUntil(lambda: not view.building, timeout=5000)
    # Newest first, each above the last: one more per tick.
    assert after_ticks == [list(range(299 - tick, 300)) for tick in range(1, 40)]
    assert _laid_out(view) == _laid_out(whole)
    assert [w.data.id for w in view.messages()] == list(range(260, 300))
    assert view.older_count == 260
    assert view.older_button.text() == "Show 260 earlier messages"
    # The view stayed at the end while the messages went in above.
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=3000)
    assert view.following
    # With the real budget a page takes one or more ticks and ends the same.
    monkeypatch.undo()
    again = _shown_view(qtbot)
    again.show_messages(messages)
    assert again.messages()
    qtbot.waitUntil(lambda: not again.building, timeout=5000)
    assert _laid_out(again) == _laid_out(whole)


def test_a_conversation_shown_mid_build_gets_none_of_the_first_ones_messages(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(transcript, "BUILD_BUDGET_S", 0.0)
    view = _shown_view(qtbot)
    view.show_messages(_conversation(0, 300))
    qtbot.waitUntil(lambda: len(view.messages()) >= 5, timeout=3000)
    assert view.building
    view.show_messages(_conversation(10_000, 60))  # the user opens another conversation
    qtbot.waitUntil(lambda: not view.building, timeout=5000)
    qtbot.wait(100)  # no tick of the first conversation's build comes after
    assert [entry[0] for entry in _laid_out(view)] == list(range(10_020, 10_060))
    assert view.older_count == 20
    assert all(view.message(i) is None for i in range(300))
    # And an empty new chat mid-build shows nothing.
    view.show_messages(_conversation(0, 300))
    view.show_messages([])
    qtbot.wait(100)
    assert _laid_out(view) == []
    assert not view.building


def test_a_search_hit_among_messages_not_built_yet_is_built_and_scrolled_to(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(transcript, "BUILD_BUDGET_S", 0.0)
    view = _shown_view(qtbot)
    view.show_messages(_conversation(0, 300))
    assert view.message(265) is None
    assert view.scroll_to(265, "message")  # not built yet: built now, with those below it
    assert _on_screen(view, 265)
    assert view.message(265)._pieces[0].textCursor().selectedText() == "message"  # type: ignore[union-attr]
    assert [w.data.id for w in view.messages()] == list(range(265, 300))
    # The rest of the page goes in above it without moving the hit off the screen.
    qtbot.waitUntil(lambda: not view.building, timeout=5000)
    qtbot.wait(100)
    assert [w.data.id for w in view.messages()] == list(range(260, 300))
    assert _on_screen(view, 265)
    assert not view.following
    # A hit far up while a page is being built: a page around it, at once, and no build left behind.
    view.show_messages(_conversation(0, 300))
    assert view.scroll_to(100, "message")
    assert _on_screen(view, 100)
    assert [w.data.id for w in view.messages()] == list(range(80, 120))
    assert not view.building
    qtbot.wait(100)
    assert [w.data.id for w in view.messages()] == list(range(80, 120))


def test_editing_inside_a_window_drops_everything_after_it_shown_or_not(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = TranscriptView(MarkdownRenderer())
    qtbot.addWidget(view)
    view.show()
    messages = [MessageData(id=i, role="user" if i % 2 else "assistant", text=f"m {i}") for i in range(300)]
    view.show_messages(messages)
    assert view.scroll_to(51)
    assert view.newer_count > 0
    view.truncate_from(61)
    assert [w.data.id for w in view.messages()][-1] == 60
    assert view.newer_count == 0
    view.add_message(MessageData(id=9000, role="user", text="edited"))
    assert [w.data.id for w in view.messages()][-2:] == [60, 9000]


def _code_block(lines: int) -> str:
    body = "".join(f"    total += compute(item_{i}, factor={i % 7})  # step {i}\n" for i in range(lines))
    code = f"def run(items):\n    total = 0\n{body}    return total\n"
    return f"Here is the code:\n\n```python\n{code}```\n\nDone.\n"


def _code_after_code(lines: int) -> str:
    # A closed block, a blank line, then the long one: the cut after the first fence leaves the blank line
    # in the tail, and the long block must still be known as open code (it was parsed whole on every flush).
    return "```bash\nls -l\n```\n\n" + _code_block(lines)[len("Here is the code:\n\n") :]


def _code_after_a_newline(lines: int) -> str:
    return "\n" + _code_block(lines)[len("Here is the code:\n\n") :]


def _table_after_code(rows: int) -> str:
    return "```bash\nls -l\n```\n\n" + _table(rows)[len("The results:\n\n") :]


def _tight_list(items: int) -> str:
    return "Things to check:\n" + "".join(f"- item {i}: check **value** of `x{i}`\n" for i in range(items))


def _long_paragraph(sentences: int) -> str:
    # One line, as models write a paragraph: sentences with emphasis, code and links in them.
    line = "".join(
        f"Sentence {i} has **bold {i}**, `code_{i}` and [a link](https://example.com/{i}) in it. "
        for i in range(sentences)
    )
    return "A paragraph:\n\n" + line.rstrip() + "\n\nAfter it.\n"


def _table_after_a_paragraph(rows: int) -> str:
    # No blank line between the paragraph and the table's header: the table interrupts the paragraph.
    return _table(rows).replace("The results:\n\n", "The results:\n")


def _table(rows: int) -> str:
    body = "".join(f"| row {i} | {i * 37 % 1000} | **ok** |\n" for i in range(rows))
    return f"The results:\n\n| name | value | state |\n|---|---:|---|\n{body}\nThat is all.\n"


def _stream(qtbot, text: str) -> MessageWidget:  # type: ignore[no-untyped-def]
    """Stream ``text`` token by token into a fresh reply, flushing every few tokens as the timer would."""
    widget = MessageWidget(
        MessageData(id=11, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    for i, token in enumerate(re.findall(r"\s*\S+|\s+$", text)):
        widget.append(token)
        if i % 4 == 3:
            _flush(widget)
    _flush(widget)
    return widget


# Work per character of reply: open code is only added to (plus its one render when closed); the open item
# of a list is rendered again on each flush; an open table's newest rows too, under a short header.
@pytest.mark.parametrize(
    ("make", "size", "bound"),
    [
        (_code_block, 1000, 3),
        (_code_after_code, 1000, 3),
        (_code_after_a_newline, 1000, 3),
        (_tight_list, 800, 5),
        (_table, 300, 10),
        (_table_after_code, 300, 10),
        (_table_after_a_paragraph, 300, 10),
        (_long_paragraph, 400, 40),
    ],
    ids=[
        "code",
        "code-after-code",
        "code-after-newline",
        "list",
        "table",
        "table-after-code",
        "table-after-text",
        "paragraph",
    ],
)
def test_a_long_code_block_list_or_table_streams_in_linear_work(qtbot, make, size: int, bound: int) -> None:  # type: ignore[no-untyped-def]
    work = []
    for n in (size // 2, size):
        text = make(n)
        widget = _stream(qtbot, text)
        assert widget.renders > n  # flushed all along, not once at the end
        # Each character is handed to the renderer (or added to the open code) a few times at most, not
        # once per flush: before, a 1,000-line code block cost ~100 characters per character of reply.
        assert widget.rendered_chars < bound * len(text)
        work.append(widget.rendered_chars / len(text))
        whole = widget.data.text
        widget.finish(MessageData(id=11, role="assistant", text=whole, completion_tokens=n))
        _flush(widget)  # the end is shown a slice per tick, as the transcript's timer does
        shown = "\n".join(p.toPlainText() for p in widget._pieces)
        reference = SafeBrowser()
        qtbot.addWidget(reference)
        reference.set_markdown_html(MarkdownRenderer().render(whole).html)
        assert shown.split() == reference.toPlainText().split()
    # Twice the length costs about twice the work: the work per character does not grow with the length.
    assert work[1] < 1.2 * work[0]


def test_an_open_code_block_grows_by_its_new_text_and_is_highlighted_once_closed(qtbot) -> None:  # type: ignore[no-untyped-def]
    widget = MessageWidget(
        MessageData(id=12, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    widget.resize(560, 400)
    widget.show()
    widget.append("Intro.\n\n```python\n")
    _flush(widget)
    tail = widget._pieces[-1]
    for i in range(30):
        widget.append(f"value_{i} = {i} * 2\n")
        chars = widget.rendered_chars
        _flush(widget)
        # Only the new line was added to the view: nothing before it was parsed or set again.
        assert widget.rendered_chars - chars == len(f"value_{i} = {i} * 2\n")
    widget.append("``")
    _flush(widget)
    # What may become the closing fence is held back: no stray backticks in the code.
    assert "`" not in tail.toPlainText()
    assert tail.toPlainText().splitlines()[-1] == "value_29 = 29 * 2"
    assert " color:" not in tail.toHtml()  # plain while open: not highlighted on every flush
    widget.append("`\nAfter.")
    _flush(widget)
    # Closed: rendered once, highlighted, in the closed document; the tail shows what came after.
    closed = widget._pieces[0]
    assert "value_29 = 29 * 2" in closed.toPlainText()
    assert "Copy code" in closed.toPlainText()
    assert widget.code_blocks == ["".join(f"value_{i} = {i} * 2\n" for i in range(30))]
    assert " color:" in closed.toHtml()
    assert tail.toPlainText().strip() == "After."


def test_splitter_cuts_tight_lists_between_items_and_closes_code_at_its_fence() -> None:
    text = (
        "Steps:\n- one\n- two\n  more\n  - nested\n- three\n* other list\n* * *\n1. first\n2) new list\n\n"
        "```py\nx = 1\n```\n\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\nlazy row\n"
    )
    splitter = StreamSplitter()
    pieces: list[str] = []
    for ch in text:
        pieces += splitter.feed(ch)
        if splitter.tail.startswith("```py\nx") and splitter.in_fence:
            assert splitter.open_code() == text.index("x = 1")
    assert "".join(pieces) + splitter.tail == text
    assert pieces == [
        "Steps:\n- one\n",
        "- two\n  more\n  - nested\n",  # a nested list stays with its item
        "- three\n* other list\n* * *\n1. first\n2) new list\n\n",  # other markers, a rule: no cut
        "```py\nx = 1\n```\n",  # closed with its fence, not when the next block starts
    ]
    assert splitter.tail == "\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\nlazy row\n"
    # Pieces that go on with the list before them say so (they join it when shown).
    assert [isinstance(p, ListItems) for p in pieces] == [False, True, True, False]
    assert splitter.open_code() is None
    # Lines that only look like items continue the paragraph above (a numbered item interrupts one only
    # when numbered 1): no cut between them.
    for lazy in ("Para\n2. two\n3. three\n", "- a\n10) ten\n10) ten\n", "Para\n-\n-\n"):
        assert StreamSplitter().feed(lazy + "\nnext\n") == [lazy + "\n"]


def test_splitter_tells_where_the_rows_of_an_open_table_end() -> None:
    splitter = StreamSplitter()
    head = "| a | b |\n|:--|--:|\n"
    splitter.feed("Intro\n\n" + head + "| 1 | 2 |\n| 3 |")
    assert splitter.tail.startswith("| a |")
    body = len("Intro\n\n" + head)
    assert splitter.open_table() == [body, body + len("| 1 | 2 |\n")]
    splitter.feed(" 4 |\n")
    assert splitter.open_table() == [body, body + 10, body + 20]
    # A line that is not a plain row (a lazy line) is parsed with the whole tail.
    splitter.feed("lazy\n")
    assert splitter.open_table() is None
    # A header right under a paragraph: the table interrupts it, so the paragraph is closed and cut off.
    other = StreamSplitter()
    assert other.feed("para\n" + head + "| 1 | 2 |\n") == ["para\n"]
    assert other.open_table() == [len("para\n" + head), len("para\n" + head + "| 1 | 2 |\n")]
    assert other.feed("\nnext\n") == [head + "| 1 | 2 |\n\n"]


# After a closed code block the table's tail starts with the blank line before it: the header still counts.
@pytest.mark.parametrize("make", [_table, _table_after_code], ids=["after-text", "after-code"])
def test_an_open_table_is_shown_in_groups_of_rows_that_line_up(qtbot, make) -> None:  # type: ignore[no-untyped-def]
    widget = _stream(qtbot, make(42)[: -len("\nThat is all.\n")])
    frozen = widget._frozen
    assert frozen is not None
    tables = [f for f in frozen.document().rootFrame().childFrames() if isinstance(f, QTextTable)]
    assert len(tables) == 42 // TABLE_ROWS_PER_PIECE  # the rows after the last full group: re-rendered
    widths = {tuple(c.rawValue() for c in t.format().columnWidthConstraints()) for t in tables}
    assert len(widths) == 1
    assert len(next(iter(widths))) == 3
    assert sum(next(iter(widths))) == pytest.approx(100)  # shares of the width, from the header's columns
    assert "name" in frozen.toPlainText().split()[:3]  # the header once, at the top
    assert frozen.toPlainText().count("name") == 1
    widget.append("\n\nThat is all.\n")
    _flush(widget)
    assert widget._frozen is None  # closed: the whole table rendered once, in the closed document
    assert widget._pieces[0].toPlainText().count("row ") == 42


def test_expanded_reasoning_gets_only_the_new_text(qtbot) -> None:  # type: ignore[no-untyped-def]
    widget = MessageWidget(
        MessageData(id=13, role="assistant", state="streaming", reasoning="Let"),
        RenderCache(MarkdownRenderer()),
    )
    qtbot.addWidget(widget)
    widget.show()
    widget.reasoning_button.click()
    view = widget.reasoning_view
    set_chars: list[int] = []
    original = view.setPlainText
    view.setPlainText = lambda text: (set_chars.append(len(text)), original(text))  # type: ignore[method-assign]
    words = [f" thought{i}" for i in range(2000)]
    for word in words:
        widget.append_reasoning(word)
    # Before, all of it was set again on each batch: 2,000 batches cost ~20 million characters.
    assert sum(set_chars) == 0
    assert view.toPlainText() == "Let" + "".join(words)
    widget.reasoning_button.click()
    widget.append_reasoning(" hidden")
    widget.reasoning_button.click()  # shown again: all of it, once
    assert view.toPlainText().endswith("thought1999 hidden")


def test_blank_lines_after_a_closed_fence_do_not_hide_the_open_block_after_them() -> None:
    splitter = StreamSplitter()
    assert splitter.feed("```bash\nls\n```\n") == ["```bash\nls\n```\n"]
    splitter.feed("\n\n```python\nx = 1\n")
    # The blank lines stay in the tail (nothing is lost), but the block after them is the open code.
    assert splitter.tail == "\n\n```python\nx = 1\n"
    assert splitter.open_code() == len("```bash\nls\n```\n\n\n```python\n")
    assert splitter.feed("```\n") == ["\n\n```python\nx = 1\n```\n"]
    table = StreamSplitter()
    table.feed("\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert table.block_start == 1
    assert table.open_table() == [len("\n| a | b |\n|---|---|\n"), len("\n| a | b |\n|---|---|\n| 1 | 2 |\n")]
    # A line after the blank ones that is not a block of its own still does not cut them off alone.
    assert StreamSplitter().feed("\n\npara\nmore\n\nnext\n") == ["\n\npara\nmore\n\n"]


def test_a_table_right_under_a_paragraph_cuts_the_paragraph_off_once_its_delimiter_row_is_in() -> None:
    splitter = StreamSplitter()
    assert splitter.feed("Here are the results:\n| a | b |\n") == []
    assert splitter.feed("|---|---|\n") == ["Here are the results:\n"]
    head = "| a | b |\n|---|---|\n"
    assert splitter.tail == head
    splitter.feed("| 1 | 2 |\n")
    assert splitter.open_table() == [len("Here are the results:\n" + head), len(splitter.text)]
    # Where the lines only look like a table after a list item, markdown-it says so: no cut, parsed whole.
    listed = StreamSplitter()
    assert listed.feed("- one\n- two\n| a | b |\n|---|---|\n| 1 | 2 |\n") == ["- one\n"]
    assert listed.open_table() is None


def _items(view: SafeBrowser) -> list[tuple[str, str, float, float]]:
    # The last item of a whole render keeps a trailing space; the streamed one does not.
    return [(text.strip(), number, top, bottom) for text, number, top, bottom in _list_blocks(view)]


def test_a_list_streamed_in_pieces_is_numbered_and_cached_like_the_whole_list(qtbot) -> None:  # type: ignore[no-untyped-def]
    renderer = MarkdownRenderer()
    view = TranscriptView(renderer)
    qtbot.addWidget(view)
    text = "Steps:\n1. a\n1. b\n1. c\n\nSkip:\n1. x\n3. y\n7. z"
    view.add_message(MessageData(id=1, role="assistant", state="streaming"))
    view.append_token(1, text)
    widget = view.message(1)
    assert widget is not None
    _flush(widget)
    # The open items are numbered on from the closed ones above them, as in the whole list, with no gap.
    tail = _items(widget._pieces[-1])
    assert [(item, number) for item, number, _top, _bottom in tail] == [("y", "2."), ("z", "3.")]
    assert tail[0][2] == 0
    view.update_message(MessageData(id=1, role="assistant", text=text))
    _flush(widget)  # the end is shown a slice per tick, as the transcript's timer does
    whole = SafeBrowser()
    qtbot.addWidget(whole)
    whole.set_markdown_html(renderer.render(text).html)
    numbers = [(item, number) for item, number, _top, _bottom in _items(whole)]
    assert numbers == [("a", "1."), ("b", "2."), ("c", "3."), ("x", "1."), ("y", "2."), ("z", "3.")]
    assert _items(widget._pieces[0]) == _items(whole)
    # The pieces' HTML is separate lists (joined only in the view): it is not what a new show gets.
    assert view.cache.get(text).html == renderer.render(text).html
    view.show_messages([MessageData(id=1, role="assistant", text=text)])
    assert _items(view.message(1)._pieces[0]) == _items(whole)  # type: ignore[union-attr]


def test_a_palette_change_while_streaming_caches_and_shows_only_the_new_colours(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = TranscriptView(MarkdownRenderer(dark=False))
    qtbot.addWidget(view)
    text = "```python\nx = 1\n```\n\nMiddle.\n\n```python\ny = 2\n```\n"
    view.add_message(MessageData(id=1, role="assistant", state="streaming"))
    view.append_token(1, text[:30])
    _flush(view.message(1))
    view.set_renderer(MarkdownRenderer(dark=True))
    view.append_token(1, text[30:])
    _flush(view.message(1))
    view.update_message(MessageData(id=1, role="assistant", text=text))
    shown = "".join(p.toHtml() for p in view.message(1)._pieces)  # type: ignore[union-attr]
    assert "#272822" in shown
    assert "#f3f3f3" not in shown
    assert view.cache.get(text).html == MarkdownRenderer(dark=True).render(text).html
    assert view.message(1).code_blocks == ["x = 1\n", "y = 2\n"]  # type: ignore[union-attr]


def test_showing_the_reasoning_sets_its_text_once(qtbot) -> None:  # type: ignore[no-untyped-def]
    widget = MessageWidget(
        MessageData(id=14, role="assistant", reasoning="Long thoughts " * 100),
        RenderCache(MarkdownRenderer()),
    )
    qtbot.addWidget(widget)
    widget.show()
    view = widget.reasoning_view
    set_chars: list[int] = []
    original = view.setPlainText
    view.setPlainText = lambda text: (set_chars.append(len(text)), original(text))  # type: ignore[method-assign]
    widget.reasoning_button.click()
    assert set_chars == [len("Long thoughts " * 100)]
    assert view.isVisible()


def test_a_reply_that_ends_in_blank_lines_after_a_code_block_gets_no_empty_line_at_the_end(qtbot) -> None:  # type: ignore[no-untyped-def]
    text = "Para.\n\n```py\nx = 1\n```\n\n"
    widget = MessageWidget(
        MessageData(id=15, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    widget.append(text)
    _flush(widget)
    widget.finish(MessageData(id=15, role="assistant", text=text))
    _flush(widget)  # the end is shown a slice per tick, as the transcript's timer does
    whole = SafeBrowser()
    qtbot.addWidget(whole)
    whole.set_markdown_html(MarkdownRenderer().render(text).html)
    assert len(widget._pieces) == 1
    assert widget._pieces[0].document().blockCount() == whole.document().blockCount()


def _plain_words(text: str, qtbot) -> list[str]:  # type: ignore[no-untyped-def]
    whole = SafeBrowser()
    qtbot.addWidget(whole)
    whole.set_markdown_html(MarkdownRenderer().render(text).html)
    return whole.toPlainText().split()


def test_the_end_of_a_reply_is_shown_a_slice_per_tick_and_as_a_whole_render(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A reply that stops inside a long code block, with closed pieces not shown yet when it ends.
    code = "".join(f"    value_{i} = compute({i}, {i + 1})\n" for i in range(150))
    text = "".join(f"paragraph {i}\n\n" for i in range(6)) + "```python\n" + code
    widget = MessageWidget(
        MessageData(id=16, role="assistant", state="streaming"), RenderCache(MarkdownRenderer())
    )
    qtbot.addWidget(widget)
    widget.append(text)
    widget.wait_rendered()
    monkeypatch.setattr(transcript, "APPEND_BUDGET_S", 0.0)  # one step per tick (parse, or insert)
    widget.finish(MessageData(id=16, role="assistant", text=text, state="stopped", completion_tokens=900))
    # Its numbers at once; its text a step at a time, never all in the call that ended it.
    assert widget.finishing
    assert not widget.streaming
    assert widget.stats_label.text().startswith("stopped")
    assert "value_149" not in "\n".join(p.toPlainText() for p in widget._pieces)
    ticks = 1
    while widget.flush():
        widget.wait_rendered()
        ticks += 1
    assert not widget.finishing
    # Seven pieces (six paragraphs and the tail), each parsed in one tick and inserted in the next.
    assert ticks >= 2 * 6
    shown = "\n".join(p.toPlainText() for p in widget._pieces)
    assert shown.split() == _plain_words(text, qtbot)  # the same text as the whole reply rendered at once
    assert len(widget.code_blocks) == 1
    assert widget.code_blocks[0] == code
    assert not widget.flush()  # nothing left


def test_the_transcript_shows_the_end_of_a_reply_on_its_timer(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = TranscriptView(MarkdownRenderer())
    qtbot.addWidget(view)
    view.resize(500, 300)
    view.show()
    widget = view.add_message(MessageData(id=2, role="assistant", state="streaming"))
    text = "Intro.\n\n" + "```python\n" + "".join(f"x_{i} = {i}\n" for i in range(120))
    view.append_token(2, text)
    view.update_message(MessageData(id=2, role="assistant", text=text, state="stopped"))
    qtbot.waitUntil(lambda: not widget.finishing, timeout=5000)
    shown = "\n".join(p.toPlainText() for p in widget._pieces)
    assert shown.split() == _plain_words(text, qtbot)
    # Finished: the message is cached whole, so showing the conversation again parses nothing.
    assert view.cache.get(text).code_blocks == widget.code_blocks
