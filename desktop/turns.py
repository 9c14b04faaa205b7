"""Turns in the window: send (or queue while the server starts), stop, regenerate, edit and resend, switch
branches, and the streamed events of the engine's turns onto the transcript.

A mixin of :class:`desktop.main_window.MainWindow` (its methods use the window's widgets and engine objects);
kept apart so that each module holds one idea.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer

from desktop import errors
from desktop.errors import Problem
from desktop.operations import Operation
from desktop.transcript import MessageData
from engine.errors import Fix
from engine.store import HistoryStore
from engine.store_models import ConversationTree, StoredMessage

if TYPE_CHECKING:
    from desktop.composer import Composer
    from desktop.server_link import ServerLink
    from desktop.sidebar import Sidebar
    from desktop.transcript import TranscriptView
    from engine.chat import ChatEngine, Turn, TurnEvent
    from engine.settings import SettingsStore
    from engine.store_async import AsyncHistoryStore

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
    """The chat turns of :class:`~desktop.main_window.MainWindow`."""

    # What the window provides (declared for the type checker).
    transcript: TranscriptView
    composer: Composer
    sidebar: Sidebar
    chat: ChatEngine
    store: AsyncHistoryStore
    settings: SettingsStore
    conversation_id: int | None
    tree: ConversationTree | None
    queued: list[str]
    engine_ready: bool
    server_link: ServerLink | None
    turn_finished: Any  # Signal(object)
    pieces: PieceBuffer

    if TYPE_CHECKING:

        def _update_context(self, tree: ConversationTree | None) -> None: ...

        async def _show_conversation(self, conversation_id: int) -> None: ...

        def show_problem(self, problem: Problem) -> None: ...

    def _link(self) -> ServerLink:
        assert self.server_link is not None  # the actions are only connected when there is a link
        return self.server_link

    def server_ready(self) -> bool:
        return self.engine_ready and self.chat.endpoint_provider() is not None

    def server_starting(self) -> bool:
        return (
            self.engine_ready
            and self.server_link is not None
            and self.server_link.starting
            and not self.server_ready()
        )

    def server_became_ready(self) -> None:
        """Called by the server link: send what was queued, refresh the context meter."""
        self._update_context(self.tree)
        self.flush_queue()

    def send_message(self, text: str) -> None:
        if self.server_starting():
            self.queued.append(text)
            self.transcript.add_message(
                MessageData(id=f"queued-{len(self.queued)}", role="user", text=text, state="queued")
            )
            self.composer.set_notice(
                tr("The server is starting; your message will be sent when it is ready.")
            )
            return
        self.composer.set_notice("")
        freeze_long_lived()  # before the send's own work, which may already trigger a full collection
        Operation(self.composer.send_button, lambda: self._send(text)).failure(
            lambda exc: self._send_failed(text, exc)
        ).run()

    def send_dropping_oldest(self, fix: Fix) -> None:
        """The fix of "too long for the context": send the draft (put back in the editor when it was
        refused) without the oldest turns the engine found necessary to leave out."""
        turns = fix.params.get("turns")
        text = self.composer.editor.toPlainText()
        if not isinstance(turns, int) or not text.strip():
            self.composer.set_notice(fix.hint or tr("Start a new conversation, or shorten the message."))
            return
        self.composer.editor.clear()
        Operation(self.composer.send_button, lambda: self._send(text, drop_oldest_turns=turns)).failure(
            lambda exc: self._send_failed(text, exc)
        ).run()

    def _send_failed(self, text: str, exc: BaseException) -> None:
        # Nothing is lost: the text goes back into the editor.
        if not self.composer.editor.toPlainText().strip():
            self.composer.editor.setPlainText(text)
        errors.report(exc)

    async def _send(self, text: str, drop_oldest_turns: int = 0) -> None:
        if self.conversation_id is None:
            # A new conversation starts from the model's preset (the tiny built-in one rambles at 1.0).
            endpoint = self.chat.endpoint_provider()
            preset = self.settings.settings.preset_for(endpoint.model) if endpoint else None
            conversation = await self.chat.new_conversation(settings=preset)
            self.conversation_id = conversation.id
        turn = await self.chat.send(self.conversation_id, text, drop_oldest_turns=drop_oldest_turns)
        # Before the turn's first event runs: show the user's message and an empty reply to stream into.
        self.composer.set_busy(True)
        self.transcript.add_message(MessageData(id=turn.user_message_id or -1, role="user", text=text))
        self._begin_reply(turn)
        await self.sidebar.model.reload()
        self.sidebar.select_conversation(turn.conversation_id)

    def _begin_reply(self, turn: Turn, branch_index: int = 0, branch_count: int = 1) -> None:
        freeze_long_lived()
        self.composer.set_busy(True)
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

    def flush_queue(self) -> None:
        """Send what was written while the server was starting (called when it is ready)."""
        if not self.queued:
            return
        text = "\n\n".join(self.queued)
        self.queued.clear()
        for widget in self.transcript.messages():
            if str(widget.data.id).startswith("queued-"):
                self.transcript.remove_message(widget.data.id)
        self.composer.set_notice("")
        Operation(self.composer.send_button, lambda: self._send(text)).failure(
            lambda exc: self._send_failed(text, exc)
        ).run()

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
        await self.sidebar.model.reload()
        self.sidebar.select_conversation(event.conversation_id)
