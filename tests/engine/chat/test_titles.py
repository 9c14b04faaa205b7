"""Titles from the first user message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.chat.titles import MAX_TITLE_CHARS, UNTITLED, title_from_text


def test_first_sentence_of_the_first_line() -> None:
    assert (
        title_from_text("What is the capital of France? Answer briefly.") == "What is the capital of France?"
    )
    assert title_from_text("\n\n  Fix my code.\nHere it is:") == "Fix my code"


def test_markdown_and_code_are_left_out() -> None:
    assert (
        title_from_text("**Explain** `asyncio` and [Qt](https://qt.io) please")
        == "Explain asyncio and Qt please"
    )
    assert title_from_text("```python\nprint(1)\n```\nWhy does this print 1?") == "Why does this print 1?"


def test_long_text_is_cut_at_a_word_with_an_ellipsis() -> None:
    title = title_from_text("word " * 40)
    assert title.endswith("…")
    assert len(title) <= MAX_TITLE_CHARS
    assert not title[:-1].endswith(" ")
    assert title_from_text("x" * 200).endswith("…")


def test_empty_or_blank_gives_a_placeholder() -> None:
    assert title_from_text("") == UNTITLED
    assert title_from_text("   \n```\n```") == UNTITLED


@given(st.text())
def test_any_text_gives_a_short_one_line_title(text: str) -> None:
    title = title_from_text(text)
    assert 0 < len(title) <= MAX_TITLE_CHARS
    assert "\n" not in title
    assert title == title.strip()
