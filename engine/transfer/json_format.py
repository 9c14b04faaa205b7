"""Our own conversation file, ``{"format": "vllm-desk.conversation", "version": 2, ...}``.

Documented in docs/export-format.md.

Lossless: :func:`from_dict` of :func:`to_dict` gives back an equal :class:`ExportedConversation`. Files of any
earlier version are migrated step by step before validation; a newer version is refused with a clear error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, TextIO

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from engine import APP_NAME, __version__
from engine.history.times import RANGE_TEXT, check_instant
from engine.transfer.errors import ImportRejected
from engine.transfer.model import ExportedConversation, ExportedMessage, MessageState, Role, validate

FORMAT = "vllm-desk.conversation"
VERSION = 2
# Many conversations in one file (a whole-history backup): each entry is what a single file's
# "conversation" holds, in the same VERSION.
MANY_FORMAT = "vllm-desk.conversations"
MANY_VERSION = 1

# Limits that keep a hostile file from exhausting memory or the database; generous for real chats.
MAX_TEXT = 4_000_000
MAX_SHORT = 10_000
MAX_ID = 200
MAX_MESSAGES = 100_000

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Short = Annotated[str, StringConstraints(max_length=MAX_SHORT)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]


def _iso_8601(value: object) -> datetime:
    # Only ISO 8601 text: a bare number could be seconds or milliseconds, so it is refused, not guessed.
    if not isinstance(value, str):
        # ValueError, not TypeError: pydantic reports only the former as a validation error.
        raise ValueError("a time must be ISO 8601 text such as 2026-11-26T12:00:00+00:00")  # noqa: TRY004
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 time") from None
    # Out of range, it would import and then break every listing and export of the history.
    return check_instant(parsed)


Instant = Annotated[datetime, BeforeValidator(_iso_8601)]


class _Strict(BaseModel):
    # Unknown keys are ignored so that a file from a newer minor revision still imports.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _ToolCall(_Strict):
    tool_name: Short
    arguments: dict[Short, pydantic.JsonValue] = Field(default_factory=dict)
    id: Short | None = None
    extra: dict[Short, pydantic.JsonValue] | None = None


class _ToolResult(_Strict):
    result: Text
    origin: _ToolCall
    error: bool = False


class _Message(_Strict):
    id: Ident
    parent_id: Ident | None = None
    role: Role
    text: Text
    created: Instant
    reasoning: Text | None = None
    state: MessageState = "complete"
    model: Short | None = None
    finish_reason: Short | None = None
    error: Text | None = None
    numbers: dict[Short, int | float] = Field(default_factory=dict, max_length=100)
    tool_calls: list[_ToolCall] = Field(default_factory=list, max_length=1000)
    tool_result: _ToolResult | None = None
    tool_meta: dict[Short, pydantic.JsonValue] = Field(default_factory=dict)
    sources: list[dict[Short, pydantic.JsonValue]] = Field(default_factory=list, max_length=1000)


class _Conversation(_Strict):
    id: Ident
    source: Short = ""
    title: Short
    created: Instant
    updated: Instant
    tags: list[Short] = Field(default_factory=list, max_length=1000)
    folder: Short | None = None
    pinned: bool = False
    system_prompt: Text = ""
    settings: dict[Short, pydantic.JsonValue] = Field(default_factory=dict)
    shown_leaf: Ident | None = None
    messages: list[_Message] = Field(default_factory=list, max_length=MAX_MESSAGES)


class _File(_Strict):
    format: str
    version: int
    conversation: _Conversation


def to_dict(conv: ExportedConversation, *, exported_at: datetime | None = None) -> dict[str, Any]:
    """The JSON object of one conversation (current version)."""
    when = exported_at or datetime.now(UTC)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_by": f"{APP_NAME} {__version__}",
        "exported_at": _instant(when),
        "conversation": {
            "id": conv.id,
            "source": conv.source,
            "title": conv.title,
            "created": _instant(conv.created),
            "updated": _instant(conv.updated),
            "tags": list(conv.tags),
            "folder": conv.folder,
            "pinned": conv.pinned,
            "system_prompt": conv.system_prompt,
            "settings": dict(conv.settings),
            "shown_leaf": conv.shown_leaf,
            "messages": [
                {
                    "id": m.id,
                    "parent_id": m.parent_id,
                    "role": m.role,
                    "text": m.text,
                    "reasoning": m.reasoning,
                    "state": m.state,
                    "model": m.model,
                    "finish_reason": m.finish_reason,
                    "error": m.error,
                    "numbers": dict(m.numbers),
                    "created": _instant(m.created),
                    **_tool_fields(m),
                }
                for m in conv.messages
            ],
        },
    }


def _tool_fields(m: ExportedMessage) -> dict[str, Any]:
    # Only on messages that have them, so files without tools read as before.
    out: dict[str, Any] = {}
    if m.tool_calls:
        out["tool_calls"] = [dict(call) for call in m.tool_calls]
    if m.tool_result is not None:
        out["tool_result"] = dict(m.tool_result)
    if m.tool_meta:
        out["tool_meta"] = dict(m.tool_meta)
    if m.sources:
        out["sources"] = [dict(source) for source in m.sources]
    return out


def write_many(
    conversations: Iterable[ExportedConversation], out: TextIO, *, exported_at: datetime | None = None
) -> int:
    """Write one JSON document holding every conversation (streamed: one conversation in memory at a time);
    returns how many were written. :func:`from_many` reads it back losslessly."""
    when = exported_at or datetime.now(UTC)
    head = {
        "format": MANY_FORMAT,
        "version": MANY_VERSION,
        "conversation_version": VERSION,
        "exported_by": f"{APP_NAME} {__version__}",
        "exported_at": _instant(when),
    }
    out.write(json.dumps(head, ensure_ascii=False, indent=2)[:-2] + ',\n  "conversations": [')
    count = 0
    for conv in conversations:
        entry = to_dict(conv, exported_at=when)["conversation"]
        out.write(("," if count else "") + "\n    ")
        out.write(json.dumps(entry, ensure_ascii=False, allow_nan=False))
        count += 1
    out.write("\n  ]\n}\n")
    return count


def is_many(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == MANY_FORMAT


def from_many(data: object, where: str = "$") -> list[ExportedConversation]:
    """Validate a many-conversations file: each entry as strictly as a single file, errors at their place."""
    if not is_many(data):
        raise ImportRejected(f"this is not a {APP_NAME} conversations file", where)
    assert isinstance(data, dict)
    version = data.get("version")
    if type(version) is not int or version < 1:
        raise ImportRejected(
            "the file's version is missing or not a positive whole number", f"{where}.version"
        )
    if version > MANY_VERSION:
        raise ImportRejected(
            f"the file was made by a newer {APP_NAME} (format version {version}; this one reads up to "
            f"{MANY_VERSION})",
            f"{where}.version",
        )
    inner = data.get("conversation_version", VERSION)
    entries = data.get("conversations")
    if not isinstance(entries, list):
        raise ImportRejected("the file has no list of conversations", f"{where}.conversations")
    if type(inner) is not int:
        raise ImportRejected("conversation_version is not a whole number", f"{where}.conversation_version")
    out = []
    for number, entry in enumerate(entries):
        place = f"{where}.conversations[{number}]"
        single = {"format": FORMAT, "version": inner, "conversation": entry}
        if inner == 1 and isinstance(entry, dict):  # version 1 files kept the conversation at the top
            single = {"format": FORMAT, **entry, "version": 1}
        out.append(from_dict(single, place))
    return out


def dumps(conv: ExportedConversation, *, exported_at: datetime | None = None) -> str:
    """Serialise one conversation; ``ensure_ascii=False`` keeps text readable, NaN is refused."""
    return json.dumps(to_dict(conv, exported_at=exported_at), ensure_ascii=False, indent=2, allow_nan=False)


def is_ours(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def from_dict(data: object, where: str = "$") -> ExportedConversation:
    """Migrate and validate a parsed file; raise :class:`ImportRejected` saying what is wrong and where."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ImportRejected(f"this is not a {APP_NAME} conversation file", where)
    version = data.get("version")
    if type(version) is not int or version < 1:
        raise ImportRejected(
            "the file's version is missing or not a positive whole number", f"{where}.version"
        )
    if version > VERSION:
        raise ImportRejected(
            f"the file was made by a newer {APP_NAME} (format version {version}; "
            f"this one reads up to {VERSION})",
            f"{where}.version",
        )
    while version < VERSION:
        data = MIGRATIONS[version](data, where)
        version = data["version"]
    try:
        parsed = _File.model_validate(data)
    except pydantic.ValidationError as exc:
        raise rejection(exc, where) from None
    return validate(_to_model(parsed.conversation), f"{where}.conversation")


