"""The turn controller: send (or queue in the outbox while the server starts), stop, regenerate, edit and
resend, switch branches, delete a message, and the streamed events of the engine's turns onto the transcript.

:class:`TurnController` gets what it drives (the transcript, the composer, the chat settings panel, the
:class:`~desktop.window.shown.ShownConversation`, the :class:`~desktop.window.outbox.Outbox`) and a few
callables for what belongs to the window (showing a conversation again, the context meter); it never sees
the window. Messages written while the server starts wait in the outbox (see desktop/window/outbox.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from desktop import errors
from desktop.errors import FixContext, Problem
from desktop.operations import Operation
from desktop.widgets.chat_settings import ChatSettingsPanel
from desktop.widgets.composer import Composer
from desktop.widgets.transcript import MessageData, TranscriptView
from desktop.window.fix_actions import FixRegistry
from desktop.window.outbox import Outbox, QueuedMessage
from desktop.window.shown import ShownConversation
from engine.chat.collector import freeze_long_lived
from engine.chat.errors import NoServer
from engine.errors import Fix
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import ConversationTree, StoredMessage
from engine.history.store import HistoryStore

if TYPE_CHECKING:
    from desktop.window.tool_turns import ToolTurns
    from engine.chat.engine import ChatEngine, Turn, TurnEvent
    from engine.settings.store import SettingsStore

log = logging.getLogger(__name__)


def tr(text: str) -> str:
    return QCoreApplication.translate("MainWindow", text)


def message_data(tree: ConversationTree, message: StoredMessage) -> MessageData:
    """What the transcript shows of a stored message."""
    siblings = tree.siblings(message.id)
    state = {"complete": "complete", "streaming": "streaming", "failed": "error"}.get(
        message.state, "stopped"
    )
    return MessageData(
        id=message.id,
        role=message.role,
        text=message.text,
        reasoning=message.reasoning,
        model=message.model,
        branch_index=siblings.index(message.id),
        branch_count=len(siblings),
        state=state,
        error=message.error,
        completion_tokens=message.numbers.completion_tokens,
        tokens_per_s=message.numbers.tokens_per_s,
        ttft_s=message.numbers.ttft_s,
    )


# How long streamed text may wait before the transcript gets it: about one frame, so a fast stream costs the
# window one call per frame instead of one per token.
BATCH_MS = 16


class PieceBuffer(QObject):
    """Streamed pieces (tokens, reasoning) handed on joined, at most once per ``interval_ms``.

    A piece after a quiet interval goes on at once (the first token is not delayed); the ones that follow
    wait for the timer. :meth:`add` costs a list append and a clock read (no Qt work per token); :meth:`flush`
    hands ``sink(kind, reply_id, text)`` one joined text per run of same-kind pieces of one reply, in arrival
    order. Call :meth:`flush` before anything that must come after the pieces (a turn's end, a switch).
    """

    def __init__(
        self,
        sink: Callable[[str, int | str, str], None],
        interval_ms: int = BATCH_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._sink = sink
        self._pieces: list[tuple[str, int | str, str]] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._interval_s = interval_ms / 1000
        self._armed = False
        self._last_flush = 0.0
        self.flushes = 0  # batches handed on (tests, benchmarks)

    def add(self, kind: str, reply_id: int | str, text: str) -> None:
        self._pieces.append((kind, reply_id, text))
        if self._armed:
            return
        if time.monotonic() - self._last_flush >= self._interval_s:
            self.flush()
        else:
            self._armed = True
            self._timer.start()  # once per batch, not per token

    def __len__(self) -> int:
        return len(self._pieces)

    def flush(self) -> None:
        if not self._pieces:
            return
        if self._armed:
            self._armed = False
            self._timer.stop()
        self._last_flush = time.monotonic()
        pieces, self._pieces = self._pieces, []
        self.flushes += 1
        run_kind, run_id, run = pieces[0][0], pieces[0][1], [pieces[0][2]]
        for kind, reply_id, text in pieces[1:]:
            if kind == run_kind and reply_id == run_id:
                run.append(text)
                continue
            self._sink(run_kind, run_id, "".join(run))
            run_kind, run_id, run = kind, reply_id, [text]
        self._sink(run_kind, run_id, "".join(run))


class TurnController(QObject):
    """The chat turns of the conversation on screen (and of those sent from it, wherever the user goes)."""

    turn_finished = Signal(object)  # TurnEvent "finished" of the shown conversation

    def __init__(
        self,
        *,
        store: AsyncHistoryStore,
        shown: ShownConversation,
        outbox: Outbox,
        transcript: TranscriptView,
        composer: Composer,
        chat_settings: ChatSettingsPanel,
        reshow: Callable[[int], Awaitable[None]],
        tree_changed: Callable[[ConversationTree | None], None],
        show_problem: Callable[[Problem], None],
        parent: QObject | None = None,
    ) -> None:
        """``reshow(id)``: load and show that conversation again; ``tree_changed(tree)``: the shown
        conversation grew (the context meter follows). The sidebar follows the store by itself."""
        super().__init__(parent)
        self.store = store
        self.shown = shown
        self.outbox = outbox
        self.transcript = transcript
        self.composer = composer
        self.chat_settings = chat_settings
        self.reshow = reshow
        self.tree_changed = tree_changed
        self.show_problem = show_problem
        self.pieces = PieceBuffer(self._show_pieces, parent=self)  # streamed text, one batch per frame
        self.chat: ChatEngine | None = None
        self.settings: SettingsStore | None = None
        self.starting: Callable[[], bool] = lambda: False  # a server start is under way (the server link's)
        # Conversations with tools enabled answer through desktop/window/tool_turns.py (set by the window).
        self.tool_turns: ToolTurns | None = None

    def attach(self, chat: ChatEngine, settings: SettingsStore, starting: Callable[[], bool] | None) -> None:
        """The engine is there (see MainWindow.attach); ``starting``: whether a server start is under way."""
        self.chat = chat
        self.settings = settings
        if starting is not None:
            self.starting = starting

    @property
    def engine_ready(self) -> bool:
        return self.chat is not None

    def _chat(self) -> ChatEngine:
        if self.chat is None:
            raise RuntimeError("the chat engine is not attached yet")
        return self.chat

    def register_fixes(self, registry: FixRegistry) -> None:
        registry.register(["undo_delete_message"], lambda fix, _context: self.undo_delete_message(fix))
        registry.register(["retry_turn"], self.retry_turn)
        registry.register(["set_mode_completion", "use_completion_mode"], self.use_completion_mode)
        registry.register(["drop_oldest_turns"], lambda fix, _context: self.send_dropping_oldest(fix))

    # --- the server ------------------------------------------------------------------------------------

    def server_ready(self) -> bool:
        return self.chat is not None and self.chat.endpoint_provider() is not None

    def server_starting(self) -> bool:
        return self.chat is not None and self.starting() and not self.server_ready()

    def server_became_ready(self) -> None:
        """The server link says the server is ready: send what was queued, refresh the context meter."""
        self.tree_changed(self.shown.tree)
        self.outbox.flush(self.send_item)

    # --- sending ---------------------------------------------------------------------------------------

    def send_message(self, text: str) -> None:
        if self.server_starting():
            self.outbox.queue(text)
            return
        self.composer.set_notice("")
        self.send_item(self.outbox.here(text), self.composer.send_button)

    def send_item(
        self, item: QueuedMessage, button: QWidget | None = None, drop_oldest_turns: int = 0
    ) -> None:
        """Send ``item`` where it was written (``button`` is disabled meanwhile); if it cannot go, the outbox
        gives it back."""
        Operation(
            button,
            lambda: self._send(
                item.text, item.conversation_id, item.new_chat, drop_oldest_turns=drop_oldest_turns
            ),
        ).failure(lambda exc: self._send_failed([item], exc)).run()

    def send_dropping_oldest(self, fix: Fix) -> None:
        """The fix of "too long for the context": send the draft (put back in the editor when it was
        refused) without the oldest turns the engine found necessary to leave out."""
        turns = fix.params.get("turns")
        text = self.composer.editor.toPlainText()
        if not isinstance(turns, int) or not text.strip():
            self.composer.set_notice(fix.hint or tr("Start a new conversation, or shorten the message."))
            return
        self.composer.editor.clear()
        self.send_item(self.outbox.here(text), self.composer.send_button, drop_oldest_turns=turns)

    def _send_failed(self, items: Sequence[QueuedMessage], exc: BaseException) -> None:
        errors.report(exc)
        self.outbox.give_back(items, tr("Sending failed"))

    async def _send(
        self,
        text: str,
        target: int | None,
        new_chat: int = 0,
        *,
        drop_oldest_turns: int = 0,
    ) -> None:
        """Send ``text`` into conversation ``target`` (``None``: a new one, made with the model's preset).

        The window shows the turn if it still shows ``target``; a new conversation is shown if the window
        still shows the new chat ``new_chat`` it was written in once the conversation exists.
        """
        chat = self._chat()
        endpoint = chat.endpoint_provider()
        if endpoint is None:
            raise NoServer()  # before anything is stored: a refused send leaves no empty conversation
        created = target is None
        if target is None:
            target = await self._new_conversation(chat, endpoint.model, new_chat)
        try:
            if self.tool_turns is not None and await self.tool_turns.send(target, text):
                turn = None  # a conversation with tools: its turn runs in desktop/window/tool_turns.py
            else:
                # The shown conversation is in memory: send() reads its row, not every message again.
                shown = self.shown.tree if self.shown.shows(target) else None
                turn = await chat.send(target, text, drop_oldest_turns=drop_oldest_turns, tree=shown)
                turn.ignore_events()  # the window follows chat.turn_events
        except Exception:
            if created:  # refused (too long, ...): the empty conversation goes again
                self.shown.drop(target)
                await self.store.delete_conversation(target)
            raise
        if turn is None:
            return
        if self.shown.shows(target):
            # Before the turn's first event runs: show the user's message and an empty reply to stream into.
            self.composer.set_busy(True)
            self.transcript.follow()  # the new message and its reply are shown, wherever the view was
            self.transcript.add_message(MessageData(id=turn.user_message_id or -1, role="user", text=text))
            self._begin_reply(turn)

    async def _new_conversation(self, chat: ChatEngine, model: str, new_chat: int) -> int:
        # A new conversation starts from the model's preset (the tiny built-in one rambles at 1.0).
        if self.settings is None:
            raise RuntimeError("the settings are not attached yet")
        preset = self.settings.settings.preset_for(model)
        # What the user set in the chat settings panel for this new chat, if anything.
        preset = self.chat_settings.for_new_chat(preset)
        conversation = await chat.new_conversation(settings=preset)
        # Adopted only if the window still shows that new chat: the user may have moved on meanwhile.
        self.shown.adopt(conversation.id, new_chat)
        return conversation.id

    def _begin_reply(self, turn: Turn, branch_index: int = 0, branch_count: int = 1) -> None:
        freeze_long_lived()
        self.composer.set_busy(True)
        self.transcript.follow()  # also a regenerated or edited turn: its new reply is watched
        model = self._chat().endpoint_provider()
        self.transcript.add_message(
            MessageData(
                id=turn.reply_id,
                role="assistant",
                state="streaming",
                model=model.model if model else "",
                branch_index=branch_index,
                branch_count=branch_count,
            )
        )

    # --- stop, regenerate, edit, branches ---------------------------------------------------------------

    def stop_reply(self) -> None:
        if self.chat is not None and self.shown.conversation_id is not None:
            self.chat.stop(self.shown.conversation_id)
        if self.tool_turns is not None:
            self.tool_turns.stop(self.shown.conversation_id)

    def stop_conversation(self, conversation_id: int) -> None:
        """Stop a reply running in ``conversation_id`` (it is being deleted); its partial text is saved."""
        if self.chat is not None:
            self.chat.stop(conversation_id)

    def regenerate_last(self) -> None:
        if self.chat is None:
            return
        replies = [w for w in self.transcript.messages() if w.data.role == "assistant"]
        if replies and not replies[-1].streaming:
            self.regenerate(int(replies[-1].data.id))

    def regenerate(self, reply_id: int) -> None:
        Operation(self.composer.send_button, lambda: self._regenerate(reply_id)).run()

    async def _regenerate(self, reply_id: int) -> None:
        if self.tool_turns is not None and await self.tool_turns.regenerate(reply_id):
            return  # a conversation with tools answers again with them
        old = self.transcript.message(reply_id)
        count = old.data.branch_count if old else 1
        turn = await self._chat().regenerate(reply_id)
        turn.ignore_events()
        self.transcript.truncate_from(reply_id)
        self._begin_reply(turn, branch_index=count, branch_count=count + 1)

    def edit_and_resend(self, message_id: int, text: str) -> None:
        Operation(self.composer.send_button, lambda: self._edit(message_id, text)).run()

    async def _edit(self, message_id: int, text: str) -> None:
        if self.tool_turns is not None and await self.tool_turns.edit(message_id, text):
            return  # a conversation with tools answers the new version with them
        old = self.transcript.message(message_id)
        count = old.data.branch_count if old else 1
        turn = await self._chat().edit_and_resend(message_id, text)
        turn.ignore_events()
        self.transcript.truncate_from(message_id)
        self.transcript.add_message(
            MessageData(
                id=turn.user_message_id or -1,
                role="user",
                text=text,
                branch_index=count,
                branch_count=count + 1,
            )
        )
        self._begin_reply(turn)

    def switch_branch(self, message_id: int, step: int) -> None:
        Operation(None, lambda: self._switch(message_id, step)).run()

    async def _switch(self, message_id: int, step: int) -> None:
        tree, conversation_id = self.shown.tree, self.shown.conversation_id
        if tree is None or conversation_id is None:
            return
        siblings = tree.siblings(message_id)
        index = siblings.index(message_id) + step
        if 0 <= index < len(siblings):
            await self.store.switch_branch(siblings[index])
            await self.reshow(conversation_id)

    def message_action(self, name: str, message_id: object) -> None:
        """A message's button (regenerate, edit, delete, prev/next branch)."""
        if not isinstance(message_id, int):
            return
        if name in ("regenerate", "edit") and self.chat is None:
            return
        if name == "regenerate":
            self.regenerate(message_id)
        elif name == "edit":
            widget = self.transcript.message(message_id)
            if widget is not None:
                widget.begin_edit()
        elif name == "delete":
            self.delete_message(message_id)
        elif name in ("prev", "next"):
            self.switch_branch(message_id, -1 if name == "prev" else 1)

    # --- deleting a message ------------------------------------------------------------------------------

    def delete_message(self, message_id: int) -> None:
        """Delete a message and the replies under it; the banner offers Undo until the app quits."""
        Operation(None, lambda: self._delete_message(message_id)).run()

    async def _delete_message(self, message_id: int) -> None:
        conversation_id = self.shown.conversation_id
        if conversation_id is None:
            return
        chat = self.chat
        if chat is not None and chat.running_turn(conversation_id) is not None:
            chat.stop(conversation_id)  # its reply may be under the message: it ends saved, then goes
            turn = chat.running_turn(conversation_id)
            if turn is not None:
                await turn.wait()
        token = await self.store.call(HistoryStore.delete_message, message_id)
        if self.shown.shows(conversation_id):
            await self.reshow(conversation_id)
        self.show_problem(
            Problem(
                tr("Message deleted"),
                tr(
                    "It is gone when vLLM Desk quits, with the replies under it; "
                    "until then you can bring it back."
                ),
                Fix(action="undo_delete_message", label=tr("Undo"), params={"token": token}),
                notice=True,  # news of what was done, not a problem
            )
        )

    def undo_delete_message(self, fix: Fix) -> None:
        token = int(fix.params["token"])
        Operation(None, lambda: self._undo_delete_message(token)).run()

    async def _undo_delete_message(self, token: int) -> None:
        conversation_id = await self.store.call(HistoryStore.undo_delete_message, token)
        await self.reshow(conversation_id)

    # --- completion mode (a fix) -------------------------------------------------------------------------

    def use_completion_mode(self, fix: Fix, context: FixContext) -> None:
        """The model has no chat template: the conversation whose reply failed (the fix's context; else the
        open one) continues text instead, starting now."""
        conversation_id = context.conversation_id
        if conversation_id is None:
            conversation_id = self.shown.conversation_id
        if conversation_id is None or self.chat is None:
            self.composer.set_notice(tr("Open the conversation to switch, then use the fix again."))
            return
        chosen = conversation_id
        Operation(self.composer.send_button, lambda: self._use_completion_mode(chosen)).run()

    async def _use_completion_mode(self, conversation_id: int) -> None:
        from engine.chat.generation import GenerationSettings  # pydantic: not before the first paint

        conversation = await self.store.conversation(conversation_id)
        settings = GenerationSettings.parse(conversation.settings).updated(mode="completion")
        await self.store.update_conversation(conversation_id, settings=settings.to_json_dict())
        # The fix can be clicked as soon as the error shows, before the failed reply has ended (saved):
        # that reply is the one to answer again, once its turn is over.
        reply_id = await self._end_of_running_turn(conversation_id)
        if self.shown.tree is not None and self.shown.shows(conversation_id):
            self.shown.update_tree(await self.store.load(conversation_id))
        if not self.shown.shows(conversation_id):
            # The user has opened another conversation meanwhile: its replies are not touched.
            title = conversation.title or tr("New chat")
            self.composer.set_notice(
                tr("Completion mode is on for “{0}”; open it and regenerate its last reply.").format(title)
            )
            return
        self.composer.set_notice(tr("Completion mode: the model continues the text of this conversation."))
        if reply_id is None:
            reply_id = await self._last_reply(conversation_id)
        if reply_id is not None:
            await self._regenerate(reply_id)

    async def _end_of_running_turn(self, conversation_id: int) -> int | None:
        """Wait until the conversation's running turn (if any) has ended and its reply is saved; its reply's
        id, or ``None`` when nothing was running."""
        turn = self.chat.running_turn(conversation_id) if self.chat is not None else None
        if turn is None:
            return None
        with contextlib.suppress(Exception):  # a reply that could not be saved was already reported
            await turn.wait()
        return turn.reply_id

    async def _last_reply(self, conversation_id: int) -> int | None:
        """The model's reply to the last message the user wrote on the conversation's shown branch (a tool
        turn's first reply, which the transcript shows its calls and answer under), if it has one."""
        tree = await self.store.load(conversation_id)
        branch = tree.branch()
        asked = max((i for i, m in enumerate(branch) if m.role == "user"), default=None)
        if asked is None or asked + 1 >= len(branch) or branch[asked + 1].role != "assistant":
            return None
        return branch[asked + 1].id

    # --- try again (a fix) -------------------------------------------------------------------------------

    def retry_turn(self, _fix: Fix, context: FixContext) -> None:
        """Try again (a failed reply's fix): once its turn has ended (the fix shows before it has), a new
        version of that reply, if its conversation is still on screen."""
        conversation_id = context.conversation_id
        if conversation_id is None:
            conversation_id = self.shown.conversation_id
        if conversation_id is None or self.chat is None:
            return
        chosen = conversation_id
        Operation(self.composer.send_button, lambda: self._retry(chosen)).run()

    async def _retry(self, conversation_id: int) -> None:
        reply_id = await self._end_of_running_turn(conversation_id)
        if not self.shown.shows(conversation_id):
            self.composer.set_notice(tr("Open that conversation to try its reply again."))
            return
        if reply_id is None:
            reply_id = await self._last_reply(conversation_id)
        if reply_id is not None:
            await self._regenerate(reply_id)

    # --- the engine's events -----------------------------------------------------------------------------

    def on_turn_event(self, event: TurnEvent) -> None:
        # Called once per token, in the GUI thread (see desktop.bridge): buffered, nothing else.
        if event.kind in ("token", "reasoning"):
            if event.conversation_id == self.shown.conversation_id:
                self.pieces.add(event.kind, event.reply_id, event.text)
            return
        self.pieces.flush()  # what streamed comes before the turn's end
        if event.conversation_id != self.shown.conversation_id:
            return
        if event.kind == "error" and event.error is not None:
            # The fix acts on this conversation, even once the user has opened another one.
            errors.report(event.error, FixContext(conversation_id=event.conversation_id))
        elif event.kind == "finished":
            self.composer.set_busy(False)
            Operation(None, lambda: self._after_turn(event)).run()

    def _show_pieces(self, kind: str, reply_id: int | str, text: str) -> None:
        if kind == "token":
            self.transcript.append_token(reply_id, text)
        else:
            self.transcript.append_reasoning(reply_id, text)

    async def _after_turn(self, event: TurnEvent) -> None:
        tree = await self.store.load(event.conversation_id)
        if not self.shown.update_tree(tree):
            return
        ids = {m.id for m in tree.messages}
        for widget in self.transcript.messages():
            if isinstance(widget.data.id, int) and widget.data.id in ids:
                data = message_data(tree, tree.message(widget.data.id))
                if widget.data.id == event.reply_id:
                    self.transcript.update_message(data)
                else:
                    widget.set_branch(data.branch_index, data.branch_count)
        self.tree_changed(tree)
        self.turn_finished.emit(event)
