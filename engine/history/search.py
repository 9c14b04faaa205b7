"""Full-text search over the history (FTS5, diacritics folded, bm25-ranked, with snippets)."""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass

# Title hits count a bit more than a word somewhere in a long chat (bm25 is negative: lower is better).
_TITLE_WEIGHT = 2.0
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchHit:
    """One result: the conversation, the message to jump to (``None`` for a title match) and a snippet."""

    conversation_id: int
    message_id: int | None
    title: str
    snippet: str
    rank: float

    def to_dict(self) -> dict[str, object]:
        return {
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "title": self.title,
            "snippet": self.snippet,
            "rank": self.rank,
        }


def fts_query(text: str) -> str:
    """Turn what a person typed into a safe FTS5 query: every word must occur, the last may be a prefix.

    FTS5 syntax characters (quotes, ``-``, ``:``, ``*``, ``NEAR``) are treated as text, never as operators.
    """
    words = _WORD.findall(text)
    if not words:
        return ""
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def search(
    conn: sqlite3.Connection,
    text: str,
    *,
    limit: int = 50,
    mark: tuple[str, str] = ("[", "]"),
) -> list[SearchHit]:
    """Messages and titles matching ``text``, best first; deleted conversations are left out.

    Messages are ranked by bm25 when the query matches fewer than :data:`COMMON_MATCHES` of them. A common
    term is answered newest first instead (``rank`` 0.0, after the scored title hits): bm25 and snippets
    cost time for every match, which at 500,000 messages is most of a second, while the newest matches
    come straight off the index.
    """
    query = fts_query(text)
    if not query:
        symbols = symbol_terms(text)
        return _symbol_hits(conn, symbols, limit, mark) if symbols else []
    hits = _message_hits(conn, query, limit, mark) + _title_hits(conn, query, limit, mark)
    # Stable: newest-first message hits keep their order among themselves.
    hits.sort(key=lambda hit: hit.rank)
    return hits[:limit]


def symbol_terms(text: str) -> list[str]:
    """The runs of symbols (emoji such as 🎉, ©, ♥) in ``text``: the full-text index does not keep them
    (its tokenizer treats them as separators), so a query of only symbols is answered by a scan."""
    runs: list[str] = []
    for piece in text.split():
        run = "".join(ch for ch in piece if unicodedata.category(ch) in _SYMBOL_CATEGORIES)
        if run:
            runs.append(run)
    return runs


_SYMBOL_CATEGORIES = frozenset({"So", "Sk", "Sm", "Sc"})
_SNIPPET_CHARS = 40


def _symbol_hits(
    conn: sqlite3.Connection, symbols: list[str], limit: int, mark: tuple[str, str]
) -> list[SearchHit]:
    # Every message is read (no index can help): newest first, stopping at ``limit``.
    where = " AND ".join("instr(m.text, ?) > 0" for _ in symbols)
    rows = conn.execute(
        f"""SELECT m.conversation_id, m.id, c.title, m.text FROM messages m
            JOIN conversations c ON c.id = m.conversation_id
            WHERE c.deleted_at IS NULL AND {where} ORDER BY m.id DESC LIMIT ?""",
        (*symbols, limit),
    ).fetchall()
    title_where = " AND ".join("instr(title, ?) > 0" for _ in symbols)
    titles = conn.execute(
        f"SELECT id, title FROM conversations WHERE deleted_at IS NULL AND {title_where}"
        " ORDER BY updated_at DESC LIMIT ?",
        (*symbols, limit),
    ).fetchall()
    hits = [SearchHit(int(r[0]), None, str(r[1]), _marked(str(r[1]), symbols[0], mark), 0.0) for r in titles]
    hits += [
        SearchHit(int(r[0]), int(r[1]), str(r[2]), _marked(str(r[3]), symbols[0], mark), 0.0) for r in rows
    ]
    return hits[:limit]


def _marked(text: str, term: str, mark: tuple[str, str]) -> str:
    at = text.find(term)
    start, end = max(0, at - _SNIPPET_CHARS), at + len(term) + _SNIPPET_CHARS
    before = ("…" if start else "") + text[start:at]
    after = text[at + len(term) : end] + ("…" if end < len(text) else "")
    return f"{before}{mark[0]}{term}{mark[1]}{after}"


# Above this many matching messages a query counts as common (see search()); below it, ranking and
# snippets for every match take a few milliseconds.
COMMON_MATCHES = 2000

_MESSAGES_FROM = """
    FROM messages_fts
    JOIN messages m ON m.id = messages_fts.rowid
    JOIN conversations c ON c.id = m.conversation_id
    WHERE messages_fts MATCH ? AND c.deleted_at IS NULL
"""


def _message_hits(conn: sqlite3.Connection, query: str, limit: int, mark: tuple[str, str]) -> list[SearchHit]:
    start, end = mark
    if not _is_common(conn, query):
        rows = conn.execute(
            f"""SELECT m.conversation_id, m.id, c.title, snippet(messages_fts, 0, ?, ?, '…', 12),
                   bm25(messages_fts) {_MESSAGES_FROM}
                ORDER BY bm25(messages_fts) LIMIT ?""",
            (start, end, query, limit),
        ).fetchall()
    else:
        # FTS5 hands out rowids in order, so with ORDER BY rowid the LIMIT stops the scan and snippet()
        # runs for the returned rows only.
        rows = conn.execute(
            f"""SELECT m.conversation_id, m.id, c.title, snippet(messages_fts, 0, ?, ?, '…', 12), 0.0
                {_MESSAGES_FROM}
                ORDER BY messages_fts.rowid DESC LIMIT ?""",
            (start, end, query, limit),
        ).fetchall()
    return [SearchHit(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in rows]


def _is_common(conn: sqlite3.Connection, query: str) -> bool:
    """Whether ``query`` matches at least :data:`COMMON_MATCHES` messages, found without counting them all.

    The last word is a prefix; FTS5 merges every matching term's list for a prefix longer than the prefix
    index (tens of ms for a word in every message), while a plain word is read straight off the index. The
    whole word matches fewer messages than the prefix, so when it alone is common the prefix is too.
    """
    probe = "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?"
    for form in (query.removesuffix("*"), query):
        if conn.execute(probe, (form, COMMON_MATCHES - 1)).fetchone() is not None:
            return True
    return False


def _title_hits(conn: sqlite3.Connection, query: str, limit: int, mark: tuple[str, str]) -> list[SearchHit]:
    start, end = mark
    rows = conn.execute(
        """
        SELECT c.id, c.title, highlight(conversations_fts, 0, ?, ?), bm25(conversations_fts)
        FROM conversations_fts
        JOIN conversations c ON c.id = conversations_fts.rowid
        WHERE conversations_fts MATCH ? AND c.deleted_at IS NULL
        ORDER BY bm25(conversations_fts)
        LIMIT ?
        """,
        (start, end, query, limit),
    ).fetchall()
    return [SearchHit(int(r[0]), None, str(r[1]), str(r[2]), float(r[3]) * _TITLE_WEIGHT) for r in rows]
