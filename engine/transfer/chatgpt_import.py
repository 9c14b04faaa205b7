"""ChatGPT's data export (``conversations.json``) turned into our conversation trees.

Each conversation is a ``mapping`` of nodes linked by ``parent``/``children``; ``current_node`` is the leaf
the user last saw. We keep every branch and that leaf, and what the ChatGPT page shows: user and assistant
text.
Hidden nodes (the empty root, hidden system messages, tool calls and tool output, reasoning recaps) are left
out and their children re-attached to the nearest kept ancestor; the model's thoughts become the reasoning of
the answer that follows them, and custom instructions become the system prompt.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from engine.history.times import EARLIEST, RANGE_TEXT, check_instant
from engine.transfer.errors import ImportRejected
from engine.transfer.json_format import MAX_ID, MAX_MESSAGES, MAX_SHORT, MAX_TEXT
from engine.transfer.model import ExportedConversation, ExportedMessage, MessageState, validate

SOURCE_PREFIX = "chatgpt:"


def looks_like_chatgpt(data: object) -> bool:
    """A list of objects with a ``mapping`` (an empty list counts: an account without chats)."""
    return isinstance(data, list) and all(isinstance(c, dict) and "mapping" in c for c in data[:5])


def parse_chatgpt(data: object, where: str = "$") -> list[ExportedConversation]:
    """Every conversation of the export; raise :class:`ImportRejected` at the first malformed place."""
    if not isinstance(data, list):
        raise ImportRejected("a ChatGPT export is a list of conversations", where)
    return [_conversation(item, f"{where}[{i}]") for i, item in enumerate(data)]


_Node = tuple[str | None, list[str], dict[str, Any] | None]  # parent, children, message


def _nodes(mapping: dict[str, Any], where: str) -> dict[str, _Node]:
    """The mapping's nodes, each checked: an id, a parent that exists, children as ids, a message object."""
    nodes: dict[str, _Node] = {}
    for key, node_raw in mapping.items():
        place = f"{where}.mapping[{key!r}]"
        node = _obj(node_raw, place)
        _ident(key, place)
        parent = node.get("parent")
        if parent is not None:
            parent = _ident(parent, f"{place}.parent")
            if parent not in mapping:
                raise ImportRejected(f"the parent {parent!r} does not exist", f"{place}.parent")
        children = node.get("children", [])
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise ImportRejected("children must be a list of node ids", f"{place}.children")
        message = node.get("message")
        nodes[key] = (parent, children, None if message is None else _obj(message, f"{place}.message"))
    return nodes


def _conversation(raw: object, where: str) -> ExportedConversation:
    conv = _obj(raw, where)
    mapping = _obj(conv.get("mapping"), f"{where}.mapping")
    if len(mapping) > MAX_MESSAGES:
        raise ImportRejected(f"the conversation has more than {MAX_MESSAGES:,} nodes", f"{where}.mapping")
    conv_id = _ident(conv.get("conversation_id") or conv.get("id"), f"{where}.id")
    created = _time(conv.get("create_time"), f"{where}.create_time") or EARLIEST
    updated = _time(conv.get("update_time"), f"{where}.update_time") or created
    nodes = _nodes(mapping, where)
    _refuse_cycles(nodes, f"{where}.mapping")

    kept: list[ExportedMessage] = []
    calls: dict[str, dict[str, Any]] = {}  # node id of a kept tool call -> its ToolCall dict
    kept_for: dict[str, str | None] = {}  # node id -> nearest kept ancestor-or-self
    system_prompt = ""
    # The parent links are the truth; `children` only gives the order of siblings.
    kids: dict[str | None, list[str]] = {}
    for key, (parent, _, _) in nodes.items():
        kids.setdefault(parent, []).append(key)
    roots = kids.get(None, [])
    # Depth-first, iteratively (a chain can be as long as the conversation); siblings in `children` order.
    stack: list[tuple[str, str | None, str | None, datetime]] = [
        (r, None, None, created) for r in reversed(roots)
    ]
    while stack:
        key, kept_parent, reasoning, last_time = stack.pop()
        _, children, message = nodes[key]
        place = f"{where}.mapping[{key!r}].message"
        here = kept_parent
        if message is not None:
            when = _time(message.get("create_time"), f"{place}.create_time") or last_time
            last_time = when
            role, text, thoughts, instructions = _content(message, place)
            if instructions:
                system_prompt = instructions
            call_to = _tool_recipient(message, role)
            if thoughts:
                reasoning = f"{reasoning}\n\n{thoughts}" if reasoning else thoughts
            elif role is not None and (call_to or role == "tool"):
                # A tool call or a tool's output: kept as such; pending reasoning waits for the answer.
                kept.append(_tool_message(key, kept_parent, role, text, when, message, place, call_to, calls))
                here = key
            elif role is not None:
                kept.append(_message(key, kept_parent, role, text, when, reasoning, message, place))
                here, reasoning = key, None
        kept_for[key] = here
        stack.extend(
            (child, here, reasoning, last_time) for child in reversed(_ordered(kids.get(key, []), children))
        )

    current = conv.get("current_node")
    shown = kept_for.get(current) if isinstance(current, str) else None
    title = conv.get("title")
    result = ExportedConversation(
        id=conv_id,
        source=SOURCE_PREFIX + conv_id,
        title=_text(title, f"{where}.title", MAX_SHORT) if title is not None else "",
        created=created,
        updated=max(updated, created),
        messages=tuple(kept),
        shown_leaf=shown,
        system_prompt=system_prompt,
        settings={},
    )
    return validate(result, where)


