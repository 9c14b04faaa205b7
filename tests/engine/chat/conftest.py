"""What the chat engine's tests share: a real history store in the test's own folder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from engine.history.async_store import AsyncHistoryStore


@pytest_asyncio.fixture
async def store(app_paths) -> AsyncIterator[AsyncHistoryStore]:  # type: ignore[no-untyped-def]
    s = await AsyncHistoryStore.open(app_paths.history_db)
    yield s
    await s.close()
