"""The conversation list's actions: rename, pin, delete (with Undo in the banner) and undo a delete.

:class:`ConversationActions` writes to the store and nothing else; the sidebar follows the store's
``changed`` event and the window's title follows the sidebar, so no action here reloads a view by hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from PySide6.QtCore import QCoreApplication, QObject

from desktop.errors import Problem
from desktop.operations import Operation
from desktop.widgets.sidebar import Sidebar
from desktop.window.fix_actions import FixRegistry
from desktop.window.shown import ShownConversation
from engine.errors import Fix
from engine.history.async_store import AsyncHistoryStore


def tr(text: str) -> str:
    return QCoreApplication.translate("MainWindow", text)


class ConversationActions(QObject):
    """What the sidebar's menu, the Conversation menu and the Delete key do to whole conversations."""

    def __init__(
        self,
        *,
        store: AsyncHistoryStore,
        sidebar: Sidebar,
        shown: ShownConversation,
        stop_turn: Callable[[int], object],
        new_chat: Callable[[], object],
        show_conversation: Callable[[int], Awaitable[None]],
        show_problem: Callable[[Problem], object],
        parent: QObject | None = None,
    ) -> None:
        """``stop_turn(id)``: stop a reply running there; ``new_chat()``: the window shows an empty chat;
        ``show_conversation(id)``: load and show it."""
        super().__init__(parent)
        self.store = store
        self.sidebar = sidebar
        self.shown = shown
        self.stop_turn = stop_turn
        self.new_chat = new_chat
        self.show_conversation = show_conversation
        self.show_problem = show_problem

    def register_fixes(self, registry: FixRegistry) -> None:
        registry.register(["undo_delete"], lambda fix, _context: self.undo_delete(*_deleted_ids(fix)))

    # --- rename and pin --------------------------------------------------------------------------------

    def rename(self, conversation_id: int) -> None:
        """Ask for a new name (the sidebar's dialog), then rename."""
        row = self.sidebar.model.row_of(conversation_id)
        current = self.sidebar.model.conversations()[row].title if row >= 0 else ""
        dialog = self.sidebar.make_name_dialog(tr("Rename"), tr("New name:"))
        dialog.setTextValue(current)

        def rename() -> None:
            title = dialog.textValue().strip()
            if title:
                Operation(None, lambda: self.set_title(conversation_id, title)).run()

        dialog.accepted.connect(rename)
        dialog.open()  # not exec(): a nested event loop inside the qasync loop would re-enter running tasks

    async def set_title(self, conversation_id: int, title: str) -> None:
        await self.store.update_conversation(conversation_id, title=title)

    def pin(self, conversation_id: int, pinned: bool) -> None:
        Operation(None, lambda: self.set_pinned(conversation_id, pinned)).run()

    async def set_pinned(self, conversation_id: int, pinned: bool) -> None:
        await self.store.update_conversation(conversation_id, pinned=pinned)

    # --- delete and undo -------------------------------------------------------------------------------

    def delete(self, ids: Sequence[int]) -> None:
        """Delete these conversations (the selection, or one); the banner's Undo brings them back."""
        Operation(None, lambda: self.delete_now(*ids)).run()

    async def delete_now(self, *ids: int) -> None:
        for conversation_id in ids:
            self.stop_turn(conversation_id)
            await self.store.delete_conversation(conversation_id)
        if self.shown.conversation_id in ids:
            self.new_chat()
        if len(ids) == 1:
            title = tr("Conversation deleted")
            text = tr("It is gone when vLLM Desk quits; until then you can bring it back.")
        else:
            title = tr("{n} conversations deleted").format(n=len(ids))
            text = tr("They are gone when vLLM Desk quits; until then you can bring them back.")
        self.show_problem(
            Problem(
                title,
                text,
                Fix(action="undo_delete", label=tr("Undo"), params={"conversation_ids": list(ids)}),
                notice=True,
            )
        )

    def undo_delete(self, *ids: int) -> None:
        Operation(None, lambda: self.bring_back(*ids)).run()

    async def bring_back(self, *ids: int) -> None:
        for conversation_id in ids:
            await self.store.undo_delete(conversation_id)
        await self.sidebar.settled()  # the list shows them again (it follows the store)
        await self.show_conversation(ids[0])
        if len(ids) > 1:
            self.sidebar.select_conversations(ids)

    # --- the one on screen (the Conversation menu) -----------------------------------------------------

    def rename_current(self) -> None:
        if self.shown.conversation_id is not None:
            self.rename(self.shown.conversation_id)

    def pin_current(self) -> None:
        tree = self.shown.tree
        if tree is not None:
            self.pin(tree.conversation.id, not tree.conversation.pinned)

    def delete_current(self) -> None:
        if self.shown.conversation_id is not None:
            self.delete([self.shown.conversation_id])


def _deleted_ids(fix: Fix) -> list[int]:
    """The conversations an "Undo" of a delete brings back (one, in fixes made before several could go)."""
    ids = fix.params.get("conversation_ids")
    if isinstance(ids, list):
        return [int(i) for i in ids]
    return [int(fix.params["conversation_id"])]