def _content(message: dict[str, Any], where: str) -> tuple[str | None, str, str, str]:
    """(role if shown else None, text, thoughts, custom instructions) of one node's message."""
    author = _obj(message.get("author"), f"{where}.author")
    role = author.get("role")
    if role not in ("user", "assistant", "system", "tool"):
        raise ImportRejected(f"unknown author role {role!r}", f"{where}.author.role")
    content = _obj(message.get("content"), f"{where}.content")
    kind = content.get("content_type", "text")
    metadata = _meta(message)
    hidden = bool(metadata.get("is_visually_hidden_from_conversation"))
    if kind == "user_editable_context":
        parts = [content.get("user_profile"), content.get("user_instructions")]
        return None, "", "", "\n\n".join(p for p in parts if isinstance(p, str) and p)
    if kind == "thoughts":
        thoughts = content.get("thoughts")
        if not isinstance(thoughts, list):
            raise ImportRejected("thoughts must be a list", f"{where}.content.thoughts")
        texts = [t.get("content", "") for t in thoughts if isinstance(t, dict)]
        return None, "", _text("\n\n".join(t for t in texts if isinstance(t, str)), where, MAX_TEXT), ""
    recipient = message.get("recipient", "all")
    if hidden:
        return None, "", "", ""
    if (role == "tool" or recipient not in (None, "all")) and kind in ("code", "execution_output"):
        # A call of ChatGPT's tools (code for "python", ...) or what the tool gave back.
        return role, _text(content.get("text", ""), f"{where}.content.text", MAX_TEXT), "", ""
    if kind in ("text", "multimodal_text"):
        parts = content.get("parts", [])
        if not isinstance(parts, list):
            raise ImportRejected("parts must be a list", f"{where}.content.parts")
        text = "\n".join(_part(p) for p in parts)
    elif kind == "code":
        code = _text(content.get("text", ""), f"{where}.content.text", MAX_TEXT)
        text = f"```{content.get('language') or ''}\n{code}\n```" if code else ""
    else:
        # Browsing displays, reasoning recaps and other UI-only kinds are not part of the dialogue.
        return None, "", "", ""
    text = _text(text, f"{where}.content.parts", MAX_TEXT)
    if role == "system" and not text.strip():
        return None, "", "", ""
    if not text.strip() and role == "assistant":
        return None, "", "", ""
    return role, text, "", ""


def _tool_recipient(message: dict[str, Any] | None, role: str | None) -> str | None:
    """The tool an assistant message is addressed to (``python``, ``browser``, ...), else ``None``."""
    recipient = message.get("recipient") if message is not None else None
    if role == "assistant" and isinstance(recipient, str) and recipient not in ("", "all"):
        return recipient
    return None