def rejection(exc: pydantic.ValidationError, where: str) -> ImportRejected:
    """The first validation error as a sentence with a JSON path (``$.conversation.messages[3].role``)."""
    error = exc.errors(include_url=False)[0]
    path = where
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    found = error.get("input")
    what = error["msg"]
    if error["type"] != "missing":
        what += f" (found {_describe(found)})"
    return ImportRejected(what[0].lower() + what[1:], path)


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f"text of {len(value):,} characters" if len(value) > 40 else f"text {value!r}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value):,} items"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def _to_model(c: _Conversation) -> ExportedConversation:
    return ExportedConversation(
        id=c.id,
        source=c.source,
        title=c.title,
        created=_aware(c.created),
        updated=_aware(c.updated),
        tags=tuple(c.tags),
        folder=c.folder,
        pinned=c.pinned,
        system_prompt=c.system_prompt,
        settings=c.settings,
        shown_leaf=c.shown_leaf,
        messages=tuple(
            ExportedMessage(
                id=m.id,
                parent_id=m.parent_id,
                role=m.role,
                text=m.text,
                created=_aware(m.created),
                reasoning=m.reasoning,
                state=m.state,
                model=m.model,
                finish_reason=m.finish_reason,
                error=m.error,
                numbers=m.numbers,
                tool_calls=tuple(call.model_dump() for call in m.tool_calls),
                tool_result=m.tool_result.model_dump() if m.tool_result is not None else None,
                tool_meta=m.tool_meta,
                sources=tuple(m.sources),
            )
            for m in c.messages
        ),
    )


