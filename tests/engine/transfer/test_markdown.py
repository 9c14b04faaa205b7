"""Markdown export: golden files, code kept verbatim, reasoning collapsible, all branches on request."""

from __future__ import annotations

from dataclasses import replace

from markdown_it import MarkdownIt

from engine.transfer.markdown_format import render_markdown
from engine.transfer.model import ExportedMessage
from tests.engine.golden_files import assert_golden
from tests.engine.transfer_trees import EXPORTED_AT, T0, sample_conversation


def test_shown_branch_matches_golden_file() -> None:
    assert_golden("sample.md", render_markdown(sample_conversation(), exported_at=EXPORTED_AT))


def test_all_branches_matches_golden_file() -> None:
    text = render_markdown(sample_conversation(), all_branches=True, exported_at=EXPORTED_AT)
    assert_golden("sample-all-branches.md", text)
    assert "## Branch 1 of 2 (shown)" in text
    assert "## Branch 2 of 2" in text
    assert "changes the list itself" in text
    # The second branch shows only where it departs from the first.
    assert "*The first 3 messages are those of branch 1.*" in text
    assert text.count("How do I reverse a list in Python?") == 1


def test_shown_branch_leaves_out_other_branches() -> None:
    text = render_markdown(sample_conversation(), exported_at=EXPORTED_AT)
    assert "it returns `None`" in text
    assert "changes the list itself" not in text


def test_code_blocks_are_kept_exactly_and_parse_as_code() -> None:
    conv = sample_conversation()
    text = render_markdown(conv, exported_at=EXPORTED_AT)
    assert "```python\nitems = [1, 2, 3]\nprint(items[::-1])\n```" in text
    fences = [t for t in MarkdownIt("commonmark").parse(text) if t.type == "fence"]
    assert [(f.info, f.content) for f in fences] == [("python", "items = [1, 2, 3]\nprint(items[::-1])\n")]


def test_reasoning_is_in_a_details_block() -> None:
    text = render_markdown(sample_conversation(), exported_at=EXPORTED_AT)
    block = text.split("<details>", 1)[1].split("</details>", 1)[0]
    assert "<summary>Reasoning</summary>" in block
    assert "slicing is simplest" in block


def test_an_unclosed_code_block_of_a_stopped_reply_is_closed() -> None:
    conv = sample_conversation()
    stopped = ExportedMessage(
        "6", "5", "assistant", "Here:\n```python\nwhile True:\n    pass", T0, state="stopped"
    )
    conv = replace(conv, messages=(*conv.messages, stopped), shown_leaf="6")
    text = render_markdown(conv, exported_at=EXPORTED_AT)
    tokens = MarkdownIt("commonmark").parse(text)
    fences = [t for t in tokens if t.type == "fence"]
    assert fences[-1].content == "while True:\n    pass\n"
    # The numbers line after it is still ordinary text, not swallowed by the open block.
    assert text.rstrip().endswith("```")
    assert "### " not in text
