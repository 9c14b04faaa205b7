"""The conversation list (pinned first, newest first, fetched page by page) and the history search.

:class:`ConversationListModel` asks the store for one page at a time (Qt's ``canFetchMore``/``fetchMore``), so
10,000 conversations open as fast as 50. Searching swaps in :class:`SearchResultsModel` (FTS hits with
snippets); choosing a hit emits :attr:`Sidebar.hit_chosen` so the window opens it scrolled to the hit.

Several conversations can be selected (Ctrl/Shift-click): the context menu's "Move to folder…", "Tags…" and
the extra actions (Export…) work on the selection; a plain click still opens the conversation clicked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QCoreApplication,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QGuiApplication,
    QIcon,
    QKeySequence,
    QMouseEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QInputDialog,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop import errors, theme
from desktop.bridge import EventBridge
from desktop.operations import Operation
from desktop.widgets.date_groups import DateGroupDelegate, date_group
from engine.errors import DeskError
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import Conversation
from engine.history.search import SearchHit
from engine.history.store import HistoryStore, PageCursor

PAGE_SIZE = 100
ID_ROLE = Qt.ItemDataRole.UserRole + 1
HIT_ROLE = Qt.ItemDataRole.UserRole + 2
GROUP_ROLE = (
    Qt.ItemDataRole.UserRole + 3
)  # the date heading the row belongs under (desktop/widgets/date_groups.py)
_Index = QModelIndex | QPersistentModelIndex
MAX_FOLDER_LENGTH = 80
MAX_TAG_LENGTH = 40


def tr(text: str) -> str:
    return QCoreApplication.translate("sidebar", text)


def _filter_key(value: tuple[str | None, str | None]) -> str:
    # The combo box's item data: a plain string ("", "folder:NAME", "tag:NAME") survives Qt's QVariant.
    folder, tag = value
    return f"folder:{folder}" if folder is not None else f"tag:{tag}" if tag is not None else ""


def _filter_value(key: str) -> tuple[str | None, str | None]:
    kind, _, name = key.partition(":")
    return (name, None) if kind == "folder" else (None, name) if kind == "tag" else (None, None)


def conversation_title(conversation: Conversation) -> str:
    return conversation.title or tr("New chat")


def pin_icon(dark: bool) -> QIcon:
    """The pinned marker: Lucide's pin from the theme's icon set (an SVG: crisp at any scale)."""
    return theme.icon("pin", dark)


_MARKUP = (
    (re.compile(r"(\*\*|__|~~|`+)"), ""),  # bold, strike-through, code
    (re.compile(r"(?<![\w*])[*_](?=\S)(.+?)(?<=\S)[*_](?![\w*])"), r"\1"),  # emphasis
    (re.compile(r"(?m)^\s{0,3}(#{1,6}|>|[-+*]|\d+[.)])\s+"), ""),  # heading, quote, list marks
    (re.compile(r"!?\(https?://[^)\s]*\)"), ""),  # a link's target after its text
)


def plain_snippet(snippet: str) -> str:
    """A search snippet as words: the match marks and Markdown's markup taken out."""
    text = snippet.replace("[", "").replace("]", "")
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


class NameRejected(DeskError):
    """A folder or tag name typed in the sidebar's dialogs that cannot be used."""

    title = "That name cannot be used"


def parse_folder(text: str) -> str:
    """The folder name typed by the user ("" means: in no folder)."""
    name = text.strip()
    if len(name) > MAX_FOLDER_LENGTH:
        raise NameRejected(
            tr("A folder name can be at most {n} characters long; this one has {m}.").format(
                n=MAX_FOLDER_LENGTH, m=len(name)
            )
        )
    return name


