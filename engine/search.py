"""Full-text search over the history (FTS5, diacritics folded, bm25-ranked, with snippets)."""

from __future__ import annotations

import re
import sqlite3
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
    """Messages and titles matching ``text``, best first; deleted conversations are left out."""
    query = fts_query(text)
    if not query:
        return []
    start, end = mark
    message_rows = conn.execute(
        """
        SELECT m.conversation_id, m.id, c.title,
               snippet(messages_fts, 0, ?, ?, '…', 12), bm25(messages_fts)
        FROM messages_fts
        JOIN messages m ON m.id = messages_fts.rowid
        JOIN conversations c ON c.id = m.conversation_id
        WHERE messages_fts MATCH ? AND c.deleted_at IS NULL
        ORDER BY bm25(messages_fts)
        LIMIT ?
        """,
        (start, end, query, limit),
    ).fetchall()
    title_rows = conn.execute(
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
    hits = [SearchHit(int(r[0]), int(r[1]), str(r[2]), str(r[3]), float(r[4])) for r in message_rows]
    hits += [
        SearchHit(int(r[0]), None, str(r[1]), str(r[2]), float(r[3]) * _TITLE_WEIGHT) for r in title_rows
    ]
    hits.sort(key=lambda hit: hit.rank)
    return hits[:limit]
