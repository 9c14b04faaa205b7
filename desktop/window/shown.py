"""Which conversation the window shows: the one object that knows.

Before, the fact lived in five places (the window's ``conversation_id`` and ``tree``, the number of the new
chat on screen, the sidebar's selection, the remembered last conversation). Now :class:`ShownConversation`
holds it; the sidebar's selection follows its :attr:`~ShownConversation.changed` signal and the last
conversation is remembered here, so nothing else keeps a copy.

A new chat (no conversation yet) is numbered the first time something is written in it (see
:meth:`ShownConversation.here`), so that a message written in one new chat never lands in a later one.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import QObject, QSettings, Signal

from engine.history.records import ConversationTree

LAST_CONVERSATION_KEY = "window/last_conversation"

_new_chat_ids = itertools.count(1)


class ShownConversation(QObject):
    """The conversation on screen (``conversation_id`` and its loaded ``tree``), or a numbered new chat."""

    # After another conversation (int) or a new chat (None) is shown; not when the same one is reloaded.
    changed = Signal(object)

    def __init__(self, ui_state: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ui_state = ui_state
        self.conversation_id: int | None = None
        self.tree: ConversationTree | None = None
        # Which new chat is on screen (0: none numbered yet); reset by show_new_chat().
        self.new_chat = 0

    # --- what is shown ---------------------------------------------------------------------------------

    def show_tree(self, tree: ConversationTree) -> bool:
        """``tree`` is on screen now; returns whether it is another conversation than before."""
        conversation_id = tree.conversation.id
        moved = conversation_id != self.conversation_id
        self.tree = tree
        self.conversation_id = conversation_id
        self.ui_state.setValue(LAST_CONVERSATION_KEY, conversation_id)
        if moved:
            self.changed.emit(conversation_id)
        return moved

    def update_tree(self, tree: ConversationTree) -> bool:
        """A newer load of the conversation on screen (after a turn, a settings change); ignored if another
        one is shown by now. Returns whether it was taken."""
        if tree.conversation.id != self.conversation_id:
            return False
        self.tree = tree
        return True

    def show_new_chat(self) -> None:
        """An empty new chat: what was written in the last one stays there (it gets no number yet)."""
        self.conversation_id = None
        self.tree = None
        self.new_chat = 0
        self.changed.emit(None)

    def adopt(self, conversation_id: int, new_chat: int) -> bool:
        """The conversation made for what was written in new chat ``new_chat`` exists: it is the one shown if
        that new chat still is. Returns whether it was adopted."""
        if self.conversation_id is None and new_chat and new_chat == self.new_chat:
            self.conversation_id = conversation_id
            self.changed.emit(conversation_id)
            return True
        return False

    def drop(self, conversation_id: int) -> None:
        """A conversation made a moment ago is gone again (its first send was refused): back to the new
        chat."""
        if self.conversation_id == conversation_id:
            self.conversation_id = None
            self.tree = None
            self.changed.emit(None)

    # --- addresses -------------------------------------------------------------------------------------

    def here(self) -> tuple[int | None, int]:
        """Where something written now goes: ``(conversation_id, 0)``, or ``(None, n)`` for new chat n
        (numbered now if it was not yet)."""
        if self.conversation_id is not None:
            return (self.conversation_id, 0)
        if not self.new_chat:
            self.new_chat = next(_new_chat_ids)
        return (None, self.new_chat)

    def shows(self, conversation_id: int | None, new_chat: int = 0) -> bool:
        """Whether the window shows that conversation (``None``: that new chat)."""
        if conversation_id is not None:
            return conversation_id == self.conversation_id
        return self.conversation_id is None and new_chat == self.new_chat

    def last_conversation(self) -> int | None:
        """The conversation shown when the app last ran, if remembered."""
        value = self.ui_state.value(LAST_CONVERSATION_KEY)
        return int(str(value)) if value is not None and str(value).isdigit() else None
