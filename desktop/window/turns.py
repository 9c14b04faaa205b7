"""Turns in the window: send (or queue while the server starts), stop, regenerate, edit and resend, switch
branches, and the streamed events of the engine's turns onto the transcript.

A message written while the server starts waits as a :class:`QueuedMessage` tied to the conversation it was
written in (or to the new chat it was written in), and goes there once the server is ready, whatever the
window shows by then. A message that cannot go (the start ended without a server, or its send failed) comes
back into the message box of its conversation, ahead of any draft, if that conversation is on screen; else it
stays queued with its conversation (shown there again, sent at the next start), so nothing is lost.

A mixin of :class:`desktop.window.main_window.MainWindow` (its methods use the window's widgets and engine
objects);
kept apart so that each module holds one idea.
"""

from __future__ import annotations

import gc
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer

from desktop import errors
from desktop.errors import Problem
from desktop.operations import Operation
from desktop.widgets.transcript import MessageData
from engine.chat.errors import NoServer
from engine.errors import Fix
from engine.history.records import ConversationTree, StoredMessage
from engine.history.store import HistoryStore

if TYPE_CHECKING:
    from desktop.widgets.chat_settings import ChatSettingsPanel
    from desktop.widgets.composer import Composer
    from desktop.widgets.sidebar import Sidebar
    from desktop.widgets.transcript import TranscriptView
    from desktop.window.server_link import ServerLink
    from engine.chat.engine import ChatEngine, Turn, TurnEvent
    from engine.history.async_store import AsyncHistoryStore
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


def freeze_long_lived() -> None:
    """Move what lives now (modules, Haystack's and pydantic's classes, the widgets) out of the garbage
    collector's reach, so the full collections a stream's garbage triggers no longer walk it (one took
    ~300 ms mid-stream, the longest stall of a 20k-token reply). O(1); the few cycles that happen to be
    garbage at this moment are kept (tens of objects)."""
    gc.freeze()


@dataclass(frozen=True)
class QueuedMessage:
    """A message written while the server was starting, and where it goes once the server is ready."""

    text: str
    conversation_id: int | None  # None: a new conversation
    new_chat: int  # which new chat it was written in (0 for an existing conversation): each gets its own
    placeholder: str = ""  # its id in the transcript while it waits ("": a message sent at once)

    @property
    def destination(self) -> tuple[int | None, int]:
        return (self.conversation_id, self.new_chat)


_placeholder_ids = itertools.count(1)
_new_chat_ids = itertools.count(1)


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


