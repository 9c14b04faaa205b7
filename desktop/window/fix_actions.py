"""One-click fixes in the window: what each :class:`~engine.errors.Fix` action the engine (or the window)
can offer does here — switch to completion mode, open the Preferences on the right page and field, restart the
server, show leftover processes, copy a command to run.

A mixin of :class:`desktop.window.main_window.MainWindow`; kept apart so that each module holds one idea.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QWidget

from desktop.operations import Operation
from engine.errors import Fix

if TYPE_CHECKING:
    from desktop.widgets.composer import Composer
    from desktop.window.server_link import ServerLink
    from engine.history.async_store import AsyncHistoryStore
    from engine.history.records import ConversationTree
    from engine.paths import AppPaths

log = logging.getLogger(__name__)


def tr(text: str) -> str:
    return QCoreApplication.translate("MainWindow", text)


# Fixes that are done in the Preferences: action -> (page, field to put the cursor in).
_PREFERENCES_FIXES: dict[str, tuple[str, str | None]] = {
    "edit_profile": ("profiles", None),
    "raise_gpu_memory_utilization": ("profiles", "gpu_memory_utilization"),
    "edit_endpoint": ("profiles", "base_url"),
    "edit_api_key": ("profiles", "api_key"),
    "set_api_key": ("profiles", "api_key"),
    "set_hf_token": ("models", "hf_token"),
    "choose_model": ("models", None),
    "choose_quantized_model": ("models", None),
    "choose_model_folder": ("models", None),
    "edit_repo_id": ("models", "repo_id"),
    "edit_generation_settings": ("generation", None),
}
# Fixes that change the local server's profile and start again, and those that only start it again; the
# server link handles both when there is a supervisor (these are its lists too).
PROFILE_FIXES = ("set_option", "lower_gpu_memory_utilization", "pick_free_port")
RESTART_FIXES = ("retry", "restart_server", "start_server", "prepare_model")
_SERVER_FIXES = (*PROFILE_FIXES, *RESTART_FIXES)
# Fixes done outside the app (a command to run, a reinstall): the command is copied for the user.
_COMMAND_FIXES = (
    "install_runtime",
    "update_app",
    "reinstall",
    "install_desktop",
    "pass_exec",
    "edit_command",
    "check_permissions",
    # Documents and their embedding server have no window yet: their fixes are commands.
    "list_collections",
    "open_server_log",
    "prepare_embedder",
    "reindex_collection",
)


class FixesMixin:
    """The one-click fixes of :class:`~desktop.window.main_window.MainWindow`."""

    # What the window provides (declared for the type checker).
    composer: Composer
    store: AsyncHistoryStore
    server_link: ServerLink | None
    conversation_id: int | None
    tree: ConversationTree | None
    engine_ready: bool
    paths: AppPaths | None
    fix_handlers: dict[str, Callable[[Fix], object]]
    find_strays: Callable[[], Awaitable[list[Any]]] | None
    strays_dialog: Any

    if TYPE_CHECKING:

        def open_preferences(self) -> Any: ...

        def regenerate_last(self) -> None: ...

        def show_server_log(self) -> None: ...

        def undo_delete(self, *ids: int) -> None: ...

        def undo_delete_message(self, fix: Fix) -> None: ...

        def send_dropping_oldest(self, fix: Fix) -> None: ...

        def _transfer(self) -> Any: ...

    def apply_fix(self, fix: Fix) -> None:
        """Run a problem's one-click fix: the handler registered in :attr:`fix_handlers` for its action."""
        handler = self.fix_handlers.get(fix.action)
        if handler is None:
            # A fix the engine learned after this window: say in words what to do.
            log.warning("no handler for fix %s", fix.action)
            self.composer.set_notice(fix.hint or fix.label)
            return
        handler(fix)

    def _builtin_fixes(self) -> dict[str, Callable[[Fix], object]]:
        """What each fix the engine can offer does here. The server link (when there is a supervisor)
        replaces the server ones with "change the profile and start again"."""
        fixes: dict[str, Callable[[Fix], object]] = {
            "undo_delete": lambda fix: self.undo_delete(*_deleted_ids(fix)),
            "undo_delete_message": self.undo_delete_message,
            "open_preferences": lambda _fix: self.open_preferences(),
            "retry_turn": lambda _fix: self.regenerate_last(),
            "set_mode_completion": self.use_completion_mode,
            "use_completion_mode": self.use_completion_mode,
            "show_log": lambda _fix: self.show_server_log(),
            "show_processes": lambda _fix: self.show_leftover_processes(),
            "choose_data_dir": self.open_data_folder,
            "drop_oldest_turns": self.send_dropping_oldest,
            "choose_import_file": lambda _fix: self._transfer().choose_import(),
            "choose_export_path": lambda _fix: self._transfer().export_conversations(
                None if self.conversation_id is None else [self.conversation_id]
            ),
        }
        for action in _PREFERENCES_FIXES:
            fixes[action] = self._preferences_fix
        fixes["remember_for_session"] = lambda _fix: self._remember_keys_for_session()
        for action in _SERVER_FIXES:
            fixes[action] = self._server_fix
        for action in _COMMAND_FIXES:
            fixes[action] = self.copy_fix_command
        return fixes

    def _preferences_fix(self, fix: Fix) -> None:
        page, field = _PREFERENCES_FIXES[fix.action]
        self.open_preferences_at(page, field)

    def _server_fix(self, fix: Fix) -> None:
        if self.server_link is not None:  # restart (the link's own fixes come here only if it lacks one)
            self.server_link.start()
            return
        # A server someone else runs: nothing to start here; its address and key are in the profiles.
        field = next(iter(fix.params), None) if fix.params else None
        self.open_preferences_at("profiles", field)

    def use_completion_mode(self, fix: Fix) -> None:
        """The model has no chat template: the conversation whose reply failed (``conversation_id`` in the
        fix's params; else the open one) continues text instead, starting now."""
        named = fix.params.get("conversation_id")
        conversation_id = named if isinstance(named, int) else self.conversation_id
        if conversation_id is None or not self.engine_ready:
            self.composer.set_notice(tr("Open the conversation to switch, then use the fix again."))
            return
        Operation(self.composer.send_button, lambda: self._use_completion_mode(conversation_id)).run()

    async def _use_completion_mode(self, conversation_id: int) -> None:
        from engine.chat.generation import GenerationSettings  # pydantic: not before the first paint

        conversation = await self.store.conversation(conversation_id)
        settings = GenerationSettings.parse(conversation.settings).updated(mode="completion")
        await self.store.update_conversation(conversation_id, settings=settings.to_json_dict())
        if self.tree is not None and self.conversation_id == conversation_id:
            self.tree = await self.store.load(conversation_id)
        if self.conversation_id != conversation_id:
            # The user has opened another conversation meanwhile: its replies are not touched.
            title = conversation.title or tr("New chat")
            self.composer.set_notice(
                tr("Completion mode is on for “{0}”; open it and regenerate its last reply.").format(title)
            )
            return
        self.composer.set_notice(tr("Completion mode: the model continues the text of this conversation."))
        self.regenerate_last()

    def open_preferences_at(self, page: str, field: str | None = None) -> Any:
        """Preferences on ``page`` (see ``PAGE_NAMES`` in desktop/preferences/dialog.py), the cursor in
        ``field``; on the server profiles page, the profile in use is selected first."""
        dialog = self.open_preferences()
        if dialog is None:
            return None
        if page == "profiles" and self.server_link is not None:
            name = self.server_link.chosen_profile().name
            if dialog.draft.profile(name) is not None:
                dialog.profiles_page.select(name)
        dialog.show_page(page, field)
        return dialog

    def _remember_keys_for_session(self) -> None:
        dialog = self.open_preferences_at("profiles", "api_key")
        if dialog is not None:
            dialog.session_only.setVisible(True)
            dialog.session_only.setChecked(True)

    def open_data_folder(self, fix: Fix) -> None:
        """Show the data folder in the file manager (to free space or move a file aside) with what to do."""
        folder = self.paths.data if self.paths is not None else self.store.path.parent
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        self.composer.set_notice(tr("Data folder: {0}. {1}").format(folder, fix.hint))

    def copy_fix_command(self, fix: Fix) -> None:
        """Fixes done outside the app (reinstall, a command line): the command goes to the clipboard."""
        command = fix.hint.split("Run:", 1)[1].strip() if "Run:" in fix.hint else fix.hint
        if not command:
            self.composer.set_notice(fix.label)
            return
        QGuiApplication.clipboard().setText(command)
        self.composer.set_notice(tr("Copied to the clipboard: {0}").format(command))

    def show_leftover_processes(self) -> None:
        """List vLLM processes still running (with "Stop them"), or say there are none."""
        from desktop.window import strays

        find = self.find_strays or strays.find_strays

        async def look() -> list[Any]:
            found = await find()
            self.composer.set_notice("" if found else tr("No vLLM processes are left running."))
            return found

        def shown(dialog: Any) -> None:
            self.strays_dialog = dialog

        self.strays_dialog = None
        assert isinstance(self, QWidget)  # the window: the dialog's parent
        strays.offer_stray_cleanup(self, look, shown=shown)


def _deleted_ids(fix: Fix) -> list[int]:
    """The conversations an "Undo" of a delete brings back (one, in fixes made before several could go)."""
    ids = fix.params.get("conversation_ids")
    if isinstance(ids, list):
        return [int(i) for i in ids]
    return [int(fix.params["conversation_id"])]
