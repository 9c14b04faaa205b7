"""One-click fixes in the window: one table of what each :class:`~engine.errors.Fix` action does here.

:class:`FixRegistry` is that table. Each handler gets the fix *and* its :class:`~desktop.errors.FixContext`
(the conversation whose turn failed, the profile whose start failed), which travels beside the problem; the
engine's exceptions are never rewritten to carry it. The controllers register the fixes that are theirs (the
turn controller "retry", "leave out the oldest turns"; the server link "change the profile and start again");
:class:`FixActions` does the rest — open the Preferences at the right page and field, copy a command to run,
show the data folder or leftover processes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QWidget

from desktop.errors import FixContext
from engine.errors import Fix

log = logging.getLogger(__name__)

FixHandler = Callable[[Fix, FixContext], object]


def tr(text: str) -> str:
    return QCoreApplication.translate("MainWindow", text)


# Fixes that are done in the Preferences: action -> (page, field to put the cursor in).
PREFERENCES_FIXES: dict[str, tuple[str, str | None]] = {
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
    "choose_embedder": ("documents", "embedder"),
}
# Fixes that change the local server's profile and start again, and those that only start it again; the
# server link handles both when there is a supervisor.
PROFILE_FIXES = ("set_option", "lower_gpu_memory_utilization", "pick_free_port")
RESTART_FIXES = ("retry", "restart_server", "start_server", "prepare_model")
SERVER_FIXES = (*PROFILE_FIXES, *RESTART_FIXES)
# Fixes done outside the app (a command to run, a reinstall): the command is copied for the user.
COMMAND_FIXES = (
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


class FixRegistry:
    """Fix action -> handler; :meth:`apply` runs a problem's fix with its context."""

    def __init__(self, say: Callable[[str], object]) -> None:
        self.handlers: dict[str, FixHandler] = {}
        self._say = say  # a sentence for the user (the composer's notice)

    def register(self, actions: Iterable[str], handler: FixHandler) -> None:
        """``handler`` does these actions from now on (a later registration replaces an earlier one)."""
        for action in actions:
            self.handlers[action] = handler

    def __contains__(self, action: object) -> bool:
        return action in self.handlers

    def apply(self, fix: Fix, context: FixContext | None = None) -> None:
        handler = self.handlers.get(fix.action)
        if handler is None:
            # A fix the engine learned after this window: say in words what to do.
            log.warning("no handler for fix %s", fix.action)
            self._say(fix.hint or fix.label)
            return
        handler(fix, context or FixContext())


class FixActions(QObject):
    """The fixes that belong to no controller: Preferences, commands, the data folder, leftover processes."""

    def __init__(
        self,
        parent: QWidget,
        *,
        say: Callable[[str], object],
        open_preferences: Callable[[], Any],
        chosen_profile: Callable[[], str | None],
        data_folder: Callable[[], Path],
        start_server: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(parent)
        self.parent_widget = parent  # the strays dialog's parent
        self.say = say
        self.open_preferences = open_preferences
        self.chosen_profile = chosen_profile  # the profile in use (selected on the profiles page), if any
        self.data_folder = data_folder
        self.start_server = start_server  # None: a server someone else runs
        self.find_strays: Callable[[], Awaitable[list[Any]]] | None = None  # default: desktop.window.strays'
        self.strays_dialog: Any = None  # the list of leftover vLLM processes, when one was shown

    def register(self, registry: FixRegistry) -> None:
        registry.register(["open_preferences"], lambda _fix, _context: self.open_preferences())
        registry.register(["show_processes"], lambda _fix, _context: self.show_leftover_processes())
        registry.register(["choose_data_dir"], lambda fix, _context: self.open_data_folder(fix))
        registry.register(PREFERENCES_FIXES, lambda fix, _context: self.preferences_fix(fix))
        registry.register(["remember_for_session"], lambda _fix, _context: self.remember_keys_for_session())
        registry.register(SERVER_FIXES, lambda fix, _context: self.server_fix(fix))
        registry.register(COMMAND_FIXES, lambda fix, _context: self.copy_fix_command(fix))

    def preferences_fix(self, fix: Fix) -> None:
        page, field = PREFERENCES_FIXES[fix.action]
        self.open_preferences_at(page, field)

    def server_fix(self, fix: Fix) -> None:
        if self.start_server is not None:  # restart (the link registers its own fixes; this is a fallback)
            self.start_server()
            return
        # A server someone else runs: nothing to start here; its address and key are in the profiles.
        field = next(iter(fix.params), None) if fix.params else None
        self.open_preferences_at("profiles", field)

    def open_preferences_at(self, page: str, field: str | None = None) -> Any:
        """Preferences on ``page`` (see ``PAGE_NAMES`` in desktop/preferences/dialog.py), the cursor in
        ``field``; on the server profiles page, the profile in use is selected first."""
        dialog = self.open_preferences()
        if dialog is None:
            return None
        name = self.chosen_profile() if page == "profiles" else None
        if name is not None and dialog.draft.profile(name) is not None:
            dialog.profiles_page.select(name)
        dialog.show_page(page, field)
        return dialog

    def remember_keys_for_session(self) -> None:
        dialog = self.open_preferences_at("profiles", "api_key")
        if dialog is not None:
            dialog.session_only.setVisible(True)
            dialog.session_only.setChecked(True)

    def open_data_folder(self, fix: Fix) -> None:
        """Show the data folder in the file manager (to free space or move a file aside) with what to do."""
        folder = self.data_folder()
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        self.say(tr("Data folder: {0}. {1}").format(folder, fix.hint))

    def copy_fix_command(self, fix: Fix) -> None:
        """Fixes done outside the app (reinstall, a command line): the command goes to the clipboard."""
        command = fix.hint.split("Run:", 1)[1].strip() if "Run:" in fix.hint else fix.hint
        if not command:
            self.say(fix.label)
            return
        QGuiApplication.clipboard().setText(command)
        self.say(tr("Copied to the clipboard: {0}").format(command))

    def show_leftover_processes(self) -> None:
        """List vLLM processes still running (with "Stop them"), or say there are none."""
        from desktop.window import strays

        find = self.find_strays or strays.find_strays

        async def look() -> list[Any]:
            found = await find()
            self.say("" if found else tr("No vLLM processes are left running."))
            return found

        def shown(dialog: Any) -> None:
            self.strays_dialog = dialog

        self.strays_dialog = None
        strays.offer_stray_cleanup(self.parent_widget, look, shown=shown)
