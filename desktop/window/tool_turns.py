"""Tool turns in the window: a conversation with tools enabled answers through
:func:`engine.tools.session.run_tool_turn`, each call asked about on a card in the transcript.

The conversation's settings name its tools (built-in tool names and MCP server names) and its tool choice
(:class:`engine.chat.generation.GenerationSettings` ``tools`` / ``tool_choice``). A send there starts the
MCP servers it names (:class:`engine.tools.mcp.McpManager`, one for the window, closed with it), shows the
user's message and a streamed reply, and a :class:`~desktop.widgets.tool_card.ToolCard` for every call the
model makes; the turn waits on the card until the user allows or denies (nothing is approved by default;
"always" lasts for this conversation until the app quits). Stop cancels the turn; a call left without a
result then gets one saying the turn was stopped, so the conversation stays valid for the next request.
Regenerate answers the same message again with tools (:func:`engine.tools.session.rerun_tool_turn`), and an
edit of any of the user's messages, the first one too, is answered with them
(:func:`engine.tools.session.edit_tool_turn`).

Stored turns are folded for the transcript (:meth:`ToolTurns.transcript_data`): the assistant's tool-call
messages and the tool results become cards of one reply whose id is the turn's first reply (its siblings
are the turn's versions), showing the turn's final answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, Signal
from shiboken6 import isValid

from desktop import errors
from desktop.operations import Operation
from desktop.widgets.tool_card import CallView, ToolCard
from desktop.widgets.transcript import MessageData, MessageWidget
from desktop.window.tool_history import ToData, calls_of, fold_branch, result_of, server_of, tool_meta
from desktop.window.tools_file import ToolsFileWatcher

if TYPE_CHECKING:
    from desktop.widgets.composer import Composer
    from desktop.widgets.sidebar import Sidebar
    from desktop.widgets.tool_settings import ToolSettingsBox
    from desktop.widgets.transcript import TranscriptView
    from engine.chat.engine import ChatEngine
    from engine.history.async_store import AsyncHistoryStore
    from engine.history.records import ConversationTree
    from engine.paths import AppPaths
    from engine.server.profiles import ServerProfile
    from engine.tools.approval import ApprovalPolicy, CallRequest, Decision
    from engine.tools.loop import LoopEvent
    from engine.tools.mcp import McpManager
    from engine.tools.parsers import ToolSupport

log = logging.getLogger(__name__)
STOPPED_RESULT = "The user stopped the turn before this call ran; it was not run."
_live_ids = itertools.count(1)


def tr(text: str) -> str:
    return QCoreApplication.translate("ToolTurns", text)


# --- a turn running now -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """A new message under the shown one."""


@dataclass(frozen=True)
class Rerun:
    """The user's message ``user_id`` answered again (regenerate)."""

    user_id: int


@dataclass(frozen=True)
class Edit:
    """A new version of the user's message ``message_id`` (the first message too: a new root)."""

    message_id: int