class TurnsMixin:
    """The chat turns of :class:`~desktop.window.main_window.MainWindow`."""

    # What the window provides (declared for the type checker).
    transcript: TranscriptView
    composer: Composer
    sidebar: Sidebar
    chat: ChatEngine
    store: AsyncHistoryStore
    settings: SettingsStore
    conversation_id: int | None
    tree: ConversationTree | None
    engine_ready: bool
    server_link: ServerLink | None
    turn_finished: Any  # Signal(object)
    pieces: PieceBuffer
    chat_settings: ChatSettingsPanel
    # Messages waiting for the server, oldest first; replaced, never changed in place (the shared default).
    pending: tuple[QueuedMessage, ...] = ()
    given_back_notice = ""  # the composer's notice about messages that were not sent, while shown
    # Which new chat the window shows (see QueuedMessage.new_chat); 0: none numbered yet. new_chat() resets
    # it, so a message of an earlier new chat never lands in a later one.
    shown_new_chat: int = 0

    if TYPE_CHECKING:

        def setWindowTitle(self, title: str) -> None: ...

        def _update_context(self, tree: ConversationTree | None) -> None: ...

        async def _show_conversation(self, conversation_id: int) -> None: ...

        def show_problem(self, problem: Problem) -> None: ...

    def _link(self) -> ServerLink:
        assert self.server_link is not None  # the actions are only connected when there is a link
        return self.server_link

    def server_ready(self) -> bool:
        return self.engine_ready and self.chat.endpoint_provider() is not None

    def server_starting(self) -> bool:
        link = self.server_link
        return self.engine_ready and link is not None and link.starting and not self.server_ready()

    def server_became_ready(self) -> None:
        """Called by the server link: send what was queued, refresh the context meter."""
        self._update_context(self.tree)
        self.flush_queue()

    def send_message(self, text: str) -> None:
        if self.server_starting():
            self._queue(text)
            return
        self.composer.set_notice("")
        freeze_long_lived()  # before the send's own work, which may already trigger a full collection
        item = self._here(text)
        Operation(
            self.composer.send_button, lambda: self._send(text, item.conversation_id, item.new_chat)
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
        item = self._here(text)
        Operation(
            self.composer.send_button,
            lambda: self._send(text, item.conversation_id, item.new_chat, drop_oldest_turns=turns),
        ).failure(lambda exc: self._send_failed([item], exc)).run()

    def _here(self, text: str, placeholder: str = "") -> QueuedMessage:
        """``text`` addressed to what the window shows: its conversation, or its new chat (numbered now)."""
        if self.conversation_id is not None:
            return QueuedMessage(text, self.conversation_id, 0, placeholder)
        if not self.shown_new_chat:
            self.shown_new_chat = next(_new_chat_ids)
        return QueuedMessage(text, None, self.shown_new_chat, placeholder)

    def _on_screen(self, item: QueuedMessage) -> bool:
        if item.conversation_id is not None:
            return item.conversation_id == self.conversation_id
        return self.conversation_id is None and item.new_chat == self.shown_new_chat

    def _send_failed(self, items: Sequence[QueuedMessage], exc: BaseException) -> None:
        errors.report(exc)
        self.give_back(items, tr("Sending failed"))

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
        endpoint = self.chat.endpoint_provider()
        if endpoint is None:
            raise NoServer()  # before anything is stored: a refused send leaves no empty conversation
        created = target is None
        if target is None:
            # A new conversation starts from the model's preset (the tiny built-in one rambles at 1.0).
            preset = self.settings.settings.preset_for(endpoint.model)
            # What the user set in the chat settings panel for this new chat, if anything.
            preset = self.chat_settings.for_new_chat(preset)
            conversation = await self.chat.new_conversation(settings=preset)
            target = conversation.id
            # Checked after the await: the user may have opened another conversation or chat meanwhile.
            if self.conversation_id is None and new_chat and new_chat == self.shown_new_chat:
                self.conversation_id = target
        try:
            turn = await self.chat.send(target, text, drop_oldest_turns=drop_oldest_turns)
        except Exception:
            if created:  # refused (too long, ...): the empty conversation goes again
                if self.conversation_id == target:
                    self.conversation_id = None
                await self.store.delete_conversation(target)
            raise
        if self.conversation_id == target:
            # Before the turn's first event runs: show the user's message and an empty reply to stream into.
            self.composer.set_busy(True)
            self.transcript.follow()  # the new message and its reply are shown, wherever the view was
            self.transcript.add_message(MessageData(id=turn.user_message_id or -1, role="user", text=text))
            self._begin_reply(turn)
        await self.sidebar.reload()
        if self.conversation_id == target:
            self.sidebar.select_conversation(turn.conversation_id)
            # The first message named the chat (saved with the reply's row): the title bar says so too.
            row = self.sidebar.model.row_of(target)
            if row >= 0:
                title = self.sidebar.model.conversations()[row].title or tr("New chat")
                self.setWindowTitle(f"{title} — vLLM Desk")

    # --- messages written while the server starts ----------------------------------------------------

    def _placeholders_shown(self) -> set[str]:
        return {str(w.data.id) for w in self.transcript.messages() if str(w.data.id).startswith("queued-")}

    def _queue(self, text: str) -> None:
        item = self._here(text, f"queued-{next(_placeholder_ids)}")
        self.pending = (*self.pending, item)
        self._show_placeholder(item)

    def _show_placeholder(self, item: QueuedMessage) -> None:
        self.transcript.follow()
        self.transcript.add_message(
            MessageData(id=item.placeholder, role="user", text=item.text, state="queued")
        )
        self.composer.set_notice(tr("The server is starting; your message will be sent when it is ready."))

    def show_queued(self, conversation_id: int) -> None:
        """Show again the messages that wait to go into ``conversation_id`` (it was shown anew)."""
        shown = self._placeholders_shown()
        for item in self.pending:
            if item.conversation_id == conversation_id and item.placeholder not in shown:
                self._show_placeholder(item)

    def _take_placeholders(self, items: Sequence[QueuedMessage]) -> None:
        """Remove the placeholders of ``items`` from the transcript, also those paged out (no widget)."""
        for item in items:
            if item.placeholder:
                self.transcript.remove_message(item.placeholder)

    def flush_queue(self) -> None:
        """Send what was written while the server was starting into the conversations it was written in
        (called when the server is ready)."""
        if not self.pending:
            return
        groups: dict[tuple[int | None, int], list[QueuedMessage]] = {}
        for item in self.pending:
            groups.setdefault(item.destination, []).append(item)
        self.pending = ()
        self.composer.set_notice("")
        for (target, new_chat), items in groups.items():
            text = "\n\n".join(q.text for q in items)
            self._take_placeholders(items)
            send = partial(self._send, text, target, new_chat)
            # One message for the group, so a failure gives it back once, as it was sent.
            joined = [QueuedMessage(text, target, new_chat, items[0].placeholder)]
            Operation(None, send).failure(partial(self._send_failed, joined)).run()

    def return_queued(self, reason: str) -> None:
        """The start ended without a server (``reason`` says how): see :meth:`give_back`."""
        if self.pending:
            items, self.pending = self.pending, ()
            self.give_back(items, reason)

    def give_back(self, items: Sequence[QueuedMessage], reason: str) -> None:
        """Messages that were not sent (``reason`` says why): those of the conversation on screen go back
        into its message box, ahead of any draft there; the others stay queued with their conversation
        (shown there again, sent at the next start). The notice says which happened."""
        here = [q for q in items if self._on_screen(q)]
        elsewhere = [q for q in items if not self._on_screen(q)]
        self._take_placeholders(here)
        notices = []
        if here:
            texts = [q.text for q in here]
            draft = self.composer.editor.toPlainText()
            if draft.strip():
                texts.append(draft)
            self.composer.editor.setPlainText("\n\n".join(texts))
            notices.append(
                tr("{reason}: your message was not sent; it is back in the message box.").format(
                    reason=reason
                )
            )
        if elsewhere:
            # Queued again under a placeholder, so that show_queued shows them with their conversation.
            self.pending = (
                *self.pending,
                *(
                    q if q.placeholder else replace(q, placeholder=f"queued-{next(_placeholder_ids)}")
                    for q in elsewhere
                ),
            )
            notices.append(
                tr(
                    "{reason}: {count} message(s) written in other chats were not sent; they wait with their "
                    "chat and go when the server is next ready."
                ).format(reason=reason, count=len(elsewhere))
            )
        self.given_back_notice = " ".join(notices)
        self.composer.set_notice(self.given_back_notice)

    def clear_given_back_notice(self) -> None:
        """A server is ready: the notice that messages were not sent (because there was none) is history."""
        if self.given_back_notice and self.composer.notice.text() == self.given_back_notice:
            self.composer.set_notice("")
        self.given_back_notice = ""

    def _begin_reply(self, turn: Turn, branch_index: int = 0, branch_count: int = 1) -> None:
        freeze_long_lived()
        self.composer.set_busy(True)
        self.transcript.follow()  # also a regenerated or edited turn: its new reply is watched
        model = self.chat.endpoint_provider()
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

    def stop_reply(self) -> None:
        if self.engine_ready and self.conversation_id is not None:
            self.chat.stop(self.conversation_id)

    def regenerate_last(self) -> None:
        if not self.engine_ready:
            return
        replies = [w for w in self.transcript.messages() if w.data.role == "assistant"]
        if replies and not replies[-1].streaming:
            self.regenerate(int(replies[-1].data.id))

    def regenerate(self, reply_id: int) -> None:
        Operation(self.composer.send_button, lambda: self._regenerate(reply_id)).run()

    async def _regenerate(self, reply_id: int) -> None:
        old = self.transcript.message(reply_id)
        count = old.data.branch_count if old else 1
        turn = await self.chat.regenerate(reply_id)
        self.transcript.truncate_from(reply_id)
        self._begin_reply(turn, branch_index=count, branch_count=count + 1)

    def edit_and_resend(self, message_id: int, text: str) -> None:
        Operation(self.composer.send_button, lambda: self._edit(message_id, text)).run()

    async def _edit(self, message_id: int, text: str) -> None:
        old = self.transcript.message(message_id)
        count = old.data.branch_count if old else 1
        turn = await self.chat.edit_and_resend(message_id, text)
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
        if self.tree is None or self.conversation_id is None:
            return
        siblings = self.tree.siblings(message_id)
        index = siblings.index(message_id) + step
        if 0 <= index < len(siblings):
            await self.store.switch_branch(siblings[index])
            await self._show_conversation(self.conversation_id)

    def delete_message(self, message_id: int) -> None:
        """Delete a message and the replies under it; the banner offers Undo until the app quits."""
        Operation(None, lambda: self._delete_message(message_id)).run()

    async def _delete_message(self, message_id: int) -> None:
        if self.conversation_id is None:
            return
        conversation_id = self.conversation_id
        if self.engine_ready and self.chat.running_turn(conversation_id) is not None:
            self.chat.stop(conversation_id)  # its reply may be under the message: it ends saved, then goes
            turn = self.chat.running_turn(conversation_id)
            if turn is not None:
                await turn.wait()
        token = await self.store.call(HistoryStore.delete_message, message_id)
        if self.conversation_id == conversation_id:
            await self._show_conversation(conversation_id)
        self.show_problem(
            Problem(
                tr("Message deleted"),
                tr(
                    "It is gone when vLLM Desk quits, with the replies under it; "
                    "until then you can bring it back."
                ),
                Fix(action="undo_delete_message", label=tr("Undo"), params={"token": token}),
            )
        )

    def undo_delete_message(self, fix: Fix) -> None:
        token = int(fix.params["token"])
        Operation(None, lambda: self._undo_delete_message(token)).run()

    async def _undo_delete_message(self, token: int) -> None:
        conversation_id = await self.store.call(HistoryStore.undo_delete_message, token)
        await self._show_conversation(conversation_id)

    def _message_action(self, name: str, message_id: object) -> None:
        if not isinstance(message_id, int):
            return
        if name in ("regenerate", "edit") and not self.engine_ready:
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

    def _on_turn_event(self, event: TurnEvent) -> None:
        # Called once per token, in the GUI thread (see desktop.bridge): buffered, nothing else.
        if event.kind in ("token", "reasoning"):
            if event.conversation_id == self.conversation_id:
                self.pieces.add(event.kind, event.reply_id, event.text)
            return
        self.pieces.flush()  # what streamed comes before the turn's end
        if event.conversation_id != self.conversation_id:
            return
        if event.kind == "error" and event.error is not None:
            fix = getattr(event.error, "fix", None)
            if isinstance(fix, Fix) and "conversation_id" not in fix.params:
                # The fix acts on this conversation, even once the user has opened another one.
                params = {**fix.params, "conversation_id": event.conversation_id}
                event.error.fix = replace(fix, params=params)
            errors.report(event.error)
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
        if event.conversation_id != self.conversation_id:
            return
        self.tree = tree
        for widget in self.transcript.messages():
            if isinstance(widget.data.id, int) and widget.data.id in {m.id for m in tree.messages}:
                data = message_data(tree, tree.message(widget.data.id))
                if widget.data.id == event.reply_id:
                    self.transcript.update_message(data)
                else:
                    widget.data.branch_index, widget.data.branch_count = data.branch_index, data.branch_count
                    widget._update_footer()
        self._update_context(tree)
        self.turn_finished.emit(event)
        await self.sidebar.reload()
        self.sidebar.select_conversation(event.conversation_id)
