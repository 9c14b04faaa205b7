"""The history store for asyncio callers: :class:`engine.history.store.HistoryStore` on one dedicated thread.

One thread (not ``asyncio.to_thread``'s pool) because it keeps writes in the order they were issued — a
reply's 250 ms checkpoints can never overtake each other — and the UI loop never waits on disk.

Writes that change the conversation list fire :attr:`AsyncHistoryStore.changed` once they are done, so a view
of the list (the sidebar) follows the store instead of every caller reloading it by hand (Anki's
``CollectionOp`` announces its changes the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from engine.events import Event
from engine.history.records import Conversation, ConversationTree, StoredMessage
from engine.history.search import SearchHit
from engine.history.store import ConversationPage, HistoryStore, ImportedTree

T = TypeVar("T")

# The writes that change the conversation list: which conversations there are, their titles, pins, folders,
# tags and order (a turn's start and end move its conversation up). Not a reply's checkpoints.
LIST_WRITES: frozenset[Callable[..., Any]] = frozenset(
    {
        HistoryStore.create_conversation,
        HistoryStore.update_conversation,
        HistoryStore.rename,
        HistoryStore.delete_conversation,
        HistoryStore.undo_delete,
        HistoryStore.add_turn,
        HistoryStore.finish,
        HistoryStore.import_tree,
        HistoryStore.import_trees,
    }
)


class AsyncHistoryStore:
    """:class:`HistoryStore` on its own thread, for asyncio callers (the GUI, the chat engine).

    ``await AsyncHistoryStore.open(path)``; every method of :class:`HistoryStore` is available through
    :meth:`call` (``await store.call(HistoryStore.rename, 3, "New title")``) and the common ones directly.
    """

    def __init__(self, executor: ThreadPoolExecutor, store: HistoryStore) -> None:
        self._executor = executor
        self._store = store
        # After a write that changed the conversation list (see LIST_WRITES), on the caller's loop.
        self.changed: Event[None] = Event("history_changed")

    @classmethod
    async def open(cls, path: Path, **options: Any) -> AsyncHistoryStore:
        """Open on the store's thread; ``options`` go to :class:`HistoryStore` (``busy_wait_s``,
        ``on_wait``)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-writer")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(executor, lambda: HistoryStore(path, **options))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, store)

    @property
    def path(self) -> Path:
        return self._store.path

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``method(store, *args, **kwargs)`` on the store's thread, in submission order; a write of
        :data:`LIST_WRITES` then fires :attr:`changed`."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, lambda: method(self._store, *args, **kwargs))
        if method in LIST_WRITES:
            self.changed.emit(None)
        return result

    def call_from_thread(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """:meth:`call` for a worker thread (neither the loop's nor the store's own): waits for ``method`` to
        run on the store's thread, in order with the other calls; not for :data:`LIST_WRITES` (nothing
        fires). A closed store raises ``RuntimeError``."""
        return self._executor.submit(lambda: method(self._store, *args, **kwargs)).result()

    async def write(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Like :meth:`call`, for a function that changes the conversation list through the store (an
        importer): :attr:`changed` fires once it is done, also when it failed half-way."""
        try:
            return await self.call(function, *args, **kwargs)
        finally:
            self.changed.emit(None)

    async def close(self) -> None:
        await self.call(HistoryStore.close)
        self._executor.shutdown(wait=True)

    async def create_conversation(self, **kwargs: Any) -> Conversation:
        return await self.call(HistoryStore.create_conversation, **kwargs)

    async def conversation(self, conversation_id: int) -> Conversation:
        return await self.call(HistoryStore.conversation, conversation_id)

    async def list_conversations(self, **kwargs: Any) -> ConversationPage:
        return await self.call(HistoryStore.list_conversations, **kwargs)

    async def update_conversation(self, conversation_id: int, **kwargs: Any) -> Conversation:
        return await self.call(HistoryStore.update_conversation, conversation_id, **kwargs)

    async def delete_conversation(self, conversation_id: int) -> None:
        await self.call(HistoryStore.delete_conversation, conversation_id)

    async def undo_delete(self, conversation_id: int) -> Conversation:
        return await self.call(HistoryStore.undo_delete, conversation_id)

    async def load(self, conversation_id: int) -> ConversationTree:
        return await self.call(HistoryStore.load, conversation_id)

    async def message(self, message_id: int) -> StoredMessage:
        return await self.call(HistoryStore.message, message_id)

    async def switch_branch(self, sibling_id: int) -> int:
        return await self.call(HistoryStore.switch_branch, sibling_id)

    async def search(self, text: str, **kwargs: Any) -> list[SearchHit]:
        return await self.call(HistoryStore.search, text, **kwargs)

    async def export_tree(self, conversation_id: int) -> ConversationTree:
        return await self.call(HistoryStore.export_tree, conversation_id)

    async def import_tree(self, tree: ConversationTree) -> int:
        return await self.call(HistoryStore.import_tree, tree)

    async def import_trees(
        self, trees: Sequence[ConversationTree], progress: Callable[[int, int], None] | None = None
    ) -> list[ImportedTree]:
        """The batch in one transaction (see :meth:`HistoryStore.import_trees`); ``progress`` runs on the
        store's thread."""
        return await self.call(HistoryStore.import_trees, list(trees), progress)

    async def known_uids(self, uids: Iterable[str]) -> dict[str, bool]:
        return await self.call(HistoryStore.known_uids, list(uids))
