"""Stored tool turns as the transcript shows them: a turn's tool-call replies and tool results become
:class:`~desktop.widgets.tool_card.CallView` cards of one reply (the turn's first reply's id, so its siblings
are the turn's versions), showing the turn's final answer. Read from the stored ``ChatMessage.to_dict()``
content without importing Haystack (a conversation is shown before Haystack is loaded)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication

from desktop.widgets.tool_card import CallView
from desktop.widgets.transcript import MessageData

if TYPE_CHECKING:
    from engine.history.records import ConversationTree, StoredMessage

BUILTIN_SERVER = "built-in"

ToData = Callable[["ConversationTree", "StoredMessage"], MessageData]


def tr(text: str) -> str:
    return QCoreApplication.translate("ToolTurns", text)


def calls_of(message: StoredMessage) -> list[dict[str, Any]]:
    content = message.content or {}
    return [part["tool_call"] for part in content.get("content") or () if "tool_call" in part]


def result_of(message: StoredMessage) -> dict[str, Any] | None:
    content = message.content or {}
    for part in content.get("content") or ():
        if "tool_call_result" in part:
            return dict(part["tool_call_result"])
    return None


def tool_meta(message: StoredMessage) -> dict[str, Any]:
    """What the turn stored of its cards (``engine.tools.loop.TOOL_META``; ``{}`` in turns stored before)."""
    from engine.tools.loop import TOOL_META  # here: the tools' engine is not loaded before the window shows

    meta = (message.content or {}).get("meta")
    found = meta.get(TOOL_META) if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def server_of(tool: str, owners: dict[str, str] | None = None) -> str:
    from engine.tools.builtin import BUILTIN_NAMES

    if tool in BUILTIN_NAMES:
        return BUILTIN_SERVER
    return (owners or {}).get(tool, tr("MCP server"))


def call_view(
    call: dict[str, Any], owners: dict[str, str] | None = None, servers: dict[str, Any] | None = None
) -> CallView:
    """A stored call's card; ``servers``: the stored server of each call id (else guessed from the tool)."""
    extra = call.get("extra") or {}
    call_id = str(call.get("id") or "")
    tool = str(call.get("tool_name") or "")
    stored = (servers or {}).get(call_id)
    return CallView(
        call_id=call_id,
        tool=tool,
        server=stored if isinstance(stored, str) and stored else server_of(tool, owners),
        arguments=dict(call.get("arguments") or {}),
        raw_arguments=str(extra.get("raw_arguments") or ""),
    )


def _add_result(cards: dict[str, CallView], message: StoredMessage) -> None:
    """A stored tool result onto the card of its call (a result without one is left out)."""
    from engine.tools.approval import DECISIONS

    result = result_of(message)
    if result is None:
        return
    view = cards.get(str((result.get("origin") or {}).get("id") or ""))
    if view is None:
        return
    view.result = str(result.get("result", ""))
    view.error = bool(result.get("error"))
    stored = tool_meta(message)
    if isinstance(stored.get("server"), str) and stored["server"]:
        view.server = stored["server"]
    if stored.get("decision") in DECISIONS:
        view.decision = stored["decision"]
    elif stored:
        view.decision = ""  # refused before the user was asked (bad arguments, unknown tool, stopped)
    elif view.error and view.result.startswith("The user denied"):  # a turn stored before TOOL_META
        view.decision = "deny"
    elif not view.error:
        view.decision = "allowed"  # a call runs only once allowed


def _merge_answer(head: MessageData, final: MessageData) -> None:
    """The turn's later reply (its answer) shown in the turn's first reply."""
    head.text = "\n\n".join(t for t in (head.text, final.text) if t)
    head.state, head.error = final.state, final.error
    head.completion_tokens, head.tokens_per_s = final.completion_tokens, final.tokens_per_s
    head.reasoning = "\n\n".join(t for t in (head.reasoning, final.reasoning) if t)


def fold_branch(
    tree: ConversationTree,
    branch: Sequence[StoredMessage],
    to_data: ToData,
    owners: dict[str, str] | None = None,
) -> list[MessageData]:
    """The transcript's messages of ``branch``: a turn's tool-call replies and tool results become cards of
    one reply (the turn's first reply's id, the final answer's text and state)."""
    shown: list[MessageData] = []
    head: MessageData | None = None  # the reply that gathers the current turn's cards
    cards: dict[str, CallView] = {}
    for message in branch:
        if message.role == "tool":
            _add_result(cards, message)
            continue
        if message.role != "assistant":
            head = None
            if message.role == "user":
                shown.append(to_data(tree, message))
            continue
        servers = tool_meta(message).get("servers")
        calls = [
            call_view(call, owners, servers if isinstance(servers, dict) else None)
            for call in calls_of(message)
        ]
        if head is None:
            head = to_data(tree, message)
            shown.append(head)
        else:
            _merge_answer(head, to_data(tree, message))
        if calls:
            views = head.extra.get("tool_calls")
            head.extra = {**head.extra, "tool_calls": [*(views if isinstance(views, list) else []), *calls]}
            cards.update((view.call_id, view) for view in calls)
        else:
            head = None  # the turn's answer: the next reply starts a new turn
    return shown
