"""What a chat turn sends: the client timeouts, the (role, text) messages of a branch, and the plain-text
prompt for base models (completion mode)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from engine.chat.generation import GenerationSettings
from engine.chat.tokens import drop_oldest
from engine.endpoint import Endpoint
from engine.history.records import Conversation, StoredMessage


@dataclass(frozen=True)
class ChatTimeouts:
    """Client timeouts: ``connect`` for local servers (``remote_connect`` for remote ones), ``read`` between
    two pieces of a reply (a long prompt on a CPU can take a while before the first token).

    ``read`` is also the stall limit: a reply whose server sends no text for that long is abandoned even
    when the connection stays busy with keep-alives or empty chunks."""

    connect: float = 1.0
    remote_connect: float = 10.0
    read: float = 120.0
    write: float = 30.0

    def for_endpoint(self, endpoint: Endpoint) -> Any:
        """An ``openai.Timeout`` (the OpenAI client's own httpx) for this endpoint."""
        import openai

        connect = self.connect if endpoint.kind == "local" else self.remote_connect
        return openai.Timeout(self.read, connect=connect, write=self.write, pool=connect)


@dataclass(frozen=True)
class RequestAugment:
    """What a layer above the chat engine adds to one turn: the ``messages`` to send instead (e.g. the
    question with documents' passages before it; what is stored stays the user's own text) and what goes
    into the reply's stored ``meta`` (e.g. ``sources``); ``finish_meta``, when set, is called with the reply's
    text as it is saved and what it returns is stored over ``reply_meta`` (e.g. which sources it used)."""

    messages: list[tuple[str, str]]
    reply_meta: dict[str, Any] = field(default_factory=dict)
    finish_meta: Callable[[str], dict[str, Any]] | None = None


# ``ChatEngine.augment``: (endpoint, settings, messages) -> a RequestAugment, or None to send them as is.
Augment = Callable[[Endpoint, GenerationSettings, list[tuple[str, str]]], Awaitable[RequestAugment | None]]


@functools.cache
def plain_chat_message() -> Any:
    """Haystack's ``ChatMessage`` for a role-and-text message that makes its openai form once.

    ``OpenAIChatGenerator`` converts every message of a request to openai's dict (``to_openai_dict_format``)
    before it sends: 2,000 messages took ~6 ms here at every turn. A message of this class keeps the form it
    made the first time (a copy is handed out, so nothing sent can change it), so a conversation whose
    messages are kept from turn to turn (:meth:`engine.chat.engine.ChatEngine`) converts only its new ones.
    The form is a :class:`engine.chat.generator.PlainForm`: it carries its JSON, which the generator's
    plain requests (``generator.quick_requests``) use instead of checking and encoding the message again.
    Made on first use: Haystack is imported through the import thread (``engine.chat.warm_imports``)."""
    from haystack.dataclasses import ChatMessage

    from engine.chat.generator import PlainForm

    class PlainChatMessage(ChatMessage):
        # Not a dataclass field: the message compares, prints and serialises as Haystack's own.
        _openai: PlainForm | None = None

        def to_openai_dict_format(self, require_tool_call_ids: bool = True) -> dict[str, Any]:
            form = self._openai
            if form is None:  # text only: there are no tool call ids to require
                form = self._openai = PlainForm.of(super().to_openai_dict_format(require_tool_call_ids))
            return form.copy()

    return PlainChatMessage


def to_chat_message(chat_message: Any, role: str, text: str) -> Any:
    if role == "system":
        return chat_message.from_system(text)
    if role == "assistant":
        return chat_message.from_assistant(text)
    return chat_message.from_user(text)


def request_messages(
    conversation: Conversation,
    branch: list[StoredMessage],
    settings: GenerationSettings,
    drop_oldest_turns: int = 0,
    new_user_text: str | None = None,
) -> list[tuple[str, str]]:
    """(role, text) pairs for the request: system prompt first, then the branch, minus the oldest turns
    (the newest user message always stays).

    Replies that produced no text (failed before the first token) are left out; a stopped or interrupted
    reply is sent as far as it got, which is what the user saw. ``new_user_text``: a user message that ends
    the branch but is not stored yet (its commit runs beside the request).
    """
    whole = branch_turns(conversation, branch, settings)
    if new_user_text is not None:
        whole.append(("user", new_user_text))
    return dropped(whole, drop_oldest_turns)


def branch_turns(
    conversation: Conversation, branch: list[StoredMessage], settings: GenerationSettings
) -> list[tuple[str, str]]:
    """:func:`request_messages` with no turn left out and no new message: made once per send, for the
    context check and the request (a walk over every message of the branch)."""
    system = conversation.system_prompt or settings.system_prompt
    turns: list[tuple[str, str]] = [("system", system)] if system else []
    for message in branch:
        if message.role == "assistant" and not message.text:
            continue
        if message.role in ("user", "assistant"):
            turns.append((message.role, message.text))
    return turns


def dropped(messages: list[tuple[str, str]], turns: int) -> list[tuple[str, str]]:
    """``messages`` (system prompt first) without their ``turns`` oldest turns (see ``drop_oldest``)."""
    return drop_oldest(messages, turns) if turns else messages


def completion_prompt(messages: list[tuple[str, str]]) -> str:
    """A plain-text transcript for base models: the system text, then ``User:``/``Assistant:`` lines."""
    lines: list[str] = []
    for role, text in messages:
        if role == "system":
            lines.append(text.strip())
        else:
            lines.append(f"{'User' if role == 'user' else 'Assistant'}: {text.strip()}")
    lines.append("Assistant:")
    return "\n".join(lines)
