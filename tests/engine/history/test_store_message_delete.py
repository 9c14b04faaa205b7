"""Deleting one message (and the replies under it) with undo until the store closes; the folders and tags the
sidebar filters by."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.history.records import ConversationNotFound
from engine.history.store import HistoryStore


def test_delete_hides_the_subtree_everywhere_and_undo_brings_it_back(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.db")
    conv = store.create_conversation(title="Branches")
    q1 = store.add_message(conv.id, None, "user", "first question")
    a1 = store.add_message(conv.id, q1.id, "assistant", "first answer")
    q2 = store.add_message(conv.id, a1.id, "user", "lighthouse keeper question")
    a2 = store.add_message(conv.id, q2.id, "assistant", "lighthouse answer")
    other = store.add_message(conv.id, a1.id, "user", "another follow-up")  # a sibling of q2
    store.set_current_leaf(conv.id, a2.id)
    assert {h.message_id for h in store.search("lighthouse")} == {q2.id, a2.id}

    token = store.delete_message(q2.id)

    tree = store.load(conv.id)
    assert {m.id for m in tree.messages} == {q1.id, a1.id, other.id}
    assert [m.id for m in tree.branch()] == [q1.id, a1.id, other.id]  # the remaining sibling is shown
    assert store.search("lighthouse") == []
    assert [c.id for c in store.list_conversations().items] == [conv.id]  # the hidden one is not listed

    assert store.undo_delete_message(token) == conv.id
    tree = store.load(conv.id)
    assert {m.id for m in tree.messages} == {q1.id, a1.id, q2.id, a2.id, other.id}
    assert [m.id for m in tree.branch()] == [q1.id, a1.id, q2.id, a2.id]  # shown as before
    assert {h.message_id for h in store.search("lighthouse")} == {q2.id, a2.id}
    with pytest.raises(ConversationNotFound):
        store.undo_delete_message(token)  # once only
    store.close()


def test_deleted_messages_are_purged_when_the_store_closes(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    conv = store.create_conversation()
    q1 = store.add_message(conv.id, None, "user", "only question")
    store.add_message(conv.id, q1.id, "assistant", "only answer")
    store.delete_message(q1.id)
    assert store.load(conv.id).messages == ()
    store.close()
    store = HistoryStore(path)
    try:
        count = store._conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        assert count == 0
        assert store.load(conv.id).branch() == []
    finally:
        store.close()


def test_folders_and_tags_in_use(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.db")
    store.create_conversation(folder="Work", tags=["rust", "perf"])
    store.create_conversation(folder="Home", tags=["perf"])
    gone = store.create_conversation(folder="Old", tags=["obsolete"])
    store.create_conversation()
    store.delete_conversation(gone.id)
    assert store.folders_and_tags() == (["Home", "Work"], ["perf", "rust"])
    store.close()