def parse_tags(text: str) -> list[str]:
    """Tags typed as "work, gpu" or "#work, #gpu": each without "#", blanks dropped, each once, in order."""
    tags: list[str] = []
    for part in text.split(","):
        tag = part.strip().lstrip("#").strip()
        if not tag:
            continue
        if any(c.isspace() for c in tag):
            # The list shows tags as "#a #b": a space would read as two tags.
            raise NameRejected(
                tr(
                    'A tag cannot contain spaces: "{tag}". Separate tags with commas, or join words with "-".'
                ).format(tag=tag)
            )
        if len(tag) > MAX_TAG_LENGTH:
            raise NameRejected(
                tr('A tag can be at most {n} characters long: "{tag}" has {m}.').format(
                    n=MAX_TAG_LENGTH, tag=tag, m=len(tag)
                )
            )
        if tag not in tags:
            tags.append(tag)
    return tags


def retag(own: Sequence[str], shared: Sequence[str], chosen: Sequence[str]) -> list[str]:
    """One conversation's tags after the Tags… dialog: the tags every selected conversation had (``shared``,
    shown in the dialog) become ``chosen``; the tags only some of them have are kept."""
    removed = set(shared) - set(chosen)
    return [t for t in own if t not in removed] + [t for t in chosen if t not in own]


class ConversationListModel(QAbstractListModel):
    """Conversations from the store, fetched in pages of :data:`PAGE_SIZE` as the view scrolls."""

    reloaded = Signal()  # after the first page of a reload (the folder/tag filter refreshes its choices)

    def __init__(self, store: AsyncHistoryStore, parent: Any = None) -> None:
        super().__init__(parent)
        self._store = store
        self._items: list[Conversation] = []
        self._cursor: PageCursor | None = None
        self._more = True
        self._busy = False  # a page is being fetched
        self._generation = 0
        self._loading: asyncio.Task[None] | None = None
        self.pages_loaded = 0
        self.filter: tuple[str | None, str | None] = (None, None)  # (folder, tag) shown; None: any
        self.dark = False  # the pin's icon set (light strokes on dark)

    # --- Qt model API --------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's API
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            labels = " ".join(([f"[{item.folder}]"] if item.folder else []) + [f"#{t}" for t in item.tags])
            return conversation_title(item) + (f"  {labels}" if labels else "")
        if role == Qt.ItemDataRole.DecorationRole:
            return pin_icon(self.dark) if item.pinned else None
        if role == Qt.ItemDataRole.ToolTipRole:
            tags = ", ".join(item.tags)
            return conversation_title(item) + (f"\n{tags}" if tags else "")
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return conversation_title(item) + (tr(", pinned") if item.pinned else "")
        if role == ID_ROLE:
            return item.id
        if role == GROUP_ROLE:
            return date_group(datetime.fromtimestamp(item.updated_at), datetime.now(), pinned=item.pinned)
        return None

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008 - Qt's API
        return not parent.isValid() and self._more and not self._busy

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008 - Qt's API
        if self.canFetchMore(parent):
            self._busy = True  # before the task's first step: Qt may ask again at once
            self._loading = asyncio.ensure_future(self._fetch_page())

    # --- ours ----------------------------------------------------------------------------------------

    @property
    def loading(self) -> bool:
        return self._busy

    def conversations(self) -> list[Conversation]:
        return list(self._items)

    def row_of(self, conversation_id: int) -> int:
        return next((i for i, c in enumerate(self._items) if c.id == conversation_id), -1)

    async def reload(self) -> None:
        """Start again from the first page (after a change in order: new chat, pin, rename, delete).

        The old rows stay until the new first page is read, then are swapped in one reset: the list never
        shows empty in between.
        """
        self._generation += 1  # a page still on its way belongs to the old list: it is dropped
        generation = self._generation
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None
        self._busy = True  # no page of the old list may be fetched meanwhile
        folder, tag = self.filter
        try:
            page = await self._store.list_conversations(limit=PAGE_SIZE, folder=folder, tag=tag)
        except BaseException:
            if generation == self._generation:
                self._busy = False
            raise
        if generation != self._generation:
            return
        self.beginResetModel()
        self._items = list(page.items)
        self._cursor = page.next_cursor
        self._more = page.next_cursor is not None
        self._busy = False
        self.endResetModel()
        self.pages_loaded += 1
        self.reloaded.emit()

    async def _fetch_page(self) -> None:
        generation = self._generation
        try:
            folder, tag = self.filter
            page = await self._store.list_conversations(
                limit=PAGE_SIZE, after=self._cursor, folder=folder, tag=tag
            )
        except asyncio.CancelledError:
            if generation == self._generation:
                self._busy = False
            raise
        except Exception as exc:  # noqa: BLE001 - shown by the one renderer; the list stays usable
            if generation == self._generation:
                self._busy = False
                self._more = False
            errors.report(exc)
            return
        if generation != self._generation:
            return
        # Cursor first: inserting rows makes the view ask for more at once.
        self._cursor = page.next_cursor
        self._more = page.next_cursor is not None
        self._busy = False
        if page.items:
            first = len(self._items)
            self.beginInsertRows(QModelIndex(), first, first + len(page.items) - 1)
            self._items += page.items
            self.endInsertRows()
        self.pages_loaded += 1

    async def aclose(self) -> None:
        self._more = False  # closed: the view must not ask for pages of a store about to close
        self._generation += 1
        if self._loading is not None:
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
            self._loading = None


