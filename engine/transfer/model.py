"""The shape of one exported conversation: a tree of messages with everything needed to rebuild it.

These dataclasses are the common ground of every format: the store's adapter produces them for export,
the parsers (our JSON, ChatGPT's ``conversations.json``) produce them for import, and the renderers
(JSON, Markdown, HTML) are pure functions over them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from engine.transfer.errors import ImportRejected

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
MessageState = Literal["complete", "streaming", "stopped", "interrupted", "failed"]
STATES: tuple[str, ...] = ("complete", "streaming", "stopped", "interrupted", "failed")

# A generation setting is any JSON value (numbers, strings, lists of stop sequences, extra_body dicts).
JsonValue = Any


@dataclass(frozen=True)
class ExportedMessage:
    """One message of the tree. ``parent_id`` is ``None`` for a root; siblings are alternative branches."""

    id: str
    parent_id: str | None
    role: Role
    text: str
    created: datetime
    reasoning: str | None = None
    state: MessageState = "complete"
    model: str | None = None
    finish_reason: str | None = None
    error: str | None = None  # why a failed reply failed, as the user was told
    # Measured numbers of a reply: prompt_tokens, completion_tokens, ttft_s, tokens_per_s, wall_s, ...
    numbers: Mapping[str, int | float] = field(default_factory=dict)
    # Haystack's shapes: ToolCall.to_dict() of each call an assistant message makes ({"tool_name",
    # "arguments", "id", "extra"}), and a tool message's ToolCallResult.to_dict() ({"result", "origin",
    # "error"}).
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    tool_result: Mapping[str, Any] | None = None
    # What the app's tool card showed (the message's meta "tool", engine.tools.loop.TOOL_META): on a message
    # with tool calls {"servers": {call id: server}}, on a tool result {"server", "decision"}.
    tool_meta: Mapping[str, Any] = field(default_factory=dict)
    # The documents' passages a reply was given, as stored in its meta (engine.documents.grounding):
    # {"number", "file", "page", "section", "start", "end", "passage", "collection", "score", "rank", ...}.
    sources: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ExportedConversation:
    """A whole conversation with all of its branches.

    ``messages`` lists parents before their children. ``shown_leaf`` is the message whose path from the root
    is the branch the user was looking at. ``id`` is the history's stable conversation uid; ``source``, when
    set, overrides it as the identity for idempotent import (``"chatgpt:<id>"`` for ChatGPT's conversations).
    """

    id: str
    title: str
    created: datetime
    updated: datetime
    messages: tuple[ExportedMessage, ...] = ()
    shown_leaf: str | None = None
    tags: tuple[str, ...] = ()
    folder: str | None = None
    pinned: bool = False
    system_prompt: str = ""
    settings: Mapping[str, JsonValue] = field(default_factory=dict)
    source: str = ""

    @property
    def source_id(self) -> str:
        """The identity used to recognise a conversation imported before."""
        return self.source or self.id

    def by_id(self) -> dict[str, ExportedMessage]:
        return {m.id: m for m in self.messages}

    def children(self) -> dict[str | None, list[ExportedMessage]]:
        """Children of each message (``None`` -> roots), in the order of ``messages``."""
        out: dict[str | None, list[ExportedMessage]] = {}
        for message in self.messages:
            out.setdefault(message.parent_id, []).append(message)
        return out

    def shown_branch(self) -> list[ExportedMessage]:
        """Root-to-leaf path of the shown branch; without a recorded leaf, the newest message at each step."""
        index = self.by_id()
        leaf = self.shown_leaf
        if leaf is None:
            leaf = _default_leaf(self)
        path: list[ExportedMessage] = []
        while leaf is not None and leaf in index:
            path.append(index[leaf])
            leaf = index[leaf].parent_id
        path.reverse()
        return path

    def branches(self) -> list[list[ExportedMessage]]:
        """Every root-to-leaf path, the shown one first."""
        kids = self.children()
        leaves = [m for m in self.messages if m.id not in kids]
        index = self.by_id()
        shown = self.shown_branch()
        shown_leaf = shown[-1].id if shown else None
        leaves.sort(key=lambda m: m.id != shown_leaf)
        paths = []
        for leaf in leaves:
            path: list[ExportedMessage] = []
            cur: str | None = leaf.id
            while cur is not None:
                path.append(index[cur])
                cur = index[cur].parent_id
            path.reverse()
            paths.append(path)
        return paths

    def forks(self) -> list[tuple[list[ExportedMessage], int, int]]:
        """:meth:`branches` as ``(branch, shared, with_branch)``: its first ``shared`` messages are those of
        the earlier branch number ``with_branch`` (1-based; 0 when nothing is shared), so a renderer can show
        only where each alternative departs."""
        out: list[tuple[list[ExportedMessage], int, int]] = []
        earlier: list[list[ExportedMessage]] = []
        for branch in self.branches():
            shared, with_branch = 0, 0
            for number, other in enumerate(earlier, 1):
                common = 0
                while common < min(len(branch), len(other)) and branch[common].id == other[common].id:
                    common += 1
                if common > shared:
                    shared, with_branch = common, number
            out.append((branch, shared, with_branch))
            earlier.append(branch)
        return out


def _default_leaf(conv: ExportedConversation) -> str | None:
    kids = conv.children()
    cur = kids.get(None, [])
    leaf: str | None = None
    while cur:
        newest = max(cur, key=lambda m: m.created)
        leaf = newest.id
        cur = kids.get(newest.id, [])
    return leaf


def validate(conv: ExportedConversation, where: str = "conversation") -> ExportedConversation:
    """Check the tree invariants every format relies on; raise :class:`ImportRejected` naming the place.

    Unique ids, parents that exist, no cycles, parents listed before children (re-ordered if needed),
    a shown leaf that exists, finite numbers.
    """
    seen: dict[str, ExportedMessage] = {}
    for i, message in enumerate(conv.messages):
        if message.id in seen:
            raise ImportRejected(f"message id {message.id!r} appears twice", f"{where}.messages[{i}]")
        seen[message.id] = message
        for key, value in message.numbers.items():
            problem = _number_problem(key, value)
            if problem:
                raise ImportRejected(f"{key} {problem}", f"{where}.messages[{i}].numbers.{key}")
    for i, message in enumerate(conv.messages):
        if message.parent_id is not None and message.parent_id not in seen:
            raise ImportRejected(
                f"parent {message.parent_id!r} of message {message.id!r} does not exist",
                f"{where}.messages[{i}].parent_id",
            )
    _check_no_cycles(conv, seen, where)
    if conv.shown_leaf is not None and conv.shown_leaf not in seen:
        raise ImportRejected(f"the shown message {conv.shown_leaf!r} does not exist", f"{where}.shown_leaf")
    ordered = tuple(topological(conv.messages))
    if ordered != conv.messages:
        conv = replace(conv, messages=ordered)
    return conv


COUNTS = frozenset({"prompt_tokens", "completion_tokens"})
MEASURES = frozenset({"ttft_s", "tokens_per_s", "wall_s"})
_MAX_COUNT = 2**53  # exact in a float, far beyond any context window


def _number_problem(key: str, value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if isinstance(value, float) and not math.isfinite(value):
        return "is not finite"
    if key in COUNTS and (not isinstance(value, int) or not 0 <= value <= _MAX_COUNT):
        return f"must be a whole number from 0 to {_MAX_COUNT}"
    if key in MEASURES and not 0 <= value <= 1e12:
        return "must be a positive number"
    return ""


def _check_no_cycles(conv: ExportedConversation, index: dict[str, ExportedMessage], where: str) -> None:
    # Colour every node by walking up; a walk that meets its own trail is a cycle.
    done: set[str] = set()
    for message in conv.messages:
        trail: dict[str, None] = {}
        cur: str | None = message.id
        while cur is not None and cur not in done:
            if cur in trail:
                loop = list(trail)[list(trail).index(cur) :]
                raise ImportRejected(
                    "the parent links form a cycle (" + " -> ".join([*loop[:6], cur]) + ")",
                    f"{where}.messages",
                )
            trail[cur] = None
            cur = index[cur].parent_id
        done.update(trail)


def topological(messages: tuple[ExportedMessage, ...]) -> Iterator[ExportedMessage]:
    """Parents before children, otherwise keeping the given order (stable)."""
    placed: set[str] = set()
    waiting: dict[str, list[ExportedMessage]] = {}
    for message in messages:
        if message.parent_id is None or message.parent_id in placed:
            stack = [message]
            while stack:
                current = stack.pop()
                placed.add(current.id)
                yield current
                stack.extend(reversed(waiting.pop(current.id, [])))
        else:
            waiting.setdefault(message.parent_id, []).append(message)
