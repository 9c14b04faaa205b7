"""Documents in the window: the Documents panel (a dock), File > Add documents…, files and folders dropped on
the window, collections attached to the shown conversation (chips above the composer), indexing with its
progress and Cancel, grounded turns and the sources under their replies.

The work is the engine's (engine.documents: ``Indexer``, ``DocumentStore``, ``Grounder`` as the chat
engine's ``augment``, ``EmbedderService`` for the embedding model); this module connects it to widgets.
Wiring (``MainWindow.attach``, after Export/Import are wired)::

    self.documents = install_documents(self)

A drop on the window is routed by its content: conversation files (our JSON/zip exports, ChatGPT's
``conversations.json``) go to Import, everything else to the documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop import errors
from desktop.errors import FixContext
from desktop.operations import Operation
from desktop.widgets.documents_panel import AttachedChips, DocumentsPanel, dropped_paths, report_words
from desktop.widgets.sources_view import SourcesView
from desktop.window.drops import install_drop_filter
from engine.documents import grounding
from engine.documents.builtin_embedder import embedder_profile
from engine.documents.embedder import Embedder
from engine.documents.grounding import Grounder, sources_of
from engine.documents.index import Indexer, IndexReport
from engine.documents.store import CollectionInfo, DocumentStore, EmbedderMismatch, documents_db
from engine.errors import DeskError

if TYPE_CHECKING:
    from desktop.widgets.transcript import MessageWidget
    from engine.chat.engine import ChatEngine, TurnEvent
    from engine.history.async_store import AsyncHistoryStore
    from engine.history.records import ConversationTree
    from engine.paths import AppPaths
    from engine.server.profiles import ServerProfile

log = logging.getLogger(__name__)
DEFAULT_COLLECTION = "Documents"
SNIFF_BYTES = 65536
SHUTDOWN_WAIT_S = 15.0  # for the indexing thread to drop the file it is on
EmbedderFactory = Callable[[], Awaitable[Embedder]]


def tr(text: str) -> str:
    return QCoreApplication.translate("documents", text)


def is_conversation_file(path: Path) -> bool:
    """A file to import as conversations (not to index): a .zip, or a .json that is our export or
    ChatGPT's."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return True
    if suffix != ".json" or not path.is_file():
        return False
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES).decode("utf-8", "replace")
    except OSError:
        return False
    return '"vllm-desk.conversation' in head or ('"mapping"' in head and '"create_time"' in head)


def mismatch_words(collections: Sequence[str], indexed_with: str, now: str) -> str:
    """Why some collections cannot be searched by meaning with the embedding model in use, and the fix."""
    names = ", ".join(f"“{c}”" for c in collections)
    return tr(
        "{0} was indexed with the embedding model {1}, not {2} (Preferences > Documents): its vectors "
        "cannot be compared with {2}'s, so it is searched by keyword only. Re-index it to search by meaning."
    ).format(names, indexed_with, now or tr("the one chosen now"))


