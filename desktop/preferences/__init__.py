"""The preferences panel. ``open_preferences(window)`` is what the main window's Ctrl+, calls."""

from __future__ import annotations

from typing import Any

from desktop.operations import Operation
from desktop.preferences.dialog import PreferencesDialog
from engine.paths import AppPaths
from engine.profiles import ServerProfile

__all__ = ["PreferencesDialog", "open_preferences"]


def open_preferences(window: Any) -> PreferencesDialog:
    """Open the dialog over ``window``'s engine objects (``settings``, and ``supervisor`` when it has one).

    With a supervisor, changing the profile that runs offers "Restart server now" (``supervisor.switch``).
    """
    existing = getattr(window, "preferences_dialog", None)
    if isinstance(existing, PreferencesDialog) and existing.isVisible():
        existing.raise_()
        return existing
    supervisor = getattr(window, "supervisor", None)

    def running_profile() -> str | None:
        endpoint = getattr(supervisor, "endpoint", None)
        return getattr(endpoint, "profile_name", None) or None

    def restart(profile: ServerProfile) -> None:
        assert supervisor is not None
        Operation(window, lambda: supervisor.switch(profile)).run()

    dialog = PreferencesDialog(
        window.settings,
        paths=getattr(window, "paths", None) or AppPaths.resolve(),
        running_profile=running_profile if supervisor is not None else None,
        restart_server=restart if supervisor is not None else None,
        parent=window,
    )
    window.preferences_dialog = dialog
    dialog.show()
    return dialog
