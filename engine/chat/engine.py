"""Chat turns over Haystack's ``OpenAIChatGenerator``, streamed, stoppable, and saved as they arrive.

A turn:

1. the user's message is committed to the history (before any request leaves);
2. the reply's row is created in state ``streaming``;
3. the conversation's branch (system prompt first) goes to ``OpenAIChatGenerator.run_async`` with an async
   streaming callback; every token becomes a :class:`TurnEvent` and the reply row is checkpointed every
   100 ms (so a kill loses at most the last 250 ms, even when the write lags on a busy machine);
4. the reply ends ``complete``, ``stopped`` (:meth:`Turn.stop` cancels the task; Haystack closes the
   stream and re-raises), or ``failed`` with a :class:`engine.chat.errors.ChatError` — the partial text is
   kept either way and the turn can be retried (:meth:`ChatEngine.regenerate`).

Clients for a local server give up connecting after 1 s and never retry, so a dead local server is
reported at once instead of after Haystack's default 5 retries (~14 s). A reply that sends nothing for
``read_timeout`` seconds is abandoned as stalled.

Clients are kept, not made per turn (building an httpx client costs 40–110 ms here): one warmed generator
per endpoint (:class:`engine.chat.generator.GeneratorPool`, closed when the endpoint changes) and the context
meter's one HTTP client; :meth:`ChatEngine.shutdown` closes them. The context check asks the server only
when the turn might not fit (:meth:`engine.chat.tokens.ContextMeter.plan`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from engine.chat.collector import freeze_long_lived
from engine.chat.errors import (
    ChatError,
    ChatUnavailable,
    ContextTooLong,
    HistoryWriteFailed,
    NoServer,
    ReplyIncomplete,
    ReplyStalled,
    from_openai_error,
)
from engine.chat.generation import GenerationSettings
from engine.chat.request import (
    Augment,
    ChatTimeouts,
    branch_turns,
    completion_prompt,
    dropped,
    plain_chat_message,
    request_messages,
    to_chat_message,
)
from engine.chat.titles import title_from_text
from engine.chat.tokens import ContextMeter, tls_context
from engine.chat.turn import Turn, TurnEvent, TurnEventKind, TurnState
from engine.chat.usage import ReplyProgress, reply_numbers
from engine.chat.warm_imports import CHAT_MODULES, IMPORTS, ImportGate
from engine.endpoint import Endpoint
from engine.events import Event
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import Conversation, ConversationTree, MessageState, ReplyNumbers, StoredMessage
from engine.history.store import HistoryStore

if TYPE_CHECKING:
    from engine.chat.generator import GeneratorPool

log = logging.getLogger(__name__)
_STALL_GRACE_S = 0.5
CHECKPOINT_EVERY_S = 0.1  # half the 250 ms promise: the write itself can lag on a busy machine

EndpointProvider = Callable[[], Endpoint | None]
_Kept = tuple[ConversationTree, bool]  # a turn's base tree, and whether the turn added a user message

# Turns and their events live in engine.chat.turn; callers import them from here.
__all__ = [
    "CHECKPOINT_EVERY_S",
    "ChatEngine",
    "ChatTimeouts",
    "EndpointProvider",
    "Turn",
    "TurnEvent",
    "TurnEventKind",
    "TurnState",
]


class ChatEngine:
    """Runs chat turns for the conversations of one history store.

    ``endpoint_provider`` returns the server to talk to now (the GUI passes the supervisor's current endpoint;
    the CLI a fixed one). ``turn_events`` carries every turn's events for subscribers such as the GUI bridge.
    """

    def __init__(
        self,
        store: AsyncHistoryStore,
        endpoint_provider: EndpointProvider,
        *,
        timeouts: ChatTimeouts | None = None,
        meter: ContextMeter | None = None,
        imports: ImportGate | None = None,
    ) -> None:
        self.store = store
        self.imports = imports or IMPORTS  # Haystack is imported through the process's one import thread
        self.endpoint_provider = endpoint_provider
        self.timeouts = timeouts or ChatTimeouts()
        self.meter = meter or ContextMeter()
        # Set by a layer above (engine.documents.grounding): may add to a turn's request and reply meta.
        self.augment: Augment | None = None
        self.turn_events: Event[TurnEvent] = Event("turn_events")
        self._turns: dict[int, Turn] = {}
        self._pool: GeneratorPool | None = None
        self._reserved: set[int] = set()
        # The last turn's request messages and Haystack's ChatMessage for each (each keeping its openai
        # form): the next turn builds and converts only the messages after their common start (2,000 of
        # them took ~10–20 ms to build and ~6 ms to convert).
        self._built: tuple[list[tuple[str, str]], list[Any]] = ([], [])
        # The conversation as this engine last read it or left it after a turn, for a send without the
        # caller's tree (the command line): used while its row says nothing was written since (_current).
        self._kept: ConversationTree | None = None
        # Turns' ends updating _kept, by conversation (held here until done: the loop keeps tasks weakly).
        self._keeping: dict[int, asyncio.Future[None]] = {}

    # -- starting turns ----------------------------------------------------------------------------------

    async def warm_up(self) -> None:
        """Import Haystack (~0.7 s) on the import thread and build the current endpoint's client, so the first
        turn starts at once (raises :class:`ChatUnavailable` when Haystack cannot be imported)."""
        await self._libraries()
        await asyncio.to_thread(tls_context)  # loads the CA bundle (~70 ms) off the loop
        endpoint = self.endpoint_provider()
        if endpoint is not None:
            async with self._generators().lease(endpoint):
                pass

    async def _libraries(self) -> None:
        # Never imported on this thread: a second thread importing Haystack at the same time deadlocks
        # (engine.chat.warm_imports). A failed import is retried by the next turn.
        try:
            imported = self.imports.submit(*CHAT_MODULES)
            if imported.done():  # every turn after the first: no hop to the import thread (~0.4 ms)
                imported.result()
            else:
                await asyncio.wrap_future(imported)
        except Exception as exc:
            raise ChatUnavailable(f"{type(exc).__name__}: {exc}") from exc

    @property
    def generators(self) -> GeneratorPool:
        """The kept generators, one per endpoint (after :meth:`warm_up`: Haystack must be imported)."""
        return self._generators()

    def _generators(self) -> GeneratorPool:
        if self._pool is None:
            from engine.chat.generator import GeneratorPool

            self._pool = GeneratorPool(self.timeouts.for_endpoint)
        return self._pool

    async def new_conversation(
        self, *, system_prompt: str = "", settings: GenerationSettings | None = None, title: str = ""
    ) -> Conversation:
        """An empty conversation with these settings (title set from the first message when empty)."""
        chosen = settings or GenerationSettings()
        return await self.store.create_conversation(
            title=title, system_prompt=system_prompt, settings=chosen.to_json_dict()
        )

    async def send(
        self,
        conversation_id: int,
        text: str,
        *,
        parent_id: int | None = None,
        drop_oldest_turns: int = 0,
        check_context: bool = True,
        tree: ConversationTree | None = None,
    ) -> Turn:
        """Add the user's message under ``parent_id`` (default: the shown leaf) and start the reply.

        With ``check_context``, a turn that will not fit is refused with :class:`ContextTooLong` *before*
        anything is stored (its fix names how many of the oldest turns to leave out:
        ``drop_oldest_turns``).

        ``tree``: the conversation as the caller last loaded it (the window's shown one). Its messages are
        used when the conversation's row says nothing was written to them since (same shown leaf, same last
        write); so is the tree this engine kept from its last read or turn of the conversation. Otherwise
        every message is read again — a read that grows with the conversation (~20–35 ms at 2,000
        messages) before the request can leave.
        """
        self._ensure_idle(conversation_id)
        freeze_long_lived()
        conversation, tree = await self._current(conversation_id, tree)
        parent = tree.shown_leaf() if parent_id is None else parent_id
        return await self._send_under(conversation, tree, parent, text, drop_oldest_turns, check_context)

    async def _current(
        self, conversation_id: int, known: ConversationTree | None
    ) -> tuple[Conversation, ConversationTree]:
        """The conversation's row as stored now, and a tree whose messages are current: the caller's
        ``known`` one or the engine's kept one when the row says nothing was written since, else read."""
        await self._kept_settled(conversation_id)
        held = [t for t in (known, self._kept) if t is not None and t.conversation.id == conversation_id]
        if held:
            row = await self.store.conversation(conversation_id)  # one row, not every message
            for tree in held:
                # Every write to a conversation's messages moves its shown leaf or its last write (add,
                # finish, delete, undo); its settings and system prompt change without either, so they
                # come from the row. A reply streaming elsewhere is never kept (_keep).
                if row.current_leaf_id == tree.conversation.current_leaf_id and (
                    row.updated_at == tree.conversation.updated_at
                ):
                    return row, tree
        tree = await self.store.load(conversation_id)
        self._keep(tree)
        return tree.conversation, tree

    async def _kept_settled(self, conversation_id: int | None = None) -> None:
        """Wait until the last turn of ``conversation_id`` (None: of every one) updated the kept tree; a send
        into another conversation does not wait (a late update only makes a later send read)."""
        ids = list(self._keeping) if conversation_id is None else [conversation_id]
        for keeping in [self._keeping[i] for i in ids if i in self._keeping]:
            await asyncio.shield(keeping)  # a cancelled send leaves it to finish

    def _keep(self, tree: ConversationTree | None) -> None:
        # A reply still streaming (another process's, the window's) changes with checkpoints that touch
        # neither the row's leaf nor its last write: such a tree is read again next time.
        streaming = tree is not None and any(m.state == "streaming" for m in tree.messages)
        self._kept = None if streaming else tree

    async def _keep_after_turn(self, turn: Turn, reply: StoredMessage, keep: _Kept) -> None:
        """Keep the turn's base tree with its messages (the user message when it added one, and the saved
        ``reply``) as the conversation's tree, when the store shows that nothing else was written to it
        since: the turn's reply is still the shown leaf, its save the last write, and the count of
        messages is the kept tree's. Run when the turn has ended, not on the way to a first token."""
        base, added_user = keep
        try:
            row, count, user = await self.store.call(
                _after_turn, turn.conversation_id, turn.user_message_id if added_user else None
            )
        except Exception:  # only a cache: the next send reads the conversation
            log.debug("could not read the conversation after turn %s", turn.reply_id, exc_info=True)
            return
        messages = (*base.messages, *((user,) if user is not None else ()), reply)
        if row.current_leaf_id == reply.id and row.updated_at == reply.updated_at and count == len(messages):
            self._keep(ConversationTree(row, messages))

    async def _send_under(
        self,
        conversation: Conversation,
        tree: ConversationTree,
        parent: int | None,
        text: str,
        drop_oldest_turns: int,
        check_context: bool,
    ) -> Turn:
        # ``parent`` None here means "a new root" (editing the first message), never "the shown leaf".
        endpoint = self._endpoint()
        branch = tree.branch(parent) if parent is not None else []
        settings = GenerationSettings.parse(conversation.settings)
        whole = branch_turns(conversation, branch, settings)  # once, for the check and the request
        if check_context:
            history = dropped(whole, drop_oldest_turns)
            await self._check_fits(endpoint, settings, history, text, drop_oldest_turns)
        title = "" if conversation.title else title_from_text(text)
        messages = dropped([*whole, ("user", text)], drop_oldest_turns)
        with self._starting(conversation.id):
            return await self._start(
                endpoint, conversation, branch, drop_oldest_turns, title, user_text=text, base=tree,
                messages=messages,
            )  # fmt: skip

    async def regenerate(self, reply_id: int, *, drop_oldest_turns: int = 0) -> Turn:
        """A new reply beside ``reply_id`` (the old one stays as an alternative); also how a failed turn
        is retried."""
        endpoint = self._endpoint()
        freeze_long_lived()
        reply = await self.store.message(reply_id)
        if reply.role != "assistant" or reply.parent_id is None:
            raise ChatError("Only a model's reply to a message can be regenerated; edit a message instead.")
        self._ensure_idle(reply.conversation_id)
        conversation, tree = await self._current(reply.conversation_id, None)
        with self._starting(reply.conversation_id):
            return await self._start(
                endpoint, conversation, tree.branch(reply.parent_id), drop_oldest_turns, base=tree
            )

    async def edit_and_resend(
        self, user_message_id: int, new_text: str, *, drop_oldest_turns: int = 0, check_context: bool = True
    ) -> Turn:
        """A new user message beside ``user_message_id`` with ``new_text``, and a reply to it."""
        freeze_long_lived()
        original = await self.store.message(user_message_id)
        self._ensure_idle(original.conversation_id)
        conversation, tree = await self._current(original.conversation_id, None)
        return await self._send_under(
            conversation, tree, original.parent_id, new_text, drop_oldest_turns, check_context
        )

    def running_turn(self, conversation_id: int) -> Turn | None:
        turn = self._turns.get(conversation_id)
        return turn if turn is not None and not turn.done else None

    def stop(self, conversation_id: int) -> None:
        """Stop the conversation's running turn, if any."""
        turn = self.running_turn(conversation_id)
        if turn is not None:
            turn.stop()

    async def shutdown(self) -> None:
        """Stop every running turn, wait until their replies are saved, and close the kept clients (call
        before closing the store; a later turn builds them anew)."""
        turns = [t for t in self._turns.values() if not t.done]
        for turn in turns:
            turn.stop()
        for turn in turns:
            with contextlib.suppress(asyncio.CancelledError):
                await turn.wait()
        await self._kept_settled()
        if self._pool is not None:
            await self._pool.aclose()
        await self.meter.aclose()

    # -- internals ---------------------------------------------------------------------------------------

    def _ensure_idle(self, conversation_id: int) -> None:
        if self.running_turn(conversation_id) is not None or conversation_id in self._reserved:
            raise ChatError("This conversation is still answering; stop it or wait for the reply.")

    @contextlib.contextmanager
    def _starting(self, conversation_id: int) -> Iterator[None]:
        # Held while a turn's rows are written, so a second send cannot slip in before the turn runs.
        self._ensure_idle(conversation_id)
        self._reserved.add(conversation_id)
        try:
            yield
        finally:
            self._reserved.discard(conversation_id)

    def _endpoint(self) -> Endpoint:
        endpoint = self.endpoint_provider()
        if endpoint is None:
            raise NoServer()
        return endpoint

    async def _check_fits(
        self,
        endpoint: Endpoint,
        settings: GenerationSettings,
        history: list[tuple[str, str]],
        draft: str,
        drop_oldest_turns: int,
    ) -> None:
        plan = await self.meter.plan(endpoint, history, draft, reserve=settings.max_tokens or 0)
        if not plan.fits:
            error = ContextTooLong(used=plan.usage.used, limit=plan.usage.limit)
            if error.fix is not None and plan.drop_oldest_turns is not None:
                error.fix = type(error.fix)(
                    action=error.fix.action,
                    label=f"Leave out the oldest {plan.drop_oldest_turns} turn(s)",
                    hint=error.fix.hint,
                    params={"turns": drop_oldest_turns + plan.drop_oldest_turns},
                )
            raise error

    async def _start(
        self,
        endpoint: Endpoint,
        conversation: Conversation,
        branch: list[StoredMessage],
        drop_oldest_turns: int,
        title: str = "",
        *,
        user_text: str | None = None,
        base: ConversationTree | None = None,
        messages: list[tuple[str, str]] | None = None,
    ) -> Turn:
        # Called while the conversation is reserved (``_starting``). ``user_text``: a new user message that
        # ends ``branch`` (send, edit); None when the branch already ends with one (regenerate). ``base``:
        # the current tree ``branch`` comes from, kept with the turn's messages once it ends. ``messages``:
        # the request's, when the caller made them already.
        settings = GenerationSettings.parse(conversation.settings)
        parent = branch[-1].id if branch else None
        if messages is None:
            messages = request_messages(conversation, branch, settings, drop_oldest_turns, user_text)
        augmented = await self.augment(endpoint, settings, messages) if self.augment is not None else None
        if augmented is not None:
            messages = augmented.messages
        # The rows (the user's message, the reply's, the title) are written in one commit while the request
        # is already on its way: a commit costs milliseconds (an fsync). Nothing of the reply is announced or
        # saved before that commit (``_announce``), so the user's message is durable before any reply shows,
        # and ``send`` returns only once it is committed; if it fails, the request is cancelled.
        rows = asyncio.ensure_future(
            self.store.call(
                HistoryStore.add_turn, conversation.id, parent, user_text, model=endpoint.model, title=title
            )
        )
        turn = Turn(conversation.id, parent, 0)
        if augmented is not None:
            turn.reply_meta = dict(augmented.reply_meta)
            turn.finish_meta = augmented.finish_meta
        keep = (base, user_text is not None) if base is not None else None
        task = asyncio.get_running_loop().create_task(
            self._run(turn, endpoint, settings, messages, rows, keep), name=f"chat-turn-{conversation.id}"
        )
        turn.run_as(task)
        try:
            reply = await asyncio.shield(rows)
        except BaseException as exc:
            # No row, no turn: the request already on its way is cancelled (the server sees it go).
            task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
            if isinstance(exc, sqlite3.Error | OSError):
                raise HistoryWriteFailed(str(exc)) from exc
            raise
        turn.reply_id, turn.user_message_id = reply.id, reply.parent_id
        self._turns[conversation.id] = turn
        turn.release()
        return turn

    async def _announce(self, turn: Turn, rows: asyncio.Future[StoredMessage]) -> None:
        """Before a turn's first event: wait until its reply's row is committed and ``send`` has returned the
        turn (callers show the reply before its first event), then say it started."""
        if turn.announced:
            return
        turn.reply_id = (await rows).id
        await turn.released()
        if not turn.announce():
            return  # announced meanwhile (by the other waiter)
        self._emit(turn, TurnEvent("started", turn.conversation_id, turn.reply_id))

    async def _row_written(self, turn: Turn, rows: asyncio.Future[StoredMessage]) -> bool:
        try:
            await self._announce(turn, rows)
        except Exception:  # noqa: BLE001 - send() raises the write's own error to its caller
            return False
        return True

    def _emit(self, turn: Turn, event: TurnEvent) -> None:
        turn.put(event)
        self.turn_events.emit(event)

    async def _run(
        self,
        turn: Turn,
        endpoint: Endpoint,
        settings: GenerationSettings,
        messages: list[tuple[str, str]],
        rows: asyncio.Future[StoredMessage],
        keep: _Kept | None = None,
    ) -> StoredMessage:
        progress = ReplyProgress(model=endpoint.model)
        started = time.monotonic()
        # Checkpoints only once a piece arrived, and pieces wait for the reply's row (``_announce``).
        flusher = asyncio.create_task(
            self._flush_loop(turn, progress), name=f"chat-flush-{turn.conversation_id}"
        )
        state: MessageState = "complete"
        error: ChatError | None = None
        try:
            await self._libraries()
            if settings.mode == "completion":
                work = self._complete(turn, endpoint, settings, messages, progress, rows)
            else:
                work = self._chat(turn, endpoint, settings, messages, progress, rows)
            await self._stream_reply(work, progress)
        except asyncio.CancelledError:
            if not turn.stop_requested:
                # Cancelled by someone else (e.g. the loop shutting down): record, then keep cancelling.
                if await self._row_written(turn, rows):
                    await self._finish(turn, progress, started, "interrupted", None, flusher)
                else:
                    flusher.cancel()
                raise
            state = "stopped"
        except ChatError as exc:
            state, error = "failed", exc
        except Exception as exc:  # noqa: BLE001 - every failure of a turn becomes a stored, typed problem
            state, error = "failed", _translate(exc, endpoint, self.timeouts, progress)
        if not await self._row_written(turn, rows):
            # The reply has no row to save into; send() raised that write's error to its caller.
            flusher.cancel()
            raise HistoryWriteFailed(str(rows.exception()))
        return await self._finish(turn, progress, started, state, error, flusher, keep)

    async def _stream_reply(self, work: Coroutine[Any, Any, None], progress: ReplyProgress) -> None:
        """Run the request to its end, which must be the server saying the reply is finished
        (``finish_reason``); a stream that simply ends was cut off (:class:`ReplyIncomplete`).

        Abandoned with :class:`ReplyStalled` when no text has arrived for ``timeouts.read`` seconds: the
        client's own read timeout does not see this when keep-alives or empty chunks keep the connection
        busy while the reply makes no progress."""
        limit = self.timeouts.read
        begun = time.monotonic()
        request = asyncio.ensure_future(work)
        try:
            while True:
                last = max(t for t in (begun, progress.sent_at, progress.last_content_at) if t is not None)
                # A little past the client's own read timeout, which (when it can fire) ends the
                # request more cleanly than a cancellation racing it.
                remaining = last + limit + _STALL_GRACE_S - time.monotonic()
                if remaining <= 0:
                    request.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await request
                    raise ReplyStalled(limit)
                done, _ = await asyncio.wait({request}, timeout=remaining)
                if done:
                    request.result()
                    break
        except asyncio.CancelledError:
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await request
            raise
        if not progress.finish_reason:
            raise ReplyIncomplete(streamed=progress.chunks > 0)

    async def _finish(
        self,
        turn: Turn,
        progress: ReplyProgress,
        started: float,
        state: MessageState,
        error: ChatError | None,
        flusher: asyncio.Task[None],
        keep: _Kept | None = None,
    ) -> StoredMessage:
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        numbers = reply_numbers(progress, started)
        if error is not None:
            self._emit(turn, TurnEvent("error", turn.conversation_id, turn.reply_id, error=error))
        try:
            reply = await self._save_final(turn, progress, state, error, numbers)
        except (sqlite3.Error, OSError) as exc:
            # The reply cannot be saved (disk full, file gone): say so, and still end the turn for listeners.
            problem = HistoryWriteFailed(str(exc))
            self._emit(turn, TurnEvent("error", turn.conversation_id, turn.reply_id, error=problem))
            self._emit(
                turn,
                TurnEvent("finished", turn.conversation_id, turn.reply_id, state="failed", error=problem),
            )
            raise problem from exc
        if keep is not None:
            # Beside "finished", on its own task (a stop cannot cut it); the next send waits for it.
            conversation_id = turn.conversation_id
            keeping = asyncio.ensure_future(self._keep_after_turn(turn, reply, keep))
            self._keeping[conversation_id] = keeping
            keeping.add_done_callback(
                lambda done: (
                    self._keeping.pop(conversation_id) if self._keeping.get(conversation_id) is done else None
                )
            )
        turn_state: TurnState = "complete" if state == "streaming" else state
        self._emit(
            turn,
            TurnEvent(
                "finished",
                turn.conversation_id,
                turn.reply_id,
                state=turn_state,
                numbers=numbers,
                error=error,
                reply=reply,
            ),
        )
        return reply

    async def _save_final(
        self,
        turn: Turn,
        progress: ReplyProgress,
        state: MessageState,
        error: ChatError | None,
        numbers: ReplyNumbers,
    ) -> StoredMessage:
        text, reasoning = progress.joined()
        return await self.store.call(
            HistoryStore.finish,
            turn.reply_id,
            state=state,
            text=text,
            reasoning=reasoning,
            model=progress.model,
            finish_reason=progress.finish_reason,
            numbers=numbers,
            error=str(error) if error is not None else "",
            meta={
                "model": progress.model,
                "finish_reason": progress.finish_reason or None,
                "usage": progress.usage,
                **turn.reply_meta,
                **(turn.finish_meta(text) if turn.finish_meta is not None else {}),
            },
        )

    async def _flush_loop(self, turn: Turn, progress: ReplyProgress) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            if progress.dirty:
                progress.dirty = False
                text, reasoning = progress.joined()
                try:
                    await self.store.call(HistoryStore.checkpoint, turn.reply_id, text, reasoning)
                except (sqlite3.Error, OSError):
                    # Keep streaming; the final save reports the problem if it persists.
                    log.warning("could not checkpoint reply %s", turn.reply_id, exc_info=True)
                    progress.dirty = True

    def _on_piece(self, turn: Turn, progress: ReplyProgress, kind: TurnEventKind, piece: str) -> None:
        now = time.monotonic()
        if progress.first_token_at is None:
            progress.first_token_at = now
        progress.last_content_at = now
        (progress.text if kind == "token" else progress.reasoning).append(piece)
        progress.dirty = True
        self._emit(turn, TurnEvent(kind, turn.conversation_id, turn.reply_id, text=piece))

    async def _chat(
        self,
        turn: Turn,
        endpoint: Endpoint,
        settings: GenerationSettings,
        messages: list[tuple[str, str]],
        progress: ReplyProgress,
        rows: asyncio.Future[StoredMessage],
    ) -> None:
        from haystack.dataclasses import StreamingChunk

        async def on_chunk(chunk: StreamingChunk) -> None:
            progress.chunks += 1
            await self._announce(turn, rows)
            if chunk.reasoning is not None and chunk.reasoning.reasoning_text:
                self._on_piece(turn, progress, "reasoning", chunk.reasoning.reasoning_text)
            if chunk.content:
                self._on_piece(turn, progress, "token", chunk.content)
            if chunk.finish_reason:
                progress.finish_reason = str(chunk.finish_reason)
            if chunk.meta.get("model"):
                progress.model = str(chunk.meta["model"])
            if chunk.meta.get("usage"):
                progress.usage = dict(chunk.meta["usage"])
                self._emit(
                    turn,
                    TurnEvent(
                        "usage",
                        turn.conversation_id,
                        turn.reply_id,
                        numbers=reply_numbers(progress, time.monotonic()),
                    ),
                )

        chat_messages = self._chat_messages(plain_chat_message(), messages)
        async with self._generators().lease(endpoint) as generator:
            progress.sent_at = time.monotonic()
            await generator.run_async(
                chat_messages, streaming_callback=on_chunk, generation_kwargs=settings.to_generation_kwargs()
            )

    def _chat_messages(self, chat_message: Any, messages: list[tuple[str, str]]) -> list[Any]:
        """``messages`` as Haystack's ChatMessages, those the last turn sent reused (they are not changed by
        the generator): a long conversation's request is built anew only after its common start."""
        sent, built = self._built
        same = len(sent)
        if messages[:same] != sent:  # the next turn of a conversation starts with the last whole request
            same = 0
            for old, new in zip(sent, messages, strict=False):
                if old != new:
                    break
                same += 1
        chat_messages = built[:same] + [
            to_chat_message(chat_message, role, text) for role, text in messages[same:]
        ]
        self._built = (list(messages), chat_messages)
        return list(chat_messages)

    async def _complete(
        self,
        turn: Turn,
        endpoint: Endpoint,
        settings: GenerationSettings,
        messages: list[tuple[str, str]],
        progress: ReplyProgress,
        rows: asyncio.Future[StoredMessage],
    ) -> None:
        from engine.chat.generator import stream_completion

        kwargs = settings.to_generation_kwargs()
        async with self._generators().lease_client(endpoint) as client:
            progress.sent_at = time.monotonic()
            async for delta in stream_completion(
                client, model=endpoint.model, prompt=completion_prompt(messages), generation_kwargs=kwargs
            ):
                progress.chunks += 1
                await self._announce(turn, rows)
                if delta.text:
                    self._on_piece(turn, progress, "token", delta.text)
                if delta.finish_reason:
                    progress.finish_reason = delta.finish_reason
                if delta.usage:
                    progress.usage = delta.usage


def _after_turn(
    store: HistoryStore, conversation_id: int, user_id: int | None
) -> tuple[Conversation, int, StoredMessage | None]:
    # On the store's thread, in one hop: what _keep_after_turn checks, and the turn's user message.
    user = store.message(user_id) if user_id is not None else None
    return store.conversation(conversation_id), store.message_count(conversation_id), user


def _translate(
    exc: Exception, endpoint: Endpoint, timeouts: ChatTimeouts, progress: ReplyProgress
) -> ChatError:
    return from_openai_error(
        exc,
        base_url=endpoint.base_url,
        model=endpoint.model,
        read_timeout=timeouts.read,
        started=progress.first_token_at is not None,
    )
