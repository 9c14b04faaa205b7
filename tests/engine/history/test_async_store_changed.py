"""The store announces changes of the conversation list (``AsyncHistoryStore.changed``), so that views of the
list follow it instead of being reloaded by hand: every write that changes which conversations there are,
their titles, pins, folders, tags or order fires it once; reads and a reply's checkpoints do not."""

from __future__ import annotations

import asyncio

from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths


def test_list_writes_fire_changed_and_reads_do_not(app_paths: AppPaths) -> None:
    async def main() -> None:
        store = await AsyncHistoryStore.open(app_paths.history_db)
        fired: list[str] = []
        step = ""
        store.changed.connect(lambda _none: fired.append(step))

        async def write(name: str, coro: object) -> object:
            nonlocal step
            step = name
            return await coro  # type: ignore[misc]

        try:
            conversation = await write("create", store.create_conversation(title="a"))
            cid = conversation.id  # type: ignore[attr-defined]
            await write("rename", store.update_conversation(cid, title="b"))
            await write("pin", store.update_conversation(cid, pinned=True))
            await write("folder", store.update_conversation(cid, folder="Work"))
            await write("tags", store.update_conversation(cid, tags=["x"]))
            reply = await write("turn", store.call(HistoryStore.add_turn, cid, None, "hi", title="Hi"))
            rid = reply.id  # type: ignore[attr-defined]
            await write("checkpoint", store.call(HistoryStore.checkpoint, rid, "partial"))
            await write("finish", store.call(HistoryStore.finish, rid, state="complete", text="done"))
            await write("load", store.load(cid))
            await write("list", store.list_conversations())
            await write("delete", store.delete_conversation(cid))
            await write("undo", store.undo_delete(cid))
            tree = await store.export_tree(cid)
            await write("import", store.write(lambda s: s.import_trees([tree])))
        finally:
            await store.close()
        assert fired == [
            "create",
            "rename",
            "pin",
            "folder",
            "tags",
            "turn",
            "finish",
            "delete",
            "undo",
            "import",
        ]

    asyncio.run(main())
