"""Fixtures shared by the engine's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.history.store import HistoryStore
from engine.paths import AppPaths


@pytest.fixture
def store(app_paths: AppPaths) -> Iterator[HistoryStore]:
    """A real history database under the test's data folder, closed afterwards.

    Tests of the async store (the chat engine's) define their own ``store``, which takes precedence.
    """
    history = HistoryStore(app_paths.history_db)
    yield history
    history.close()
