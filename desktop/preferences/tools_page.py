"""Tools: the MCP servers conversations may use (stdio programs and streamable HTTP servers), their state and
tools, and the built-in tools.

Servers are saved at once, outside the settings' draft (``tools.toml``, as ``vllm-desk tools add-mcp``
does): secret environment values and every HTTP header go to the keychain
(:class:`engine.tools.config.ToolsSettings`), never to the file. The save runs in a worker thread (a real
Secret Service can take seconds, more while it asks to be unlocked), the form held meanwhile; a refusal
leaves the file, the keychain, the chats and the form as they were. Adding a stdio server warns that it runs
a program on this machine and asks the user to say they trust it. "Check" starts a server (the window's
MCP servers when the page has them) and shows its state: starting, ready with N tools (listed), or failed
with the reason. A built-in tool's name is refused for a server (one from an older ``tools.toml`` is listed
as not used, the built-in tool being used, until it is renamed). Renaming a server carries the new name over
to the chats that named the old one within the save, as ``vllm-desk tools edit-mcp`` does
(:func:`engine.tools.config.update_server`, on the window's history store's thread): the chats first, then
the file (a file that cannot be written puts them back), so the window finds them renamed when it sees the
new file; what happened is said under the list.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from desktop.operations import Operation
from desktop.preferences.form import ERROR_STYLE, HELP_STYLE, tr
from engine.errors import DeskError
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.tools.builtin import BUILTIN_NAMES, DESCRIPTIONS
from engine.tools.config import (
    STDIO_WARNING,
    McpServer,
    ServerNameBuiltin,
    ServerUpdate,
    ToolsSettings,
    looks_secret,
    unused_reason,
    update_server,
)

if TYPE_CHECKING:
    from engine.history.async_store import AsyncHistoryStore
    from engine.tools.mcp import McpManager, ServerState

NAME_ROLE = Qt.ItemDataRole.UserRole
T = TypeVar("T")
RENAMING = tr("Renaming ")
log = logging.getLogger(__name__)


def parse_pairs(text: str, separator: str, bare: list[str] | None = None) -> dict[str, str]:
    """``KEY=VALUE`` (or ``Name: value``) lines as a dict; raises ``ValueError`` naming a bad line. With
    ``bare``, a line that is a name alone is allowed and its name goes there (a secret whose stored value
    stays, when a server is edited)."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, found, value = line.partition(separator)
        if not found and bare is not None and key.strip() and not any(c.isspace() for c in key.strip()):
            bare.append(key.strip())
            continue
        if not found or not key.strip():
            raise ValueError(tr("line {n} is not NAME{sep}VALUE").format(n=number, sep=separator))
        pairs[key.strip()] = value.strip()
    return pairs