def _tool_message(
    key: str,
    parent: str | None,
    role: str,
    text: str,
    when: datetime,
    message: dict[str, Any],
    where: str,
    call_to: str | None,
    calls: dict[str, dict[str, Any]],
) -> ExportedMessage:
    """A tool call (an assistant message addressed to a tool) or a tool's output, in Haystack's shapes: the
    call's input is kept as its ``input`` argument; a result answers the call it follows."""
    base = _message(key, parent, "assistant", text, when, None, message, where)
    if call_to is not None:
        call = {"tool_name": _text(call_to, f"{where}.recipient", MAX_SHORT), "arguments": {"input": text}}
        calls[key] = {**call, "id": key, "extra": None}
        return replace(base, text="", tool_calls=(calls[key],))
    author = _meta_author(message)
    origin = calls.get(parent or "") or {
        "tool_name": author or "tool",
        "arguments": {},
        "id": None,
        "extra": None,
    }
    return replace(
        base, role="tool", model=None, tool_result={"result": text, "origin": origin, "error": False}
    )


def _meta_author(message: dict[str, Any]) -> str:
    author = message.get("author")
    name = author.get("name") if isinstance(author, dict) else None
    return name if isinstance(name, str) else ""


def _meta(message: dict[str, Any]) -> dict[str, Any]:
    metadata = message.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _part(part: object) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict):
        # Images and files are not in conversations.json, only pointers to them.
        kind = str(part.get("content_type", "attachment")).replace("_asset_pointer", "")
        return f"[{kind} not included in the export]"
    return ""


def _message(
    key: str,
    parent: str | None,
    role: str,
    text: str,
    when: datetime,
    reasoning: str | None,
    message: dict[str, Any],
    where: str,
) -> ExportedMessage:
    metadata = _meta(message)
    model = metadata.get("model_slug") if role == "assistant" else None
    finish = metadata.get("finish_details")
    finish_reason = finish.get("type") if isinstance(finish, dict) else None
    status = message.get("status")
    state: MessageState = "complete"
    if finish_reason == "interrupted":
        state = "stopped"
    elif status == "in_progress":
        state = "interrupted"
    elif status not in (None, "finished_successfully", "finished_partial_completion"):
        state = "failed"
    return ExportedMessage(
        id=key,
        parent_id=parent,
        role="user" if role == "user" else "system" if role == "system" else "assistant",
        text=text,
        created=when,
        reasoning=reasoning,
        state=state,
        model=_text(model, f"{where}.metadata.model_slug", MAX_SHORT) if isinstance(model, str) else None,
        finish_reason=_text(finish_reason, f"{where}.metadata.finish_details", MAX_SHORT)
        if isinstance(finish_reason, str)
        else None,
    )


def _ordered(actual: list[str], listed: list[str]) -> list[str]:
    rank = {child: i for i, child in enumerate(listed)}
    return sorted(actual, key=lambda child: rank.get(child, len(rank)))


def _refuse_cycles(nodes: dict[str, tuple[str | None, list[str], dict[str, Any] | None]], where: str) -> None:
    done: set[str] = set()
    for start in nodes:
        trail: dict[str, None] = {}
        cur: str | None = start
        while cur is not None and cur not in done:
            if cur in trail:
                loop = list(trail)[list(trail).index(cur) :][:6]
                raise ImportRejected(
                    "the parent links form a cycle (" + " -> ".join([*loop, cur]) + ")", where
                )
            trail[cur] = None
            cur = nodes[cur][0]
        done.update(trail)


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImportRejected(f"expected an object, found {type(value).__name__}", where)
    return value


def _ident(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        raise ImportRejected(f"expected an id of 1 to {MAX_ID} characters", where)
    return value


def _text(value: object, where: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ImportRejected(f"expected text, found {type(value).__name__}", where)
    if len(value) > limit:
        raise ImportRejected(
            f"text of {len(value):,} characters is longer than the limit of {limit:,}", where
        )
    return value


def _time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ImportRejected("a time must be a number of seconds since 1970", where)
    try:
        return check_instant(datetime.fromtimestamp(value, UTC))
    except (OverflowError, OSError, ValueError):
        raise ImportRejected(f"the time {value!r} is out of range ({RANGE_TEXT})", where) from None
