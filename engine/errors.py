"""The typed problems the engine reports, each with words a user understands and, where one exists, a fix.

Every domain module defines its problems as subclasses of :class:`DeskError` (the supervisor's diagnoses,
chat errors, import errors, ...). A problem carries its own human sentence and an optional :class:`Fix`
that a GUI can offer as one click and the CLI prints as a hint. ``desktop/errors.py`` renders them; the
CLI prints ``str(problem)`` and ``problem.fix.hint``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Fix:
    """A concrete remedy.

    ``action`` is a stable identifier the GUI maps to code (e.g. ``"set_option"``, ``"pick_free_port"``,
    ``"install_runtime"``); ``params`` its arguments; ``label`` the button text; ``hint`` what the CLI prints.
    """

    action: str
    label: str
    hint: str = ""
    params: dict[str, Any] = field(default_factory=dict)


class DeskError(Exception):
    """Base class of every problem meant for a person. ``str(err)`` is the human sentence."""

    title = "Something went wrong"
    fix: Fix | None = None

    def __init__(self, message: str, *, fix: Fix | None = None, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        if fix is not None:
            self.fix = fix
        # Raw evidence (log lines, tracebacks) for a "details" pane; never the primary text.
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form for ``--json`` output and event logs."""
        out: dict[str, Any] = {"kind": type(self).__name__, "title": self.title, "message": self.message}
        if self.fix is not None:
            out["fix"] = {
                "action": self.fix.action,
                "label": self.fix.label,
                "hint": self.fix.hint,
                "params": self.fix.params,
            }
        if self.details:
            out["details"] = self.details
        return out


class DataDirUnusable(DeskError):
    title = "The data folder cannot be used"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"vLLM Desk cannot write to {path} ({reason}).",
            fix=Fix(
                action="choose_data_dir",
                label="Choose another folder",
                hint="Start with --data-dir DIR (or set VLLM_DESK_HOME) pointing to a writable folder.",
            ),
        )
        self.path = path
        self.reason = reason


class DiskFull(DeskError):
    title = "The disk is full"

    def __init__(self, path: Path, needed_bytes: int | None = None) -> None:
        need = f" About {needed_bytes / 2**30:.1f} GiB are needed." if needed_bytes else ""
        super().__init__(
            f"There is not enough free space on the disk holding {path}.{need}",
            fix=Fix(
                action="choose_data_dir",
                label="Choose another folder",
                hint="Free some space, or move the app's data with --data-dir DIR.",
            ),
        )
        self.path = path
