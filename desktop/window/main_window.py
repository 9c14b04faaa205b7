"""The main window: sidebar, transcript, composer and the server's status, thin over the engine.

Construct it with engine objects (dependency injection; ``desktop.app.run_app`` is the one place that makes
them for the app, tests and benchmarks make their own)::

    store = await AsyncHistoryStore.open(paths.history_db)
    chat = ChatEngine(store, lambda: supervisor.endpoint)      # or lambda: Endpoint(...) for a fixed server
    window = MainWindow(store=store, chat=chat, settings=SettingsStore.open(paths.settings_file),
                        supervisor=supervisor)                  # supervisor=None: no local server to manage
    window.show()
    await window.restore()                                      # reopens the last conversation
    ...
    await window.shutdown()                                     # stops turns, closes subscriptions

The window holds no business logic: every user action is one awaited engine call run as an
:class:`~desktop.operations.Operation`, and engine events arrive through :class:`~desktop.bridge.EventBridge`.
It builds the widgets and hands each controller what it needs (see docs/architecture.md, "Window"):
:class:`~desktop.window.shown.ShownConversation` (which conversation is on screen),
:class:`~desktop.window.turns.TurnController` (send, stop, regenerate, edit, the stream),
:class:`~desktop.window.outbox.Outbox` (messages written while the server starts),
:class:`~desktop.window.conversations.ConversationActions` (rename, pin, delete, undo),
:class:`~desktop.window.server_link.ServerLink` (the supervisor onto the status bar) and
:class:`~desktop.window.fix_actions.FixRegistry` (what each one-click fix does). No controller sees the
window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QCoreApplication, QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMenu,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop import errors, operations, theme
from desktop.bridge import EventBridge
from desktop.errors import ErrorBanner, FixContext, Problem
from desktop.operations import Operation
from desktop.widgets.chat_settings import ChatSettingsPanel
from desktop.widgets.composer import Composer
from desktop.widgets.markdown_view import MarkdownRenderer
from desktop.widgets.model_picker import ModelPicker
from desktop.widgets.sidebar import Sidebar
from desktop.widgets.status_bar import ServerStatusBar
from desktop.widgets.transcript import TranscriptView
from desktop.window.conversations import ConversationActions
from desktop.window.first_run import FirstRunPanel
from desktop.window.fix_actions import FixActions, FixRegistry
from desktop.window.focus_order import move_focus
from desktop.window.outbox import Outbox
from desktop.window.shown import ShownConversation
from desktop.window.tool_turns import ToolTurns
from desktop.window.turns import TurnController, message_data
from engine.chat.warm_imports import IMPORTS
from engine.errors import Fix
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import ConversationTree
from engine.history.search import SearchHit
from engine.history.store import HistoryStore
from engine.paths import AppPaths

if TYPE_CHECKING:
    # Heavy (pydantic, httpx, Haystack's types): imported at run time only by whoever makes these objects,
    # after the window is on screen (see desktop/app.py). The server log's dialog: when it is first opened.
    from desktop.dialogs.server_log import ServerLogDialog
    from desktop.window.context_watch import ContextWatch
    from desktop.window.server_link import RuntimeEnsurer, ServerLink
    from engine.chat.engine import ChatEngine
    from engine.settings.store import SettingsStore

log = logging.getLogger(__name__)
COPIED_NOTICE_MS = 2500
PREFERENCES_MODULES = (
    "desktop.preferences",
    "huggingface_hub.constants",
    "huggingface_hub.errors",
    "huggingface_hub.utils",
    "huggingface_hub.utils._cache_manager",
)
THEME_KEY = "window/theme"  # the last theme setting, to colour the window before the settings are loaded
CHAT_POINTS_KEY = "window/chat_points"  # the last chat text size, for the window's first sheet


def tr(text: str) -> str:
    return QCoreApplication.translate("MainWindow", text)


def window_state(config: Path) -> QSettings:
    """The window's own state (geometry, last conversation, theme) in ``config``/window.ini."""
    return QSettings(str(config / "window.ini"), QSettings.Format.IniFormat)


