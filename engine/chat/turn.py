"""A running chat turn and the events it emits, in order (see :class:`engine.chat.engine.ChatEngine`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from engine.chat.errors import ChatError
from engine.history.records import ReplyNumbers, StoredMessage

TurnState = Literal["complete", "stopped", "failed", "interrupted"]
TurnEventKind = Literal["started", "token", "reasoning", "usage", "finished", "error"]


@dataclass(frozen=True)
class TurnEvent:
    """One thing that happened in a turn, in order. ``text`` is the new piece for token/reasoning events."""

    kind: TurnEventKind
    conversation_id: int
    reply_id: int
    text: str = ""
    state: TurnState | None = None
    numbers: ReplyNumbers | None = None
    error: ChatError | None = None
    reply: StoredMessage | None = None  # the stored reply, on "finished"


class Turn:
    """A running turn: iterate it for its events, :meth:`stop` it, or ``await turn.wait()`` for the reply."""

    def __init__(self, conversation_id: int, user_message_id: int | None, reply_id: int) -> None:
        self.conversation_id = conversation_id
        self.user_message_id = user_message_id
        self.reply_id = reply_id  # set by the engine once the reply's row is committed
        # Unbounded: a token is never dropped, however slow the reader. None: nobody iterates (ignore_events).
        self._queue: asyncio.Queue[TurnEvent] | None = asyncio.Queue()
        self._task: asyncio.Task[StoredMessage] | None = None
        self._stop_requested = False
        self._announced = False  # "started" emitted (the reply's row exists)
        # Set when send() hands the turn to its caller: no event comes before the caller can subscribe.
        self._released = asyncio.Event()
        self.stop_requested_at: float | None = None
        self.reply_meta: dict[str, Any] = {}  # added to the reply's stored meta (ChatEngine.augment)
        # Called with the reply's text when it is saved; its meta goes over reply_meta (RequestAugment).
        self.finish_meta: Callable[[str], dict[str, Any]] | None = None

    # --- the engine's side (ChatEngine runs the turn through these; callers use the rest) ------------------

    def run_as(self, task: asyncio.Task[StoredMessage]) -> None:
        """The task that runs this turn (what :meth:`stop` cancels and :meth:`wait` awaits)."""
        self._task = task

    def release(self) -> None:
        """``send`` has handed the turn to its caller: its events may flow."""
        self._released.set()

    async def released(self) -> None:
        await self._released.wait()

    def announce(self) -> bool:
        """Mark the turn started; ``False`` if it already was (its "started" event is emitted once)."""
        if self._announced:
            return False
        self._announced = True
        return True

    @property
    def announced(self) -> bool:
        return self._announced

    def put(self, event: TurnEvent) -> None:
        """Queue ``event`` for the turn's readers (see :meth:`events`)."""
        if self._queue is not None:
            self._queue.put_nowait(event)

    @property
    def stop_requested(self) -> bool:
        """The user stopped the turn (a cancel from elsewhere, e.g. shutdown, is not a stop)."""
        return self._stop_requested

    # --- the caller's side ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Cancel the turn; the partial reply is kept and marked ``stopped``."""
        if self._task is not None and not self._task.done():
            self._stop_requested = True
            self.stop_requested_at = time.monotonic()
            self._task.cancel()

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def wait(self) -> StoredMessage:
        """The stored reply once the turn has ended (whatever its state)."""
        assert self._task is not None
        return await asyncio.shield(self._task)

    def ignore_events(self) -> None:
        """The caller follows the engine's ``turn_events`` instead of iterating the turn (the window): its
        events are no longer queued. An unread queue held every token's event until the turn ended, 20,000
        of them for a 20,000-token reply."""
        self._queue = None

    async def events(self) -> AsyncIterator[TurnEvent]:
        """Every event of the turn in order, ending with ``finished``."""
        queue = self._queue
        if queue is None:
            raise RuntimeError("this turn keeps no events: its caller chose turn_events (ignore_events)")
        while True:
            event = await queue.get()
            yield event
            if event.kind == "finished":
                return

    def __aiter__(self) -> AsyncIterator[TurnEvent]:
        return self.events()
