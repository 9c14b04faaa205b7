"""The preferences panel. ``open_preferences(window)`` is what the main window's Ctrl+, calls."""

from __future__ import annotations

from typing import Any

from desktop.preferences.dialog import PreferencesDialog
from engine.paths import AppPaths
from engine.server.profiles import ServerProfile

__all__ = ["PreferencesDialog", "open_preferences"]


def open_preferences(window: Any) -> PreferencesDialog:
    """Open the dialog over ``window``'s engine objects (``settings``, and ``server_link`` when it has one).

    With a server link, changing the profile that runs offers "Restart server now", which starts it through
    the link like every other start (in the background: the window stays usable while the model loads).
    """
    existing = getattr(window, "preferences_dialog", None)
    if isinstance(existing, PreferencesDialog) and existing.isVisible():
        existing.raise_()
        return existing
    link: Any = getattr(window, "server_link", None)  # desktop.window.server_link.ServerLink: where starts go

    def running_profile() -> str | None:
        endpoint = link.supervisor.endpoint
        return getattr(endpoint, "profile_name", None) or None

    def restart(profile: ServerProfile) -> None:
        link.start(profile)

    dialog = PreferencesDialog(
        window.settings,
        paths=getattr(window, "paths", None) or AppPaths.resolve(),
        running_profile=running_profile if link is not None else None,
        restart_server=restart if link is not None else None,
        tools_manager=_tools_manager(window),
        parent=window,
        history=getattr(window, "store", None),  # its AsyncHistoryStore: a rename, off the GUI thread
    )
    tool_turns = getattr(window, "tool_turns", None)
    if tool_turns is not None:  # the chat settings offer the servers there are now (a rename moves its tick)
        dialog.tools_page.servers_changed.connect(tool_turns.servers_changed)
        # tools.toml changed on disk (vllm-desk tools ... while the app runs): the page lists what it holds.
        tool_turns.tools_file_changed.connect(dialog.tools_page.refresh)
    window.preferences_dialog = dialog
    dialog.show()
    return dialog


def _tools_manager(window: Any) -> Any:
    """The window's MCP servers (desktop.window.tool_turns), so the Tools page shows the ones chats use."""
    tool_turns = getattr(window, "tool_turns", None)
    config_dir = getattr(tool_turns, "config_dir", None)
    return tool_turns.manager if tool_turns is not None and config_dir is not None else None