def saved_theme(ui_state: QSettings) -> str:
    """The theme setting of the last run ("system" the first time), known before the settings load: the app
    colours the window with it before making its widgets."""
    value = str(ui_state.value(THEME_KEY, "system"))
    return value if value in ("system", "light", "dark") else "system"


def saved_points(ui_state: QSettings) -> int | None:
    """The chat's text size of the last run, known before the settings load: the window's first sheet has it,
    so the settings' own (the same) sets no second sheet, which would polish every widget again after the
    window is shown. ``None`` the first time (or for a value that is not a size)."""
    value = ui_state.value(CHAT_POINTS_KEY)
    try:
        points = int(str(value))
    except ValueError:
        return None
    return points if 6 <= points <= 32 else None


class MainWindow(QMainWindow):
    """The chat window. See the module docstring for how to construct it."""

    conversation_shown = Signal(int)  # after a conversation is on screen (tests, benchmarks)
    turn_finished = Signal(object)  # TurnEvent "finished" of the shown conversation
    quit_requested = Signal()  # the window was closed and should not just hide: the app quits

    def __init__(
        self,
        *,
        store: AsyncHistoryStore,
        chat: ChatEngine | None = None,
        settings: SettingsStore | None = None,
        supervisor: Any = None,
        ui_state: QSettings | None = None,
        ensure_runtime: RuntimeEnsurer | None = None,
        paths: AppPaths | None = None,
        dark: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.supervisor = supervisor
        self.paths = paths
        # Set by the app when a tray exists: asked on close whether to hide instead of quitting.
        self.hide_on_close: Callable[[], bool] = lambda: False
        # Window geometry, last conversation and theme only (QSettings gives strings back; fine for these).
        config = paths.config if paths is not None else settings.path.parent if settings is not None else None
        if ui_state is None:
            if config is None:
                raise ValueError("MainWindow needs paths, settings or ui_state")
            ui_state = window_state(config)
            ui_state.setParent(self)
        self.ui_state = ui_state
        self.setWindowTitle("vLLM Desk")
        self.setObjectName("mainWindow")
        self.setAccessibleName(tr("vLLM Desk"))
        self.bridge = EventBridge(self)
        self.log_dialog: ServerLogDialog | None = None
        self.server_link: ServerLink | None = None
        self.context_watch: ContextWatch | None = None  # the live context meter, once the engine is there

        self.sidebar = Sidebar(store, self)
        self.transcript = TranscriptView(MarkdownRenderer(dark=dark), self)
        self.composer = Composer(self)
        self.banner = ErrorBanner(self)
        self.server_status = ServerStatusBar(self)
        self.setStatusBar(self.server_status)
        self.top_area = QVBoxLayout()  # first-run progress and other panels go above the transcript
        self.top_area.setContentsMargins(8, 8, 8, 0)
        self.first_run = FirstRunPanel(self)
        self.top_area.addWidget(self.first_run)

        # The model and its state above the chat; filled by the app with the launcher's profiles.
        self.model_picker = ModelPicker(self)
        right = QWidget(self)
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.model_picker)
        column.addLayout(self.top_area)
        column.addWidget(self.transcript, 1)
        column.addWidget(self.banner)
        column.addWidget(self.composer)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(right)
        self.chat_settings = ChatSettingsPanel(store, self)  # this chat's system prompt and temperature
        self.chat_settings.hide()
        self.chat_settings.saved.connect(self._chat_settings_saved)
        self.splitter.addWidget(self.chat_settings)
        # Conversations with tools: approval cards, tool turns (desktop/window/tool_turns.py).
        self.tool_turns = ToolTurns(
            store,
            self.transcript,
            self.composer,
            self.sidebar,
            config_dir=config,
            paths=paths,
            shown=lambda: self.conversation_id,
            show=self._show_conversation,
            settings_box=self.chat_settings.tools,
            parent=self,
        )
        self.splitter.setCollapsible(2, True)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, 740])
        self.setCentralWidget(self.splitter)
        self.resize(1100, 760)

        # The controllers, each given what it drives (none of them sees the window).
        self.shown = ShownConversation(ui_state, self)
        self.outbox = Outbox(self.shown, self.transcript, self.composer, self)
        self.turns = TurnController(
            store=store,
            shown=self.shown,
            outbox=self.outbox,
            transcript=self.transcript,
            composer=self.composer,
            chat_settings=self.chat_settings,
            reshow=self._show_conversation,
            tree_changed=self._update_context,
            show_problem=self.show_problem,
            parent=self,
        )
        self.turns.tool_turns = self.tool_turns  # sends and regenerates in chats with tools go there
        self.conversations = ConversationActions(
            store=store,
            sidebar=self.sidebar,
            shown=self.shown,
            stop_turn=self.turns.stop_conversation,
            new_chat=self.new_chat,
            show_conversation=self._show_conversation,
            show_problem=self.show_problem,
            parent=self,
        )
        self.fixes = FixRegistry(self.composer.set_notice)
        self.fix_actions = FixActions(
            self,
            say=self.composer.set_notice,
            open_preferences=self.open_preferences,
            chosen_profile=lambda: (
                self.server_link.chosen_profile().name if self.server_link is not None else None
            ),
            data_folder=lambda: self.paths.data if self.paths is not None else self.store.path.parent,
        )
        self._register_fixes()

        self._build_menus()
        self._connect()
        self.transfer: Any = None  # Export…/Import…, wired in attach() (after the window is shown)
        points = saved_points(ui_state)
        if points is not None:
            self.setProperty(theme.CHAT_POINTS, points)  # in the window's one sheet (apply_theme)
        self.apply_theme(dark)
        self.scheme_watcher = theme.SchemeWatcher(self)
        self.scheme_watcher.changed.connect(lambda: self._on_scheme_changed(None))
        for action in (self.start_action, self.stop_server_action):
            action.setEnabled(False)
        # Until the engine is attached: what needs it waits (Send, regenerate, preferences); the history
        # (sqlite only) can already be browsed.
        self._engine_actions = (self.preferences_action, self.regenerate_action)
        for action in (*self._engine_actions, self.stop_action):
            action.setEnabled(False)
        self.composer.set_ready(False)
        # Typing after the app opens goes into the message box (Qt would give the first widget in its own
        # order, the sidebar's search box, the focus when the window is first activated).
        self.composer.editor.setFocus(Qt.FocusReason.OtherFocusReason)
        if chat is not None and settings is not None:
            self.attach(chat=chat, settings=settings, supervisor=supervisor, ensure_runtime=ensure_runtime)

    def attach(
        self,
        *,
        chat: ChatEngine,
        settings: SettingsStore,
        supervisor: Any = None,
        ensure_runtime: RuntimeEnsurer | None = None,
    ) -> None:
        """Hand the window its engine objects (the app does it right after the window is shown: they import
        pydantic, httpx and more, which would delay the first paint)."""
        from desktop.window.server_link import ServerLink

        self.tool_turns.chat = chat
        self.chat = chat
        self.settings = settings
        self.supervisor = supervisor
        self.bridge.connect_event(chat.turn_events, self.turns.on_turn_event)
        self.bridge.connect_event(settings.changed, self._on_settings_changed)
        link: ServerLink | None = None
        if supervisor is not None:
            link = ServerLink(
                supervisor,
                settings=settings,
                status=self.server_status,
                first_run=self.first_run,
                banner=self.banner,
                bridge=self.bridge,
                ensure_runtime=ensure_runtime,
                parent=self,
            )
            self.server_link = link
            self._wire_link(link)
        else:
            endpoint = chat.endpoint_provider()
            if endpoint is not None:  # a server someone else runs: nothing to start, only to use
                self.server_status.set_server(endpoint.profile_name, endpoint.model)
                self.server_status.set_state("ready", tr("Connected"))
        for action in (self.start_action, self.stop_server_action):
            action.setEnabled(supervisor is not None)
        for action in self._engine_actions:
            action.setEnabled(True)
        self.turns.attach(chat, settings, starting=(lambda: link.starting) if link is not None else None)
        self.stop_action.setEnabled(self.composer.busy)
        from desktop.window.context_watch import ContextWatch

        self.context_watch = ContextWatch(self.composer, chat, self)
        if self.transfer is None:
            self._wire_transfer()  # here, not before the first paint: it loads pydantic and the formats
        if self.paths is not None and not hasattr(self, "documents"):
            # The Documents panel, drops, attached collections, sources (desktop/window/documents_controller),
            # once its modules (numpy, the index) are imported off the GUI thread.
            self.documents: Any = None
            Operation(None, self._install_documents).run()
        self.composer.set_ready(True)
        self._apply_settings(settings.settings)
        tree = self.shown.tree
        if tree is not None:
            self.composer.set_busy(chat.running_turn(tree.conversation.id) is not None)
        self._update_context(tree)

    def _wire_link(self, link: ServerLink) -> None:
        link.register_fixes(self.fixes)
        self.fix_actions.start_server = link.start
        # In this order: the notice about messages not sent goes before the queue is sent.
        link.ready.connect(self.outbox.clear_given_back_notice)
        link.ready.connect(self.turns.server_became_ready)
        # The tool settings warn when the running profile has no tool-call parser (vLLM would refuse).
        self.tool_turns.running_profile = lambda: link.active
        link.ready.connect(self.tool_turns.server_ready)
        link.gave_up.connect(self.outbox.return_queued)
        link.log_line.connect(self._append_log_line)
        self.start_action.triggered.connect(lambda _checked=False: link.start())
        self.stop_server_action.triggered.connect(lambda _checked=False: link.stop())

    def _register_fixes(self) -> None:
        """What each fix does here (the server link adds the server's own when there is a supervisor)."""
        self.fix_actions.register(self.fixes)
        self.turns.register_fixes(self.fixes)
        self.conversations.register_fixes(self.fixes)
        self.fixes.register(["show_log"], lambda _fix, _context: self.show_server_log())
        self.fixes.register(["choose_import_file"], lambda _fix, _context: self._transfer().choose_import())
        self.fixes.register(
            ["choose_export_path"],
            lambda _fix, _context: self._transfer().export_conversations(
                None if self.conversation_id is None else [self.conversation_id]
            ),
        )

    # --- the public face of the controllers (the app, the tray, tests) ---------------------------------

    @property
    def conversation_id(self) -> int | None:
        """The conversation on screen (``None``: a new chat); :attr:`shown` owns it."""
        return self.shown.conversation_id

    @property
    def engine_ready(self) -> bool:
        """Chat and settings are attached (see :meth:`attach`)."""
        return self.turns.engine_ready

    def server_starting(self) -> bool:
        return self.turns.server_starting()

    def send_message(self, text: str) -> None:
        self.turns.send_message(text)

    def stop_reply(self) -> None:
        self.turns.stop_reply()

    def regenerate_last(self) -> None:
        self.turns.regenerate_last()

    def apply_fix(self, fix: Fix, context: FixContext | None = None) -> None:
        """Run a problem's one-click fix (``context``: what it is for; default: what is on screen)."""
        self.fixes.apply(fix, context)

    # --- construction --------------------------------------------------------------------------------

    def _action(self, menu: QMenu, text: str, slot: Callable[[], object], shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu(tr("&File"))
        self.new_action = self._action(
            self.file_menu, tr("&New chat"), self.new_chat, QKeySequence.StandardKey.New
        )
        self.file_menu.addSeparator()
        self.quit_action = self._action(
            self.file_menu, tr("&Quit"), self.quit_app, QKeySequence.StandardKey.Quit
        )
        self.edit_menu = bar.addMenu(tr("&Edit"))
        self.find_action = self._action(
            self.edit_menu, tr("&Search chats"), self.sidebar.focus_search, QKeySequence.StandardKey.Find
        )
        self.preferences_action = self._action(
            self.edit_menu, tr("&Preferences…"), self.open_preferences, "Ctrl+,"
        )
        self.chat_menu = bar.addMenu(tr("&Conversation"))
        # Esc anywhere in the window, but only while a reply runs (the action is disabled otherwise), so Esc
        # keeps its meaning in dialogs (own windows) and in text fields that claim it (see eventFilter).
        self.stop_action = self._action(self.chat_menu, tr("S&top reply"), self.stop_reply, Qt.Key.Key_Escape)
        self.regenerate_action = self._action(
            self.chat_menu, tr("&Regenerate last reply"), self.regenerate_last, "Ctrl+R"
        )
        self.chat_menu.addSeparator()
        conversations = self.conversations
        self.rename_action = self._action(self.chat_menu, tr("Re&name…"), conversations.rename_current, "F2")
        self.pin_action = self._action(
            self.chat_menu, tr("&Pin / unpin"), conversations.pin_current, "Ctrl+P"
        )
        self.delete_action = self._action(
            self.chat_menu, tr("&Delete conversation"), conversations.delete_current
        )
        self.chat_menu.addSeparator()
        self.chat_settings_action = self._action(
            self.chat_menu,
            tr("Chat &settings (system prompt, temperature)"),
            self.toggle_chat_settings,
            "Ctrl+Shift+S",
        )
        self.chat_settings_action.setCheckable(True)
        self.server_menu = bar.addMenu(tr("&Server"))
        self.start_action = QAction(tr("&Start / restart server"), self)
        self.stop_server_action = QAction(tr("S&top server"), self)
        self.server_menu.addAction(self.start_action)
        self.server_menu.addAction(self.stop_server_action)
        self.server_menu.addSeparator()
        self.log_action = self._action(
            self.server_menu, tr("Show server &log"), self.show_server_log, "Ctrl+L"
        )
        # Filled by the app with the tray launcher's actions (profiles, recent chats) when there is no tray.
        self.launcher_menu = bar.addMenu(tr("&Models"))
        self.help_menu = bar.addMenu(tr("&Help"))
        self.about_action = self._action(self.help_menu, tr("&About vLLM Desk"), self.show_about)

    def _wire_transfer(self) -> None:
        # Export…/Import… (desktop/window/transfer_actions.py): menu entries, the sidebar's menu,
        # drag-and-drop.
        from desktop.window.transfer_actions import TransferActions

        self.transfer = TransferActions(
            self,
            self.store,
            # The sidebar's selection (Ctrl/Shift-click), else the conversation on screen.
            selected_ids=lambda: self.sidebar.selected_conversation_ids() or [self.conversation_id],
        )
        first = self.file_menu.actions()[1]  # after "New chat"
        for action in (
            self.transfer.import_action,
            self.transfer.export_action,
            self.transfer.export_all_action,
        ):
            self.file_menu.insertAction(first, action)
        # The composer would take a dropped file's path as text: it and the transcript import files too.
        self.transfer.install_drop_target(self, self.composer.editor, self.transcript)
        self.sidebar.extra_actions.append(self.transfer.context_export_action)

    def _connect(self) -> None:
        self.composer.send_requested.connect(self.turns.send_message)
        self.composer.stop_requested.connect(self.turns.stop_reply)
        self.composer.busy_changed.connect(self._busy_changed)
        self.sidebar.search_box.installEventFilter(self)
        self.sidebar.list.installEventFilter(self)
        self.sidebar.conversation_chosen.connect(self.open_conversation)
        self.sidebar.hit_chosen.connect(self.open_hit)
        self.sidebar.new_chat_requested.connect(self.new_chat)
        self.sidebar.rename_requested.connect(self.conversations.rename)
        self.sidebar.pin_requested.connect(self.conversations.pin)
        self.sidebar.delete_requested.connect(self.conversations.delete)
        self.transcript.copied.connect(lambda words: self.server_status.showMessage(words, COPIED_NOTICE_MS))
        self.transcript.action.connect(self.turns.message_action)
        self.transcript.edited.connect(self.turns.edit_and_resend)
        self.turns.turn_finished.connect(self.turn_finished)
        self.banner.fix_chosen.connect(self.fixes.apply)
        self.shown.changed.connect(self.sidebar.show_current)  # the sidebar's selection follows it
        # The list follows the store (see Sidebar), the title bar the list (a rename, the first message).
        self.sidebar.model.reloaded.connect(self._title_from_list)
        # Messages that wait for the server come back on screen with their conversation.
        self.conversation_shown.connect(self.outbox.show_queued)
        errors.reporter().problem.connect(self.show_problem)
        self.server_status.log_button.clicked.connect(self.show_server_log)

    # --- conversations -------------------------------------------------------------------------------

    async def restore(self) -> None:
        """Fill the sidebar and reopen the conversation that was open last time."""
        await self.sidebar.model.reload()
        last = self.shown.last_conversation()
        ids = {c.id for c in self.sidebar.model.conversations()}
        if last is not None and last in ids:
            await self._show_conversation(last)
        elif ids:
            await self._show_conversation(self.sidebar.model.conversations()[0].id)

    def open_conversation(self, conversation_id: int) -> None:
        Operation(None, lambda: self._show_conversation(conversation_id)).run()

    def open_hit(self, hit: SearchHit) -> None:
        Operation(None, lambda: self._show_hit(hit)).run()

    async def _show_hit(self, hit: SearchHit) -> None:
        if hit.message_id is not None:
            tree = await self.store.load(hit.conversation_id)
            if hit.message_id not in {m.id for m in tree.branch()}:
                # The hit is on another branch: show that branch.
                leaf = tree.latest_leaf(hit.message_id)
                if leaf is not None:
                    await self.store.call(HistoryStore.set_current_leaf, hit.conversation_id, leaf)
        await self._show_conversation(hit.conversation_id)
        if hit.message_id is not None:
            self.transcript.scroll_to(hit.message_id, _first_marked(hit.snippet))

    async def _show_conversation(self, conversation_id: int) -> None:
        tree = await self.store.load(conversation_id)
        self._show_tree(tree)
        self.sidebar.show_current(conversation_id)
        self.conversation_shown.emit(conversation_id)

    def _show_tree(self, tree: ConversationTree) -> None:
        self.turns.pieces.flush()  # to the messages they belong to, before those are replaced
        changed = self.shown.show_tree(tree)
        shown = self.tool_turns.transcript_data(tree, message_data)  # tool calls folded into cards
        self.transcript.show_messages(shown)
        title = tree.conversation.title or tr("New chat")
        self.setWindowTitle(f"{title} — vLLM Desk")
        chat = self.turns.chat
        running = chat.running_turn(tree.conversation.id) if chat is not None else None
        self.composer.set_busy(running is not None or self.tool_turns.running(tree.conversation.id))
        if changed:
            self.composer.set_notice("")
        self._update_context(tree)
        self.chat_settings.show_conversation(tree)

    def _update_context(self, tree: ConversationTree | None) -> None:
        """Tokens the conversation used at its last reply (the server's own count) of the model's maximum."""
        branch = tree.branch() if tree is not None else []
        used = None if branch else 0
        for message in reversed(branch):
            n = message.numbers
            if n.prompt_tokens is not None:
                used = n.prompt_tokens + (n.completion_tokens or 0)
                break
        endpoint = self.chat.endpoint_provider() if self.engine_ready else None
        self.composer.set_context(used, endpoint.max_model_len if endpoint else None)
        if self.context_watch is not None:  # then the live count (with the draft) replaces it
            self.context_watch.set_tree(tree)

    def new_chat(self) -> None:
        """An empty transcript; the conversation is created when the first message is sent."""
        self.turns.pieces.flush()
        self.shown.show_new_chat()  # another new chat: what was written in the last one stays there
        self.transcript.show_messages([])
        self.setWindowTitle(tr("New chat") + " — vLLM Desk")
        self.composer.set_busy(False)
        self.composer.set_notice("")
        self._update_context(None)
        self._show_new_chat_settings()
        self.composer.editor.setFocus()

    def _title_from_list(self) -> None:
        row = self.sidebar.model.row_of(self.conversation_id) if self.conversation_id is not None else -1
        if row >= 0:
            title = self.sidebar.model.conversations()[row].title or tr("New chat")
            self.setWindowTitle(f"{title} — vLLM Desk")

    # --- this chat's settings (the side panel) ----------------------------------------------------------

    def toggle_chat_settings(self) -> None:
        shown = not self.chat_settings.isVisible()
        self.chat_settings.setVisible(shown)
        self.chat_settings_action.setChecked(shown)
        sizes = self.splitter.sizes()
        if shown and sizes[2] < self.chat_settings.minimumWidth():
            # Room for the panel, taken from the conversation (the sidebar keeps its width).
            width = max(self.chat_settings.minimumWidth(), min(300, sizes[1] // 3))
            self.splitter.setSizes([sizes[0], max(sizes[1] - width, 0), width])
        if shown:
            if self.shown.tree is None:
                self._show_new_chat_settings()
            self.chat_settings.system_edit.setFocus()

    def _show_new_chat_settings(self) -> None:
        endpoint = self.chat.endpoint_provider() if self.engine_ready else None
        preset = self.settings.settings.preset_for(endpoint.model) if endpoint is not None else None
        self.chat_settings.show_new_chat(preset)

    def _chat_settings_saved(self, conversation_id: int) -> None:
        if conversation_id == self.conversation_id:
            Operation(None, lambda: self._reload_tree(conversation_id)).run()

    async def _reload_tree(self, conversation_id: int) -> None:
        tree = await self.store.load(conversation_id)
        if self.shown.update_tree(tree):
            self._update_context(tree)

    # --- problems and fixes --------------------------------------------------------------------------

    def show_problem(self, problem: Problem) -> None:
        self.banner.show_problem(problem)

    def _transfer(self) -> Any:
        if self.transfer is None:
            self._wire_transfer()
        return self.transfer

    # --- server --------------------------------------------------------------------------------------

    def show_server_log(self) -> None:
        if self.log_dialog is None:
            from desktop.dialogs.server_log import ServerLogDialog

            supervisor = self.supervisor
            self.log_dialog = ServerLogDialog(self, lambda: supervisor.log_path if supervisor else None)
            if self.supervisor is not None:
                self.log_dialog.set_lines([line.text for line in self.supervisor.log_tail()])
        profile = self.server_link.chosen_profile() if self.server_link is not None else None
        if profile is not None and profile.kind == "remote":
            note = tr(
                "“{name}” is a server at {url}: vLLM Desk did not start it, so its log is kept on that "
                "machine, not here."
            ).format(name=profile.name, url=profile.base_url)
            if self.log_dialog.view.toPlainText():
                note += " " + tr("The lines below are from the last server vLLM Desk started here.")
            self.log_dialog.set_note(note)
        else:
            self.log_dialog.set_note("")
        self.log_dialog.show()
        self.log_dialog.raise_()

    def open_preferences(self) -> Any:
        """Open (or raise) the Preferences; returns the dialog (``None`` if this build has none)."""
        try:
            # Imported on the process's one import thread (engine.chat.warm_imports), never beside it: with
            # what
            # its models page imports where used (engine.models.catalog: huggingface_hub's cache scan and
            # checks).
            IMPORTS.submit(*PREFERENCES_MODULES).result()
            from desktop.preferences import open_preferences
        except ImportError:
            self.composer.set_notice(tr("Preferences are not available in this build."))
            return None
        return open_preferences(self)

    def _append_log_line(self, text: str) -> None:
        if self.log_dialog is not None:
            self.log_dialog.append_line(text)

    def _busy_changed(self, busy: bool) -> None:
        self.stop_action.setEnabled(busy and self.engine_ready)

    def focusNextPrevChild(self, next: bool) -> bool:
        # Tab and Shift+Tab follow desktop.window.focus_order (messages are added later than Qt's own chain).
        return move_focus(self, next) or super().focusNextPrevChild(next)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not isinstance(event, QKeyEvent):
            return super().eventFilter(watched, event)
        search = self.sidebar.search_box
        # Esc in a search box with text belongs to the box, not to the window's "Stop reply": it clears it.
        if watched is search and event.key() == Qt.Key.Key_Escape and search.text():
            if event.type() == QEvent.Type.ShortcutOverride:
                event.accept()
                return True
            if event.type() == QEvent.Type.KeyPress:
                search.clear()  # the list shows the conversations again
                return True
        # Text typed in the conversation list (after a click opened a chat) goes into the message box; the
        # list keeps its keys (arrows, Enter, Delete, shortcuts).
        if watched is self.sidebar.list and event.type() == QEvent.Type.KeyPress and self._types_text(event):
            editor = self.composer.editor
            editor.setFocus(Qt.FocusReason.OtherFocusReason)
            QApplication.sendEvent(
                editor, QKeyEvent(event.type(), event.key(), event.modifiers(), event.text())
            )
            return True
        return super().eventFilter(watched, event)

    def _types_text(self, event: QKeyEvent) -> bool:
        """A key that writes text (no Ctrl, Alt or Meta; not a space) while the message box takes text."""
        commands = (
            Qt.KeyboardModifier.ControlModifier
            | Qt.KeyboardModifier.AltModifier
            | Qt.KeyboardModifier.MetaModifier
        )
        text = event.text()
        editor = self.composer.editor
        return (
            bool(text)
            and text.isprintable()
            and not text.isspace()
            and not event.modifiers() & commands
            and editor.isEnabled()
            and not editor.isReadOnly()
        )

    def _on_settings_changed(self, settings: Any) -> None:
        self._apply_settings(settings)

    def _apply_settings(self, settings: Any) -> None:
        """The settings the window shows, applied live (at attach and whenever the Preferences save)."""
        self.composer.set_send_key(settings.general.send_key)
        appearance = settings.appearance
        self.ui_state.setValue(THEME_KEY, appearance.theme)
        self.ui_state.setValue(CHAT_POINTS_KEY, appearance.font_size)
        app = QApplication.instance()
        dark = theme.apply(app, appearance.theme) if isinstance(app, QApplication) else False
        self.apply_theme(dark)
        self.apply_font_size(appearance.font_size)

    def apply_font_size(self, points: int) -> None:
        """The chat's text size (transcript and editor; menus and lists keep the desktop's)."""
        theme.set_chat_font_size(self, points)

    def saved_theme(self) -> str:
        """The theme setting of the last run ("system" the first time), known before the settings load."""
        return saved_theme(self.ui_state)

    def apply_theme(self, dark: bool) -> None:
        """Colours from the palette; code colours and message backgrounds follow light/dark."""
        theme.style_window(self, dark)
        if dark != self.transcript.cache.renderer.dark:
            self.transcript.set_renderer(MarkdownRenderer(dark=dark))

    def _on_scheme_changed(self, _scheme: object) -> None:
        chosen = self.settings.settings.appearance.theme if self.engine_ready else self.saved_theme()
        self.apply_theme(theme.is_dark(chosen))

    # --- lifecycle -----------------------------------------------------------------------------------

    def save_geometry(self) -> None:
        self.ui_state.setValue("window/geometry", self.saveGeometry())

    def restore_geometry(self) -> None:
        value = self.ui_state.value("window/geometry")
        if isinstance(value, QByteArray | bytes):
            self.restoreGeometry(QByteArray(value))

    def show_about(self) -> None:
        from desktop.dialogs.about import show_about

        show_about(self)

    def quit_app(self) -> None:
        """File > Quit always quits, even when closing the window would hide it to the tray."""
        self.save_geometry()
        self.quit_requested.emit()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_geometry()
        if self.hide_on_close():
            event.ignore()
            self.hide()
            return
        super().closeEvent(event)
        self.quit_requested.emit()

    async def _install_documents(self) -> None:
        await IMPORTS.ready("desktop.window.documents_controller")
        from desktop.window.documents_controller import install_documents

        self.documents = install_documents(self)

    async def shutdown(self) -> None:
        """Stop turns in flight (their partial replies are saved) and drop every subscription."""
        if self.context_watch is not None:
            await self.context_watch.aclose()
        await self.tool_turns.aclose()  # stopped before the chat: a tool turn uses its generator
        if self.server_link is not None:
            await self.server_link.aclose()
        if self.engine_ready:
            await self.chat.shutdown()
        if getattr(self, "documents", None) is not None:
            await self.documents.shutdown()
        await operations.cancel_all()
        await self.sidebar.aclose()
        self.bridge.close()
        # A window shut down no longer restyles the application when the palette changes (its last theme
        # would otherwise come back over another window's choice).
        self.scheme_watcher.changed.disconnect()
        try:
            errors.reporter().problem.disconnect(self.show_problem)
        except (RuntimeError, TypeError):
            log.debug("reporter already disconnected")


def _first_marked(snippet: str) -> str:
    start, end = snippet.find("["), snippet.find("]")
    return snippet[start + 1 : end] if 0 <= start < end else ""
