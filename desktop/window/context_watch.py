"""The composer's context meter, live: the shown conversation plus the draft, counted by the engine's
:class:`engine.chat.tokens.ContextMeter` (the server's ``/tokenize`` where it has one, an estimate otherwise)
a moment after the user stops typing, as "used / max_model_len"; a warning while the draft will not fit.

The counting and the request's shape are the engine's (``ChatEngine.meter``, ``request_messages``); this
module only decides when to count and shows the result. Of a count only the ``/tokenize`` request's own
steps run on the GUI thread: the modules it needs are imported on the process's import thread and the
request's messages (a whole restored conversation) are put together on a worker thread — the window's first
count took 235–312 ms of the GUI thread while it restored. A count that arrives after the conversation
changed is dropped. After a count the chat's client opens a connection to the server, or keeps its own
fresh (:meth:`engine.chat.generator.GeneratorPool.connect`), for the send to come.
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
    from engine.chat.tokens import ContextUsage, Messages
    from engine.endpoint import Endpoint
    from engine.history.records import ConversationTree

log = logging.getLogger(__name__)
DEBOUNCE_MS = 300  # typing pauses shorter than this do not ask the server
# What a count imports: the settings' and request's modules (pydantic), and what httpx imports at its first
# request (anyio's asyncio backend, ~60 ms). Imported on the import thread (engine.chat.warm_imports).
COUNT_MODULES = ("engine.chat.generation", "engine.chat.request", "anyio._backends._asyncio")


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
        self.dropped = 0  # counts not shown: another conversation was shown before they arrived
        # What the draft is sent as (documents' passages before it: desktop.window.documents_controller).
        self.draft_hook: Callable[[ConversationTree | None, str], Awaitable[str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._shown = 0  # bumped by set_tree: a count started before is not shown
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start_count)
        self._closed = False  # aclose(): no count after it (a reply ending at shutdown shows its tree)
        composer.editor.textChanged.connect(self.refresh)

    def set_tree(self, tree: ConversationTree | None) -> None:
        """The conversation shown changed (or grew): count again (a count under way is not shown)."""
        self.tree = tree
        self._shown += 1
        self.tree_shown.emit(tree)
        self.refresh()

    def refresh(self) -> None:
        if not self._closed:
            self._timer.start()

    def _start_count(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()  # an older draft's count is no longer worth showing
        self._task = asyncio.ensure_future(self._count())

    async def _count(self) -> None:
        endpoint = self.chat.endpoint_provider()
        if endpoint is None:
            return  # no server: the meter keeps the last reply's numbers
        tree, shown = self.tree, self._shown
        draft = self.composer.editor.toPlainText().strip()
        imported = self.chat.imports.submit(*COUNT_MODULES)
        if not imported.done():
            # asyncio.wait: a cancelled count leaves the shared import alone (awaiting the wrapped future
            # would cancel it for every other waiter).
            await asyncio.wait({asyncio.wrap_future(imported)})
        imported.result()
        history, reserve = await asyncio.to_thread(_request_history, tree)
        if self.draft_hook is not None and draft:
            draft = await self.draft_hook(tree, draft)
        self.counts += 1
        usage = await self.chat.meter.measure(endpoint, history, draft, reserve=reserve)
        if shown != self._shown:
            self.dropped += 1  # another conversation is shown by now: its own count follows
            return
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
        await self._connect(endpoint)

    async def _connect(self, endpoint: Endpoint) -> None:
        """While the user writes: the chat's client built and a connection to the server opened (or kept
        fresh), so that the send starts on it (a new connection cost ~1.5 ms of the first token)."""
        from engine.chat.errors import ChatError

        try:
            await self.chat.warm_up()  # Haystack, imported on the import thread since the first keystroke
        except ChatError:
            return  # the send will say it
        await self.chat.generators.connect(endpoint)

    async def aclose(self) -> None:
        self._closed = True
        self._timer.stop()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _request_history(tree: ConversationTree | None) -> tuple[Messages, int]:
    """The conversation's messages as the request sends them, and the tokens kept free for the reply (on a
    worker thread: a restored conversation can have thousands of messages; the TLS context the meter's client
    loads, ~25–70 ms the first time, is made here too)."""
    from engine.chat.generation import GenerationSettings
    from engine.chat.request import request_messages
    from engine.chat.tokens import tls_context

    tls_context()
    settings = GenerationSettings.parse(tree.conversation.settings if tree is not None else {})
    history = request_messages(tree.conversation, tree.branch(), settings) if tree is not None else []
    return history, settings.max_tokens or 0