@dataclass
class LiveTurn:
    """What a running tool turn shows: its user message (``None``: regenerate), the streamed text, the
    cards, and where it hangs in the stored branch (``anchor``: the last stored message shown before it)."""

    conversation_id: int
    anchor: int | None
    user_text: str | None
    model: str
    key: str = field(default_factory=lambda: f"tool-turn-{next(_live_ids)}")
    text: str = ""
    reasoning: str = ""
    calls: list[CallView] = field(default_factory=list)
    waiting: dict[str, asyncio.Future[Decision]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    @property
    def reply_key(self) -> str:
        return self.key + "-reply"

    def data(self) -> list[MessageData]:
        shown = []
        if self.user_text is not None:
            shown.append(MessageData(id=self.key + "-user", role="user", text=self.user_text))
        shown.append(
            MessageData(
                id=self.reply_key,
                role="assistant",
                text=self.text,
                reasoning=self.reasoning,
                model=self.model,
                state="streaming",
                extra={"tool_calls": self.calls},
            )
        )
        return shown

    def call(self, call_id: str) -> CallView | None:
        return next((c for c in self.calls if c.call_id == call_id), None)


class ToolTurns(QObject):
    """The window's tool turns; see the module docstring. ``chat`` is set when the engine is attached."""

    finished = Signal(int)  # a tool turn of this conversation ended (its messages are stored and shown)
    # tools.toml changed on disk (the CLI, or Preferences > Tools): the servers that ran with other settings
    # are stopped and the chat settings offer the servers there are now.
    tools_file_changed = Signal()

    def __init__(
        self,
        store: AsyncHistoryStore,
        transcript: TranscriptView,
        composer: Composer,
        sidebar: Sidebar,
        *,
        config_dir: Path | None,
        paths: AppPaths | None,
        shown: Callable[[], int | None],
        show: Callable[[int], Awaitable[None]],
        settings_box: ToolSettingsBox | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.transcript = transcript
        self.composer = composer
        self.sidebar = sidebar
        self.config_dir = config_dir
        self.paths = paths
        self._shown = shown
        self._show = show
        self._chat: ChatEngine | None = None
        self._settings_box = settings_box
        self._manager: McpManager | None = None
        self._policies: dict[int, ApprovalPolicy] = {}
        self._live: dict[int, LiveTurn] = {}
        self._cards: dict[str, ToolCard] = {}
        self._owners: dict[str, str] = {}  # tool name -> MCP server, as last handed out
        self._documents: Any = None  # the document store of the search_documents tool, once opened
        self._closing = False
        self._renamed: dict[str, str] = {}  # the Tools page's renames in this run: old name -> new one
        self.tools_file: ToolsFileWatcher | None = None  # watched once the engine is attached
        # The profile the app's server was started with (None: none started here, e.g. a server elsewhere).
        self.running_profile: Callable[[], ServerProfile | None] = lambda: None
        transcript.widget_hooks.append(self.decorate)
        if settings_box is not None:
            settings_box.available = self.available
            settings_box.support = self.support

    # --- the parts ----------------------------------------------------------------------------------

    @property
    def chat(self) -> ChatEngine | None:
        return self._chat

    @chat.setter
    def chat(self, chat: ChatEngine | None) -> None:
        """The engine is attached: the chat settings offer the MCP servers too (read from tools.toml now, and
        again whenever it changes)."""
        self._chat = chat
        if chat is not None and self.tools_file is None and self.config_dir is not None:
            from engine.tools.config import tools_file  # pydantic: not before the first paint

            self.tools_file = ToolsFileWatcher(tools_file(self.config_dir), self)
            self.tools_file.changed.connect(self._tools_file_edited)
        if self._settings_box is not None:
            self._settings_box.refresh()

    def server_ready(self) -> None:
        """A server is ready (another profile, maybe): the chat settings' warning is for it now."""
        if self._settings_box is not None:
            self._settings_box.refresh()

    def servers_changed(self, old: str = "", new: str = "") -> None:
        """Preferences > Tools changed the MCP servers: the chat settings offer the ones there are now, the
        ticks kept; a renamed server's tick (``old`` -> ``new``) moves to its new name, as the stored chats'
        did (else the panel's next Apply would write the old name back)."""
        if old and new:
            # Remembered: a read of the chats may come back from before the page's rename of them.
            self._renamed = {k: new if v == old else v for k, v in self._renamed.items()}
            self._renamed[old] = new
        box = self._settings_box
        if box is None:
            return
        if old and new:
            box.rename(old, new)
        else:
            box.refresh()

    def _tools_file_edited(self) -> None:
        if not self._closing:
            Operation(None, self.follow_tools_file).run()

    async def follow_tools_file(self) -> None:
        """tools.toml is another file now: the servers running with settings it no longer has are stopped
        (their next use starts them anew, see :meth:`engine.tools.mcp.McpManager.reload`), then the chat
        settings and Preferences > Tools show what it holds. The shown conversation's tools are read again
        from the history: ``vllm-desk tools edit-mcp --name`` renamed the server in the stored chats before
        it wrote the file (:func:`engine.tools.config.update_server`), which the copy shown does not know."""
        from engine.errors import DeskError

        if self._manager is not None:
            try:
                stopped = await self._manager.reload()
            except DeskError as exc:  # a damaged file: the servers run on; the Tools page says what is wrong
                log.warning("tools.toml: %s", exc)
            else:
                if stopped:
                    log.info("MCP servers stopped, their settings changed: %s", ", ".join(stopped))
        stored = await self._stored_settings()
        if self._closing:
            return
        box = self._settings_box
        if stored is not None and box is not None:
            box.rebase(self._renamed_here(stored))
        else:
            self.servers_changed()
        self.tools_file_changed.emit()

    async def _stored_settings(self) -> dict[str, Any] | None:
        """The shown conversation's stored settings (``None``: a new chat, or another one shown meanwhile)."""
        from engine.errors import DeskError

        shown = self._shown()
        if shown is None:
            return None
        try:
            conversation = await self.store.conversation(shown)
        except DeskError as exc:  # deleted meanwhile, or the history refuses: the ticks stay
            log.warning("chat settings not read again: %s", exc)
            return None
        return dict(conversation.settings or {}) if self._shown() == shown else None

    def _renamed_here(self, settings: dict[str, Any]) -> dict[str, Any]:
        """``settings`` with the servers the Tools page renamed (in this run) under their new names, where
        the old name is not a server any more: the page renames the chats on the store's thread after it
        saved the file, so a read of them begun in between has the old name."""
        offered = {name for name, _ in self.available()}
        tools = [str(n) for n in settings.get("tools") or ()]
        moved = [self._renamed.get(n, n) if n not in offered else n for n in tools]
        return {**settings, "tools": list(dict.fromkeys(moved))}

    @property
    def manager(self) -> McpManager:
        """The window's MCP servers (started when a conversation uses them, stopped by :meth:`aclose`)."""
        if self._manager is None:
            from engine.tools.config import ToolsSettings
            from engine.tools.mcp import McpManager

            if self.config_dir is None:
                raise RuntimeError("no config folder for tools.toml")
            logs = self.paths.logs if self.paths is not None else None
            self._manager = McpManager(ToolsSettings(self.config_dir), logs=logs)
        return self._manager

    def available(self) -> list[tuple[str, str]]:
        """What a conversation may enable: the built-in tools, and the MCP servers once the engine is there
        (reading tools.toml loads pydantic, which waits until after the first paint)."""
        from engine.tools.builtin import BUILTIN_NAMES, DESCRIPTIONS

        offered = [(name, DESCRIPTIONS[name]) for name in BUILTIN_NAMES]
        if self.chat is None or self.config_dir is None:
            return offered
        try:
            servers = self.manager.settings.load().servers
        except Exception as exc:  # noqa: BLE001 - a damaged tools.toml: the built-in tools are still there
            log.warning("tools.toml: %s", exc)
            return offered
        from engine.tools.config import unused_reason

        # A server with a built-in tool's name (an older tools.toml) is not offered: the tick is the built-in.
        return offered + [
            (s.name, tr("MCP server: {what}").format(what=s.describe()))
            for s in servers
            if not unused_reason(s.name)
        ]

    def running(self, conversation_id: int | None) -> bool:
        return conversation_id in self._live

    def support(self) -> ToolSupport | None:
        """What the current model can do with tools (``None``: no server)."""
        from engine.models.builtin import BUILTIN_MODEL, builtin_model_path
        from engine.tools.parsers import FORCED_ONLY_WARNING, ToolSupport, suggest_parser, tool_support

        endpoint = self.chat.endpoint_provider() if self.chat is not None else None
        if endpoint is None:
            return None
        if endpoint.model != BUILTIN_MODEL.served_name:
            support = tool_support(endpoint.model)
        else:
            model_dir = builtin_model_path(self.paths) if self.paths is not None else None
            support = tool_support(endpoint.model, model_dir=model_dir)
            if support.template_has_tools is None:  # SmolLM2's template (known) does not describe tools
                support = ToolSupport(support.parser, False, FORCED_ONLY_WARNING)
        profile = self.running_profile()
        if (
            profile is not None
            and profile.kind == "local"
            and profile.name == endpoint.profile_name
            and not profile.tool_call_parser
        ):
            # Started without a parser: vLLM refuses the tools (HTTP 400); said before the turn.
            parser = suggest_parser(profile.model) or support.parser
            support = replace(support, parser=parser, profile_without_parser=profile.name)
        return support

    async def _settings(self, conversation_id: int) -> Any:
        from engine.chat.generation import GenerationSettings

        conversation = await self.store.conversation(conversation_id)
        return GenerationSettings.parse(conversation.settings)

    async def _tools(self, names: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
        """The tools these names give (built-in ones, and the MCP servers' — started now when needed)."""
        from engine.tools.builtin import (
            CURRENT_TIME,
            SEARCH_DOCUMENTS,
            SEARCH_HISTORY,
            current_time_tool,
            history_search_tool,
        )

        tools: list[Any] = []
        if CURRENT_TIME in names:
            tools.append(current_time_tool())
        if SEARCH_HISTORY in names:
            tools.append(history_search_tool(self.store))
        if SEARCH_DOCUMENTS in names:
            tool = self._documents_tool()
            if tool is not None:
                tools.append(tool)
        mcp_tools, owners = await self._server_tools(names)
        tools.extend(mcp_tools)
        self._owners.update(owners)
        return tools, owners

    async def _server_tools(self, names: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
        """The MCP servers' tools among ``names`` (started now when needed); what is not available is said
        in the composer's notice."""
        from engine.errors import DeskError
        from engine.tools.builtin import BUILTIN_NAMES
        from engine.tools.config import unused_reason

        servers = [n for n in names if n not in BUILTIN_NAMES]
        if not names or self.config_dir is None:
            return [], {}
        try:
            known = {s.name for s in self.manager.settings.load().servers}
        except DeskError:
            if servers:
                raise
            return [], {}  # built-in tools alone: a damaged tools.toml does not stop them
        # A server named as a ticked built-in tool (an older tools.toml) is never started: said, not hidden.
        failed = [f"{n}: {unused_reason(n)}" for n in names if n in known and unused_reason(n)]
        for name in servers:
            if name not in known:
                failed.append(tr("{name}: no such MCP server any more").format(name=name))
                continue
            state = await self.manager.start(name)
            if state.status != "ready":
                failed.append(f"{name}: {state.describe()}")
        if failed:
            self.composer.set_notice(
                tr("Some tools are not available for this reply — {what}").format(what="; ".join(failed))
            )
        return self.manager.tools(servers) if servers else ([], {})

    def _documents_tool(self) -> Any:
        if self.paths is None:
            return None
        from engine.documents.store import DocumentStore, documents_db
        from engine.tools.builtin import documents_search_tool

        if self._documents is None:
            self._documents = DocumentStore(documents_db(self.paths))
        collections = [c.name for c in self._documents.collections()]
        if not collections:
            self.composer.set_notice(tr("There are no document collections to search yet."))
            return None
        return documents_search_tool(self._documents, collections)

    def _policy(self, conversation_id: int) -> ApprovalPolicy:
        from engine.tools.approval import ApprovalPolicy

        policy = self._policies.get(conversation_id)
        if policy is None:

            async def ask(request: CallRequest) -> Decision:
                return await self._ask(conversation_id, request)

            policy = self._policies[conversation_id] = ApprovalPolicy(ask)
        return policy

    # --- starting turns -----------------------------------------------------------------------------

    async def send(self, conversation_id: int, text: str) -> bool:
        """Answer ``text`` with tools if the conversation has tools enabled (``False``: it has none, the
        plain chat answers). Returns once the turn runs; raises what refuses it before anything is stored."""
        settings = await self._settings(conversation_id)
        if not settings.tools:
            return False
        tree = await self.store.load(conversation_id)
        await self._start(conversation_id, tree.shown_leaf(), text, settings, Send())
        return True

    async def regenerate(self, reply_id: int) -> bool:
        """Answer the message of ``reply_id`` again with tools (``False``: the conversation has none)."""
        reply = await self.store.message(reply_id)
        settings = await self._settings(reply.conversation_id)
        if not settings.tools or reply.parent_id is None:
            return False
        await self._start(
            reply.conversation_id, reply.parent_id, None, settings, Rerun(reply.parent_id), replacing=reply_id
        )
        return True

    async def edit(self, message_id: int, text: str) -> bool:
        """Send ``text`` as a new version of the user's message ``message_id`` (the first one too), answered
        with tools (``False``: the conversation has none)."""
        original = await self.store.message(message_id)
        settings = await self._settings(original.conversation_id)
        if not settings.tools:
            return False
        await self._start(
            original.conversation_id,
            original.parent_id,
            text,
            settings,
            Edit(message_id),
            replacing=message_id,
        )
        return True

    async def _start(
        self,
        conversation_id: int,
        anchor: int | None,
        text: str | None,
        settings: Any,
        kind: Send | Rerun | Edit,
        *,
        replacing: int | None = None,
    ) -> None:
        """Show and run a turn under ``anchor`` (``None``: a new first message; ``replacing``: the message
        whose new version it is, taken off the screen with what follows it)."""
        from engine.chat.errors import ChatError, NoServer
        from engine.tools.loop import tool_choice_value

        if conversation_id in self._live or (
            self.chat is not None and self.chat.running_turn(conversation_id) is not None
        ):
            raise ChatError("This conversation is still answering; stop it or wait for the reply.")
        chat = self.chat
        endpoint = chat.endpoint_provider() if chat is not None else None
        if chat is None or endpoint is None:
            raise NoServer()
        tools, owners = await self._tools(settings.tools)
        tool_choice_value(settings.tool_choice, [t.name for t in tools])  # refused before anything is stored
        await chat.warm_up()
        live = LiveTurn(conversation_id, anchor, text, endpoint.model)
        self._live[conversation_id] = live
        if self._shown() == conversation_id:
            if replacing is not None:
                self.transcript.truncate_from(replacing)
            self.composer.set_busy(True)
            self.transcript.follow()
            for data in live.data():
                self.transcript.add_message(data)
        live.task = asyncio.get_running_loop().create_task(
            self._run(live, endpoint, tools, owners, settings.tool_choice, kind),
            name=f"tool-turn-{conversation_id}",
        )

    async def _run(
        self,
        live: LiveTurn,
        endpoint: Any,
        tools: list[Any],
        owners: dict[str, str],
        choice: str,
        kind: Send | Rerun | Edit,
    ) -> None:
        from engine.tools.session import ToolTurnOptions, edit_tool_turn, rerun_tool_turn, run_tool_turn

        assert self.chat is not None
        cid = live.conversation_id
        options = ToolTurnOptions(
            tools=tools,
            approval=self._policy(cid),
            choice=choice,
            servers=owners,
            on_event=lambda event: self._on_event(live, event),
            augment=self.chat.augment,  # attached documents ground tool turns too (documents_controller)
        )
        try:
            async with self.chat.generators.lease(endpoint) as generator:
                if isinstance(kind, Rerun):
                    turn = await rerun_tool_turn(self.store, generator, endpoint, kind.user_id, options)
                elif isinstance(kind, Edit):
                    assert live.user_text is not None
                    turn = await edit_tool_turn(
                        self.store, generator, endpoint, kind.message_id, live.user_text, options
                    )
                else:
                    assert live.user_text is not None
                    turn = await run_tool_turn(
                        self.store, generator, endpoint, cid, live.user_text, options, parent_id=live.anchor
                    )
            if turn.error is not None:
                errors.report(turn.error)
        except asyncio.CancelledError:
            await self._close_unanswered(cid)
        except Exception as exc:  # noqa: BLE001 - shown like any failed operation; what ran is stored
            errors.report(exc)
        finally:
            for waiting in live.waiting.values():
                waiting.cancel()
            self._live.pop(cid, None)
        if not self._closing:
            await self._after(cid)

    async def _after(self, conversation_id: int) -> None:
        if self._shown() == conversation_id:
            self.composer.set_busy(False)
            await self._show(conversation_id)
        await self.sidebar.reload()
        if self._shown() == conversation_id:
            self.sidebar.select_conversation(conversation_id)
        self.finished.emit(conversation_id)

    async def _close_unanswered(self, conversation_id: int) -> None:
        """A stopped turn: every call of the last tool-call reply gets a result, so the branch stays a valid
        request (an answered call list) for the next turn."""
        from haystack.dataclasses import ChatMessage, ToolCall

        from engine.history.store import HistoryStore
        from engine.tools.loop import TOOL_META, result_meta

        tree = await self.store.load(conversation_id)
        branch = tree.branch()
        answered: set[str] = set()
        for message in reversed(branch):
            if message.role == "tool":
                result = result_of(message) or {}
                answered.add(str((result.get("origin") or {}).get("id") or ""))
                continue
            calls = calls_of(message) if message.role == "assistant" else []
            servers = tool_meta(message).get("servers")
            servers = servers if isinstance(servers, dict) else {}
            last = branch[-1].id
            for call in calls:
                if str(call.get("id") or "") in answered:
                    continue
                origin = ToolCall.from_dict(call)
                server = servers.get(origin.id) or server_of(origin.tool_name, self._owners)
                stopped = ChatMessage.from_tool(
                    STOPPED_RESULT, origin=origin, error=True, meta={TOOL_META: result_meta(server)}
                )
                stored = await self.store.call(
                    HistoryStore.add_message,
                    conversation_id,
                    last,
                    "tool",
                    STOPPED_RESULT,
                    content=stopped.to_dict(),
                )
                last = stored.id
            break

    def stop(self, conversation_id: int | None) -> None:
        live = self._live.get(conversation_id) if conversation_id is not None else None
        if live is not None and live.task is not None:
            live.task.cancel()

    async def aclose(self) -> None:
        """Stop the running tool turns (what ran stays stored) and every MCP server (no orphans)."""
        self._closing = True
        if self.tools_file is not None:
            self.tools_file.close()
        tasks = [live.task for live in self._live.values() if live.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._manager is not None:
            await self._manager.aclose()
        if self._documents is not None:
            self._documents.close()
            self._documents = None

    # --- what the loop reports ----------------------------------------------------------------------

    def _on_event(self, live: LiveTurn, event: LoopEvent) -> None:
        shown = self._shown() == live.conversation_id
        if event.kind == "token":
            live.text += event.text
            if shown:
                self.transcript.append_token(live.reply_key, event.text)
        elif event.kind == "reasoning":
            live.reasoning += event.text
            if shown:
                self.transcript.append_reasoning(live.reply_key, event.text)
        elif event.kind == "notice":
            if shown:
                self.composer.set_notice(event.text)
        elif event.call is not None:
            self._on_call_event(live, event, shown)

    def _on_call_event(self, live: LiveTurn, event: LoopEvent, shown: bool) -> None:
        request = event.call
        assert request is not None
        view = live.call(request.call_id)
        if event.kind == "call" or view is None:
            view = CallView(
                call_id=request.call_id,
                tool=request.tool,
                server=request.server,
                arguments=dict(request.arguments),
                raw_arguments=request.raw_arguments,
            )
            live.calls.append(view)
            widget = self.transcript.message(live.reply_key) if shown else None
            if widget is not None:
                self._add_card(widget, view, live)
        card = self._card(view.call_id)
        if event.kind == "decision" and event.decision is not None:
            view.decision, view.asking = event.decision, False
            if card is not None:
                card.set_decision(event.decision)
        elif event.kind == "result":
            view.result, view.error, view.asking = event.text, event.error, False
            if card is not None:
                card.set_result(event.text, event.error)

    async def _ask(self, conversation_id: int, request: CallRequest) -> Decision:
        live = self._live.get(conversation_id)
        if live is None:
            return "deny"
        view = live.call(request.call_id)
        if view is not None:
            view.asking = True
        card = self._card(request.call_id)
        if card is not None:
            card.ask()
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        live.waiting[request.call_id] = future
        try:
            return await future
        finally:
            live.waiting.pop(request.call_id, None)

    def decide(self, call_id: str, decision: Decision) -> None:
        """The user's answer on a card (also for tests and keyboard actions)."""
        for live in self._live.values():
            future = live.waiting.get(call_id)
            if future is not None and not future.done():
                future.set_result(decision)
                return

    # --- the transcript -----------------------------------------------------------------------------

    def transcript_data(self, tree: ConversationTree, to_data: ToData) -> list[MessageData]:
        """What the transcript shows of ``tree``: tool turns folded into cards, and a running tool turn (as it
        stands) after the stored messages it follows."""
        live = self._live.get(tree.conversation.id)
        branch = tree.branch()
        if live is not None:
            cut = next((i for i, m in enumerate(branch) if m.id == live.anchor), -1)
            branch = branch[: cut + 1]
        shown = fold_branch(tree, branch, to_data, self._owners)
        if live is not None:
            shown.extend(live.data())
        return shown

    def decorate(self, widget: MessageWidget) -> None:
        """The transcript's hook for a new message widget: the cards of its tool calls."""
        calls = widget.data.extra.get("tool_calls")
        if not isinstance(calls, list):
            return
        live = next((t for t in self._live.values() if t.reply_key == widget.data.id), None)
        for view in calls:
            if isinstance(view, CallView):
                self._add_card(widget, view if live is not None else replace(view, asking=False), live)

    def _add_card(self, widget: MessageWidget, view: CallView, live: LiveTurn | None) -> None:
        card = ToolCard(view, widget)
        if live is not None:
            card.decided.connect(lambda call_id, decision: self.decide(call_id, decision))
            self._cards[view.call_id] = card
        widget.add_attachment(card)
        if view.asking:
            card.ask()

    def _card(self, call_id: str) -> ToolCard | None:
        card = self._cards.get(call_id)
        if card is not None and not isValid(card):
            del self._cards[call_id]
            return None
        return card
