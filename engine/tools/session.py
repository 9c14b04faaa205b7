"""A chat turn with tools, saved in the history as it goes.

The user's message is committed first; then every message of the turn — the assistant's tool calls, each
tool's result, the final answer — is stored the moment the loop hands it over (``content`` is the whole
``ChatMessage.to_dict()``, with ``ToolCall`` / ``ToolCallResult``), each under the one before, so the branch
reads in order, survives a restart, and regenerate or edit make siblings as for any turn. A turn that fails
(the server goes away, say) keeps what already ran and ends with a ``failed`` reply saying why.

The plain-text chat (:mod:`engine.chat.engine`) skips tool messages and empty replies when it builds a
request, so a
conversation that used tools can go on without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine.chat.collector import freeze_long_lived
from engine.chat.errors import ChatError, from_openai_error
from engine.chat.generation import GenerationSettings
from engine.chat.titles import title_from_text
from engine.endpoint import Endpoint
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import Conversation, ConversationTree, StoredMessage
from engine.history.store import HistoryStore
from engine.tools.approval import ApprovalPolicy
from engine.tools.loop import LoopLimits, OnEvent, ToolLoop

if TYPE_CHECKING:
    from haystack.dataclasses import ChatMessage
    from haystack.tools.tool import Tool

    from engine.chat.request import Augment


@dataclass
class ToolTurn:
    """What a turn stored: the user's message, every message after it, and whether the round cap hit."""

    user: StoredMessage
    stored: list[StoredMessage] = field(default_factory=list)
    capped: bool = False
    error: ChatError | None = None

    @property
    def reply(self) -> StoredMessage | None:
        return self.stored[-1] if self.stored else None


def branch_messages(conversation: Conversation, branch: Sequence[StoredMessage]) -> list[ChatMessage]:
    """The branch as Haystack messages, system prompt first; tool calls and results whole, replies that
    produced nothing left out."""
    from haystack.dataclasses import ChatMessage

    settings = GenerationSettings.parse(conversation.settings)
    system = conversation.system_prompt or settings.system_prompt
    out: list[ChatMessage] = [ChatMessage.from_system(system)] if system else []
    for message in branch:
        if message.role == "user":
            out.append(ChatMessage.from_user(message.text))
        elif message.role == "assistant":
            full = message.to_chat_message()
            if full.tool_calls:
                out.append(full)
            elif message.text:
                out.append(ChatMessage.from_assistant(message.text))
        elif message.role == "tool" and _answers(out):
            out.append(message.to_chat_message())
    return out


def _answers(out: list[Any]) -> bool:
    # A tool result belongs after its call (parallel calls: several results follow one assistant message).
    for previous in reversed(out):
        if previous.tool_calls:
            return True
        if previous.tool_call_result is None:
            return False
    return False


def stored_text(message: ChatMessage) -> str:
    """What search and listings see of a message: its text, or a tool's result."""
    if message.tool_call_result is not None:
        return str(message.tool_call_result.result)
    return message.text or ""


@dataclass(frozen=True)
class ToolTurnOptions:
    """How a tool turn runs, the same for a send, an edit and a rerun: the tools offered (and which MCP
    server each belongs to, ``servers``), who approves each call, the tool choice (auto / required / none /
    a tool's name), the loop's limits, who hears its events, and ``augment``: the chat engine's (documents'
    passages before the question, in the request only; sources kept with the answer)."""

    tools: Sequence[Tool]
    approval: ApprovalPolicy
    choice: str = "auto"
    servers: Mapping[str, str] | None = None
    limits: LoopLimits | None = None
    on_event: OnEvent | None = None
    augment: Augment | None = None

    def loop(self, generator: Any) -> ToolLoop:
        """The loop that answers with these options through ``generator``."""
        return ToolLoop(
            generator,
            self.tools,
            approval=self.approval,
            choice=self.choice,
            limits=self.limits,
            servers=self.servers,
            on_event=self.on_event,
        )


async def run_tool_turn(
    store: AsyncHistoryStore,
    generator: Any,
    endpoint: Endpoint,
    conversation_id: int,
    text: str,
    options: ToolTurnOptions,
    *,
    parent_id: int | None = None,
) -> ToolTurn:
    """Add ``text`` under ``parent_id`` (default: the shown leaf) and answer it with tools."""
    loop = options.loop(generator)  # a tool choice that names no tool is refused before anything is stored
    freeze_long_lived()  # as ChatEngine.send: no full collection on the way to the first request
    tree = await store.load(conversation_id)
    parent = tree.shown_leaf() if parent_id is None else parent_id
    return await _send_under(store, loop, endpoint, options, tree, parent, text)


async def edit_tool_turn(
    store: AsyncHistoryStore,
    generator: Any,
    endpoint: Endpoint,
    user_message_id: int,
    text: str,
    options: ToolTurnOptions,
) -> ToolTurn:
    """A new version of the user's message ``user_message_id`` with ``text`` (its sibling, a new first
    message when it was the first), answered with tools; the old version and its answers stay."""
    loop = options.loop(generator)
    freeze_long_lived()
    original = await store.message(user_message_id)
    if original.role != "user":
        raise ChatError("Only a message you wrote can be edited.")
    tree = await store.load(original.conversation_id)
    return await _send_under(store, loop, endpoint, options, tree, original.parent_id, text)


