"""Between the history store's rows (``engine.history.records``) and the export model, both ways.

The store numbers messages with integers; files carry them as strings and import renumbers them. The
conversation's ``uid`` is the stable identity that makes an import idempotent.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engine.history.records import Conversation, ConversationTree, ReplyNumbers, StoredMessage
from engine.history.times import instant
from engine.transfer.model import ExportedConversation, ExportedMessage

_NUMBER_FIELDS = ("prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s", "wall_s")


def from_tree(tree: ConversationTree) -> ExportedConversation:
    """One stored conversation, every branch, as the export model."""
    conv = tree.conversation
    shown = tree.shown_leaf() if tree.messages else None
    return ExportedConversation(
        id=conv.uid,
        title=conv.title,
        created=_instant(conv.created_at),
        updated=_instant(conv.updated_at),
        tags=tuple(conv.tags),
        folder=conv.folder or None,
        pinned=conv.pinned,
        system_prompt=conv.system_prompt,
        settings=dict(conv.settings),
        shown_leaf=None if shown is None else str(shown),
        messages=tuple(_exported_message(m) for m in tree.messages),
    )


def _exported_message(m: StoredMessage) -> ExportedMessage:
    numbers = {name: getattr(m.numbers, name) for name in _NUMBER_FIELDS}
    return ExportedMessage(
        id=str(m.id),
        parent_id=None if m.parent_id is None else str(m.parent_id),
        role=m.role,
        text=m.text,
        created=_instant(m.created_at),
        reasoning=m.reasoning or None,
        state=m.state,
        model=m.model or None,
        finish_reason=m.finish_reason or None,
        error=m.error or None,
        numbers={k: v for k, v in numbers.items() if v is not None},
        tool_calls=tuple(part["tool_call"] for part in _parts(m, "tool_call")),
        tool_result=next(iter(_parts(m, "tool_call_result")), {}).get("tool_call_result"),
        tool_meta=_meta(m, "tool", dict) or {},
        sources=_sources(m),
    )


def _meta(m: StoredMessage, key: str, kind: type) -> Any:
    meta = m.content.get("meta") if isinstance(m.content, dict) else None
    found = meta.get(key) if isinstance(meta, dict) else None
    return found if isinstance(found, kind) else None


def _sources(m: StoredMessage) -> tuple[dict[str, Any], ...]:
    meta = m.content.get("meta") if isinstance(m.content, dict) else None
    found = meta.get("sources") if isinstance(meta, dict) else None
    return tuple(s for s in found if isinstance(s, dict)) if isinstance(found, list) else ()


def _parts(m: StoredMessage, kind: str) -> list[dict[str, Any]]:
    """The message's content parts of one kind (``tool_call``, ``tool_call_result``) that are well formed."""
    parts = m.content.get("content") if isinstance(m.content, dict) else None
    out = []
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, dict) and isinstance(part.get(kind), dict):
            if kind == "tool_call_result" and not isinstance(part[kind].get("result"), str):
                part = {kind: {**part[kind], "result": json.dumps(part[kind].get("result"), default=str)}}
            out.append(part)
    return out


def _content(m: ExportedMessage) -> dict[str, Any]:
    """``ChatMessage.to_dict()`` of a message with tool calls or a tool's result (``{}``: plain text, which
    the store builds itself)."""
    if not m.tool_calls and m.tool_result is None and not m.sources:
        return {}
    meta: dict[str, Any] = {"sources": [dict(s) for s in m.sources]} if m.sources else {}
    if m.tool_meta:
        meta["tool"] = dict(m.tool_meta)
    parts: list[dict[str, Any]] = []
    if m.reasoning:
        parts.append({"reasoning": {"reasoning_text": m.reasoning, "extra": {}}})
    if m.text and m.tool_result is None:
        parts.append({"text": m.text})
    parts += [{"tool_call": dict(call)} for call in m.tool_calls]
    if m.tool_result is not None:
        parts.append({"tool_call_result": dict(m.tool_result)})
    return {"role": m.role, "meta": meta, "name": None, "content": parts}


def to_tree(conv: ExportedConversation) -> ConversationTree:
    """The store's import shape; message ids become 1..n in the (parents-first) order of ``conv.messages``."""
    ids = {m.id: i for i, m in enumerate(conv.messages, 1)}
    messages = tuple(
        StoredMessage(
            id=ids[m.id],
            conversation_id=0,
            parent_id=None if m.parent_id is None else ids[m.parent_id],
            role=m.role,
            text=m.text,
            reasoning=m.reasoning or "",
            state=m.state,
            model=m.model or "",
            finish_reason=m.finish_reason or "",
            numbers=_numbers(m),
            error=m.error or "",
            created_at=m.created.timestamp(),
            updated_at=m.created.timestamp(),
            content=_content(m),
        )
        for m in conv.messages
    )
    conversation = Conversation(
        id=0,
        uid=conv.source_id,
        title=conv.title,
        created_at=conv.created.timestamp(),
        updated_at=conv.updated.timestamp(),
        pinned=conv.pinned,
        folder=conv.folder or "",
        tags=tuple(conv.tags),
        settings=dict(conv.settings),
        system_prompt=conv.system_prompt,
        current_leaf_id=None if conv.shown_leaf is None else ids[conv.shown_leaf],
    )
    return ConversationTree(conversation, messages)


def _numbers(m: ExportedMessage) -> ReplyNumbers:
    def num(name: str) -> float | None:
        value = m.numbers.get(name)
        return None if value is None else float(value)

    def count(name: str) -> int | None:
        value = m.numbers.get(name)
        return None if value is None else int(value)

    return ReplyNumbers(
        prompt_tokens=count("prompt_tokens"),
        completion_tokens=count("completion_tokens"),
        ttft_s=num("ttft_s"),
        tokens_per_s=num("tokens_per_s"),
        wall_s=num("wall_s"),
    )


def _instant(seconds: float) -> datetime:
    # Never raises: a time out of range in an old database exports as the nearest valid one.
    return instant(seconds)
