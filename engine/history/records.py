"""What the history store holds: conversations, messages and the message tree, as plain frozen dataclasses.

A conversation is a tree: every message knows its parent; regenerating a reply adds a sibling reply, editing
a user message adds a sibling user message, so nothing shown is ever destroyed. The conversation remembers the
leaf it shows; switching to a sibling shows that sibling's most recent descendant.

``ConversationTree`` is also the export/import shape (``HistoryStore.export_tree`` / ``import_tree``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from engine.errors import DeskError

Role = Literal["system", "user", "assistant", "tool"]
MessageState = Literal["complete", "streaming", "stopped", "interrupted", "failed"]
MESSAGE_STATES: tuple[MessageState, ...] = ("complete", "streaming", "stopped", "interrupted", "failed")


class ConversationNotFound(DeskError):
    title = "No such conversation"

    def __init__(self, conversation_id: int | str) -> None:
        super().__init__(f"There is no conversation with id {conversation_id} in the history.")
        self.conversation_id = conversation_id


class MessageNotFound(DeskError):
    title = "No such message"

    def __init__(self, message_id: int) -> None:
        super().__init__(f"There is no message with id {message_id} in the history.")
        self.message_id = message_id


class InvalidTree(DeskError):
    title = "This conversation cannot be stored"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The conversation is not a valid message tree: {reason}")


@dataclass(frozen=True)
class ReplyNumbers:
    """Measurements of one reply (``None`` where the server did not say)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    wall_s: float | None = None


def chat_message_dict(
    role: str, text: str, reasoning: str = "", meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``haystack.dataclasses.ChatMessage.to_dict()`` shape, built without importing Haystack."""
    content: list[dict[str, Any]] = []
    if reasoning:
        content.append({"reasoning": {"reasoning_text": reasoning, "extra": {}}})
    content.append({"text": text})
    return {"role": role, "meta": dict(meta or {}), "name": None, "content": content}


@dataclass(frozen=True)
class StoredMessage:
    """One message. ``content`` is ``ChatMessage.to_dict()``; the other fields are ours."""

    id: int
    conversation_id: int
    parent_id: int | None
    role: Role
    text: str
    reasoning: str = ""
    state: MessageState = "complete"
    model: str = ""
    finish_reason: str = ""
    numbers: ReplyNumbers = field(default_factory=ReplyNumbers)
    error: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    content: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_chat_message(self) -> Any:
        """A ``haystack.dataclasses.ChatMessage`` (imported lazily: Haystack is slow to import)."""
        from haystack.dataclasses import ChatMessage

        data = self.content or chat_message_dict(self.role, self.text, self.reasoning)
        return ChatMessage.from_dict(data)


@dataclass(frozen=True)
class Conversation:
    """A conversation's own row (without its messages)."""

    id: int
    uid: str
    title: str
    created_at: float
    updated_at: float
    pinned: bool = False
    folder: str = ""
    tags: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    system_prompt: str = ""
    current_leaf_id: int | None = None
    deleted_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uid": self.uid,
            "title": self.title,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "pinned": self.pinned,
            "folder": self.folder,
            "tags": list(self.tags),
            "settings": self.settings,
            "system_prompt": self.system_prompt,
            "current_leaf_id": self.current_leaf_id,
        }


@dataclass(frozen=True)
class ConversationTree:
    """A conversation with every message of every branch, parents before children (ascending ids).

    For :meth:`HistoryStore.import_tree` the ids only link messages to their parents (they are renumbered)
    and ``conversation.uid`` makes the import idempotent (use a stable source id or a content hash).
    """

    conversation: Conversation
    messages: tuple[StoredMessage, ...]
    _by_id: dict[int, StoredMessage] = field(init=False, repr=False, compare=False)
    _children: dict[int | None, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Indexes for navigation; the dataclass is frozen, so they are set once here.
        object.__setattr__(self, "_by_id", {m.id: m for m in self.messages})
        children: dict[int | None, list[int]] = {}
        for message in sorted(self.messages, key=lambda m: m.id):
            children.setdefault(message.parent_id, []).append(message.id)
        object.__setattr__(self, "_children", children)

    def message(self, message_id: int) -> StoredMessage:
        found = self._by_id.get(message_id)
        if found is None:
            raise MessageNotFound(message_id)
        return found

    def children(self, message_id: int | None) -> list[int]:
        """Ids of the replies to ``message_id`` (``None``: the roots), oldest first."""
        return list(self._children.get(message_id, []))

    def siblings(self, message_id: int) -> list[int]:
        """``message_id`` and its alternatives (same parent), oldest first — the ‹ 2/3 › switcher."""
        return self.children(self.message(message_id).parent_id)

    def latest_leaf(self, message_id: int | None) -> int | None:
        """Follow the most recent child from ``message_id`` down to a leaf."""
        current = message_id
        while True:
            kids = self.children(current)
            if not kids:
                return current
            current = kids[-1]

    def branch(self, leaf_id: int | None = None) -> list[StoredMessage]:
        """The messages from the root down to ``leaf_id`` (default: the shown leaf)."""
        leaf = self.shown_leaf() if leaf_id is None else leaf_id
        path: list[StoredMessage] = []
        seen: set[int] = set()
        current = leaf
        while current is not None:
            if current in seen:
                raise InvalidTree(f"message {current} is its own ancestor")
            seen.add(current)
            message = self.message(current)
            path.append(message)
            current = message.parent_id
        path.reverse()
        return path

    def shown_leaf(self) -> int | None:
        """The leaf the conversation shows: the remembered one, else the newest branch."""
        leaf = self.conversation.current_leaf_id
        if leaf is not None and leaf in self._by_id:
            return leaf
        return self.latest_leaf(None)

    def leaf_after_switch(self, sibling_id: int) -> int:
        """The leaf shown after choosing ``sibling_id`` in a switcher: its most recent descendant."""
        self.message(sibling_id)
        leaf = self.latest_leaf(sibling_id)
        assert leaf is not None  # sibling_id itself is a message
        return leaf

    def with_messages(self, messages: Iterable[StoredMessage]) -> ConversationTree:
        return replace(self, messages=tuple(messages))