def _instant(when: datetime) -> str:
    return _aware(when).astimezone(UTC).isoformat()


def _aware(when: datetime) -> datetime:
    # Naive times in a file are taken as UTC rather than the importing machine's zone.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _v1_to_v2(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Version 1 (0.0.x previews) kept one linear branch with Unix times and a conversation-wide model."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise ImportRejected("version 1 files need a list of messages", f"{where}.messages")
    conv_id = data.get("id")
    if not isinstance(conv_id, str) or not conv_id:
        raise ImportRejected("the conversation id is missing", f"{where}.id")
    created = _v1_time(data.get("created"), f"{where}.created")
    out: list[dict[str, Any]] = []
    parent: str | None = None
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise ImportRejected("a message must be an object", f"{where}.messages[{i}]")
        mid = f"{conv_id}-{i}"
        role = msg.get("role")
        out.append(
            {
                "id": mid,
                "parent_id": parent,
                "role": role,
                "text": msg.get("content"),
                "reasoning": msg.get("reasoning"),
                "model": data.get("model") if role == "assistant" else None,
                "created": _v1_time(
                    msg.get("created", data.get("created")), f"{where}.messages[{i}].created"
                ),
            }
        )
        parent = mid
    return {
        "format": FORMAT,
        "version": 2,
        "conversation": {
            "id": conv_id,
            "title": data.get("title", ""),
            "created": created,
            "updated": out[-1]["created"] if out else created,
            "system_prompt": data.get("system_prompt", ""),
            "settings": data.get("settings", {}),
            "shown_leaf": parent,
            "messages": out,
        },
    }


def _v1_time(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ImportRejected("a time must be a number of seconds since 1970", where)
    try:
        return check_instant(datetime.fromtimestamp(value, UTC)).isoformat()
    except (OverflowError, OSError, ValueError):
        raise ImportRejected(f"the time {value!r} is out of range ({RANGE_TEXT})", where) from None


MIGRATIONS: dict[int, Callable[[dict[str, Any], str], dict[str, Any]]] = {1: _v1_to_v2}
