"""The Documents panel: collections with their files (state, passages, and for a file that failed, why),
the actions on them (Add files…, Add folder…, Re-scan, Remove, Attach to this chat), the indexing progress
(files, passages, embedding rate, Cancel), and drops of files and folders onto it or onto a collection.

It shows and asks; :class:`desktop.window.documents_controller.DocumentsController` does the work. Also the
chips above the composer naming the collections attached to the shown conversation
(:class:`AttachedChips`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.labels import ElidedLabel, WrappingLabel
from engine.documents.index import IndexProgress, IndexReport
from engine.documents.store import CollectionInfo, FileRecord

NAME_ROLE = Qt.ItemDataRole.UserRole  # an item's collection name
PATH_ROLE = Qt.ItemDataRole.UserRole + 1  # a file item's path
FAILED = QColor("#c0392b")


def tr(text: str) -> str:
    return QCoreApplication.translate("documents", text)


def dropped_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


def progress_words(p: IndexProgress) -> str:
    """ "Indexing report.pdf — 3 of 10 files · 120 passages · 14.2 passages/s" """
    if p.phase == "scan":
        return tr("Looking for files…")
    parts = [tr("{0} of {1} files").format(p.files_done, p.files_total), tr("{0} passages").format(p.chunks)]
    if p.chunks_per_s:
        parts.append(tr("{0:.1f} passages/s").format(p.chunks_per_s))
    if p.failed:
        parts.append(tr("{0} failed").format(p.failed))
    head = tr("Indexing {0}").format(Path(p.current).name) if p.current else tr("Indexing")
    return f"{head} — {' · '.join(parts)}"


def report_words(report: IndexReport) -> str:
    """What an indexing run did, in one sentence (and that Re-scan resumes a cancelled one)."""
    done = len(report.added) + len(report.updated)
    words = tr("{0}: {1} files indexed, {2} unchanged, {3} passages").format(
        report.collection, done, report.unchanged, report.chunks
    )
    if report.removed:
        words += tr(", {0} removed").format(len(report.removed))
    if report.failed:
        words += tr("; {0} could not be read (see the list)").format(len(report.failed))
    if report.cancelled:
        words += tr(". Cancelled: Re-scan picks up where it stopped.")
    return words


class DocumentsPanel(QWidget):
    """Collections and their files; the signals carry what the user asked for."""

    add_files_requested = Signal(str)  # collection ("" = the one selected, or a new one)
    add_folder_requested = Signal(str)
    rescan_requested = Signal(str)
    remove_requested = Signal(str, list)  # collection, file paths ([] = the whole collection)
    attach_requested = Signal(str)
    cancel_requested = Signal()
    resume_requested = Signal(str)  # a collection whose indexing did not finish
    reindex_requested = Signal(str)  # a collection indexed with another embedding model
    paths_dropped = Signal(str, list)  # collection ("" = none chosen), [Path]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("documentsPanel")
        self.setAccessibleName(tr("Documents"))
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels([tr("Name"), tr("State"), tr("Passages")])
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(1, 110)
        self.tree.setAccessibleName(tr("Collections and files"))
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.setAcceptDrops(True)
        self.tree.viewport().setAcceptDrops(True)
        self.tree.viewport().installEventFilter(self)
        self.empty = WrappingLabel(self)
        self.empty.setText(
            tr("No documents yet. Drop files or folders here, or use Add files… to make a collection.")
        )

        self.add_files_button = QPushButton(tr("Add files…"), self)
        self.add_folder_button = QPushButton(tr("Add folder…"), self)
        self.rescan_button = QPushButton(tr("Re-scan"), self)
        self.remove_button = QPushButton(tr("Remove"), self)
        self.attach_button = QPushButton(tr("Attach to this chat"), self)
        self.add_files_button.clicked.connect(
            lambda: self.add_files_requested.emit(self.selected_collection())
        )
        self.add_folder_button.clicked.connect(
            lambda: self.add_folder_requested.emit(self.selected_collection())
        )
        self.rescan_button.clicked.connect(lambda: self.rescan_requested.emit(self.selected_collection()))
        self.remove_button.clicked.connect(self._remove)
        self.attach_button.clicked.connect(lambda: self.attach_requested.emit(self.selected_collection()))
        buttons = QHBoxLayout()
        for button in (self.add_files_button, self.add_folder_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        actions = QHBoxLayout()
        for button in (self.rescan_button, self.remove_button, self.attach_button):
            actions.addWidget(button)
        actions.addStretch(1)

        self.progress_label = ElidedLabel(parent=self)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setAccessibleName(tr("Indexing progress"))
        self.cancel_button = QPushButton(tr("Cancel"), self)
        self.cancel_button.clicked.connect(self.cancel_requested)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.cancel_button)
        self.notice = WrappingLabel(self)
        self.notice.setObjectName("documentsNotice")
        self._resume = ""
        self.resume_button = QPushButton(tr("Resume"), self)
        self.resume_button.clicked.connect(lambda: self.resume_requested.emit(self._resume))
        self._reindex = ""
        self.reindex_button = QPushButton(tr("Re-index"), self)
        self.reindex_button.setObjectName("reindexButton")
        self.reindex_button.clicked.connect(lambda: self.reindex_requested.emit(self._reindex))

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.empty)
        layout.addWidget(self.tree, 1)
        layout.addLayout(actions)
        layout.addWidget(self.progress_label)
        layout.addLayout(progress_row)
        layout.addWidget(self.notice)
        layout.addWidget(self.resume_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.reindex_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.set_running(False)
        self.offer_resume(None)
        self.offer_reindex(None)
        self._selection_changed()

    # --- what is shown -----------------------------------------------------------------------------

    def show_collections(self, collections: Sequence[tuple[CollectionInfo, Sequence[FileRecord]]]) -> None:
        """Fill the tree: each collection with a summary, its files below with state, passages, reason."""
        chosen = self.selected_collection()
        tops = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        expanded = {item.data(0, NAME_ROLE) for item in tops if item is not None and item.isExpanded()}
        self.tree.clear()
        for info, files in collections:
            top = QTreeWidgetItem([info.name, self._summary(info), str(info.chunks)])
            top.setData(0, NAME_ROLE, info.name)
            top.setToolTip(0, "\n".join(info.roots))
            for record in files:
                failed = record.state == "failed"
                state = tr("failed: {0}").format(record.error) if failed else tr("indexed")
                child = QTreeWidgetItem([Path(record.path).name, state, str(record.chunks)])
                child.setData(0, NAME_ROLE, info.name)
                child.setData(0, PATH_ROLE, record.path)
                child.setToolTip(0, record.path)
                child.setToolTip(1, record.error or state)
                if failed:
                    child.setForeground(1, QBrush(FAILED))
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setExpanded(info.name in expanded or info.failed > 0)
            if info.name == chosen:
                top.setSelected(True)
        self.empty.setVisible(not collections)
        self._selection_changed()

    @staticmethod
    def _summary(info: CollectionInfo) -> str:
        words = tr("{0} files").format(info.files)
        if info.failed:
            words += tr(", {0} failed").format(info.failed)
        return words

    def collection_item(self, name: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item is not None and item.data(0, NAME_ROLE) == name:
                return item
        return None

    def selected_collection(self) -> str:
        items = self.tree.selectedItems()
        return str(items[0].data(0, NAME_ROLE)) if items else ""

    def _selection_changed(self) -> None:
        chosen = bool(self.tree.selectedItems())
        for button in (self.rescan_button, self.remove_button, self.attach_button):
            button.setEnabled(chosen)

    def _remove(self) -> None:
        items = self.tree.selectedItems()
        if not items:
            return
        name = str(items[0].data(0, NAME_ROLE))
        files = [str(i.data(0, PATH_ROLE)) for i in items if i.data(0, PATH_ROLE)]
        self.remove_requested.emit(name, files)

    # --- progress ----------------------------------------------------------------------------------

    def set_running(self, running: bool, words: str = "") -> None:
        self.progress_bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.progress_label.setVisible(running)
        if running:
            self.progress_label.setText(words)
            self.progress_bar.setRange(0, 0)  # busy until the first count

    def show_progress(self, p: IndexProgress) -> None:
        self.progress_label.setText(progress_words(p))
        if p.files_total:
            self.progress_bar.setRange(0, p.files_total)
            self.progress_bar.setValue(p.files_done)

    def offer_resume(self, collection: str | None) -> None:
        """Show "Resume" for a collection whose indexing did not finish (None: hide it)."""
        self._resume = collection or ""
        self.resume_button.setVisible(collection is not None)

    def offer_reindex(self, collection: str | None) -> None:
        """Show "Re-index" for a collection whose vectors come from another embedding model (None: hide)."""
        self._reindex = collection or ""
        self.reindex_button.setText(tr("Re-index “{0}”").format(collection) if collection else tr("Re-index"))
        self.reindex_button.setVisible(collection is not None)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)

    # --- drops -------------------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            drag = cast(QDragEnterEvent, event)
            if dropped_paths(drag):
                drag.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            drop = cast(QDropEvent, event)
            found = dropped_paths(drop)
            if found:
                drop.acceptProposedAction()
                item = self.tree.itemAt(drop.position().toPoint())
                name = str(item.data(0, NAME_ROLE)) if item is not None else ""
                self.paths_dropped.emit(name, found)
                return True
        return super().eventFilter(watched, event)


class AttachedChips(QWidget):
    """ "Documents: [work ×] [papers ×]" above the composer; hidden when nothing is attached."""

    removed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachedChips")
        self.setAccessibleName(tr("Attached documents"))
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(12, 4, 12, 0)
        self._label = QLabel(tr("Documents:"), self)
        self._row.addWidget(self._label)
        self._row.addStretch(1)
        self.chips: dict[str, QToolButton] = {}
        self.hide()

    def set_names(self, names: Sequence[str]) -> None:
        for chip in self.chips.values():
            self._row.removeWidget(chip)
            chip.deleteLater()
        self.chips = {}
        for name in names:
            chip = QToolButton(self)
            chip.setObjectName("documentChip")
            chip.setText(f"{name}  ×")
            chip.setToolTip(tr("Answers in this chat use “{0}”. Click to detach it.").format(name))
            chip.setAccessibleName(tr("Detach {0}").format(name))
            chip.clicked.connect(lambda _c=False, n=name: self.removed.emit(n))
            self._row.insertWidget(self._row.count() - 1, chip)
            self.chips[name] = chip
        self.setVisible(bool(names))
