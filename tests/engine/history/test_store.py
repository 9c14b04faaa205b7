"""The history store: schema, conversations, the message tree, durable streaming, search, export/import."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from engine.history.async_store import AsyncHistoryStore
from engine.history.records import (
    ConversationNotFound,
    ConversationTree,
    InvalidTree,
    MessageNotFound,
    ReplyNumbers,
    StoredMessage,
)
from engine.history.schema import SCHEMA_VERSION, HistoryTooNew
from engine.history.store import HistoryStore, HistoryUnreadable, PageCursor


def _turn(store: HistoryStore, cid: int, parent: int | None, question: str, answer: str) -> tuple[int, int]:
    user = store.add_message(cid, parent, "user", question)
    reply = store.add_message(cid, user.id, "assistant", answer, model="m")
    return user.id, reply.id


def test_new_database_has_wal_schema_version_and_fts(store: HistoryStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert {"conversations", "messages", "messages_fts", "conversations_fts"} <= tables
    assert store.integrity_check() == "ok"


def test_a_newer_schema_is_refused_with_words(app_paths) -> None:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(app_paths.history_db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(HistoryTooNew, match=r"understands up to \d+"):
        HistoryStore(app_paths.history_db)


def test_a_file_that_is_not_a_database_gives_a_clear_error(app_paths) -> None:  # type: ignore[no-untyped-def]
    app_paths.history_db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(HistoryUnreadable) as info:
        HistoryStore(app_paths.history_db)
    assert str(app_paths.history_db) in str(info.value)
    assert info.value.fix is not None


def test_messages_keep_the_chat_message_shape_and_our_fields(store: HistoryStore) -> None:
    from haystack.dataclasses import ChatMessage

    conv = store.create_conversation(title="T", system_prompt="Be brief.", settings={"temperature": 0})
    user = store.add_message(conv.id, None, "user", "What is 2+2?")
    reply = store.add_message(conv.id, user.id, "assistant", "", state="streaming", model="m")
    done = store.finish(
        reply.id,
        state="complete",
        text="4",
        reasoning="2 and 2 make 4",
        model="m",
        finish_reason="stop",
        numbers=ReplyNumbers(
            prompt_tokens=12, completion_tokens=1, ttft_s=0.05, tokens_per_s=30.0, wall_s=0.1
        ),
        meta={"model": "m", "finish_reason": "stop"},
    )
    assert done.state == "complete"
    assert done.numbers == ReplyNumbers(12, 1, 0.05, 30.0, 0.1)
    message = done.to_chat_message()
    assert isinstance(message, ChatMessage)
    assert message.text == "4"
    assert message.reasoning is not None
    assert message.reasoning.reasoning_text == "2 and 2 make 4"
    assert message.meta["finish_reason"] == "stop"
    assert ChatMessage.from_dict(done.content).to_dict() == done.content
    assert store.conversation(conv.id).settings == {"temperature": 0}
    assert store.conversation(conv.id).system_prompt == "Be brief."


def test_unknown_ids_raise_typed_errors(store: HistoryStore) -> None:
    with pytest.raises(ConversationNotFound, match="42"):
        store.conversation(42)
    with pytest.raises(MessageNotFound):
        store.message(7)
    a = store.create_conversation()
    b = store.create_conversation()
    user = store.add_message(a.id, None, "user", "hi")
    with pytest.raises(InvalidTree, match="another conversation"):
        store.add_message(b.id, user.id, "assistant", "x")
    with pytest.raises(InvalidTree, match="state"):
        store.add_message(a.id, None, "user", "x", state="bogus")  # type: ignore[arg-type]


def test_regenerate_and_edit_keep_every_branch_and_switching_follows_the_newest(store: HistoryStore) -> None:
    conv = store.create_conversation()
    u1, r1 = _turn(store, conv.id, None, "first question", "first answer")
    u2, r2 = _turn(store, conv.id, r1, "second question", "second answer")
    # regenerate r2: a sibling reply under u2
    r2b = store.add_message(conv.id, u2, "assistant", "second answer, again").id
    tree = store.load(conv.id)
    assert tree.siblings(r2b) == [r2, r2b]
    assert tree.shown_leaf() == r2b
    # edit u1: a sibling user message at the root, with its own reply
    u1b, r1b = _turn(store, conv.id, None, "first question, edited", "another first answer")
    tree = store.load(conv.id)
    assert tree.siblings(u1b) == [u1, u1b]
    assert [m.id for m in tree.branch()] == [u1b, r1b]
    # switch back to the original first question: its newest descendant is shown
    assert store.switch_branch(u1) == r2b
    tree = store.load(conv.id)
    assert [m.text for m in tree.branch()] == [
        "first question",
        "first answer",
        "second question",
        "second answer, again",
    ]
    assert len(tree.messages) == 7  # nothing was destroyed


def test_rename_pin_folder_tags(store: HistoryStore) -> None:
    conv = store.create_conversation(title="old")
    changed = store.update_conversation(
        conv.id, title="new", pinned=True, folder="Work", tags=["b", "a", "a"]
    )
    assert (changed.title, changed.pinned, changed.folder, changed.tags) == ("new", True, "Work", ("a", "b"))
    assert store.rename(conv.id, "again").title == "again"
    other = store.create_conversation(title="other")
    assert [c.id for c in store.list_conversations(folder="Work").items] == [conv.id]
    assert [c.id for c in store.list_conversations(tag="a").items] == [conv.id]
    assert {c.id for c in store.list_conversations().items} == {conv.id, other.id}


def test_delete_can_be_undone_until_close_then_is_purged(app_paths) -> None:  # type: ignore[no-untyped-def]
    store = HistoryStore(app_paths.history_db)
    keep = store.create_conversation(title="keep")
    gone = store.create_conversation(title="gone")
    _turn(store, gone.id, None, "zebra question", "zebra answer")
    store.delete_conversation(keep.id)
    store.undo_delete(keep.id)
    store.delete_conversation(gone.id)
    assert [c.id for c in store.list_conversations().items] == [keep.id]
    assert store.search("zebra") == []
    store.close()
    reopened = HistoryStore(app_paths.history_db)
    try:
        with pytest.raises(ConversationNotFound):
            reopened.conversation(gone.id)
        assert reopened.conversation(keep.id).title == "keep"
        count = sqlite3.connect(app_paths.history_db).execute("SELECT count(*) FROM messages").fetchone()[0]
        assert count == 0
    finally:
        reopened.close()


def test_listing_is_pinned_first_newest_first_and_keyset_paged(store: HistoryStore) -> None:
    ids = [store.create_conversation(title=f"c{i}").id for i in range(25)]
    store.update_conversation(ids[3], pinned=True)
    seen: list[int] = []
    cursor: PageCursor | None = None
    while True:
        page = store.list_conversations(limit=7, after=cursor)
        seen += [c.id for c in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen[0] == ids[3]
    assert seen[1:] == [i for i in reversed(ids) if i != ids[3]]


def test_listing_uses_the_index(store: HistoryStore) -> None:
    plan = store._conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM conversations WHERE deleted_at IS NULL"
        " AND (pinned, updated_at, id) < (1, 5.0, 3) ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT 51"
    ).fetchall()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "conversations_listing" in detail
    assert "TEMP B-TREE" not in detail


def test_search_folds_diacritics_ranks_and_points_at_the_message(store: HistoryStore) -> None:
    a = store.create_conversation(title="Trip to Köln")
    _, reply = _turn(store, a.id, None, "Where should I eat?", "In Köln, try the Brauhaus near the Dom.")
    b = store.create_conversation(title="Cooking")
    _turn(store, b.id, None, "A recipe with cream?", "Crème brûlée needs cream, sugar and eggs.")
    hits = store.search("koln")
    assert hits[0].conversation_id == a.id
    assert {h.message_id for h in hits} == {None, reply}
    message_hit = next(h for h in hits if h.message_id == reply)
    assert "[Köln]" in message_hit.snippet
    assert store.search("creme brulee")[0].snippet.count("[") == 2
    # FTS syntax typed by a person is text, not an operator
    assert store.search('crème* -"brûlée:') != []
    assert store.search("NEAR(crème") == []  # every word must occur; NEAR is a word here
    assert store.search("   ") == []


def test_async_store_runs_on_its_own_thread_and_keeps_write_order(app_paths) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        store = await AsyncHistoryStore.open(app_paths.history_db)
        conv = await store.create_conversation(title="a")
        reply = await store.call(HistoryStore.add_message, conv.id, None, "assistant", "", state="streaming")
        # Fire many checkpoints without awaiting each: the last one issued must be the one that sticks.
        writes = [store.call(HistoryStore.checkpoint, reply.id, "x" * n) for n in range(1, 200)]
        await asyncio.gather(*writes)
        assert (await store.message(reply.id)).text == "x" * 199
        names = await store.call(lambda _s: threading.current_thread().name)
        assert names.startswith("history-writer")
        assert names != threading.current_thread().name
        await store.close()

    asyncio.run(main())


def test_streaming_rows_of_a_dead_writer_become_interrupted(app_paths) -> None:  # type: ignore[no-untyped-def]
    store = HistoryStore(app_paths.history_db)
    conv = store.create_conversation()
    user = store.add_message(conv.id, None, "user", "tell me a story")
    reply = store.add_message(conv.id, user.id, "assistant", "", state="streaming")
    store.checkpoint(reply.id, "Once upon a")
    # A live writer's reply is left alone (another process may still be streaming it) ...
    other = HistoryStore(app_paths.history_db)
    assert other.message(reply.id).state == "streaming"
    other.close()
    # ... one whose writer died (pid 1's start time never matches ours) is interrupted on open.
    store._conn.execute("UPDATE messages SET writer='1:0.0' WHERE id=?", (reply.id,))
    reopened = HistoryStore(app_paths.history_db)
    message = reopened.message(reply.id)
    assert (message.state, message.text) == ("interrupted", "Once upon a")
    reopened.close()
    store._conn.close()


def test_closing_with_a_reply_in_flight_marks_it_interrupted(app_paths) -> None:  # type: ignore[no-untyped-def]
    store = HistoryStore(app_paths.history_db)
    conv = store.create_conversation()
    reply = store.add_message(conv.id, None, "assistant", "", state="streaming")
    store.checkpoint(reply.id, "partial")
    store.close()
    again = HistoryStore(app_paths.history_db)
    assert again.message(reply.id).state == "interrupted"
    again.close()


def test_export_import_roundtrip_is_idempotent(store: HistoryStore) -> None:
    conv = store.create_conversation(title="Tree", tags=["x"], folder="F", settings={"temperature": 0.5})
    u1, r1 = _turn(store, conv.id, None, "q1", "a1")
    store.add_message(conv.id, u1, "assistant", "a1 again")
    _turn(store, conv.id, r1, "q2", "a2")
    store.switch_branch(r1)
    tree = store.export_tree(conv.id)

    # A second store (another machine) imports it twice: one copy.
    other = HistoryStore(store.path.with_name("other.sqlite3"))
    try:
        first = other.import_tree(tree)
        assert other.import_tree(tree) == first
        copy = other.export_tree(first)
        assert len(other.list_conversations().items) == 1
        assert copy.conversation.uid == tree.conversation.uid
        assert [m.text for m in copy.branch()] == [m.text for m in tree.branch()]
        assert sorted(m.text for m in copy.messages) == sorted(m.text for m in tree.messages)
        assert (copy.conversation.tags, copy.conversation.folder) == (("x",), "F")
        assert other.search("a1")[0].conversation_id == first
    finally:
        other.close()


def test_import_rejects_broken_trees_and_writes_nothing(store: HistoryStore) -> None:
    conv = store.create_conversation(uid="src-1")
    base = store.export_tree(conv.id).conversation
    orphan = StoredMessage(id=5, conversation_id=0, parent_id=99, role="user", text="lost")
    with pytest.raises(InvalidTree, match="missing"):
        store.import_tree(ConversationTree(conversation=_with_uid(base, "src-2"), messages=(orphan,)))
    loop_a = StoredMessage(id=1, conversation_id=0, parent_id=2, role="user", text="a")
    loop_b = StoredMessage(id=2, conversation_id=0, parent_id=1, role="assistant", text="b")
    with pytest.raises(InvalidTree, match="cycle"):
        store.import_tree(ConversationTree(conversation=_with_uid(base, "src-3"), messages=(loop_a, loop_b)))
    assert [c.uid for c in store.list_conversations().items] == ["src-1"]


def _with_uid(conv, uid: str):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(conv, uid=uid)


@pytest.mark.slow
def test_a_2000_message_conversation_loads_in_one_query_set(store: HistoryStore) -> None:
    conv = store.create_conversation(title="long")
    conn = store._conn
    now = time.time()
    content = '{"role": "user", "meta": {}, "name": null, "content": [{"text": "m"}]}'
    conn.execute("BEGIN")
    parent = None
    for i in range(2000):
        cur = conn.execute(
            "INSERT INTO messages (conversation_id, parent_id, role, text, content, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (conv.id, parent, "user" if i % 2 == 0 else "assistant", f"message {i}", content, now, now),
        )
        parent = cur.lastrowid
    conn.execute("COMMIT")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    started = time.perf_counter()
    tree = store.load(conv.id)
    elapsed = time.perf_counter() - started
    conn.set_trace_callback(None)
    assert len(tree.branch()) == 2000
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
    print(f"\nloaded 2,000 messages in {elapsed * 1000:.1f} ms")


def test_path_that_cannot_be_created_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HistoryUnreadable):
        HistoryStore(blocker / "sub" / "history.sqlite3")