class DocumentsDropFilter(QObject):
    """Drops on the window: conversation files to ``on_import``, other files and folders to ``on_documents``.
    A drop of conversation files alone is left to the import's own filter."""

    def __init__(
        self,
        on_import: Callable[[list[Path]], object],
        on_documents: Callable[[list[Path]], object],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.on_import = on_import
        self.on_documents = on_documents

    @staticmethod
    def split(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
        conversations = [p for p in paths if is_conversation_file(p)]
        return conversations, [p for p in paths if p not in conversations]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            drag = cast(QDragEnterEvent, event)
            if self.split(dropped_paths(drag))[1]:
                drag.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            drop = cast(QDropEvent, event)
            conversations, documents = self.split(dropped_paths(drop))
            if documents:
                drop.acceptProposedAction()
                if conversations:
                    self.on_import(conversations)
                self.on_documents(documents)
                return True
        return super().eventFilter(watched, event)


class ContextDialog(QDialog):
    """A source's passage among the text around it (from the index), the passage marked."""

    def __init__(self, source: dict[str, Any], around: tuple[str, str, str] | None, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("[{0}] {1}").format(source.get("number", "?"), grounding.source_place(source)))
        self.view = QTextBrowser(self)
        before, passage, after = around or ("", str(source.get("passage", "")), "")
        self.view.setPlainText("")
        cursor = self.view.textCursor()
        plain = cursor.charFormat()
        marked = cursor.charFormat()
        marked.setFontWeight(700)
        marked.setBackground(Qt.GlobalColor.yellow)
        marked.setForeground(Qt.GlobalColor.black)
        cursor.insertText(f"…{before}\n\n" if before else "", plain)
        cursor.insertText(passage, marked)
        cursor.insertText(f"\n\n{after}…" if after else "", plain)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(buttons)
        self.resize(620, 420)


class DocumentsController(QObject):
    """Owns the document store, the embedder (started when first needed) and the indexing runs."""

    def __init__(
        self,
        window: Any,
        paths: AppPaths,
        store: AsyncHistoryStore,
        chat: ChatEngine,
        *,
        embedder_factory: EmbedderFactory | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.paths = paths
        self.store = store
        self.chat = chat
        self.doc_store = DocumentStore(documents_db(paths))
        self.embedder: Embedder | None = None
        # Makes the embedder when it is first needed (the chosen embedding model's server; tests aim it at a
        # stand-in before the first use).
        self.embedder_factory: EmbedderFactory = embedder_factory or self._start_chosen_embedder
        self._service_profile: ServerProfile | None = None  # what the running embedding server serves
        self._embedder_start: asyncio.Task[Embedder] | None = None
        self._service: Any = None
        self.indexer: Indexer | None = None
        self.job: asyncio.Task[None] | None = None
        self._quitting = False
        self.last_report: IndexReport | None = None
        self.grounder = Grounder(self.doc_store, chat.meter, lambda: self.embedder)
        chat.augment = self.grounder.augment
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl
        self.context_dialog: ContextDialog | None = None

        self.panel = DocumentsPanel()
        self.dock = QDockWidget(tr("Documents"), window)
        self.dock.setObjectName("documentsDock")
        self.dock.setWidget(self.panel)
        self.dock.hide()
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.panel.add_files_requested.connect(self.choose_files)
        self.panel.add_folder_requested.connect(self.choose_folder)
        self.panel.rescan_requested.connect(self.rescan)
        self.panel.remove_requested.connect(self.remove)
        self.panel.attach_requested.connect(lambda name: self.attach([name]))
        self.panel.cancel_requested.connect(self.cancel)
        self.panel.paths_dropped.connect(lambda name, found: self.add(found, name or None))

        self.chips = AttachedChips()
        self.chips.removed.connect(self.detach)
        self.add_action = QAction(tr("Add &documents…"), window)
        self.add_action.triggered.connect(lambda _c=False: self.choose_files(""))
        self.panel_action = self.dock.toggleViewAction()
        self.panel_action.setText(tr("&Documents panel"))
        self.drop_filter = DocumentsDropFilter(self._import, lambda found: self.add(found, None), self)
        self.panel.resume_requested.connect(self.rescan)
        self.panel.reindex_requested.connect(self.reindex)
        self.refresh()
        self._offer_resume()

    def shown_tree(self) -> ConversationTree | None:
        """The conversation on screen, loaded (``window.shown.tree``; ``window.tree`` in older windows)."""
        shown = getattr(self.window, "shown", None)
        return cast("ConversationTree | None", shown.tree if shown is not None else self.window.tree)

    # --- the embedder --------------------------------------------------------------------------------

    def chosen_embedder(self) -> ServerProfile:
        """The embedding model Preferences > Documents chose (``documents.embedder``; the built-in one in a
        window without settings)."""
        from engine.settings.embedder import chosen_embedder

        settings = getattr(getattr(self.window, "settings", None), "settings", None)
        if settings is None:
            return embedder_profile(self.paths)
        return chosen_embedder(settings, self.paths)

    def embedder_name(self) -> str:
        """The name the collections record for the embedder in use (the running one's, else the chosen
        profile's; "" while unknown)."""
        if self.embedder is not None:
            return self.embedder.name
        try:
            return self.chosen_embedder().served_model_name
        except DeskError:
            return ""

    async def _start_chosen_embedder(self) -> Embedder:
        from engine.documents.service import EmbedderService

        profile = self.chosen_embedder()
        service = self._service = EmbedderService(self.paths, profile=profile)
        self._service_profile = profile
        return await service.start()

    def _embedder_outdated(self) -> bool:
        """Whether the running embedding server is not the one chosen now (the setting changed)."""
        if self._service_profile is None:
            return False
        try:
            return self.chosen_embedder() != self._service_profile
        except DeskError:
            return False

    async def _stop_embedder(self) -> None:
        service, self._service = self._service, None
        self.embedder = None
        self._service_profile = None
        if service is not None:
            await service.shutdown()

    def settings_changed(self) -> None:
        """Another embedding model may have been chosen: the server of the old one stops (not in the middle
        of an indexing run, which keeps the model it began with), and the panel says which collections
        need re-indexing."""
        if self._embedder_outdated() and (self.job is None or self.job.done()):

            async def switch() -> None:
                await self._stop_embedder()
                self.refresh()

            Operation(None, switch).run()
            return
        self.refresh()

    async def ensure_embedder(self) -> Embedder:
        """The embedder, started once (two callers at once share one start); a server for an embedding
        model no longer chosen is stopped and the chosen one started."""
        if self.embedder is not None and self._embedder_outdated():
            await self._stop_embedder()
        if self.embedder is not None:
            return self.embedder
        if self._embedder_start is None or self._embedder_start.done():
            self._embedder_start = asyncio.ensure_future(self.embedder_factory())
        try:
            self.embedder = await asyncio.shield(self._embedder_start)
        finally:
            if self._embedder_start.done() and self._embedder_start.exception() is not None:
                self._embedder_start = None
        return self.embedder

    # --- collections ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        listed = [(info, self.doc_store.files(info.name)) for info in self.doc_store.collections()]
        self.panel.show_collections(listed)
        self.check_embedders([info for info, _files in listed])

    def check_embedders(self, infos: Sequence[CollectionInfo]) -> list[str]:
        """Say which collections were indexed with another embedding model than the one in use (their
        vectors cannot be compared: searched by keyword only) and offer to re-index the first."""
        name = self.embedder_name()
        other = [i for i in infos if name and i.embedder and i.chunks and i.embedder != name]
        self.panel.offer_reindex(other[0].name if other else None)
        if other:
            words = mismatch_words([i.name for i in other], other[0].embedder, name)
            current = self.panel.notice.text()
            if words not in current:
                self.panel.set_notice(f"{current}\n{words}".strip())
        return [i.name for i in other]

    def reindex(self, collection: str) -> asyncio.Task[None] | None:
        """Index every file of ``collection`` again with the embedder in use: its old passages and vectors
        are dropped first (once the embedder has started), so two models' vectors never mix."""
        if not collection:
            return None

        async def again(indexer: Indexer) -> IndexReport:
            await asyncio.to_thread(self.doc_store.clear_index, collection)
            return await indexer.rescan_async(collection)

        self.panel.offer_reindex(None)
        return self._run(collection, again)

    def show_panel(self) -> None:
        self.dock.show()
        self.dock.raise_()

    def attach_from_composer(self) -> None:
        """The composer's attach button: the panel (its collections, Attach to this chat); with none yet,
        the Add documents dialog first."""
        self.show_panel()
        if not self.doc_store.collections():
            self.choose_files("")

    def choose_files(self, collection: str) -> None:
        found, _ = QFileDialog.getOpenFileNames(self.window, tr("Add documents"), str(Path.home()))
        if found:
            self.add([Path(p) for p in found], collection or None)

    def choose_folder(self, collection: str) -> None:
        found = QFileDialog.getExistingDirectory(
            self.window, tr("Add a folder of documents"), str(Path.home())
        )
        if found:
            self.add([Path(found)], collection or None)

    def add(self, found: Sequence[Path], collection: str | None) -> asyncio.Task[None] | None:
        """Index ``found`` into ``collection`` (None: the one selected in the panel, else "Documents")."""
        name = collection or self.panel.selected_collection() or DEFAULT_COLLECTION
        self.show_panel()
        return self._run(name, lambda indexer: indexer.add_async(name, list(found)))

    def rescan(self, collection: str) -> asyncio.Task[None] | None:
        if not collection:
            return None
        return self._run(collection, lambda indexer: indexer.rescan_async(collection))

    def _run(self, name: str, work: Callable[[Indexer], Awaitable[IndexReport]]) -> asyncio.Task[None] | None:
        if self.job is not None and not self.job.done():
            self.panel.set_notice(tr("Indexing is already running; wait for it or cancel it."))
            return None
        self.panel.set_notice("")
        self.panel.offer_resume(None)
        self.panel.set_running(True, tr("Starting the embedding model…"))

        async def run() -> None:
            self._mark_unfinished(name)
            try:
                embedder = await self.ensure_embedder()
                self.indexer = Indexer(self.doc_store, embedder, progress=self.panel.show_progress)
                report = await work(self.indexer)
                if not self._quitting:  # ended by itself or by Cancel: not when the app quits
                    self._mark_unfinished(None)
                self._finished(report)
            except Exception:
                self._mark_unfinished(None)
                raise
            finally:
                self.indexer = None
                self.panel.set_running(False)
                self.refresh()

        self.job = Operation(None, run).failure(self._failed).run()
        return self.job

    # --- a run the app quit in the middle of ----------------------------------------------------------

    @property
    def unfinished_marker(self) -> Path:
        return self.paths.state / "documents-indexing.json"

    def _mark_unfinished(self, collection: str | None) -> None:
        marker = self.unfinished_marker
        try:
            if collection is None:
                marker.unlink(missing_ok=True)
            else:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(json.dumps({"collection": collection}), encoding="utf-8")
        except OSError as exc:
            log.warning("documents: cannot record the indexing run: %s", exc)

    def unfinished(self) -> str | None:
        """The collection whose indexing the app quit in the middle of (or crashed during), if any."""
        try:
            found = json.loads(self.unfinished_marker.read_text(encoding="utf-8")).get("collection")
        except (OSError, ValueError, AttributeError):
            return None
        return str(found) if found and self.doc_store.has_collection(str(found)) else None

    def _offer_resume(self) -> None:
        name = self.unfinished()
        self.panel.offer_resume(name)
        if name is not None:
            words = tr("Indexing “{0}” did not finish (the app was closed). Resume indexes what is left.")
            self.panel.set_notice(words.format(name))
            self.show_panel()

    def _finished(self, report: IndexReport) -> None:
        self.last_report = report
        words = report_words(report)
        if report.failed:
            reasons = "\n".join(f"• {Path(p.path).name}: {p.reason}" for p in report.failed[:20])
            words = f"{words}\n{reasons}"
        self.panel.set_notice(words)

    def _failed(self, exc: BaseException) -> None:
        self._report_refusal(exc)
        if isinstance(exc, EmbedderMismatch):
            self.panel.set_notice(mismatch_words([exc.collection], exc.indexed_with, self.embedder_name()))
            self.panel.offer_reindex(exc.collection)
            return
        self.panel.set_notice(tr("Indexing stopped: {0}").format(exc))
        log.warning("documents: indexing failed: %s", exc)

    def cancel(self) -> None:
        """Stop the run: the file being indexed is dropped whole; Re-scan resumes."""
        if self.indexer is not None:
            self.indexer.cancel()
        elif self.job is not None and not self.job.done():
            self.job.cancel()  # still starting the embedder
        self.panel.cancel_button.setEnabled(False)

    def remove(self, collection: str, files: list[str]) -> None:
        async def run() -> None:
            def work() -> None:
                if files:
                    for path in files:
                        self.doc_store.remove_file(collection, path)
                else:
                    self.doc_store.delete_collection(collection)

            await asyncio.to_thread(work)
            self.refresh()

        Operation(None, run).run()

    # --- attaching to the conversation ----------------------------------------------------------------

    def attach(self, names: Sequence[str]) -> asyncio.Task[None] | None:
        """Attach collections to the shown conversation (a new chat is made for them if none is shown)."""
        wanted = [n for n in names if n]
        if not wanted:
            return None

        async def run() -> None:
            conversation_id = self.window.conversation_id
            if conversation_id is None:
                conversation_id = (await self.chat.new_conversation()).id
            await grounding.attach(self.store, conversation_id, wanted)
            self.window.open_conversation(conversation_id)
            self.warm_up()

        return Operation(None, run).run()

    def detach(self, name: str) -> None:
        conversation_id = self.window.conversation_id
        if conversation_id is None:
            return

        async def run() -> None:
            await grounding.detach(self.store, conversation_id, name)
            self.window.open_conversation(conversation_id)

        Operation(None, run).run()

    def warm_up(self) -> None:
        """Start the embedder in the background: until it is there, answers search by keyword only."""
        if self.embedder is None:
            task = asyncio.ensure_future(self.ensure_embedder())
            # Failures: keyword search; a GPU refusal is also shown, with its fix.
            task.add_done_callback(lambda t: t.cancelled() or self._report_refusal(t.exception()))

    @staticmethod
    def _report_refusal(exc: BaseException | None) -> bool:
        """The embedder refused because its GPU share does not fit (beside the chat model) goes to the one
        error renderer, its fix aimed at the profile it changes (the chat model's)."""
        from engine.server.gpu_shares import SharesDoNotFit  # only a failure needs it: not at startup

        if not isinstance(exc, SharesDoNotFit):
            return False
        errors.report(exc, FixContext(profile=exc.fix_profile))
        return True

    def tree_shown(self, tree: ConversationTree | None) -> None:
        self.chips.set_names(grounding.attached(tree.conversation) if tree is not None else [])

    async def draft_with_passages(self, tree: ConversationTree | None, draft: str) -> str:
        """What the draft will be sent as (with its passages), for the context meter."""
        from engine.chat.generation import GenerationSettings
        from engine.chat.request import request_messages

        endpoint = self.chat.endpoint_provider()
        if tree is None or endpoint is None or not draft:
            return draft
        settings = GenerationSettings.parse(tree.conversation.settings)
        messages = request_messages(tree.conversation, tree.branch(), settings, 0, draft)
        grounded = await self.grounder.ground(endpoint, settings, messages)
        return grounded.text if grounded is not None else draft

    # --- sources under replies -----------------------------------------------------------------------

    def message_widget_made(self, widget: MessageWidget) -> None:
        """Transcript hook: a reply shown with the sources stored with it gets them below its text."""
        tree = self.shown_tree()
        if widget.data.role != "assistant" or tree is None or not isinstance(widget.data.id, int):
            return
        with contextlib.suppress(Exception):
            self.show_sources(widget, sources_of(tree.message(widget.data.id).content.get("meta")))

    def turn_event(self, event: TurnEvent) -> None:
        if event.kind != "finished" or event.reply is None:
            return
        widget = self.window.transcript.message(event.reply_id)
        if widget is not None:
            self.show_sources(widget, sources_of(event.reply.content.get("meta")))

    def show_sources(self, widget: MessageWidget, sources: list[dict[str, Any]]) -> None:
        old = widget.findChild(SourcesView)
        if old is not None:
            old.setParent(None)
            old.deleteLater()
        if not sources:
            return
        view = SourcesView(sources, widget)
        view.open_requested.connect(self.open_source)
        view.context_requested.connect(self.show_in_context)
        layout = widget.layout()
        if isinstance(layout, QBoxLayout):  # below the text, above the footer (the layout's last item)
            layout.insertWidget(max(0, layout.count() - 1), view)

    def open_source(self, source: dict[str, Any]) -> None:
        """Open the file (a PDF at its page, where the viewer reads ``#page=``); a file that is gone shows
        the passage in context instead."""
        path = Path(str(source.get("file", "")))
        if not path.is_file():
            self.show_in_context(source)
            return
        url = QUrl.fromLocalFile(str(path))
        if source.get("page") is not None and path.suffix.lower() == ".pdf":
            url.setFragment(f"page={source['page']}")
        self.open_url(url)

    def show_in_context(self, source: dict[str, Any]) -> None:
        around = self.doc_store.passage_context(str(source.get("doc_id", "")))
        self.context_dialog = ContextDialog(source, around, self.window)
        self.context_dialog.show()

    # --- drops and shutdown ----------------------------------------------------------------------------

    def _import(self, found: list[Path]) -> None:
        transfer = self.window.transfer
        if transfer is not None:
            transfer.import_files(found)

    def install_drop_target(self, *widgets: QWidget) -> None:
        """Route drops on ``widgets`` by content: conversations to Import, other files to the documents."""
        install_drop_filter(self.drop_filter, *widgets)

    async def shutdown(self) -> None:
        """Stop a run (the file in progress is dropped whole; the run is left marked unfinished, so the next
        start offers Resume), the embedder, and the store."""
        self._quitting = True
        job = self.job
        if job is not None and not job.done():
            if self.indexer is not None:
                # The indexing thread stops at its next check; the store is closed only after it did.
                self.indexer.cancel()
                await asyncio.wait({job}, timeout=SHUTDOWN_WAIT_S)
            if not job.done():
                job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        if self._embedder_start is not None and not self._embedder_start.done():
            self._embedder_start.cancel()
            await asyncio.gather(self._embedder_start, return_exceptions=True)
        if self._service is not None:
            await self._service.shutdown()
        if self.chat.augment == self.grounder.augment:
            self.chat.augment = None
        self.doc_store.close()


def install_documents(window: Any, *, embedder_factory: EmbedderFactory | None = None) -> DocumentsController:
    """Make the window's documents controller and hook it in: the dock, File > Add documents…, the
    composer's attach button, the chips above the composer, drops, the transcript's sources, the meter."""
    controller = DocumentsController(
        window, window.paths, window.store, window.chat, embedder_factory=embedder_factory
    )
    menu = window.file_menu
    first = menu.actions()[1] if len(menu.actions()) > 1 else None
    menu.insertAction(first, controller.add_action)
    window.view_menu_actions = [*getattr(window, "view_menu_actions", []), controller.panel_action]
    menu.insertAction(first, controller.panel_action)
    composer = window.composer
    parent_layout = composer.parentWidget().layout()
    parent_layout.insertWidget(parent_layout.indexOf(composer), controller.chips)
    composer.attach_requested.connect(controller.attach_from_composer)
    composer.set_attach_enabled(True)
    controller.install_drop_target(window, composer.editor, window.transcript)
    window.transcript.widget_hooks.append(controller.message_widget_made)
    window.bridge.connect_event(window.chat.turn_events, controller.turn_event)
    settings = getattr(window, "settings", None)
    if settings is not None:  # another embedding model chosen: say which collections need re-indexing
        window.bridge.connect_event(settings.changed, lambda _s: controller.settings_changed())
    watch = window.context_watch
    if watch is not None:
        watch.tree_shown.connect(controller.tree_shown)
        watch.draft_hook = controller.draft_with_passages
    controller.tree_shown(controller.shown_tree())
    return controller