def _plain(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


def _words(exc: Exception) -> str:
    """A refusal as the page says it: the sentence, and the engine's hint when it has one."""
    hint = exc.hint if isinstance(exc, ServerNameBuiltin) else ""
    if not hint and isinstance(exc, DeskError) and exc.fix is not None:
        hint = exc.fix.hint
    return f"{exc} {hint}" if hint else str(exc)


class ToolsPage(QWidget):
    """The Tools page. ``manager``: the window's MCP servers (else the page starts its own for "Check", and
    :meth:`aclose` stops them). ``history``: the window's history store, which carries a rename over to the
    chats on its own thread, in order with the window's writes (else the save does, with a store of its
    own)."""

    # A server was added, changed or removed; (old, new) names on a rename, else ("", "").
    servers_changed = Signal(str, str)

    def __init__(
        self,
        paths: AppPaths,
        secrets: SecretStore,
        manager: McpManager | None = None,
        parent: QWidget | None = None,
        history: AsyncHistoryStore | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = ToolsSettings(paths.config, secrets)
        self._history_db = paths.history_db  # a rename carries over to the chats that named the server
        self._history = history
        # The last rename carried over to the chats: said under the list.
        self._rename_note: tuple[str, str] | None = None
        self.saving: asyncio.Task[None] | None = None  # the form's last save (file and keychain), if any
        self._logs = paths.logs
        self._manager = manager
        self._own_manager = manager is None
        self._unsubscribe: Any = None
        if manager is not None:
            self._unsubscribe = manager.state_changed.connect(lambda _state: self.refresh())

        inner = QWidget()
        layout = QVBoxLayout(inner)
        builtin = QGroupBox(tr("Built-in tools"))
        builtin_layout = QVBoxLayout(builtin)
        for name in BUILTIN_NAMES:
            builtin_layout.addWidget(_plain(f"{name} — {DESCRIPTIONS[name]}"))
        layout.addWidget(builtin)

        servers = QGroupBox(tr("MCP servers"))
        servers_layout = QVBoxLayout(servers)
        note = _plain(
            tr("Saved at once. A conversation uses a server once it is ticked in its chat settings (Tools).")
        )
        note.setStyleSheet(HELP_STYLE)
        servers_layout.addWidget(note)
        self.server_list = QListWidget()
        self.server_list.setObjectName("mcp_servers")
        self.server_list.setAccessibleName(tr("MCP servers"))
        self.server_list.setMaximumHeight(140)
        self.server_list.currentItemChanged.connect(lambda _now, _before: self._show_selected())
        servers_layout.addWidget(self.server_list)
        self.server_detail = _plain()
        self.server_detail.setObjectName("mcp_server_detail")
        servers_layout.addWidget(self.server_detail)
        row = QHBoxLayout()
        self.check_button = QPushButton(tr("Check (start it)"))
        self.edit_button = QPushButton(tr("Edit"))
        self.edit_button.setObjectName("mcp_edit")
        self.remove_button = QPushButton(tr("Remove"))
        self.check_button.clicked.connect(self._check)
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button.clicked.connect(self._remove)
        row.addWidget(self.check_button)
        row.addWidget(self.edit_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        servers_layout.addLayout(row)
        layout.addWidget(servers)

        add = self.form_box = QGroupBox(tr("Add an MCP server"))
        form = QFormLayout(add)
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("mcp_name")
        self.transport = QComboBox()
        self.transport.setObjectName("mcp_transport")
        self.transport.addItem(tr("A program on this machine (stdio)"), "stdio")
        self.transport.addItem(tr("A streamable HTTP server (URL)"), "http")
        self.command_edit = QLineEdit()
        self.command_edit.setObjectName("mcp_command")
        self.command_edit.setPlaceholderText("npx")
        self.args_edit = QLineEdit()
        self.args_edit.setObjectName("mcp_args")
        self.args_edit.setPlaceholderText("-y @modelcontextprotocol/server-filesystem /home/me/notes")
        self.env_edit = QPlainTextEdit()
        self.env_edit.setObjectName("mcp_env")
        self.env_edit.setPlaceholderText("NAME=value (one per line)")
        self.env_edit.setFixedHeight(60)
        self.secret_env_edit = QPlainTextEdit()
        self.secret_env_edit.setObjectName("mcp_secret_env")
        self.secret_env_edit.setPlaceholderText("API_TOKEN=… (kept in the keychain)")
        self.secret_env_edit.setFixedHeight(60)
        self.url_edit = QLineEdit()
        self.url_edit.setObjectName("mcp_url")
        self.url_edit.setPlaceholderText("http://127.0.0.1:8765/mcp")
        self.headers_edit = QPlainTextEdit()
        self.headers_edit.setObjectName("mcp_headers")
        self.headers_edit.setPlaceholderText("Authorization: Bearer … (kept in the keychain)")
        self.headers_edit.setFixedHeight(60)
        self.secret_help = _plain(
            tr(
                "Secret values stay in the keychain and are not shown: a name alone keeps its value, "
                "NAME=value (Name: value for a header) gives a new one, a removed line forgets it."
            )
        )
        self.secret_help.setObjectName("mcp_secret_help")
        self.secret_help.setStyleSheet(HELP_STYLE)
        self.secret_help.hide()
        self.warning = _plain(STDIO_WARNING)
        self.warning.setObjectName("mcp_stdio_warning")
        self.warning.setStyleSheet(ERROR_STYLE)
        self.trust = QCheckBox(tr("I trust this program"))
        self.trust.setObjectName("mcp_trust")
        self.add_button = QPushButton(tr("Add server"))
        self.add_button.setObjectName("mcp_add")
        self.cancel_button = QPushButton(tr("Cancel"))
        self.cancel_button.setObjectName("mcp_cancel_edit")
        self.cancel_button.hide()
        self.add_problem = _plain()
        self.add_problem.setObjectName("mcp_add_problem")
        self.add_problem.setStyleSheet(ERROR_STYLE)
        self.add_problem.hide()
        form.addRow(tr("Name"), self.name_edit)
        form.addRow(tr("Kind"), self.transport)
        self._stdio_rows = [
            (tr("Command"), self.command_edit),
            (tr("Arguments"), self.args_edit),
            (tr("Environment"), self.env_edit),
            (tr("Secret environment"), self.secret_env_edit),
        ]
        self._http_rows = [(tr("URL"), self.url_edit), (tr("Headers"), self.headers_edit)]
        for label, widget in (*self._stdio_rows, *self._http_rows):
            form.addRow(label, widget)
        form.addRow(self.secret_help)
        form.addRow(self.warning)
        form.addRow(self.trust)
        form.addRow(self.add_problem)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        form.addRow(buttons)
        self._form = form
        layout.addWidget(add)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self.transport.currentIndexChanged.connect(lambda _i: self._transport_changed())
        self.trust.toggled.connect(lambda _on: self._transport_changed())
        self.add_button.clicked.connect(self.save_server)
        self.cancel_button.clicked.connect(self.cancel_edit)
        self.command_edit.textEdited.connect(lambda _text: self._command_edited())
        self._editing: McpServer | None = None  # the server the form edits (None: it adds one)
        self._transport_changed()
        self.refresh()

    # --- the list -------------------------------------------------------------------------------------

    @property
    def manager(self) -> McpManager:
        if self._manager is None:
            from engine.tools.mcp import McpManager

            self._manager = McpManager(self.settings, logs=self._logs)
            self._unsubscribe = self._manager.state_changed.connect(lambda _state: self.refresh())
        return self._manager

    def states(self) -> dict[str, ServerState]:
        if self._manager is None:
            return {}
        try:
            return {state.name: state for state in self._manager.states()}
        except DeskError:
            return {}

    def refresh(self) -> None:
        """The servers of tools.toml with their state (kept selected)."""
        selected = self.selected()
        self.server_list.clear()
        try:
            servers = self.settings.load().servers
        except DeskError as exc:
            self.server_detail.setText(str(exc))
            return
        states = self.states()
        for server in servers:
            state = states.get(server.name)
            words = state.describe() if state is not None else tr("not started")
            if unused_reason(server.name):  # an older tools.toml: never started, the built-in is used
                words = tr("not used: a built-in tool's name")
            item = QListWidgetItem(f"{server.name} — {words} — {server.transport}: {server.describe()}")
            item.setToolTip(f"{server.transport}: {server.describe()}")
            item.setData(NAME_ROLE, server.name)
            self.server_list.addItem(item)
            if server.name == selected:
                self.server_list.setCurrentItem(item)
        if self.server_list.currentItem() is None and self.server_list.count():
            self.server_list.setCurrentRow(0)
        self._show_selected()

    def selected(self) -> str | None:
        item = self.server_list.currentItem()
        return str(item.data(NAME_ROLE)) if item is not None else None

    def _show_selected(self) -> None:
        name = self.selected()
        self.check_button.setEnabled(name is not None)
        self.edit_button.setEnabled(name is not None)
        self.remove_button.setEnabled(name is not None)
        if name is None:
            self.server_detail.setText(tr("No MCP server yet."))
            return
        state = self.states().get(name)
        self.check_button.setEnabled(not unused_reason(name))
        if unused_reason(name):
            self.server_detail.setText(f"{name}: {unused_reason(name)}.")
        elif state is None:
            self.server_detail.setText(tr("{name}: not started (Check starts it).").format(name=name))
        elif state.status == "ready":
            tools = ", ".join(state.tools) or tr("none")
            words = tr("{name}: ready with {n} tool(s): {tools}")
            self.server_detail.setText(words.format(name=name, n=len(state.tools), tools=tools))
        else:
            self.server_detail.setText(f"{name}: {state.describe()}")
        if self._rename_note is not None and self._rename_note[0] == name:
            self.server_detail.setText(self.server_detail.text() + "\n" + self._rename_note[1])

    def _check(self) -> None:
        name = self.selected()
        if name is not None:
            self.server_detail.setText(tr("{name}: starting…").format(name=name))
            Operation(self.check_button, lambda: self.manager.start(name)).success(
                lambda _state: self.refresh()
            ).run()

    def _remove(self) -> None:
        name = self.selected()
        if name is None:
            return

        async def remove() -> None:
            if self._manager is not None:
                await self._manager.stop(name)
            await asyncio.to_thread(self.settings.remove, name)  # the keychain can take seconds
            if self._editing is not None and self._editing.name == name:
                self.cancel_edit()

        def removed(_result: None) -> None:
            self.refresh()
            self.servers_changed.emit("", "")

        Operation(self.remove_button, remove).success(removed).run()

    # --- adding ---------------------------------------------------------------------------------------

    def _transport_changed(self) -> None:
        stdio = self.transport.currentData() == "stdio"
        for rows, shown in ((self._stdio_rows, stdio), (self._http_rows, not stdio)):
            for _label, widget in rows:
                self._form.setRowVisible(widget, shown)
        self.warning.setVisible(stdio)
        self.trust.setVisible(stdio)
        self.add_button.setEnabled(not stdio or self.trust.isChecked())

    def save_server(self) -> asyncio.Task[None] | None:
        """The form's button: add the server, or save the changes to the one being edited."""
        return self.save_edit() if self._editing is not None else self.add_server()

    def add_server(self) -> asyncio.Task[None] | None:
        """Save the form as a server (secrets to the keychain, off the GUI thread: :attr:`saving`); ``None``,
        the reason shown, when the form cannot be read. A refusal while saving is shown the same way."""
        try:
            server, secret_env, headers = self._server_from_form()
        except ValueError as exc:
            self._add_problem(_words(exc))
            return None

        def added(_saved: McpServer) -> None:
            self._clear_form()
            self.refresh()
            self.servers_changed.emit("", "")

        # A name in use is refused (ServerNameTaken), never replaced unseen: Edit changes a server.
        return self._save(lambda: self.settings.add(server, secret_env=secret_env, headers=headers), added)

    def _save(self, write: Callable[[], T], saved: Callable[[T], None]) -> asyncio.Task[None]:
        """Run ``write`` (the file and the keychain, which a real Secret Service can keep for seconds) in a
        worker thread; the form is held meanwhile, so what is saved is what it shows, and kept as it is
        when the save is refused."""
        self.form_box.setEnabled(False)
        self.edit_button.setEnabled(False)
        self.remove_button.setEnabled(False)

        def refused(exc: BaseException) -> None:
            if self._rename_note is not None and self._rename_note[1].startswith(RENAMING):
                self._rename_note = None  # refused: nothing renamed
                self._show_selected()
            if not isinstance(exc, ValueError | DeskError):
                log.error("saving an MCP server failed", exc_info=(type(exc), exc, exc.__traceback__))
            self._add_problem(_words(exc) if isinstance(exc, Exception) else type(exc).__name__)

        async def run() -> T:
            try:
                return await asyncio.to_thread(write)
            finally:  # before what follows the save (its success or its refusal)
                if isValid(self):
                    self.form_box.setEnabled(True)
                    self._show_selected()

        self.add_problem.hide()
        self.saving = Operation(None, run).success(saved).failure(refused).run()
        return self.saving

    def edit_selected(self) -> None:
        """Fill the form with the selected server to change it (secret values stay in the keychain: their
        names are listed alone)."""
        name = self.selected()
        if name is None:
            return
        try:
            server = self.settings.load().server(name)
        except DeskError as exc:
            self.server_detail.setText(str(exc))
            return
        self._editing = server
        self.form_box.setTitle(tr("Edit the MCP server “{name}”").format(name=name))
        self.name_edit.setText(server.name)
        self.transport.setCurrentIndex(self.transport.findData(server.transport))
        self.command_edit.setText(server.command)
        self.args_edit.setText(shlex.join(server.args))
        self.env_edit.setPlainText("\n".join(f"{key}={value}" for key, value in server.env.items()))
        self.secret_env_edit.setPlainText("\n".join(server.secret_env))
        self.url_edit.setText(server.url)
        self.headers_edit.setPlainText("\n".join(server.secret_headers))
        self.trust.setChecked(server.transport == "stdio")  # trusted when added; a new command asks again
        self.add_button.setText(tr("Save changes"))
        self.cancel_button.show()
        self.secret_help.show()
        self.add_problem.hide()
        self._transport_changed()
        self.name_edit.setFocus()

    def save_edit(self) -> asyncio.Task[None] | None:
        """Save the form over the server being edited (its place kept; a new name renames it), off the GUI
        thread (:attr:`saving`). ``None``, the reason shown, when the form cannot be read; a refusal while
        saving is shown the same way. Either way nothing is changed and the form stays as it was."""
        editing = self._editing
        if editing is None:
            return None
        keep_env: list[str] = []
        keep_headers: list[str] = []
        try:
            server, secret_env, headers = self._server_from_form(keep_env, keep_headers)
        except ValueError as exc:
            self._add_problem(_words(exc))
            return None

        def write() -> ServerUpdate:
            # A rename changes the chats first (on the window's store's thread, waiting there for another
            # process's write), then the file; a refused edit touches no chat.
            return update_server(
                self.settings,
                self._history_db,
                editing.name,
                server,
                secret_env=secret_env,
                headers=headers,
                keep_env=keep_env,
                keep_headers=keep_headers,
                history=self._history,
            )

        if server.name != editing.name:  # said while the save waits (another process writing the history)
            words = RENAMING + tr("“{old}” to “{new}”: changing the chats that used “{old}” first…")
            self._note_rename(editing.name, words.format(old=editing.name, new=server.name))
        return self._save(write, lambda update: self._edited(editing, update))

    def _edited(self, editing: McpServer, update: ServerUpdate) -> None:
        saved = update.server
        self._clear_form()
        if self._manager is not None and editing.name in self._manager.connections:
            manager = self._manager  # running with the old settings: stopped, the next use starts it anew
            Operation(None, lambda: manager.stop(editing.name)).success(lambda _r: self.refresh()).run()
        self.refresh()
        self._select(saved.name)
        if update.renamed:  # the chats that named it name the new one already (or why not), said below
            self._note_rename(saved.name, update.describe())
            # The shown chat's tick moves (its read begun before the rename too), so an Apply there writes
            # the new name.
            self.servers_changed.emit(editing.name, saved.name)
        else:
            self.servers_changed.emit("", "")

    def _note_rename(self, name: str, text: str) -> None:
        self._rename_note = (name, text)
        self._show_selected()

    def cancel_edit(self) -> None:
        """Leave the server as it is and the form empty for adding one."""
        self._clear_form()

    def _clear_form(self) -> None:
        self._editing = None
        self.form_box.setTitle(tr("Add an MCP server"))
        self.add_button.setText(tr("Add server"))
        self.cancel_button.hide()
        self.secret_help.hide()
        self.add_problem.hide()
        for edit in (self.name_edit, self.command_edit, self.args_edit, self.url_edit):
            edit.clear()
        for box in (self.env_edit, self.secret_env_edit, self.headers_edit):
            box.clear()
        self.trust.setChecked(False)
        self._transport_changed()

    def _command_edited(self) -> None:
        # Trust was said for the program the server ran: another program asks again.
        if self._editing is not None and self.command_edit.text().strip() != self._editing.command:
            self.trust.setChecked(False)

    def _select(self, name: str) -> None:
        for row in range(self.server_list.count()):
            if self.server_list.item(row).data(NAME_ROLE) == name:
                self.server_list.setCurrentRow(row)
                return

    def _server_from_form(
        self, keep_env: list[str] | None = None, keep_headers: list[str] | None = None
    ) -> tuple[McpServer, dict[str, str], dict[str, str]]:
        """The form's server, its secret env values and header values; with ``keep_env`` / ``keep_headers``
        (editing), the names listed alone go there."""
        from pydantic import ValidationError

        transport = str(self.transport.currentData())
        name = self.name_edit.text().strip()
        if transport == "stdio" and not self.trust.isChecked():
            raise ValueError(tr("Tick “I trust this program” first: ") + STDIO_WARNING)
        try:
            args = shlex.split(self.args_edit.text())
        except ValueError as exc:
            raise ValueError(tr("The arguments cannot be read: {why}").format(why=exc)) from exc
        stdio = transport == "stdio"
        try:
            env = parse_pairs(self.env_edit.toPlainText(), "=") if stdio else {}
        except ValueError as exc:
            raise ValueError(tr("Environment: {why}").format(why=exc)) from exc
        try:
            secret_env = parse_pairs(self.secret_env_edit.toPlainText(), "=", keep_env) if stdio else {}
        except ValueError as exc:
            raise ValueError(tr("Secret environment: {why}").format(why=exc)) from exc
        for key in [k for k in env if looks_secret(k)]:  # a token typed in the plain box still goes safe
            secret_env[key] = env.pop(key)
        try:
            headers = parse_pairs(self.headers_edit.toPlainText(), ":", keep_headers) if not stdio else {}
        except ValueError as exc:
            raise ValueError(tr("Headers: {why}").format(why=exc)) from exc
        try:
            server = McpServer(
                name=name,
                transport=transport,  # type: ignore[arg-type]
                command=self.command_edit.text().strip() if transport == "stdio" else "",
                args=args if transport == "stdio" else [],
                env=env,
                url=self.url_edit.text().strip() if transport == "http" else "",
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(str(first.get("msg", exc)).removeprefix("Value error, ")) from exc
        return server, secret_env, headers

    def _add_problem(self, text: str) -> None:
        self.add_problem.setText(
            (tr("Not saved: ") if self._editing is not None else tr("Not added: ")) + text
        )
        self.add_problem.show()

    def close_servers(self) -> None:
        """The dialog closed: stop the servers the page started itself (in the background)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._own_manager and self._manager is not None and self._manager.connections:
            Operation(None, self.aclose).run()

    async def aclose(self) -> None:
        """Stop what the page started itself (the window's servers stay with the window)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._own_manager and self._manager is not None:
            await self._manager.aclose()
