"""Batch import into the history: one transaction for the whole batch, idempotent by uid, all or nothing —
a real SQLite failure on the last tree, or the process killed midway, leaves every row as it was."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.history.async_store import AsyncHistoryStore
from engine.history.records import Conversation, ConversationTree, InvalidTree, StoredMessage
from engine.history.store import HistoryStore
from tests.support.database import database_rows


def _tree(uid: str, title: str = "Imported", turns: int = 2) -> ConversationTree:
    messages: list[StoredMessage] = []
    for i in range(1, 2 * turns + 1):
        role = "user" if i % 2 else "assistant"
        messages.append(
            StoredMessage(
                id=i,
                conversation_id=0,
                parent_id=None if i == 1 else i - 1,
                role=role,
                text=f"{uid} message {i}",
                created_at=1_700_000_000.0 + i,
                updated_at=1_700_000_000.0 + i,
            )
        )
    conversation = Conversation(
        id=0, uid=uid, title=title, created_at=1_700_000_000.0, updated_at=1_700_000_100.0
    )
    return ConversationTree(conversation, tuple(messages))


def _history_with_one_live_and_one_binned(store: HistoryStore) -> tuple[int, int]:
    live = store.import_tree(_tree("live"))
    binned = store.import_tree(_tree("binned"))
    store.delete_conversation(binned)
    return live, binned


def test_a_batch_reports_new_present_and_restored_and_is_idempotent(store: HistoryStore) -> None:
    live, binned = _history_with_one_live_and_one_binned(store)
    assert store.known_uids(["live", "binned", "new", "live"]) == {"live": False, "binned": True}
    seen: list[tuple[int, int]] = []
    results = store.import_trees(
        [_tree("new"), _tree("live"), _tree("binned")], lambda d, t: seen.append((d, t))
    )
    assert [r.outcome for r in results] == ["imported", "present", "restored"]
    assert [r.conversation_id for r in results][1:] == [live, binned]
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert store.known_uids(["new", "binned"]) == {"new": False, "binned": False}
    assert [m.text for m in store.load(results[0].conversation_id).branch()][-1] == "new message 4"
    again = store.import_trees([_tree("new"), _tree("live"), _tree("binned")])
    assert [r.outcome for r in again] == ["present"] * 3
    assert len(store.list_conversations().items) == 3


def test_a_restored_conversation_is_not_purged_at_close(app_paths) -> None:  # type: ignore[no-untyped-def]
    store = HistoryStore(app_paths.history_db)
    _, binned = _history_with_one_live_and_one_binned(store)
    store.import_trees([_tree("binned")])
    store.close()
    again = HistoryStore(app_paths.history_db)
    try:
        assert again.conversation(binned).deleted_at is None
    finally:
        again.close()


def test_a_batch_whose_last_tree_fails_in_sqlite_changes_no_row(store: HistoryStore) -> None:
    _, binned = _history_with_one_live_and_one_binned(store)
    before = database_rows(store.path)
    # A real SQLite failure on the last insert: a (connection-local) trigger aborts that one title.
    store._conn.execute(
        "CREATE TEMP TRIGGER poison BEFORE INSERT ON main.conversations WHEN new.title = 'poison'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
    )
    batch = [_tree("first"), _tree("binned"), _tree("second"), _tree("last", title="poison")]
    with pytest.raises(sqlite3.IntegrityError, match="poisoned row"):
        store.import_trees(batch)
    assert database_rows(store.path) == before
    assert store.known_uids(["first", "second", "binned"]) == {"binned": True}
    # The store is still usable, and the bin keeps its conversation until it is purged.
    store._conn.execute("DROP TRIGGER temp.poison")
    assert [r.outcome for r in store.import_trees(batch)] == ["imported", "restored", "imported", "imported"]
    assert store.conversation(binned).deleted_at is None


def test_a_broken_tree_anywhere_in_the_batch_is_refused_before_any_write(store: HistoryStore) -> None:
    store.import_tree(_tree("live"))
    before = database_rows(store.path)
    orphan = StoredMessage(id=5, conversation_id=0, parent_id=99, role="user", text="lost")
    broken = ConversationTree(_tree("broken").conversation, (orphan,))
    with pytest.raises(InvalidTree, match="missing"):
        store.import_trees([_tree("ok"), broken])
    assert database_rows(store.path) == before


CHILD = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from tests.engine.history.test_store_import import _tree
from engine.history.store import HistoryStore
from engine.history.async_store import AsyncHistoryStore

store = HistoryStore(__import__("pathlib").Path(sys.argv[1]))

def progress(done, total):
    if done == 3:  # three trees written (staged, not yet shown): die without any cleanup
        os.kill(os.getpid(), signal.SIGKILL)

store.import_trees([_tree(f"batch-{i}") for i in range(5)], progress)
print("not killed")
"""


def test_a_process_killed_midway_through_a_batch_leaves_the_history_as_it_was(
    store: HistoryStore,
) -> None:
    _history_with_one_live_and_one_binned(store)
    before = database_rows(store.path)
    root = Path(__file__).resolve().parents[3]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(store.path), str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    # Nothing of the import is visible; its staged rows are purged when the history is next opened.
    assert store.known_uids(f"batch-{i}" for i in range(5)) == {}
    assert [c.uid for c in store.list_conversations().items] == ["live"]
    HistoryStore(store.path).close()
    # Every row as before; the full-text index keeps the purged rows' tombstones until it merges segments.
    assert _content(database_rows(store.path)) == _content(before)
    assert store.search("batch") == []
    assert store.integrity_check() == "ok"


def _content(rows: list[str]) -> list[str]:
    return [row for row in rows if "_fts" not in row]


def test_import_tree_is_a_batch_of_one(store: HistoryStore) -> None:
    first = store.import_tree(_tree("one"))
    assert store.import_tree(_tree("one")) == first
    assert store.conversation(first).uid == "one"
    assert len(store.load(first).messages) == 4


def test_the_async_store_imports_a_batch_on_its_writer_thread(app_paths) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        store = await AsyncHistoryStore.open(app_paths.history_db)
        try:
            threads: list[str] = []
            results = await store.import_trees(
                [_tree("a"), _tree("b")], lambda done, total: threads.append(threading.current_thread().name)
            )
            assert [r.outcome for r in results] == ["imported", "imported"]
            assert all(name.startswith("history-writer") for name in threads)
            assert len(threads) == 2
            assert await store.known_uids(["a", "c"]) == {"a": False}
        finally:
            await store.close()

    asyncio.run(main())
