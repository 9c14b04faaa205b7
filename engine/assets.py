"""Where the app's shipped files (icons, ``.desktop`` file, AppStream metainfo) are on this install.

The sources live in the repository's top-level ``resources/``. Each way of installing finds them in one
place: a wheel (pip, pipx, uv tool) ships them as ``engine/_resources`` (copied there by ``setup.py``'s
build step), a PyInstaller bundle as ``resources/`` next to the bundled code, a source checkout or an
editable install uses the checkout's ``resources/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.errors import DeskError, Fix

APP_ICON_NAME = "vllm-desk"
DESKTOP_FILE_NAME = "vllm-desk.desktop"
METAINFO_FILE_NAME = "io.github.vllm_desk.VllmDesk.metainfo.xml"
# The server states the tray has an icon for (engine/server/supervisor.py's state names).
TRAY_STATES = ("stopped", "starting", "ready", "failed")

_ENGINE_DIR = Path(__file__).resolve().parent


class ResourcesMissing(DeskError):
    title = "The app's files are incomplete"

    def __init__(self, searched: list[Path]) -> None:
        where = ", ".join(str(p) for p in searched)
        super().__init__(
            f"vLLM Desk cannot find its icons and desktop files (looked in {where}).",
            fix=Fix(
                action="reinstall",
                label="Reinstall vLLM Desk",
                hint="Reinstall the app (pipx reinstall vllm-desk, or pip install --force-reinstall .).",
            ),
        )
        self.searched = searched


def candidate_dirs() -> list[Path]:
    """The places :func:`resources_dir` looks, in order."""
    found: list[Path] = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        found.append(Path(bundle) / "resources")
    found.append(_ENGINE_DIR / "_resources")
    found.append(_ENGINE_DIR.parent / "resources")
    return found


def resources_dir() -> Path:
    """The folder with ``icons/``, the ``.desktop`` file and the metainfo, or :class:`ResourcesMissing`."""
    searched = candidate_dirs()
    for folder in searched:
        if (folder / DESKTOP_FILE_NAME).is_file() and (folder / "icons").is_dir():
            return folder
    raise ResourcesMissing(searched)


def app_icon_svg() -> Path:
    return resources_dir() / "icons" / f"{APP_ICON_NAME}.svg"


def app_icon_pngs() -> dict[int, Path]:
    """Size in pixels -> the PNG rendering of the app icon at that size."""
    hicolor = resources_dir() / "icons" / "hicolor"
    out: dict[int, Path] = {}
    for folder in sorted(hicolor.glob("*x*")):
        png = folder / "apps" / f"{APP_ICON_NAME}.png"
        width, _, height = folder.name.partition("x")
        if png.is_file() and width.isdigit() and width == height:
            out[int(width)] = png
    return dict(sorted(out.items()))


def tray_icon(state: str) -> Path:
    """The tray icon SVG for a server state (one of :data:`TRAY_STATES`)."""
    if state not in TRAY_STATES:
        raise ValueError(f"no tray icon for state {state!r}; known: {', '.join(TRAY_STATES)}")
    return resources_dir() / "icons" / "tray" / f"{APP_ICON_NAME}-{state}.svg"
