"""The composer's context meter, live: the shown conversation plus the draft, counted by the engine's
:class:`engine.chat.tokens.ContextMeter` (the server's ``/tokenize`` where it has one, an estimate otherwise)
a
moment after the user stops typing, as "used / max_model_len"; a warning while the draft will not fit.

The counting and the request's shape are the engine's (``ChatEngine.meter``, ``request_messages``); this
module only decides when to count and shows the result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

if TYPE_CHECKING:
    from desktop.widgets.composer import Composer
    from engine.chat.engine import ChatEngine
    from engine.chat.tokens import ContextUsage
    from engine.history.records import ConversationTree

log = logging.getLogger(__name__)
DEBOUNCE_MS = 300  # typing pauses shorter than this do not ask the server


def tr(text: str) -> str:
    return QCoreApplication.translate("composer", text)


class ContextWatch(QObject):
    """Re-counts the context ``DEBOUNCE_MS`` after the draft or the conversation changes."""

    tree_shown = Signal(object)  # the conversation shown (or grown), or None: a new chat

    def __init__(self, composer: Composer, chat: ChatEngine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.composer = composer
        self.chat = chat
        self.tree: ConversationTree | None = None
        self.usage: ContextUsage | None = None  # the last count shown
        self.counts = 0  # how many counts ran (tests: the debounce asks once per pause)
        # What the draft is sent as (documents' passages before it: desktop.window.documents_controller).
        self.draft_hook: Callable[[ConversationTree | None, str], Awaitable[str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start_count)
        composer.editor.textChanged.connect(self._timer.start)

    def set_tree(self, tree: ConversationTree | None) -> None:
        """The conversation shown changed (or grew): count again."""
        self.tree = tree
        self.tree_shown.emit(tree)
        self._timer.start()

    def refresh(self) -> None:
        self._timer.start()

    def _start_count(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()  # an older draft's count is no longer worth showing
        self._task = asyncio.ensure_future(self._count())

    async def _count(self) -> None:
        from engine.chat.generation import GenerationSettings
        from engine.chat.request import request_messages

        endpoint = self.chat.endpoint_provider()
        if endpoint is None:
            return  # no server: the meter keeps the last reply's numbers
        tree = self.tree
        draft = self.composer.editor.toPlainText().strip()
        settings = GenerationSettings.parse(tree.conversation.settings if tree is not None else {})
        history = request_messages(tree.conversation, tree.branch(), settings) if tree is not None else []
        if self.draft_hook is not None and draft:
            draft = await self.draft_hook(tree, draft)
        self.counts += 1
        usage = await self.chat.meter.measure(endpoint, history, draft, reserve=settings.max_tokens or 0)
        self.usage = usage
        self.composer.set_context(usage.used, usage.limit, exact=usage.exact)
        if draft and not usage.fits:
            self.composer.set_notice(
                tr(
                    "This message will not fit in the model's context; "
                    "sending offers to leave out the oldest turns."
                )
            )
        elif self.composer.notice.text().startswith(tr("This message will not fit")):
            self.composer.set_notice("")

    async def aclose(self) -> None:
        self._timer.stop()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
