"""The history database's schema and its migrations (``PRAGMA user_version`` holds the schema version).

Each migration is a list of SQL statements run in one transaction; a database newer than this code is refused
rather than half-understood.
"""

from __future__ import annotations

import sqlite3

from engine.errors import DeskError, Fix


class HistoryTooNew(DeskError):
    title = "The history was written by a newer vLLM Desk"

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(
            f"The chat history uses schema version {found}; this vLLM Desk understands up to {supported}.",
            fix=Fix(action="update_app", label="Update vLLM Desk", hint="Install the newer vLLM Desk again."),
        )


# Message text and titles are indexed by FTS5 "external content" tables kept in step by triggers;
# unicode61 with remove_diacritics 2 makes "Köln" match "koln".
_V1 = [
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0,
        folder TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '[]',
        settings TEXT NOT NULL DEFAULT '{}',
        system_prompt TEXT NOT NULL DEFAULT '',
        current_leaf_id INTEGER,
        deleted_at REAL
    )
    """,
    # The sidebar: pinned first, newest first, keyset-paged.
    """
    CREATE INDEX conversations_listing ON conversations (pinned DESC, updated_at DESC, id DESC)
        WHERE deleted_at IS NULL
    """,
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        parent_id INTEGER REFERENCES messages (id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        text TEXT NOT NULL DEFAULT '',
        content TEXT NOT NULL,
        reasoning TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'complete',
        model TEXT NOT NULL DEFAULT '',
        finish_reason TEXT NOT NULL DEFAULT '',
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        ttft_s REAL,
        tokens_per_s REAL,
        wall_s REAL,
        error TEXT NOT NULL DEFAULT '',
        writer TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )
    """,
    "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
    "CREATE INDEX messages_by_parent ON messages (parent_id, id)",
    "CREATE INDEX messages_streaming ON messages (state) WHERE state = 'streaming'",
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5 (
        text, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
    END
    """,
    """
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END
    """,
    """
    CREATE TRIGGER messages_au AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
    END
    """,
    """
    CREATE VIRTUAL TABLE conversations_fts USING fts5 (
        title, content='conversations', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER conversations_ai AFTER INSERT ON conversations BEGIN
        INSERT INTO conversations_fts (rowid, title) VALUES (new.id, new.title);
    END
    """,
    """
    CREATE TRIGGER conversations_ad AFTER DELETE ON conversations BEGIN
        INSERT INTO conversations_fts (conversations_fts, rowid, title) VALUES ('delete', old.id, old.title);
    END
    """,
    """
    CREATE TRIGGER conversations_au AFTER UPDATE OF title ON conversations BEGIN
        INSERT INTO conversations_fts (conversations_fts, rowid, title) VALUES ('delete', old.id, old.title);
        INSERT INTO conversations_fts (rowid, title) VALUES (new.id, new.title);
    END
    """,
]

# V2: prefix indexes. Search treats the last word as a prefix (people type "ligh" for "lighthouse"); without
# an index FTS5 merges the lists of every matching term, which for one or two letters at 500,000 messages
# took 60-120 ms. Longer prefixes match few terms and stay cheap. 'rebuild' re-reads the content tables
# (about 2.5 s at 500,000 messages, once).
_V2 = [
    "DROP TABLE messages_fts",
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5 (
        text, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2',
        prefix='1 2 3 4'
    )
    """,
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
    "DROP TABLE conversations_fts",
    """
    CREATE VIRTUAL TABLE conversations_fts USING fts5 (
        title, content='conversations', content_rowid='id', tokenize='unicode61 remove_diacritics 2',
        prefix='1 2 3 4'
    )
    """,
    "INSERT INTO conversations_fts (conversations_fts) VALUES ('rebuild')",
]

# V3: imports are staged (written hidden in short batches, shown at once when complete), so a large import
# never holds the write lock for long; ``staged_by`` names the import ("pid:start|id") so the rows of one
# whose process died are purged at the next open.
_V3 = [
    "ALTER TABLE conversations ADD COLUMN staged_by TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX conversations_staged ON conversations (staged_by) WHERE staged_by != ''",
]

MIGRATIONS: tuple[list[str], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`; returns the version it started at."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise HistoryTooNew(found, SCHEMA_VERSION)
    for version in range(found, SCHEMA_VERSION):
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            # PRAGMA does not take parameters; the value is our own integer.
            conn.execute(f"PRAGMA user_version = {version + 1}")
    return found
