"""Between the history database's rows and the store's models: reading rows, and writing a whole
conversation tree (import). Functions here run inside the caller's transaction; they never commit."""

from __future__ import annotations

import heapq
import json
import math
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from engine.history.records import (
    MESSAGE_STATES,
    Conversation,
    ConversationTree,
    InvalidTree,
    MessageState,
    ReplyNumbers,
    Role,
    StoredMessage,
    chat_message_dict,
)
from engine.history.times import clamp_seconds

CONV_COLS = (
    "id, uid, title, created_at, updated_at, pinned, folder, tags, settings, system_prompt, current_leaf_id,"
    " deleted_at"
)
MSG_COLS = (
    "id, conversation_id, parent_id, role, text, reasoning, state, model, finish_reason, prompt_tokens,"
    " completion_tokens, ttft_s, tokens_per_s, wall_s, error, created_at, updated_at, content"
)


# Reading is forgiving, field by field: one damaged row (a time out of range, JSON that does not parse, a
# wrong type written by hand or by an older version) reads with a neutral value instead of raising, so it
# can never make the rest of the history unreadable. Writing stays strict.


def _json(value: Any, kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError, RecursionError):
        return kind()
    return parsed if isinstance(parsed, kind) else kind()


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def conversation_from_row(row: Sequence[Any]) -> Conversation:
    return Conversation(
        id=int(row[0]),
        uid=str(row[1]),
        title=str(row[2]),
        created_at=clamp_seconds(row[3]),
        updated_at=clamp_seconds(row[4]),
        pinned=bool(row[5]),
        folder=str(row[6]),
        tags=tuple(str(t) for t in _json(row[7], list)),
        settings=_json(row[8], dict),
        system_prompt=str(row[9]),
        current_leaf_id=_int(row[10]),
        deleted_at=None if row[11] is None else clamp_seconds(row[11]),
    )


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    role: Role = row[3] if row[3] in ("system", "user", "assistant", "tool") else "user"
    state: MessageState = row[6] if row[6] in MESSAGE_STATES else "interrupted"
    return StoredMessage(
        id=int(row[0]),
        conversation_id=int(row[1]),
        parent_id=_int(row[2]),
        role=role,
        text=str(row[4]),
        reasoning=str(row[5]),
        state=state,
        model=str(row[7]),
        finish_reason=str(row[8]),
        numbers=ReplyNumbers(
            _int(row[9]), _int(row[10]), _number(row[11]), _number(row[12]), _number(row[13])
        ),
        error=str(row[14]),
        created_at=clamp_seconds(row[15]),
        updated_at=clamp_seconds(row[16]),
        content=_json(row[17], dict),
    )


def parents_first(messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    """Parents before children, otherwise in id order (Kahn's algorithm with a heap), so sibling order —
    and with it "the most recent reply" — survives a renumbering. Raises :class:`InvalidTree`."""
    by_id = {m.id: m for m in messages}
    if len(by_id) != len(messages):
        raise InvalidTree("two messages share an id")
    for m in messages:
        if m.parent_id is not None and m.parent_id not in by_id:
            raise InvalidTree(f"message {m.id} answers message {m.parent_id}, which is missing")
    children: dict[int | None, list[int]] = {}
    for m in messages:
        children.setdefault(m.parent_id, []).append(m.id)
    ready = list(children.get(None, []))
    heapq.heapify(ready)
    ordered: list[StoredMessage] = []
    while ready:
        current = heapq.heappop(ready)
        ordered.append(by_id[current])
        for child in children.get(current, []):
            heapq.heappush(ready, child)
    if len(ordered) != len(messages):
        raise InvalidTree("the messages' parents form a cycle")
    return ordered


def insert_tree(
    conn: sqlite3.Connection, tree: ConversationTree, ordered: Sequence[StoredMessage], *, staged_by: str = ""
) -> int:
    """Insert ``tree`` (messages already in :func:`parents_first` order) as a new conversation; returns
    its id. Runs in the caller's transaction. ``staged_by``: insert it hidden (in the bin) as part of that
    import's stage, shown when the import completes."""
    conv = tree.conversation
    cur = conn.execute(
        "INSERT INTO conversations (uid, title, created_at, updated_at, pinned, folder, tags,"
        " settings, system_prompt, staged_by, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            conv.uid,
            conv.title,
            clamp_seconds(conv.created_at),
            clamp_seconds(conv.updated_at),
            int(conv.pinned),
            conv.folder,
            json.dumps(list(conv.tags)),
            json.dumps(conv.settings),
            conv.system_prompt,
            staged_by,
            time.time() if staged_by else None,
        ),
    )
    new_conv = int(cur.lastrowid or 0)
    new_ids: dict[int, int] = {}
    for m in ordered:
        # A reply that was streaming when exported has no writer here: it is interrupted.
        state = "interrupted" if m.state == "streaming" else m.state
        content = m.content or chat_message_dict(m.role, m.text, m.reasoning)
        n = m.numbers
        cur = conn.execute(
            "INSERT INTO messages (conversation_id, parent_id, role, text, content, reasoning, state,"
            " model, finish_reason, prompt_tokens, completion_tokens, ttft_s, tokens_per_s, wall_s,"
            " error, created_at, updated_at) VALUES (" + ", ".join("?" * 17) + ")",
            (
                new_conv,
                None if m.parent_id is None else new_ids[m.parent_id],
                m.role,
                m.text,
                json.dumps(content),
                m.reasoning,
                state,
                m.model,
                m.finish_reason,
                n.prompt_tokens,
                n.completion_tokens,
                n.ttft_s,
                n.tokens_per_s,
                n.wall_s,
                m.error,
                clamp_seconds(m.created_at or conv.created_at),
                clamp_seconds(m.updated_at or m.created_at or conv.updated_at),
            ),
        )
        new_ids[m.id] = int(cur.lastrowid or 0)
    leaf = conv.current_leaf_id
    if leaf is not None and leaf in new_ids:
        conn.execute("UPDATE conversations SET current_leaf_id=? WHERE id=?", (new_ids[leaf], new_conv))
    return new_conv
