"""A conversation's title, taken from its first user message (no model call)."""

from __future__ import annotations

import re

MAX_TITLE_CHARS = 60
UNTITLED = "New conversation"

_MARKUP = re.compile(r"```.*?(```|$)|`|[*_#>~]+|\[([^\]]*)\]\([^)]*\)", re.DOTALL)
_SPACE = re.compile(r"\s+")


def title_from_text(text: str, max_chars: int = MAX_TITLE_CHARS) -> str:
    """The first sentence or line of ``text``, without Markdown, cut at a word boundary with an ellipsis.

    Code blocks and link targets are left out; an empty result gives :data:`UNTITLED`.
    """
    plain = _MARKUP.sub(lambda m: m.group(2) or " ", text)
    first_line = next((line for line in plain.splitlines() if line.strip()), "")
    sentence = re.split(r"(?<=[.!?])\s", first_line.strip(), maxsplit=1)[0]
    title = _SPACE.sub(" ", sentence).strip().rstrip(".")
    if not title:
        return UNTITLED
    if len(title) <= max_chars:
        return title
    cut = title[: max_chars - 1]
    if " " in cut[max_chars // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"
