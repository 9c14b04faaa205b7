"""Search paths: bm25 for rare terms, newest first for common ones, prefix indexes after the V2 migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.history import search
from engine.history.schema import MIGRATIONS, SCHEMA_VERSION
from engine.history.store import HistoryStore


def test_a_common_term_is_answered_newest_first_with_correct_snippets(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "COMMON_MATCHES", 3)
    hidden = store.create_conversation(title="Hidden")
    store.add_message(hidden.id, None, "user", "a lighthouse in the bin")
    store.delete_conversation(hidden.id)
    conv = store.create_conversation(title="Coast")
    ids = [store.add_message(conv.id, None, "user", f"lighthouse number {i}").id for i in range(6)]
    store.add_message(conv.id, None, "user", "nothing to see")
    hits = store.search("lighth", limit=4)
    assert [h.message_id for h in hits] == ids[::-1][:4]
    assert [h.snippet for h in hits] == [f"[lighthouse] number {i}" for i in (5, 4, 3, 2)]
    assert all(h.rank == 0.0 and h.conversation_id == conv.id for h in hits)


def test_a_rare_term_is_ranked_by_relevance_and_title_hits_come_first(store: HistoryStore) -> None:
    conv = store.create_conversation(title="Harbor notes")
    short = store.add_message(conv.id, None, "user", "harbor").id
    long = store.add_message(conv.id, None, "user", "harbor " + "filler words " * 30).id
    hits = store.search("harbor")
    assert hits[0].message_id is None
    assert hits[0].snippet == "[Harbor] notes"
    assert [h.message_id for h in hits[1:]] == [short, long]
    assert hits[1].rank < hits[2].rank < 0


def test_a_version_1_history_gains_prefix_indexes_and_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO conversations (id, uid, title, created_at, updated_at) VALUES (1, 'u', 'Old', 0, 0)"
    )
    conn.execute(
        "INSERT INTO messages (id, conversation_id, role, text, content, created_at, updated_at)"
        " VALUES (1, 1, 'user', 'the Köln lighthouse', '{}', 0, 0)"
    )
    conn.close()
    store = HistoryStore(path)
    try:
        sql = store._conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").fetchone()[0]
        assert "prefix='1 2 3 4'" in sql
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert [h.snippet for h in store.search("koln li")] == ["the [Köln] [lighthouse]"]
        assert [h.snippet for h in store.search("ol")] == ["[Old]"]
        assert store.integrity_check() == "ok"
        # Triggers still feed the rebuilt index.
        store.add_message(1, 1, "assistant", "a second lighthouse")
        assert len(store.search("lighthouse")) == 2
    finally:
        store.close()