class SearchResultsModel(QAbstractListModel):
    """Hits of one search, best first."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.hits: list[SearchHit] = []

    def set_hits(self, hits: list[SearchHit]) -> None:
        self.beginResetModel()
        self.hits = list(hits)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's API
        return 0 if parent.isValid() else len(self.hits)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.hits):
            return None
        hit = self.hits[index.row()]
        where = tr("(in the title)") if hit.message_id is None else plain_snippet(hit.snippet)
        text = f"{hit.title or tr('New chat')}\n    {where}"
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return text
        if role == Qt.ItemDataRole.ToolTipRole:
            return text
        if role == HIT_ROLE:
            return hit
        if role == ID_ROLE:
            return hit.conversation_id
        return None


class Sidebar(QWidget):
    """Search box, "New chat" and the list. Emits what the user chose; the window does the work.

    The list follows the store: every write that changes it (``AsyncHistoryStore.changed``) reloads it, with
    the selection kept (else the conversation on screen, :meth:`show_current`, selected). Nobody reloads it
    by hand; :meth:`settled` waits for the reload under way.
    """

    conversation_chosen = Signal(int)
    hit_chosen = Signal(object)  # SearchHit
    new_chat_requested = Signal()
    rename_requested = Signal(int)
    pin_requested = Signal(int, bool)
    delete_requested = Signal(list)  # the conversation ids to delete

    def __init__(self, store: AsyncHistoryStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sidebar")
        self.model = ConversationListModel(store, self)
        self.results = SearchResultsModel(self)
        self._store = store
        self.search_box = QLineEdit(self)
        self.search_box.setPlaceholderText(tr("Search all chats (Ctrl+F)"))
        self.search_box.setAccessibleName(tr("Search conversations"))
        self.search_box.setClearButtonEnabled(True)
        self.new_button = QPushButton(tr("New chat"), self)
        self.new_button.setAccessibleName(tr("New chat"))
        self.new_button.setToolTip(tr("New chat (Ctrl+N)"))
        self.list = QListView(self)
        self.list.setObjectName("conversationList")
        self.list.setAccessibleName(tr("Conversations"))
        self.list.setModel(self.model)
        self.list.setIconSize(QSize(14, 14))  # the pin, no taller than the title's letters
        # Rows that start a date group are taller (their heading is drawn above them), so sizes are not
        # uniform; batched layout keeps a long fetched list from being laid out in one go.
        self.list.setItemDelegate(DateGroupDelegate(GROUP_ROLE, self.list))
        self.list.setLayoutMode(QListView.LayoutMode.Batched)
        self.list.setBatchSize(200)
        # Ctrl/Shift-click select several (export, move to a folder, tag them together).
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search_box)
        self.filter_box = QComboBox(self)
        self.filter_box.setAccessibleName(tr("Show conversations of"))
        self.filter_box.setToolTip(tr("Show only a folder or a tag"))
        self.filter_box.addItem(tr("All chats"), _filter_key((None, None)))
        self.filter_box.hide()  # until some conversation has a folder or a tag
        layout.addWidget(self.filter_box)
        layout.addWidget(self.list, 1)
        self._filter_task: asyncio.Task[None] | None = None
        self.model.reloaded.connect(self._refresh_filters)
        self.filter_box.activated.connect(self._filter_chosen)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(200)  # search as you type, not on every key
        self._search_timer.timeout.connect(self._run_search)
        self._search_task: asyncio.Task[None] | None = None
        self.search_box.textChanged.connect(self._search_changed)
        self.search_box.returnPressed.connect(self._choose_first_hit)
        self.list.activated.connect(self._activated_unless_selecting)
        self.list.clicked.connect(self._clicked)
        self.list.customContextMenuRequested.connect(self._context_menu)
        # A right press selects the row under it (the menu's row shows which it is for); the selection from
        # before it comes back when the menu closes (:meth:`_context_menu`).
        self._before_right_press: list[int] | None = None
        self.list.viewport().installEventFilter(self)
        # The Delete key deletes what is selected in the list (Undo in the banner brings it back).
        delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(self._delete_selected)
        self.new_button.clicked.connect(self.new_chat_requested)
        # Added by other modules (export, ...) to the context menu; data() = the list of conversation ids.
        self.extra_actions: list[QAction] = []
        self.folders: list[str] = []  # in use, as last loaded for the filter (the folder dialog offers them)
        self.name_dialog: QInputDialog | None = None  # the folder/tags dialog open now (tests, focus)
        self.current: int | None = None  # the conversation on screen (selected when nothing else is)
        self._following: asyncio.Task[None] | None = None  # the reload after a change of the store
        self._stale = False  # the store changed again while that reload ran
        self._bridge = EventBridge(self)
        self._bridge.connect_event(store.changed, self._store_changed)

    # --- list ----------------------------------------------------------------------------------------

    @property
    def searching(self) -> bool:
        return self.list.model() is self.results

    def show_current(self, conversation_id: int | None) -> None:
        """The window shows ``conversation_id`` (``None``: a new chat): select it, now and after reloads."""
        self.current = conversation_id
        if conversation_id is None:
            self.list.clearSelection()
        else:
            self.select_conversation(conversation_id)

    def _store_changed(self, _value: object) -> None:
        if self._following is not None and not self._following.done():
            self._stale = True  # one more reload once this one is done, not one per write
            return
        self._following = asyncio.ensure_future(self._follow_store())

    async def _follow_store(self) -> None:
        try:
            while True:
                self._stale = False
                await self.reload()
                if not self._stale:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shown by the one renderer; the list stays usable
            errors.report(exc)

    async def settled(self) -> None:
        """Wait until the list shows the store's last change (the reload it started is done)."""
        while self._following is not None and not self._following.done():
            await asyncio.wait([self._following])

    def select_conversation(self, conversation_id: int) -> None:
        """Show the opened conversation selected (alone, unless the user has selected it with others)."""
        row = self.model.row_of(conversation_id)
        if row < 0 or self.searching:
            return
        index = self.model.index(row, 0)
        selection = self.list.selectionModel()
        if not selection.isSelected(index):
            # Explicit flags: the view's own setCurrentIndex would toggle if Ctrl was held last.
            flag = QItemSelectionModel.SelectionFlag
            selection.setCurrentIndex(index, flag.ClearAndSelect | flag.Rows)

    def current_conversation_id(self) -> int | None:
        index = self.list.currentIndex()
        value = index.data(ID_ROLE) if index.isValid() else None
        return int(value) if value is not None else None

    def selected_conversation_ids(self) -> list[int]:
        """The selected conversations, in list order (a search hit counts for its conversation, once)."""
        rows = sorted(self.list.selectionModel().selectedRows(), key=lambda index: index.row())
        ids: list[int] = []
        for index in rows:
            value = index.data(ID_ROLE)
            if value is not None and int(value) not in ids:
                ids.append(int(value))
        return ids

    def select_conversations(self, ids: Sequence[int]) -> None:
        """Select these conversations (those listed); the first becomes the current one."""
        if self.searching:
            return
        selection = self.list.selectionModel()
        selection.clearSelection()
        rows = [r for r in (self.model.row_of(i) for i in ids) if r >= 0]
        if not rows:
            return
        flag = QItemSelectionModel.SelectionFlag
        selection.setCurrentIndex(self.model.index(rows[0], 0), flag.NoUpdate)
        for row in rows:
            selection.select(self.model.index(row, 0), flag.Select)

    def _clicked(self, index: QModelIndex) -> None:
        # A plain click opens the conversation; Ctrl/Shift-clicks only change the selection (after them the
        # clicked row is either not selected or one of several).
        if [i.row() for i in self.list.selectionModel().selectedRows()] == [index.row()]:
            self._activated(index)

    def _activated_unless_selecting(self, index: QModelIndex) -> None:
        # A double-click (or, in some desktops, a single click) activates; with Ctrl/Shift held it only
        # changes the selection.
        held = QGuiApplication.keyboardModifiers()
        if not held & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
            self._activated(index)

    def _activated(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        if self.searching:
            hit = index.data(HIT_ROLE)
            if isinstance(hit, SearchHit):
                self.hit_chosen.emit(hit)
        else:
            self.conversation_chosen.emit(int(index.data(ID_ROLE)))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.list.viewport()
            and event.type() == QEvent.Type.MouseButtonPress
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.RightButton
        ):
            self._before_right_press = None if self.searching else self.selected_conversation_ids()
        return super().eventFilter(watched, event)

    def _context_menu(self, pos: QPoint) -> None:
        before, self._before_right_press = self._before_right_press, None
        index = self.list.indexAt(pos)
        if not index.isValid() or self.searching:
            return
        conversation_id = int(index.data(ID_ROLE))
        menu = self.context_menu_for(conversation_id)
        menu.exec(self.list.viewport().mapToGlobal(pos))
        menu.deleteLater()
        self._restore_after_menu(conversation_id, before)

    def _restore_after_menu(self, conversation_id: int, before: list[int] | None) -> None:
        """The right press on a row outside the selection selected it alone (so that the menu's row shows):
        with the menu closed, the selection from before the press is back, so the list highlights the
        conversation on screen again (a rename's dialog still knows its row). Not where the menu's action
        opened that conversation, or where the selection changed otherwise since."""
        if before is None or conversation_id in before or self.searching:
            return
        if self.current == conversation_id or self.selected_conversation_ids() != [conversation_id]:
            return
        if before:
            self.select_conversations(before)
        else:
            self.show_current(self.current)

    def targets_of(self, conversation_id: int) -> list[int]:
        """What a menu opened on ``conversation_id`` acts on: the selection if it holds that conversation,
        else that conversation alone."""
        selected = self.selected_conversation_ids()
        return selected if conversation_id in selected else [conversation_id]

    def context_menu_for(self, conversation_id: int) -> QMenu:
        """The per-conversation menu (also reachable with the keyboard via the window's menu bar).

        Rename and pin act on ``conversation_id``; folder, tags, delete and the extra actions on
        :meth:`targets_of` it.
        """
        row = self.model.row_of(conversation_id)
        pinned = row >= 0 and self.model.conversations()[row].pinned
        targets = self.targets_of(conversation_id)
        menu = QMenu(self)
        menu.addAction(tr("Rename…"), lambda: self.rename_requested.emit(conversation_id))
        menu.addAction(
            tr("Unpin") if pinned else tr("Pin"), lambda: self.pin_requested.emit(conversation_id, not pinned)
        )
        menu.addAction(tr("Move to folder…"), lambda: self.ask_folder(targets))
        menu.addAction(tr("Tags…"), lambda: self.ask_tags(targets))
        for action in self.extra_actions:
            action.setData(targets)
            menu.addAction(action)
        menu.addSeparator()
        label = tr("Delete") if len(targets) == 1 else tr("Delete {n} conversations").format(n=len(targets))
        menu.addAction(label, lambda: self.delete_requested.emit(targets))
        return menu

    def _delete_selected(self) -> None:
        ids = self.selected_conversation_ids()
        if ids:
            self.delete_requested.emit(ids)

    # --- folders and tags -----------------------------------------------------------------------------

    def _listed(self, ids: Sequence[int]) -> list[Conversation]:
        by_id = {c.id: c for c in self.model.conversations()}
        return [by_id[i] for i in ids if i in by_id]

    def ask_folder(self, ids: Sequence[int]) -> None:
        """Ask which folder ``ids`` go to (one in use or a new name; empty: none), then move them."""
        chosen = self._listed(ids)
        if not chosen:
            return
        current = {c.folder for c in chosen}
        dialog = self.make_name_dialog(
            tr("Move to folder"),
            tr("Folder for {n} conversations (empty: none):").format(n=len(chosen))
            if len(chosen) > 1
            else tr("Folder (empty: none):"),
        )
        dialog.setComboBoxItems(["", *self.folders])
        dialog.setComboBoxEditable(True)
        dialog.setTextValue(current.pop() if len(current) == 1 else "")
        targets = [c.id for c in chosen]
        dialog.accepted.connect(lambda: self._run_move(targets, dialog.textValue()))
        dialog.open()

    def ask_tags(self, ids: Sequence[int]) -> None:
        """Ask for the tags of ``ids`` (comma-separated; the ones they all share are shown), then set them."""
        chosen = self._listed(ids)
        if not chosen:
            return
        shared = [t for t in chosen[0].tags if all(t in c.tags for c in chosen[1:])]
        dialog = self.make_name_dialog(
            tr("Tags"),
            tr("Tags of {n} conversations, separated by commas:").format(n=len(chosen))
            if len(chosen) > 1
            else tr("Tags, separated by commas:"),
        )
        dialog.setTextValue(", ".join(shared))
        owned = {c.id: list(c.tags) for c in chosen}
        dialog.accepted.connect(lambda: self._run_retag(owned, shared, dialog.textValue()))
        dialog.open()

    def make_name_dialog(self, title: str, label: str) -> QInputDialog:
        """A name dialog of the sidebar's (``name_dialog`` while it is open); the caller opens it."""
        dialog = name_dialog(self, title, label)
        dialog.finished.connect(dialog.deleteLater)
        dialog.finished.connect(lambda _result: self._forget_dialog(dialog))
        # open(), not exec(): a nested event loop inside the qasync loop would re-enter running tasks.
        self.name_dialog = dialog
        return dialog

    def _forget_dialog(self, dialog: QInputDialog) -> None:
        if self.name_dialog is dialog:
            self.name_dialog = None

    def _run_move(self, ids: list[int], text: str) -> None:
        Operation(self.list, lambda: self.move_to_folder(ids, parse_folder(text))).run()

    def _run_retag(self, owned: dict[int, list[str]], shared: list[str], text: str) -> None:
        async def apply() -> None:
            chosen = parse_tags(text)  # inside the operation: a bad name reaches the error renderer
            await self.set_tags({i: retag(own, shared, chosen) for i, own in owned.items()})

        Operation(self.list, apply).run()

    async def move_to_folder(self, ids: Sequence[int], folder: str) -> None:
        """Put ``ids`` in ``folder`` ("": in none), then show the list with them still selected."""
        for conversation_id in ids:
            await self._store.update_conversation(conversation_id, folder=folder)

    async def set_tags(self, tags: dict[int, list[str]]) -> None:
        """Give each conversation its tags, then show the list with them still selected."""
        for conversation_id, own in tags.items():
            await self._store.update_conversation(conversation_id, tags=own)

    async def reload(self, ids: Sequence[int] | None = None) -> None:
        """Load the list again, with ``ids`` (default: the conversations selected now) still selected."""
        # A reload resets the model, which clears the selection (the user's Ctrl/Shift-clicks too).
        keep = self.selected_conversation_ids() if ids is None and not self.searching else list(ids or ())
        await self.model.reload()
        if not keep and self.current is not None:
            keep = [self.current]
        self.select_conversations(keep)

    # --- folder/tag filter ----------------------------------------------------------------------------

    def set_filter(self, folder: str | None = None, tag: str | None = None) -> None:
        """Show only the conversations in ``folder`` and/or with ``tag`` (both None: all)."""
        if self.model.filter == (folder, tag):
            return
        self.model.filter = (folder, tag)
        index = self.filter_box.findData(_filter_key((folder, tag)))
        if index >= 0:
            self.filter_box.setCurrentIndex(index)
        Operation(self.filter_box, self.model.reload).run()

    def _filter_chosen(self, index: int) -> None:
        folder, tag = _filter_value(str(self.filter_box.itemData(index) or ""))
        self.set_filter(folder, tag)

    def _refresh_filters(self) -> None:
        if self._filter_task is None or self._filter_task.done():
            self._filter_task = asyncio.ensure_future(self._load_filters())

    async def _load_filters(self) -> None:
        try:
            folders, tags = await self._store.call(HistoryStore.folders_and_tags)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shown by the one renderer; the list stays usable
            errors.report(exc)
            return
        self.folders = folders
        choices: list[tuple[str, tuple[str | None, str | None]]] = [(tr("All chats"), (None, None))]
        choices += [(tr("Folder: {name}").format(name=f), (f, None)) for f in folders]
        choices += [(f"#{t}", (None, t)) for t in tags]
        current = self.model.filter
        if current not in [data for _, data in choices]:
            choices.append((self._filter_label(current), current))  # keep showing what is chosen
        self.filter_box.blockSignals(True)
        self.filter_box.clear()
        for label, data in choices:
            self.filter_box.addItem(label, _filter_key(data))
        self.filter_box.setCurrentIndex(self.filter_box.findData(_filter_key(current)))
        self.filter_box.blockSignals(False)
        self.filter_box.setVisible(len(choices) > 1)

    @staticmethod
    def _filter_label(value: tuple[str | None, str | None]) -> str:
        folder, tag = value
        return tr("Folder: {name}").format(name=folder) if folder else f"#{tag}"

    # --- search --------------------------------------------------------------------------------------

    def set_icons(self, dark: bool) -> None:
        """The pinned marker's icon for the light or dark theme (the window's theme calls it)."""
        model = self.model
        if model.dark != dark:
            model.dark = dark
            rows = model.rowCount()
            if rows:
                model.dataChanged.emit(
                    model.index(0), model.index(rows - 1), [Qt.ItemDataRole.DecorationRole]
                )

    def focus_search(self) -> None:
        self.search_box.setFocus()
        self.search_box.selectAll()

    def _search_changed(self, text: str) -> None:
        if not text.strip():
            self._search_timer.stop()
            self.list.setModel(self.model)
            return
        self._search_timer.start()

    def _run_search(self) -> None:
        if self._search_task is not None:
            self._search_task.cancel()
        self._search_task = asyncio.ensure_future(self._search(self.search_box.text()))

    async def _search(self, text: str) -> None:
        try:
            hits = await self._store.search(text, limit=100)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - shown by the one renderer; the list stays usable
            errors.report(exc)
            return
        finally:
            self._search_task = None
        if self.search_box.text() != text:
            return
        self.results.set_hits(hits)
        self.list.setModel(self.results)

    def _choose_first_hit(self) -> None:
        if self.searching and self.results.hits:
            self.list.setFocus()
            self.list.setCurrentIndex(self.results.index(0, 0))
            self.hit_chosen.emit(self.results.hits[0])

    async def aclose(self) -> None:
        self._search_timer.stop()
        self._bridge.close()
        pending = [t for t in (self._search_task, self._filter_task, self._following) if t is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.model.aclose()


def name_dialog(parent: QWidget, title: str, label: str) -> QInputDialog:
    """A dialog asking for a name (rename, folder, tags), wide enough for a long one."""
    dialog = QInputDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setLabelText(label)
    width = max(420, dialog.fontMetrics().horizontalAdvance(label) + 60)
    dialog.setMinimumWidth(width)
    dialog.resize(width, dialog.sizeHint().height())
    return dialog
