"""Issue 14.5: a second process never gets "database is locked".

Readers never need the write lock; a writer waits for another process's write (saying so) and then gives a
clear :class:`HistoryBusy`; an import writes in short batches, hidden until complete, so others can read and
write meanwhile and nobody sees half an import.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli import main
from engine.history.records import Conversation, ConversationTree, StoredMessage
from engine.history.store import HistoryBusy, HistoryStore
from engine.paths import AppPaths


def _tree(uid: str, n_messages: int = 3) -> ConversationTree:
    conv = Conversation(id=0, uid=uid, title=f"imported {uid}", created_at=1.8e9, updated_at=1.8e9)
    messages = tuple(
        StoredMessage(
            id=i,
            conversation_id=0,
            parent_id=i - 1 if i > 1 else None,
            role="user" if i % 2 else "assistant",
            text=f"text {uid} {i}",
            created_at=1.8e9,
        )
        for i in range(1, n_messages + 1)
    )
    return ConversationTree(conv, messages)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "desk"
    store = HistoryStore(AppPaths.under(root).ensure().history_db)
    c = store.create_conversation(title="Lighthouse notes")
    store.add_message(c.id, None, "user", "the lighthouse keeper")
    store.close()
    return root


@pytest.fixture
def write_lock(home: Path) -> Iterator[sqlite3.Connection]:
    """Another process's long write (an import) holding the write lock."""
    conn = sqlite3.connect(AppPaths.under(home).history_db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO conversations (uid, created_at, updated_at) VALUES ('other', 1.8e9, 1.8e9)")
    yield conn
    if conn.in_transaction:
        conn.rollback()
    conn.close()


def test_readers_do_not_need_the_write_lock(
    home: Path, write_lock: sqlite3.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    store = HistoryStore(AppPaths.under(home).history_db, busy_wait_s=0.5)
    assert [c.title for c in store.list_conversations().items] == ["Lighthouse notes"]
    assert store.search("lighthouse")
    store.load(store.list_conversations().items[0].id)
    store.close()
    for command in (["list"], ["search", "keeper"], ["show", "1"]):
        assert main(["--data-dir", str(home), *command]) == 0
    assert "Lighthouse notes" in capsys.readouterr().out
    assert time.monotonic() - started < 5  # nothing waited for the lock (it would wait ~10 s, then fail)


def test_a_writer_waits_for_another_process_and_says_so(home: Path, write_lock: sqlite3.Connection) -> None:
    waits: list[float] = []
    store = HistoryStore(AppPaths.under(home).history_db, on_wait=lambda: waits.append(time.monotonic()))
    releaser = threading.Timer(1.5, write_lock.commit)
    releaser.start()
    try:
        message = store.add_message(1, None, "user", "this message must not be lost")
    finally:
        releaser.join()
    assert len(waits) == 1
    assert store.message(message.id).text == "this message must not be lost"
    store.close()


def test_a_writer_that_cannot_wait_longer_gets_a_clear_problem(
    home: Path, write_lock: sqlite3.Connection
) -> None:
    store = HistoryStore(AppPaths.under(home).history_db, busy_wait_s=0.3)
    with pytest.raises(HistoryBusy, match="busy") as caught:
        store.add_message(1, None, "user", "hello")
    assert isinstance(caught.value, sqlite3.OperationalError)  # callers guarding writes still catch it
    assert "Try again when it is done" in str(caught.value)
    write_lock.rollback()
    assert store.add_message(1, None, "user", "hello").text == "hello"
    store.close()


def test_an_import_lets_others_write_between_batches_and_shows_nothing_until_done(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    store = HistoryStore(db)
    other = HistoryStore(db, busy_wait_s=0.5)
    own = other.create_conversation(title="mine")
    seen_during: list[list[str]] = []

    def progress(done: int, total: int) -> None:
        # Called between batches (batch_messages=1: one conversation each): the lock is free.
        if done < total:
            other.add_message(own.id, None, "user", f"written during the import ({done})")
        seen_during.append([c.title for c in other.list_conversations().items])
        assert not other.search("imported")

    trees = [_tree(f"u{i}") for i in range(4)]
    results = store.import_trees(trees, progress, batch_messages=1)
    assert [r.outcome for r in results] == ["imported"] * 4
    assert all(titles == ["mine"] for titles in seen_during[:-1])
    titles = {c.title for c in other.list_conversations().items}
    assert titles == {"mine", "imported u0", "imported u1", "imported u2", "imported u3"}
    assert len(other.load(own.id).messages) == 3
    assert len(store.search("imported")) >= 4
    again = store.import_trees(trees, batch_messages=1)
    assert [r.outcome for r in again] == ["present"] * 4
    other.close()
    store.close()


def test_a_failed_import_leaves_nothing_behind(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.db")

    def progress(done: int, total: int) -> None:
        if done == 3:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.import_trees([_tree(f"u{i}") for i in range(5)], progress, batch_messages=1)
    assert store._conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 0
    assert store._conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    store.close()


def test_a_killed_import_is_purged_at_the_next_open(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    store = HistoryStore(db)
    store.import_trees([_tree("kept")])
    # What a killed importer leaves: staged rows of a process that no longer exists.
    store._conn.execute(
        "UPDATE conversations SET staged_by='1:0.000|dead', deleted_at=1.8e9 WHERE uid='kept'"
    )
    store._conn.execute(
        "INSERT INTO conversations (uid, created_at, updated_at, deleted_at, staged_by)"
        " VALUES ('half', 1.8e9, 1.8e9, 1.8e9, '1:0.000|dead')"
    )
    store.close()
    reopened = HistoryStore(db)
    assert reopened._conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 0
    assert reopened.import_trees([_tree("kept")])[0].outcome == "imported"
    reopened.close()


@pytest.mark.asyncio
async def test_a_chat_message_waits_for_another_processs_write_and_is_kept(home: Path) -> None:
    from engine.chat.engine import ChatEngine
    from engine.history.async_store import AsyncHistoryStore
    from tests.support.standin.launch import running_standin

    db = AppPaths.under(home).history_db
    store = await AsyncHistoryStore.open(db)
    conv = await store.create_conversation(title="chat")
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process's import batch, for 1.5 s
    releaser = threading.Timer(1.5, other.commit)
    releaser.start()
    try:
        with running_standin("--reply", "Still here.") as server:
            engine = ChatEngine(store, server.endpoint)
            turn = await engine.send(conv.id, "please keep this message")
            reply = await turn.wait()
            await engine.shutdown()
    finally:
        releaser.join()
        other.close()
    tree = await store.load(conv.id)
    await store.close()
    assert [(m.role, m.text) for m in tree.branch()] == [
        ("user", "please keep this message"),
        ("assistant", "Still here."),
    ]
    assert reply.state == "complete"


def test_a_migration_waits_for_another_processs_write(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    HistoryStore(db).close()
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("DROP INDEX conversations_staged")
    conn.execute("ALTER TABLE conversations DROP COLUMN staged_by")
    conn.execute("PRAGMA user_version = 2")  # a history written by the previous version
    conn.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(1.5, conn.commit)
    releaser.start()
    try:
        store = HistoryStore(db)
    finally:
        releaser.join()
        conn.close()
    assert store._conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert store.import_trees([_tree("after")])[0].outcome == "imported"
    store.close()


IMPORTER = """
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from engine.history.store import HistoryStore
from tests.engine.test_reliability_locking import _tree

store = HistoryStore(Path(sys.argv[1]))
store.import_trees([_tree(f"big-{i}", 6) for i in range(int(sys.argv[3]))])
store.close()
print("imported")
"""


def test_another_process_chats_while_a_large_import_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "history.db"
    store = HistoryStore(db, busy_wait_s=5)
    conv = store.create_conversation(title="mine")
    root = Path(__file__).resolve().parents[2]
    importer = subprocess.Popen(
        [sys.executable, "-c", IMPORTER, str(db), str(root), "10000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with importer:  # its pipes are closed whatever happens (no unclosed file for a later test to find)
        try:
            deadline = time.monotonic() + 60
            while (
                store._conn.execute("SELECT COUNT(*) FROM conversations WHERE staged_by != ''").fetchone()[0]
                == 0
            ):
                assert time.monotonic() < deadline, (
                    importer.stderr.read() if importer.poll() is not None else ""
                )
                time.sleep(0.02)
            # One write as soon as the import has begun: it slips in between two of the import's batches.
            written = [store.add_message(conv.id, None, "user", "message 0").id]
            staged = store._conn.execute(
                "SELECT COUNT(*) FROM conversations WHERE staged_by != ''"
            ).fetchone()[0]
            titles = [c.title for c in store.list_conversations().items]
            assert 0 < staged < 10_000  # written between the import's batches, not after all of it
            assert titles == ["mine"]  # nothing half-imported shows
            written += [store.add_message(conv.id, None, "user", f"message {i}").id for i in range(1, 5)]
            out, err = importer.communicate(timeout=120)
        finally:
            if importer.poll() is None:
                importer.kill()
                importer.wait()
    assert importer.returncode == 0, err
    assert out.strip() == "imported"
    assert [store.message(i).text for i in written] == [f"message {i}" for i in range(5)]
    assert len(store.list_conversations(limit=20_000).items) == 10_001
    store.close()
