"""The tested package versions the managed runtime is installed with (``resources/runtime-pins/``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.assets import ResourcesMissing, resources_dir
from engine.errors import DeskError, Fix
from engine.runtime.locate import Build

# The managed runtime's constraints, one file per build (resources/runtime-pins/<build>.txt).
PINS_FOLDER = "runtime-pins"


class PinsMissing(DeskError):
    title = "The app's files are incomplete"

    def __init__(self, where: Path) -> None:
        super().__init__(
            f"The list of tested package versions for the vLLM runtime is missing ({where}); installing "
            "without it could give a vLLM that answers wrongly.",
            fix=Fix("reinstall", "Reinstall vLLM Desk", "Reinstall the app (pipx reinstall vllm-desk)."),
        )


def runtime_pins(build: Build) -> Path | None:
    """The constraints file the managed runtime of ``build`` is installed with.

    The CPU build always has one (a missing file is :class:`PinsMissing`, never an unpinned install); the
    GPU build uses one where it ships.
    """
    try:
        folder = resources_dir() / PINS_FOLDER
    except ResourcesMissing as exc:
        if build == "cpu":
            raise PinsMissing(Path(PINS_FOLDER) / "cpu.txt") from exc
        return None
    path = folder / f"{build}.txt"
    if path.is_file():
        return path
    if build == "cpu":
        raise PinsMissing(path)
    return None


def pin_args(pins: Path | None) -> list[str]:
    """pip's ``-c FILE`` for a constraints file (nothing without one)."""
    return ["-c", str(pins)] if pins is not None else []


def pins_digest(pins: Path) -> str:
    """A short digest of the pins in a constraints file (comments ignored): what caches are keyed by."""
    lines = [line.strip() for line in pins.read_text(encoding="utf-8").splitlines()]
    kept = "\n".join(sorted(line for line in lines if line and not line.startswith("#")))
    return hashlib.sha256(kept.encode()).hexdigest()[:16]
