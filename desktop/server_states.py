"""The server's states in words and looks: one table that the status bar, the model picker, the tray and the
menus all read (none of them keeps its own wording).

A state is an ``engine.server.supervisor.ServerState``, a ``StateChange`` carrying one, or its plain name. A
change that failed because a remote server does not answer reads "Not reachable" (it was not a start of ours
that failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QCoreApplication


def tr(text: str) -> str:
    return QCoreApplication.translate("server_states", text)


@dataclass(frozen=True)
class StateLook:
    """How one state is shown."""

    look: str  # the four looks (stopped/starting/ready/failed): the tray's icon, the picker's colour
    bar: str  # the status bar's colour kind (stopping keeps its own)
    words: str  # the status bar's and the model picker's words
    short: str  # the tray tooltip's word ("Server: Ready")


# Untranslated here; tr() is applied when read (a table built at import time would miss the translator).
_TABLE: dict[str, StateLook] = {
    "stopped": StateLook("stopped", "stopped", "Server stopped", "Stopped"),
    "preparing": StateLook("starting", "starting", "Preparing…", "Preparing"),
    "starting": StateLook("starting", "starting", "Starting…", "Starting"),
    "ready": StateLook("ready", "ready", "Ready", "Ready"),
    "stopping": StateLook("starting", "stopping", "Stopping…", "Stopping"),
    "failed": StateLook("failed", "failed", "Failed to start", "Failed"),
}
_UNREACHABLE = StateLook("failed", "failed", "Not reachable", "Not reachable")  # a failed remote check


def state_name(state: Any) -> str:
    """``"ready"`` from a ``ServerState``, a ``StateChange`` or a plain string."""
    state = getattr(state, "state", state)
    return str(getattr(state, "value", state) or "stopped").lower()


def look_of(state: Any) -> StateLook:
    """The row of ``state`` (an unknown state looks stopped), its words translated."""
    row = _TABLE.get(state_name(state), _TABLE["stopped"])
    problem = getattr(state, "problem", None)
    if row is _TABLE["failed"] and problem is not None:
        # Here, not at the top: the window's first paint imports this module and none of the server's.
        from engine.server.remote import RemoteUnreachable

        if isinstance(problem, RemoteUnreachable):
            row = _UNREACHABLE
    return StateLook(row.look, row.bar, tr(row.words), tr(row.short))


def state_kind(state: Any) -> str:
    """The look (stopped/starting/ready/failed) of a supervisor state or state change."""
    return look_of(state).look


def state_words(state: Any) -> str:
    """A supervisor state (or state change) in words, as the status bar and the model picker say it."""
    return look_of(state).words
