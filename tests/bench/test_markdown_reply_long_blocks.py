"""The bench's Markdown reply holds the blocks that once made streaming quadratic: a long code block and a
long tight list."""

from __future__ import annotations

import pytest

from bench.markdown_reply import long_blocks, reply, tokens

pytestmark = pytest.mark.gui  # the splitter lives in the desktop shell (imported here, not at collection)


def test_the_reply_holds_a_long_code_block_and_a_long_tight_list() -> None:
    from desktop.widgets.markdown_view import ListItems, StreamSplitter

    text = reply(4000)
    assert len(tokens(text)) == 4000
    section = long_blocks(3)
    assert section in text
    assert section.count("\n    total += ") == 150
    splitter = StreamSplitter()
    pieces = splitter.feed(section + "Next.\n")
    # The code block is one piece, the list is cut between its 60 items (the first comes with its intro).
    assert pieces[0].startswith("```python")
    assert pieces[0].endswith("```\n")
    assert sum(isinstance(p, ListItems) for p in pieces) == 59
