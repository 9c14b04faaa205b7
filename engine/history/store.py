"""The chat history: SQLite (WAL, FTS5), a message tree per conversation, and durable streaming.

Two faces:

* :class:`HistoryStore` — synchronous, one connection, for one thread (the CLI, tests, the writer thread).
* :class:`engine.history.async_store.AsyncHistoryStore` — what the GUI and
:class:`engine.chat.engine.ChatEngine` use: the
  same store on one dedicated thread that owns the connection.

Durability: ``synchronous=FULL`` in WAL mode, so a committed user message or reply checkpoint survives a kill
or a power cut. A reply is created in state ``streaming`` with its writer's identity (pid + start time); when
a store is opened, streaming rows whose writer is gone become ``interrupted``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from engine.errors import DeskError, Fix
from engine.history import search as fts
from engine.history.records import (
    MESSAGE_STATES,
    Conversation,
    ConversationNotFound,
    ConversationTree,
    InvalidTree,
    MessageNotFound,
    MessageState,
    ReplyNumbers,
    Role,
    StoredMessage,
    chat_message_dict,
)
from engine.history.rows import (
    CONV_COLS,
    MSG_COLS,
    conversation_from_row,
    insert_tree,
    message_from_row,
    parents_first,
)
from engine.history.schema import migrate
from engine.history.search import SearchHit

log = logging.getLogger(__name__)

# Soft-deleted conversations left behind by a crash are purged at the next open after this long.
_STALE_DELETE_S = 24 * 3600


class HistoryUnreadable(DeskError):
    title = "The chat history cannot be opened"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"The chat history at {path} cannot be opened ({reason}).",
            fix=Fix(
                action="choose_data_dir",
                label="Choose another folder",
                hint="Move the damaged file aside, or start with --data-dir DIR.",
            ),
        )
        self.path = path


class HistoryDamaged(DeskError, sqlite3.DatabaseError):
    """A part of the history file cannot be read (``database disk image is malformed``)."""

    title = "Part of the chat history is damaged"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"Part of the chat history at {path} cannot be read ({reason}).",
            fix=Fix(
                action="choose_data_dir",
                label="Choose another folder",
                hint="Export what can still be read (vllm-desk export --all -o backup.zip), then move the "
                "damaged file aside; `sqlite3 FILE .recover` can often rescue more.",
            ),
        )
        self.path = path


def damaged(path: Path, exc: sqlite3.DatabaseError) -> sqlite3.DatabaseError:
    """``exc`` in words when it means the file is damaged (lock waits and our own problems pass as
    they are)."""
    if isinstance(exc, DeskError) or (isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)):
        return exc
    return HistoryDamaged(path, str(exc))


class HistoryBusy(DeskError, sqlite3.OperationalError):
    """Another process held the history's write lock for longer than this one would wait.

    Also an ``sqlite3.OperationalError``, so callers that guard writes against database errors catch it."""

    title = "The chat history is busy"

    def __init__(self, path: Path, waited_s: float) -> None:
        # No one-click fix: the remedy is waiting for the other process, said in the sentence itself.
        super().__init__(
            f"Another vLLM Desk process kept the chat history at {path} busy for {waited_s:.0f} s "
            "(a large import?); nothing was changed. Try again when it is done."
        )
        self.path = path


# How long a write waits for another process's write (e.g. an import's batch) before giving up, and how
# many messages an import writes per transaction (each batch holds the write lock well under a second).
BUSY_WAIT_S = 60.0
IMPORT_BATCH_MESSAGES = 2000
# Between two batches of an import, the write lock is left free this long: another process waiting for it
# (a chat) retries every 100 ms at most (SQLite's busy handler), so a shorter gap would starve it until the
# whole import is done.
IMPORT_BATCH_PAUSE_S = 0.12


@dataclass(frozen=True)
class PageCursor:
    """Where the next page of the conversation list starts (keyset pagination)."""

    pinned: bool
    updated_at: Any  # the row's stored value, whatever it is (see list_conversations)
    id: int


@dataclass(frozen=True)
class ImportedTree:
    """What :meth:`HistoryStore.import_trees` did with one tree: its conversation id, and whether it was new,
    already present, or brought back from the bin."""

    conversation_id: int
    outcome: Literal["imported", "present", "restored"]


@dataclass(frozen=True)
class ConversationPage:
    items: list[Conversation]
    next_cursor: PageCursor | None


def _writer_identity() -> str:
    me = psutil.Process()
    return f"{me.pid}:{me.create_time():.3f}"


def _writer_alive(identity: str) -> bool:
    pid_text, _, started = identity.partition(":")
    try:
        proc = psutil.Process(int(pid_text))
        # A recycled pid belongs to another process: compare start times.
        return abs(proc.create_time() - float(started)) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE
    except (ValueError, psutil.Error):
        return False


class HistoryStore:
    """The history database, used from one thread. Open with ``HistoryStore(path)``; ``close()`` when done."""

    def __init__(
        self, path: Path, *, busy_wait_s: float = BUSY_WAIT_S, on_wait: Callable[[], None] | None = None
    ) -> None:
        """``busy_wait_s``: how long a write waits while another process writes; ``on_wait`` is called
        once per write that has to wait (the CLI says what it waits for)."""
        self.path = Path(path)
        self.busy_wait_s = busy_wait_s
        self.on_wait = on_wait
        self._writer = _writer_identity()
        self._deleted_here: set[int] = set()
        # delete_message's hidden conversations -> (where the messages came from, the leaf shown then)
        self._hidden_messages: dict[int, tuple[int, int | None]] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so a transaction is exactly what we say.
            # A short busy timeout per attempt; _begin() retries up to busy_wait_s and says it waits.
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # A migration takes the write lock once; it may wait as long as any write does.
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_wait_s * 1000)}")
            migrate(self._conn)
            self._conn.execute("PRAGMA busy_timeout = 1000")
            self.recover()
        except HistoryBusy:
            self._conn.close()
            raise
        except (sqlite3.DatabaseError, OSError) as exc:
            raise HistoryUnreadable(self.path, str(exc)) from exc

    # -- lifecycle ---------------------------------------------------------------------------------------

    def close(self, *, purge: bool = True, interrupt: bool = True) -> None:
        """Mark this process's unfinished replies interrupted, purge what was deleted here, close.

        Takes the write lock only when there is something to write: a read-only command never waits for (or
        blocks) another process's writes. ``interrupt=False``: a short-lived second store in a process whose
        main store may be writing a reply now leaves that reply alone."""
        streaming = (
            self._conn.execute(
                "SELECT 1 FROM messages WHERE state='streaming' AND writer=? LIMIT 1", (self._writer,)
            ).fetchone()
            if interrupt
            else None
        )
        if streaming is not None or (purge and self._deleted_here):
            with self._tx():
                if streaming is not None:
                    self._conn.execute(
                        "UPDATE messages SET state='interrupted', updated_at=?"
                        " WHERE state='streaming' AND writer=?",
                        (time.time(), self._writer),
                    )
                if purge and self._deleted_here:
                    ids = sorted(self._deleted_here)
                    marks = ",".join("?" * len(ids))
                    self._conn.execute(
                        f"DELETE FROM conversations WHERE deleted_at IS NOT NULL AND id IN ({marks})", ids
                    )
        self._conn.close()

    def recover(self) -> int:
        """Streaming replies whose writer process is gone become ``interrupted``, and what a dead import
        staged or a crash left in the bin is purged; returns how many replies were marked.

        Looks first and takes the write lock only when something is to be done, so opening the history to
        read never waits for another process's import."""
        rows = self._conn.execute("SELECT id, writer FROM messages WHERE state='streaming'").fetchall()
        dead = [int(r[0]) for r in rows if not _writer_alive(str(r[1]))]
        stages = self._conn.execute(
            "SELECT DISTINCT staged_by FROM conversations WHERE staged_by != ''"
        ).fetchall()
        dead_stages = [str(r[0]) for r in stages if not _writer_alive(str(r[0]).partition("|")[0])]
        stale_before = time.time() - _STALE_DELETE_S
        stale = self._conn.execute(
            "SELECT 1 FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at < ? AND staged_by = ''"
            " LIMIT 1",
            (stale_before,),
        ).fetchone()
        if not dead and not dead_stages and stale is None:
            return 0
        with self._tx():
            for message_id in dead:
                self._conn.execute(
                    "UPDATE messages SET state='interrupted', updated_at=? WHERE id=?",
                    (time.time(), message_id),
                )
            for stage in dead_stages:
                self._conn.execute("DELETE FROM conversations WHERE staged_by=?", (stage,))
            self._conn.execute(
                "DELETE FROM conversations"
                " WHERE deleted_at IS NOT NULL AND deleted_at < ? AND staged_by = ''",
                (stale_before,),
            )
        return len(dead)

    def integrity_check(self) -> str:
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    def _tx(self) -> sqlite3.Connection:
        # "with self._tx():" = BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error).
        self._begin()
        return self._conn

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting up to ``busy_wait_s`` for another process's write (calling ``on_wait``
        once); then :class:`HistoryBusy` rather than a bare "database is locked"."""
        started = time.monotonic()
        told = False
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                waited = time.monotonic() - started
                if waited >= self.busy_wait_s:
                    raise HistoryBusy(self.path, waited) from exc
                if not told and self.on_wait is not None:
                    told = True
                    self.on_wait()

    # -- conversations -----------------------------------------------------------------------------------

    def create_conversation(
        self,
        *,
        title: str = "",
        system_prompt: str = "",
        settings: dict[str, Any] | None = None,
        folder: str = "",
        tags: Sequence[str] = (),
        uid: str | None = None,
    ) -> Conversation:
        now = time.time()
        with self._tx():
            cur = self._conn.execute(
                "INSERT INTO conversations (uid, title, created_at, updated_at, folder, tags, settings,"
                " system_prompt) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    uid or uuid.uuid4().hex,
                    title,
                    now,
                    now,
                    folder,
                    json.dumps(list(tags)),
                    json.dumps(settings or {}),
                    system_prompt,
                ),
            )
        return self.conversation(int(cur.lastrowid or 0))

    def conversation(self, conversation_id: int) -> Conversation:
        row = self._conn.execute(
            f"SELECT {CONV_COLS} FROM conversations WHERE id=?", (conversation_id,)
        ).fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)
        return conversation_from_row(row)

    def list_conversations(
        self,
        *,
        limit: int = 50,
        after: PageCursor | None = None,
        folder: str | None = None,
        tag: str | None = None,
    ) -> ConversationPage:
        """Pinned first, newest first; pass the returned ``next_cursor`` as ``after`` for the next page."""
        where = ["deleted_at IS NULL"]
        params: list[Any] = []
        if after is not None:
            where.append("(pinned, updated_at, id) < (?, ?, ?)")
            params += [int(after.pinned), after.updated_at, after.id]
        if folder is not None:
            where.append("folder = ?")
            params.append(folder)
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(conversations.tags) WHERE value = ?)")
            params.append(tag)
        rows = self._conn.execute(
            f"SELECT {CONV_COLS} FROM conversations WHERE {' AND '.join(where)}"
            " ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
        items = [conversation_from_row(r) for r in rows[:limit]]
        cursor = None
        if len(rows) > limit:
            # The row's own stored value, not the one read (a damaged time reads clamped): the next page must
            # start exactly after this row in the database's order.
            last = rows[limit - 1]
            cursor = PageCursor(bool(last[5]), last[4], int(last[0]))
        return ConversationPage(items, cursor)

    def folders_and_tags(self) -> tuple[list[str], list[str]]:
        """The folders and tags in use by conversations not deleted, sorted (the sidebar's filter)."""
        folders = self._conn.execute(
            "SELECT DISTINCT folder FROM conversations"
            " WHERE deleted_at IS NULL AND folder != '' ORDER BY folder"
        ).fetchall()
        tags = self._conn.execute(
            "SELECT DISTINCT j.value FROM conversations, json_each(conversations.tags) AS j"
            " WHERE deleted_at IS NULL AND j.value != '' ORDER BY j.value"
        ).fetchall()
        return [str(f[0]) for f in folders], [str(t[0]) for t in tags]

    def update_conversation(
        self,
        conversation_id: int,
        *,
        title: str | None = None,
        pinned: bool | None = None,
        folder: str | None = None,
        tags: Sequence[str] | None = None,
        settings: dict[str, Any] | None = None,
        system_prompt: str | None = None,
    ) -> Conversation:
        """Rename, pin, file into a folder, tag, or change settings/system prompt (``None``: unchanged)."""
        changes: dict[str, Any] = {}
        if title is not None:
            changes["title"] = title
        if pinned is not None:
            changes["pinned"] = int(pinned)
        if folder is not None:
            changes["folder"] = folder
        if tags is not None:
            changes["tags"] = json.dumps(sorted(set(tags)))
        if settings is not None:
            changes["settings"] = json.dumps(settings)
        if system_prompt is not None:
            changes["system_prompt"] = system_prompt
        self.conversation(conversation_id)
        if changes:
            assignments = ", ".join(f"{name}=?" for name in changes)
            with self._tx():
                self._conn.execute(
                    f"UPDATE conversations SET {assignments} WHERE id=?", (*changes.values(), conversation_id)
                )
        return self.conversation(conversation_id)

    def rename(self, conversation_id: int, title: str) -> Conversation:
        return self.update_conversation(conversation_id, title=title)

    def delete_conversation(self, conversation_id: int) -> None:
        """Hide it; :meth:`undo_delete` brings it back until :meth:`close` (the app quitting) purges it."""
        self.conversation(conversation_id)
        with self._tx():
            self._conn.execute(
                "UPDATE conversations SET deleted_at=? WHERE id=?", (time.time(), conversation_id)
            )
        self._deleted_here.add(conversation_id)

    def undo_delete(self, conversation_id: int) -> Conversation:
        self.conversation(conversation_id)
        with self._tx():
            self._conn.execute("UPDATE conversations SET deleted_at=NULL WHERE id=?", (conversation_id,))
        self._deleted_here.discard(conversation_id)
        return self.conversation(conversation_id)

    def rename_tool(self, old: str, new: str) -> int:
        """Every conversation whose settings name the tool (or MCP server) ``old`` names ``new`` in its
        place (once, where ``old`` was), in one transaction; returns how many changed. Conversations in the
        bin too (Undo brings them back); their place in the list (``updated_at``) stays."""
        return len(self.rename_tool_undoably(old, new))

    def rename_tool_undoably(self, old: str, new: str) -> dict[int, tuple[str, str]]:
        """:meth:`rename_tool`, returning each changed conversation's settings (JSON text) before and after,
        for :meth:`undo_rename_tool`."""
        if not old or not new or old == new:
            return {}
        needle = json.dumps(old)
        changed: dict[int, tuple[str, str]] = {}
        with self._tx():
            rows = self._conn.execute(
                "SELECT id, settings FROM conversations WHERE instr(settings, ?) > 0", (needle,)
            ).fetchall()
            for conversation_id, text in rows:
                try:
                    settings = json.loads(text)
                except ValueError:
                    continue  # unreadable settings are left as they are (loading says so)
                tools = settings.get("tools") if isinstance(settings, dict) else None
                if not isinstance(tools, list) or old not in tools:
                    continue
                renamed: list[Any] = []
                for name in tools:
                    name = new if name == old else name
                    if name not in renamed:
                        renamed.append(name)
                settings["tools"] = renamed
                after = json.dumps(settings)
                self._conn.execute("UPDATE conversations SET settings=? WHERE id=?", (after, conversation_id))
                changed[conversation_id] = (text, after)
        return changed

    def undo_rename_tool(self, changed: dict[int, tuple[str, str]]) -> int:
        """Put back the settings :meth:`rename_tool_undoably` changed (``changed``: what it returned), in
        one transaction, where they are still as it left them: a conversation written since keeps that
        write. Returns how many were put back."""
        undone = 0
        with self._tx():
            for conversation_id, (before, after) in changed.items():
                cursor = self._conn.execute(
                    "UPDATE conversations SET settings=? WHERE id=? AND settings=?",
                    (before, conversation_id, after),
                )
                undone += cursor.rowcount
        return undone

    def delete_message(self, message_id: int) -> int:
        """Hide a message and every reply under it; returns a token for :meth:`undo_delete_message`.

        The subtree moves, in one transaction, into a hidden conversation marked deleted, so loading, listing
        and search no longer see it and :meth:`close` purges it like a deleted conversation. If the shown
        branch went through it, the conversation shows the newest remaining sibling's branch (or the parent).
        """
        target = self.message(message_id)
        tree = self.load(target.conversation_id)
        gone, todo = [], [message_id]
        while todo:
            current = todo.pop()
            gone.append(current)
            todo.extend(tree.children(current))
        leaf = tree.shown_leaf()
        new_leaf = leaf
        if leaf in gone:
            others = [m for m in tree.children(target.parent_id) if m != message_id]
            new_leaf = tree.latest_leaf(others[-1]) if others else target.parent_id
        now = time.time()
        marks = ",".join("?" * len(gone))
        with self._tx():
            cur = self._conn.execute(
                "INSERT INTO conversations (uid, created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?)",
                (uuid.uuid4().hex, now, now, now),
            )
            hidden = int(cur.lastrowid or 0)
            self._conn.execute(
                f"UPDATE messages SET conversation_id=? WHERE id IN ({marks})", (hidden, *gone)
            )
            self._conn.execute(
                "UPDATE conversations SET current_leaf_id=? WHERE id=?", (new_leaf, target.conversation_id)
            )
        self._deleted_here.add(hidden)
        self._hidden_messages[hidden] = (target.conversation_id, leaf)
        return hidden

    def undo_delete_message(self, token: int) -> int:
        """Put back what :meth:`delete_message` hid (until :meth:`close`); returns its conversation id."""
        if token not in self._hidden_messages:
            raise ConversationNotFound(token)
        conversation_id, leaf = self._hidden_messages.pop(token)
        with self._tx():
            self._conn.execute(
                "UPDATE messages SET conversation_id=? WHERE conversation_id=?", (conversation_id, token)
            )
            self._conn.execute(
                "UPDATE conversations SET current_leaf_id=? WHERE id=?", (leaf, conversation_id)
            )
            self._conn.execute("DELETE FROM conversations WHERE id=?", (token,))
        self._deleted_here.discard(token)
        return conversation_id

    def set_current_leaf(self, conversation_id: int, leaf_id: int) -> None:
        """Remember which branch the conversation shows."""
        with self._tx():
            self._conn.execute(
                "UPDATE conversations SET current_leaf_id=? WHERE id=?", (leaf_id, conversation_id)
            )

    def switch_branch(self, sibling_id: int) -> int:
        """Show ``sibling_id``'s branch (its most recent descendant); returns the new leaf."""
        tree = self.load(self.message(sibling_id).conversation_id)
        leaf = tree.leaf_after_switch(sibling_id)
        self.set_current_leaf(tree.conversation.id, leaf)
        return leaf

    # -- messages ----------------------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int,
        parent_id: int | None,
        role: Role,
        text: str,
        *,
        reasoning: str = "",
        state: MessageState = "complete",
        model: str = "",
        meta: dict[str, Any] | None = None,
        content: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Append a message under ``parent_id`` (committed when this returns) and show its branch.

        ``state='streaming'`` starts a reply that :meth:`checkpoint` and :meth:`finish` complete.
        ``content``: the whole ``ChatMessage.to_dict()`` when it holds more than text (tool calls, a tool's
        result); ``text`` is then what search and listings see.
        """
        if state not in MESSAGE_STATES:
            raise InvalidTree(f"unknown message state {state!r}")
        self.conversation(conversation_id)
        if parent_id is not None and self.message(parent_id).conversation_id != conversation_id:
            raise InvalidTree(f"message {parent_id} belongs to another conversation")
        now = time.time()
        content_json = json.dumps(
            content if content is not None else chat_message_dict(role, text, reasoning, meta)
        )
        with self._tx():
            message_id = self._insert_message(
                conversation_id, parent_id, role, text, content_json, reasoning, state, model, now
            )
        return self.message(message_id)

    def add_turn(
        self,
        conversation_id: int,
        parent_id: int | None,
        user_text: str | None,
        *,
        model: str = "",
        title: str = "",
    ) -> StoredMessage:
        """A turn's start in ONE commit: the user's message (unless ``user_text`` is None: a regenerate)
        under ``parent_id``, the streaming reply's row under it, and the title when ``title``; returns the
        reply (its ``parent_id`` is the user's message). One fsync instead of two on the way to a reply."""
        self.conversation(conversation_id)
        if parent_id is not None and self.message(parent_id).conversation_id != conversation_id:
            raise InvalidTree(f"message {parent_id} belongs to another conversation")
        now = time.time()
        failed: sqlite3.Error | None = None
        with self._tx():
            parent = parent_id
            if user_text is not None:
                content = json.dumps(chat_message_dict("user", user_text, "", None))
                parent = self._insert_message(
                    conversation_id, parent, "user", user_text, content, "", "complete", "", now
                )
            # The question is kept even when the reply's row cannot be written (the caller says so).
            self._conn.execute("SAVEPOINT reply_row")
            try:
                content = json.dumps(chat_message_dict("assistant", "", "", None))
                # A microsecond later: the reply sorts after its question by time as well as by id.
                reply_id = self._insert_message(
                    conversation_id, parent, "assistant", "", content, "", "streaming", model, now + 1e-6
                )
                if title:
                    self._conn.execute(
                        "UPDATE conversations SET title=? WHERE id=?", (title, conversation_id)
                    )
                self._conn.execute("RELEASE reply_row")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK TO reply_row")
                self._conn.execute("RELEASE reply_row")
                failed = exc
        if failed is not None:
            raise failed
        return self.message(reply_id)

    def _insert_message(
        self,
        conversation_id: int,
        parent_id: int | None,
        role: Role,
        text: str,
        content_json: str,
        reasoning: str,
        state: MessageState,
        model: str,
        now: float,
    ) -> int:
        """INSERT one message and show its branch; the caller holds the transaction."""
        cur = self._conn.execute(
            "INSERT INTO messages (conversation_id, parent_id, role, text, content, reasoning, state,"
            " model, writer, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                parent_id,
                role,
                text,
                content_json,
                reasoning,
                state,
                model,
                self._writer,
                now,
                now,
            ),
        )
        message_id = int(cur.lastrowid or 0)
        self._conn.execute(
            "UPDATE conversations SET current_leaf_id=?, updated_at=? WHERE id=?",
            (message_id, now, conversation_id),
        )
        return message_id

    def checkpoint(self, message_id: int, text: str, reasoning: str = "") -> None:
        """Save a streaming reply's text so far (the chat engine calls this at least every 250 ms)."""
        content = json.dumps(chat_message_dict("assistant", text, reasoning))
        with self._tx():
            self._conn.execute(
                "UPDATE messages SET text=?, reasoning=?, content=?, updated_at=? WHERE id=?",
                (text, reasoning, content, time.time(), message_id),
            )

    def finish(
        self,
        message_id: int,
        *,
        state: MessageState,
        text: str,
        reasoning: str = "",
        model: str = "",
        finish_reason: str = "",
        numbers: ReplyNumbers | None = None,
        error: str = "",
        meta: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Close a reply with its final text, state and numbers."""
        n = numbers or ReplyNumbers()
        message = self.message(message_id)
        content = json.dumps(chat_message_dict(message.role, text, reasoning, meta))
        now = time.time()
        with self._tx():
            self._conn.execute(
                "UPDATE messages SET text=?, reasoning=?, content=?, state=?, model=?, finish_reason=?,"
                " prompt_tokens=?, completion_tokens=?, ttft_s=?, tokens_per_s=?, wall_s=?, error=?,"
                " updated_at=? WHERE id=?",
                (
                    text,
                    reasoning,
                    content,
                    state,
                    model or message.model,
                    finish_reason,
                    n.prompt_tokens,
                    n.completion_tokens,
                    n.ttft_s,
                    n.tokens_per_s,
                    n.wall_s,
                    error,
                    now,
                    message_id,
                ),
            )
            self._conn.execute(
                "UPDATE conversations SET updated_at=? WHERE id=?", (now, message.conversation_id)
            )
        return self.message(message_id)

    def message(self, message_id: int) -> StoredMessage:
        row = self._conn.execute(f"SELECT {MSG_COLS} FROM messages WHERE id=?", (message_id,)).fetchone()
        if row is None:
            raise MessageNotFound(message_id)
        return message_from_row(row)

    def message_count(self, conversation_id: int) -> int:
        """How many messages the conversation has (from its index: no message is read)."""
        row = self._conn.execute(
            "SELECT COUNT(*) FROM messages WHERE conversation_id=?", (conversation_id,)
        ).fetchone()
        return int(row[0])

    def load(self, conversation_id: int) -> ConversationTree:
        """The conversation and all its messages, every branch, in two queries."""
        conversation = self.conversation(conversation_id)
        rows = self._conn.execute(
            f"SELECT {MSG_COLS} FROM messages WHERE conversation_id=? ORDER BY id", (conversation_id,)
        ).fetchall()
        return ConversationTree(conversation, tuple(message_from_row(r) for r in rows))

    # -- search, export, import --------------------------------------------------------------------------

    def search(self, text: str, *, limit: int = 50, mark: tuple[str, str] = ("[", "]")) -> list[SearchHit]:
        """Ranked matches in titles and message text (diacritics folded), each with a snippet."""
        return fts.search(self._conn, text, limit=limit, mark=mark)

    def export_tree(self, conversation_id: int) -> ConversationTree:
        """Everything about one conversation (all branches, all numbers) for export."""
        return self.load(conversation_id)

    def known_uids(self, uids: Iterable[str]) -> dict[str, bool]:
        """Which of ``uids`` the history holds; the value is True when that conversation sits in the bin
        (deleted, not yet purged)."""
        wanted = list(dict.fromkeys(uids))
        found: dict[str, bool] = {}
        # SQLite caps the number of bound parameters: ask in chunks.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT uid, deleted_at IS NOT NULL FROM conversations WHERE uid IN ({marks})"
                " AND staged_by = ''",
                chunk,
            ).fetchall()
            found.update({str(uid): bool(deleted) for uid, deleted in rows})
        return found

    def import_tree(self, tree: ConversationTree) -> int:
        """Insert a whole conversation in one transaction; returns its id (see :meth:`import_trees`)."""
        return self.import_trees([tree])[0].conversation_id

    def import_trees(
        self,
        trees: Sequence[ConversationTree],
        progress: Callable[[int, int], None] | None = None,
        *,
        batch_messages: int = IMPORT_BATCH_MESSAGES,
    ) -> list[ImportedTree]:
        """Add a batch of conversations: all of them, or — on any error, or if the process dies midway —
        none, leaving the history exactly as it was.

        Written in short transactions of about ``batch_messages`` messages, hidden (staged) until the last
        one shows them all at once, so another process can read and write (a chat) between the batches and
        never sees half an import. A failed import deletes what it staged; one whose process died is purged
        by the next :meth:`recover`.

        Idempotent by ``tree.conversation.uid``: a conversation already present is not written again (one in
        the bin is brought back). Message ids in a tree only link parents; children may come in any order.
        Every tree is checked (:class:`InvalidTree`) before anything is written. ``progress(done, total)`` is
        called for each tree once its batch is written.
        """
        ordered = [parents_first(tree.messages) for tree in trees]
        stage = f"{self._writer}|{uuid.uuid4().hex}"
        results: list[ImportedTree] = []
        restored: list[int] = []
        pending = list(zip(trees, ordered, strict=True))
        done = 0
        try:
            while done < len(pending):
                written, first = 0, done
                with self._tx():
                    while done < len(pending) and (written == 0 or written < batch_messages):
                        tree, messages = pending[done]
                        results.append(self._stage_tree(tree, messages, stage, restored))
                        written += len(messages) + 1
                        done += 1
                # Between batches, with the write lock released.
                for number in range(first + 1, done + 1):
                    if progress is not None:
                        progress(number, len(trees))
                if done < len(pending):
                    time.sleep(IMPORT_BATCH_PAUSE_S)  # a waiting writer's turn (see the constant)
            with self._tx():
                self._conn.execute(
                    "UPDATE conversations SET deleted_at=NULL, staged_by='' WHERE staged_by=?", (stage,)
                )
                for conversation_id in restored:
                    self._conn.execute(
                        "UPDATE conversations SET deleted_at=NULL WHERE id=?", (conversation_id,)
                    )
        except BaseException:
            self._drop_stage(stage)
            raise
        # Only once committed: a rolled-back restore must still be purged at close.
        self._deleted_here.difference_update(restored)
        return results

    def _stage_tree(
        self, tree: ConversationTree, messages: Sequence[StoredMessage], stage: str, restored: list[int]
    ) -> ImportedTree:
        found = self._conn.execute(
            "SELECT id, deleted_at IS NOT NULL, staged_by FROM conversations WHERE uid=?",
            (tree.conversation.uid,),
        ).fetchone()
        if found is None:
            return ImportedTree(insert_tree(self._conn, tree, messages, staged_by=stage), "imported")
        if found[2] == stage:  # the same conversation twice in this import
            return ImportedTree(int(found[0]), "present")
        if found[1] and not found[2]:
            restored.append(int(found[0]))
            return ImportedTree(int(found[0]), "restored")
        return ImportedTree(int(found[0]), "present")

    def _drop_stage(self, stage: str) -> None:
        # Best effort: if even this fails (disk gone), recover() purges the stage once this process is gone.
        if self._conn.in_transaction:
            self._conn.rollback()
        try:
            with self._tx():
                self._conn.execute("DELETE FROM conversations WHERE staged_by=?", (stage,))
        except sqlite3.Error:
            log.warning("could not remove a failed import's staged rows", exc_info=True)
