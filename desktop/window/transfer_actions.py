"""Export… and Import… in the window: dialogs, a progress bar for big batches, and drag-and-drop import.

Wiring (main window; the Export action takes the sidebar's selection, else the shown conversation)::

    self.transfer = TransferActions(
        self,
        self.store,
        selected_ids=lambda: self.sidebar.selected_conversation_ids() or [self.conversation_id],
    )
    self.file_menu.addAction(self.transfer.import_action)
    self.file_menu.addAction(self.transfer.export_action)        # the selected (else the shown) conversations
    self.file_menu.addAction(self.transfer.export_all_action)
    # A file dropped on the window, the composer or the transcript is imported (not pasted as text).
    self.transfer.install_drop_target(self, self.composer.editor, self.transcript)
    self.sidebar.extra_actions.append(self.transfer.context_export_action)  # data() = the conversation ids

The engine does the work (``engine.transfer``): reading and parsing off the UI thread, database writes on
the store's own thread, PDF drawn by Qt on the UI thread. Failures go to the one error renderer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QProgressDialog,
    QPushButton,
    QWidget,
)

from desktop.operations import Operation
from desktop.window.drops import install_drop_filter
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.transfer import history_adapter
from engine.transfer.exporter import (
    ExportFormat,
    ExportSummary,
    all_conversation_ids,
    file_name,
    write_conversations,
)
from engine.transfer.importer import ImportSummary, import_conversations, read_conversations
from engine.transfer.model import ExportedConversation

IMPORTABLE = (".json", ".zip")
FORMATS: tuple[tuple[ExportFormat, str], ...] = (
    ("md", "Markdown (.md)"),
    ("html", "Web page (.html)"),
    ("pdf", "PDF (.pdf)"),
    ("json", "vLLM Desk JSON, all branches, re-importable (.json)"),
)


def tr(text: str) -> str:
    return QCoreApplication.translate("transfer", text)


@dataclass(frozen=True)
class ExportChoice:
    format: ExportFormat
    target: Path
    all_branches: bool = False


class ExportDialog(QDialog):
    """Format, branches, and where to write. Several conversations go to one JSON file, a folder, or a zip."""

    def __init__(self, count: int, suggested: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.count = count
        self.setWindowTitle(
            tr("Export conversation") if count == 1 else tr("Export {n} conversations").format(n=count)
        )
        self.format_box = QComboBox(self)
        for key, label in FORMATS:
            self.format_box.addItem(tr(label), key)
        self.branches_box = QCheckBox(tr("Include every branch (regenerated replies, edits)"), self)
        self.zip_box = QCheckBox(tr("Put the files in one .zip"), self)
        self.zip_box.setVisible(count > 1)
        self.path_edit = QLineEdit(str(suggested), self)
        self.path_edit.setAccessibleName(tr("Export to"))
        browse = QPushButton(tr("Browse…"), self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(tr("Export"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(tr("Format:"), self.format_box)
        form.addRow("", self.branches_box)
        form.addRow("", self.zip_box)
        form.addRow(tr("Export to:"), row)
        form.addRow(self.buttons)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.zip_box.toggled.connect(lambda _on: self._format_changed())
        self._format_changed()

    def choice(self) -> ExportChoice:
        return ExportChoice(
            format=cast(ExportFormat, self.format_box.currentData()),
            target=Path(self.path_edit.text()).expanduser(),
            all_branches=self.branches_box.isChecked() and self.format_box.currentData() != "json",
        )

    def _format_changed(self) -> None:
        fmt = str(self.format_box.currentData())
        self.branches_box.setEnabled(fmt != "json")  # JSON always holds every branch
        path = Path(self.path_edit.text())
        if self.count == 1 or (fmt == "json" and not self.zip_box.isChecked()):
            # JSON holds several conversations in one file (a backup, like ChatGPT's conversations.json).
            self.path_edit.setText(str(path.with_suffix(f".{fmt}")))
        elif self.zip_box.isChecked():
            self.path_edit.setText(str(path.with_suffix(".zip")))
        else:
            self.path_edit.setText(str(path.with_suffix("")))

    def _browse(self) -> None:
        current = self.path_edit.text()
        one_file = self.zip_box.isChecked() or self.format_box.currentData() == "json"
        if self.count > 1 and not one_file:
            chosen = QFileDialog.getExistingDirectory(self, tr("Export to folder"), current)
        else:
            chosen, _ = QFileDialog.getSaveFileName(self, tr("Export to"), current)
        if chosen:
            self.path_edit.setText(chosen)


class TransferActions(QObject):
    """The window's export and import actions; see the module docstring for the wiring."""

    imported = Signal(object)  # ImportSummary, after conversations were added
    exported = Signal(object)  # ExportSummary
    # Emitted from worker threads; Qt queues it to the UI thread (no bool/int juggling through the loop).
    progressed = Signal(int)

    def __init__(
        self,
        window: QWidget,
        store: AsyncHistoryStore,
        selected_ids: Callable[[], Sequence[int | None]] = lambda: [],
        export_dir: Path | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.store = store
        self.selected_ids = selected_ids
        self.export_dir = export_dir or Path.home()
        self.progress: QProgressDialog | None = None
        self.dialog: ExportDialog | None = None  # the last export dialog opened (tests, focus)
        self.import_action = QAction(tr("&Import conversations…"), window)
        self.import_action.triggered.connect(lambda _checked=False: self.choose_import())
        self.export_action = QAction(tr("&Export conversation…"), window)
        self.export_action.setShortcut("Ctrl+E")
        self.export_action.triggered.connect(lambda _checked=False: self.export_selected())
        self.export_all_action = QAction(tr("Export &all conversations…"), window)
        self.export_all_action.triggered.connect(lambda _checked=False: self.export_conversations(None))
        # For a context menu that sets the conversation id as the action's data (the sidebar does).
        self.context_export_action = QAction(tr("Export…"), window)
        self.context_export_action.triggered.connect(lambda _checked=False: self._export_from_context())
        self._drop_filter = ImportDropFilter(self.import_files, self)
        self.progressed.connect(lambda value: self._set_progress(value))

    # --- export --------------------------------------------------------------------------------------

    def export_selected(self) -> None:
        ids = [i for i in self.selected_ids() if i is not None]
        if ids:
            self.export_conversations(ids)

    def export_conversations(self, ids: Sequence[int] | None) -> None:
        """Ask how and where (``ids`` None: everything), then export with progress."""
        if ids is None:
            Operation(None, lambda: self.store.call(all_conversation_ids)).success(self._ask_export).run()
        else:
            self._ask_export(list(ids))

    def _export_from_context(self) -> None:
        # The menu sets the ids it acts on (the sidebar: its selection), or one id.
        data = self.context_export_action.data()
        ids = [data] if isinstance(data, int) else data if isinstance(data, list) else []
        ids = [i for i in ids if isinstance(i, int)]
        if ids:
            self.export_conversations(ids)

    def _ask_export(self, ids: list[int]) -> None:
        if not ids:
            self._status(tr("There are no conversations to export."))
            return
        if len(ids) == 1:
            # Named after the chat (date and title), as the files of a folder export are.
            Operation(None, lambda: self.store.export_tree(ids[0])).success(
                lambda tree: self._open_dialog(
                    ids, Path(file_name(history_adapter.from_tree(tree), "md")).stem
                )
            ).run()
        else:
            self._open_dialog(ids, "vllm-desk-export")

    def _open_dialog(self, ids: list[int], name: str) -> None:
        dialog = ExportDialog(len(ids), self.export_dir / name, self.window)
        # open(), not exec(): a nested event loop inside the qasync loop would re-enter running tasks.
        dialog.accepted.connect(lambda: self._run_export(ids, dialog.choice()))
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()

    def _run_export(self, ids: list[int], choice: ExportChoice) -> None:
        Operation(None, lambda: self.export_to(ids, choice)).success(self._exported).run()

    async def export_to(self, ids: Sequence[int], choice: ExportChoice) -> ExportSummary:
        """Load the trees on the store's thread, then write the files (PDF drawn here, others off the UI)."""
        total = len(ids)
        self._start_progress(tr("Exporting…"), total * 2)
        try:
            conversations = []
            for number, conversation_id in enumerate(ids, 1):
                conversations.append(history_adapter.from_tree(await self.store.export_tree(conversation_id)))
                self._set_progress(number)
            if choice.format == "pdf":
                from desktop.export_pdf import write_pdf

                return write_conversations(
                    conversations,
                    choice.target,
                    "pdf",
                    all_branches=choice.all_branches,
                    pdf=write_pdf,
                    progress=lambda done, _total: self._set_progress(total + done),
                )

            def tick(done: int, _total: int) -> None:
                self.progressed.emit(total + done)

            return await asyncio.to_thread(
                write_conversations,
                conversations,
                choice.target,
                choice.format,
                all_branches=choice.all_branches,
                progress=tick,
            )
        finally:
            self._end_progress()

    def _exported(self, summary: ExportSummary) -> None:
        if summary.files:
            self.export_dir = summary.files[0].parent
        self._status(summary.sentence())
        self.exported.emit(summary)

    # --- import --------------------------------------------------------------------------------------

    def choose_import(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self.window,
            tr("Import conversations"),
            str(self.export_dir),
            tr("Conversation files (*.json *.zip);;All files (*)"),
        )
        if paths:
            self.import_files([Path(p) for p in paths])

    def import_files(self, paths: Sequence[Path]) -> None:
        Operation(None, lambda: self.import_paths(paths)).success(self._imported).run()

    async def import_paths(self, paths: Sequence[Path]) -> ImportSummary:
        """Parse every file off the UI thread (all must be valid), then add them in the store's thread."""
        self._start_progress(tr("Importing…"), 0)
        try:
            conversations = []
            for path in paths:
                conversations += await asyncio.to_thread(read_conversations, path)
            self._start_progress(tr("Importing…"), len(conversations))

            def tick(done: int, _total: int) -> None:
                self.progressed.emit(done)

            return await self.store.write(_import, conversations, tick)  # the sidebar follows
        finally:
            self._end_progress()

    def _imported(self, summary: ImportSummary) -> None:
        self._status(summary.sentence())
        self.imported.emit(summary)

    def install_drop_target(self, *widgets: QWidget) -> None:
        """Import .json/.zip files dropped on ``widgets`` (the window, the composer's editor, the transcript);
        other drops (text, other files) are left to the widget."""
        install_drop_filter(self._drop_filter, *widgets)

    # --- progress ------------------------------------------------------------------------------------

    def _start_progress(self, label: str, maximum: int) -> None:
        if self.progress is None:
            self.progress = QProgressDialog(label, tr("Hide"), 0, maximum, self.window)
            self.progress.setWindowModality(Qt.WindowModality.WindowModal)
            # Small batches finish before the dialog would appear; big ones show it after 400 ms.
            self.progress.setMinimumDuration(400)
            self.progress.setAutoClose(False)
            self.progress.setAutoReset(False)
        self.progress.setLabelText(label)
        self.progress.setRange(0, maximum)
        self.progress.setValue(0)

    def _set_progress(self, value: int) -> None:
        if self.progress is not None:
            self.progress.setValue(value)

    def _end_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None

    def _status(self, text: str) -> None:
        bar = getattr(self.window, "statusBar", None)
        if callable(bar):
            bar().showMessage(text, 8000)


def _import(
    store: HistoryStore, conversations: list[ExportedConversation], tick: Callable[[int, int], None]
) -> ImportSummary:
    return import_conversations(store, conversations, tick)


class ImportDropFilter(QObject):
    """An event filter: accepts drags of local .json/.zip files and hands the dropped paths to ``on_drop``."""

    def __init__(self, on_drop: Callable[[list[Path]], object], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.on_drop = on_drop

    @staticmethod
    def paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        files = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        return [f for f in files if f.suffix.lower() in IMPORTABLE]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            drag = cast(QDragEnterEvent, event)
            if self.paths(drag):
                drag.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            drop = cast(QDropEvent, event)
            found = self.paths(drop)
            if found:
                drop.acceptProposedAction()
                self.on_drop(found)
                return True
        return super().eventFilter(watched, event)