async def _send_under(
    store: AsyncHistoryStore,
    loop: ToolLoop,
    endpoint: Endpoint,
    options: ToolTurnOptions,
    tree: ConversationTree,
    parent: int | None,
    text: str,
) -> ToolTurn:
    """Store ``text`` under ``parent`` (``None``: a new first message) and answer it with ``loop``."""
    conversation = tree.conversation
    branch = tree.branch(parent) if parent is not None else []
    user = await store.call(HistoryStore.add_message, conversation.id, parent, "user", text)
    if not conversation.title:
        await store.update_conversation(conversation.id, title=title_from_text(text))
    return await _answer(store, loop, endpoint, options, conversation, [*branch, user])


async def rerun_tool_turn(
    store: AsyncHistoryStore,
    generator: Any,
    endpoint: Endpoint,
    user_message_id: int,
    options: ToolTurnOptions,
) -> ToolTurn:
    """Answer the user's message again, with tools (regenerate): the new answer and its tool messages are a
    sibling branch of the old ones, which stay."""
    loop = options.loop(generator)
    freeze_long_lived()
    user = await store.message(user_message_id)
    if user.role != "user":
        raise ChatError("Only an answer to a message can be made again; pick the message it answers.")
    tree = await store.load(user.conversation_id)
    return await _answer(store, loop, endpoint, options, tree.conversation, tree.branch(user.id))


# The built-in model's cap on a forced call's unbounded strings: within its reply budget (512 tokens by its
# preset) even at a token a character, with room for the call around them.
BUILTIN_MODEL_STRING_CHARS = 100


def limits_for(endpoint: Endpoint, limits: LoopLimits) -> LoopLimits:
    """``limits`` for this endpoint's model: the built-in SmolLM2-135M, which can run a free-text string on
    until the token limit, gets :attr:`LoopLimits.forced_string_chars` (unless the caller chose one)."""
    from engine.models.builtin import BUILTIN_MODEL

    if endpoint.model != BUILTIN_MODEL.served_name or limits.forced_string_chars is not None:
        return limits
    return replace(limits, forced_string_chars=BUILTIN_MODEL_STRING_CHARS)


async def _answer(
    store: AsyncHistoryStore,
    loop: ToolLoop,
    endpoint: Endpoint,
    options: ToolTurnOptions,
    conversation: Conversation,
    branch: list[StoredMessage],
) -> ToolTurn:
    """Run ``loop`` on ``branch`` (ending with the user's message), storing each message under the last."""
    user = branch[-1]
    turn = ToolTurn(user)
    settings = GenerationSettings.parse(conversation.settings)
    reply_meta: dict[str, Any] = {}  # the grounding's, for the answer (its ``sources``)
    finish: list[Callable[[str], dict[str, Any]]] = []  # the grounding's finish_meta (which sources it used)

    async def save(message: ChatMessage) -> None:
        last = turn.stored[-1].id if turn.stored else user.id
        meta = message.meta or {}
        stored = await store.call(
            HistoryStore.add_message,
            conversation.id,
            last,
            message.role.value,
            stored_text(message),
            model=str(meta.get("model") or endpoint.model),
            content=_with_meta(message, reply_meta, finish),
        )
        turn.stored.append(stored)

    loop.on_message = save
    loop.limits = limits_for(endpoint, loop.limits)
    try:
        messages = await _augmented(
            options.augment, endpoint, settings, branch_messages(conversation, branch), reply_meta, finish
        )
        outcome = await loop.run(messages, generation_kwargs=settings.to_generation_kwargs())
    except ChatError as exc:
        turn.error = exc
    except Exception as exc:  # noqa: BLE001 - a failed turn is stored with its reason, like any reply
        turn.error = from_openai_error(
            exc,
            base_url=endpoint.base_url,
            model=endpoint.model,
            read_timeout=120.0,
            started=bool(turn.stored),
        )
    else:
        turn.capped = outcome.capped
        return turn
    last = turn.stored[-1].id if turn.stored else user.id
    failed = await store.call(
        HistoryStore.add_message, conversation.id, last, "assistant", "", state="failed", model=endpoint.model
    )
    failed = await store.call(
        HistoryStore.finish, failed.id, state="failed", text="", model=endpoint.model, error=str(turn.error)
    )
    turn.stored.append(failed)
    return turn


async def _augmented(
    augment: Augment | None,
    endpoint: Endpoint,
    settings: GenerationSettings,
    messages: list[ChatMessage],
    reply_meta: dict[str, Any],
    finish: list[Callable[[str], dict[str, Any]]],
) -> list[ChatMessage]:
    """The request's messages with the newest question grounded by ``augment`` (``ChatEngine.augment``:
    the attached documents' passages); what the answer's meta keeps (``sources``) goes into ``reply_meta``."""
    if augment is None or not messages or messages[-1].role.value != "user":
        return messages
    done = await augment(endpoint, settings, [(m.role.value, m.text or "") for m in messages])
    if done is None:
        return messages
    from haystack.dataclasses import ChatMessage

    reply_meta.update(done.reply_meta)
    if done.finish_meta is not None:
        finish.append(done.finish_meta)
    return [*messages[:-1], ChatMessage.from_user(done.messages[-1][1])]


def _with_meta(
    message: ChatMessage, reply_meta: dict[str, Any], finish: list[Callable[[str], dict[str, Any]]]
) -> dict[str, Any]:
    """``message.to_dict()``, an answer (no tool calls) with the grounding's meta (its ``sources``, and which
    of them the answer used)."""
    content: dict[str, Any] = message.to_dict()
    if reply_meta and message.role.value == "assistant" and not message.tool_calls:
        final = {k: v for f in finish for k, v in f(message.text or "").items()}
        content["meta"] = {**(content.get("meta") or {}), **reply_meta, **final}
    return content
