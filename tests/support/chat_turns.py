"""Helpers for tests of the chat engine's turns: a turn's events, and a store whose whole-conversation reads
are counted."""

from __future__ import annotations

from engine.chat.engine import Turn, TurnEvent
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import ConversationTree


async def collect(turn: Turn) -> list[TurnEvent]:
    """Every event of ``turn``, to its end."""
    return [event async for event in turn]


class CountedLoads:
    """Counts the store's whole-conversation reads (``load``): put in place of ``store.load``."""

    def __init__(self, store: AsyncHistoryStore) -> None:
        self.calls = 0
        self._load = store.load

    async def __call__(self, conversation_id: int) -> ConversationTree:
        self.calls += 1
        return await self._load(conversation_id)
