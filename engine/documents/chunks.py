"""Splitting a converted file into passages that keep where they came from.

Each :class:`Chunk` is an exact slice ``text[start:end]`` of the converted text (so a citation can show the
passage in context), with its page (PDF, DOCX page breaks) and heading path (Markdown, HTML, DOCX headings).
Chunks never cross a page break or a heading; inside a section, paragraphs are packed up to ``max_chars``
(about 200 tokens, under all-MiniLM-L6-v2's 256) and an over-long paragraph is cut at a sentence end or a
space.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_CHARS = 800
# all-MiniLM-L6-v2 reads 256 word pieces; a passage is kept under this many by a pessimistic count.
MAX_TOKENS = 200
MIN_CUT = 200  # a cut inside a long paragraph looks back at most this far for a sentence end or space

_PIECES = re.compile(r"[^\W\d_]+|\d|[^\w\s]|_")


def token_bound(text: str) -> int:
    """A count of word pieces no BERT-like tokenizer exceeds by much: a word costs one piece per 6 letters
    (at least one), a letter of a script without spaces (CJK) one each, every digit and sign one."""
    total = 0
    for piece in _PIECES.findall(text):
        if piece.isascii():
            total += 1 + len(piece) // 6 if piece.isalpha() else 1
        else:
            total += len(piece)
    return total


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    content: str
    start: int
    end: int
    page: int | None
    headings: tuple[str, ...]

    @property
    def section(self) -> str:
        return " > ".join(self.headings)


@dataclass(frozen=True)
class _Segment:
    start: int
    end: int
    page: int | None
    headings: tuple[str, ...]


def split_text(
    text: str,
    *,
    paged: bool = False,
    structured: bool = False,
    max_chars: int = MAX_CHARS,
    max_tokens: int = MAX_TOKENS,
) -> list[Chunk]:
    """Split ``text`` into chunks.

    ``paged``: ``\\f`` separates pages; ``structured``: ``#`` lines are headings.
    """
    chunks: list[Chunk] = []
    for segment in _segments(text, paged=paged, structured=structured):
        body = text[segment.start : segment.end].strip()
        if structured and "\n" not in body and _HEADING.fullmatch(body):
            continue  # a heading with nothing under it but subsections: its name is in their path
        for start, end in _pack(text, segment.start, segment.end, max_chars, max_tokens):
            chunks.append(Chunk(len(chunks), text[start:end], start, end, segment.page, segment.headings))
    return chunks


def _segments(text: str, *, paged: bool, structured: bool) -> Iterator[_Segment]:
    """Cut at page breaks and headings; a heading line starts its own segment (it is part of the passage)."""
    cuts: list[tuple[int, str, int, str]] = []  # (offset, kind, level, title)
    if paged:
        cuts += [(m.start(), "page", 0, "") for m in re.finditer("\f", text)]
    if structured:
        in_code = False
        offset = 0
        for line in text.splitlines(keepends=True):
            if line.lstrip().startswith("```"):
                in_code = not in_code
            elif not in_code:
                m = _HEADING.match(line.rstrip("\n"))
                if m:
                    cuts.append((offset, "heading", len(m.group(1)), m.group(2).strip()))
            offset += len(line)
    cuts.sort()
    page = 1 if paged else None
    path: list[tuple[int, str]] = []
    start = 0
    for offset, kind, level, title in cuts:
        if offset > start:
            yield _Segment(start, offset, page, tuple(t for _, t in path))
        if kind == "page":
            page = (page or 1) + 1
            start = offset + 1  # the \f itself belongs to no passage
        else:
            path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
            start = offset
    if start < len(text):
        yield _Segment(start, len(text), page, tuple(t for _, t in path))


def _pack(text: str, start: int, end: int, max_chars: int, max_tokens: int) -> Iterator[tuple[int, int]]:
    """Spans covering the non-blank text of ``[start, end)``, whole paragraphs where they fit."""
    paragraphs = [
        (m.start(), m.end())
        for m in re.finditer(r"\S(?:.*?\S)?(?=[ \t]*\n\s*\n|\s*\Z)", text[start:end], re.S)
    ]
    current: tuple[int, int] | None = None
    for p_start, p_end in paragraphs:
        a, b = start + p_start, start + p_end
        if current is not None and _fits(text, current[0], b, max_chars, max_tokens):
            current = (current[0], b)
            continue
        if current is not None:
            if not _fits(text, a, b, max_chars, max_tokens) and current[1] - current[0] < max_chars // 4:
                a = current[0]  # a short lead-in (a heading) stays with the text it introduces
            else:
                yield current
            current = None
        while not _fits(text, a, b, max_chars, max_tokens):
            limit = a + max_chars
            while limit - a > 8 and token_bound(text[a:limit]) > max_tokens:
                limit = a + (limit - a) * 3 // 4
            cut = _cut(text, a, limit)
            yield a, cut
            a = cut
            while a < b and text[a].isspace():
                a += 1
        if a < b:
            current = (a, b)
    if current is not None:
        yield current


def _fits(text: str, a: int, b: int, max_chars: int, max_tokens: int) -> bool:
    return b - a <= max_chars and token_bound(text[a:b]) <= max_tokens


def _cut(text: str, start: int, limit: int) -> int:
    """Where to end a piece of a long paragraph: after a sentence end, else at a space, else hard."""
    low = max(start + 1, limit - MIN_CUT)
    window = text[low:limit]
    for pattern in (r"[.!?;:](?=\s)", r"\s"):
        found = [m.end() for m in re.finditer(pattern, window)]
        if found:
            cut = low + found[-1]
            while cut > start and text[cut - 1].isspace():
                cut -= 1
            if cut > start:
                return cut
    return limit
