"""Linux desktop integration: the ``.desktop`` launcher, AppStream metainfo and icons in the user's XDG dirs.

``vllm-desk install-desktop-entry`` calls :func:`install_desktop_entry`; the autostart switch
(``engine/integration/autostart.py``) renders its file from the same template with
:func:`render_desktop_file`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from engine.assets import (
    APP_ICON_NAME,
    DESKTOP_FILE_NAME,
    METAINFO_FILE_NAME,
    app_icon_pngs,
    app_icon_svg,
    resources_dir,
)
from engine.errors import DeskError, Fix

COMMAND_NAME = "vllm-desk"
# Characters the Desktop Entry spec reserves in an Exec argument: such an argument must be quoted.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class LauncherNotFound(DeskError):
    title = "The vllm-desk command was not found"

    def __init__(self) -> None:
        super().__init__(
            "The desktop launcher needs the vllm-desk command, but it is neither on PATH "
            "nor next to this Python.",
            fix=Fix(
                action="pass_exec",
                label="Name the command",
                hint="Run: vllm-desk install-desktop-entry --exec /full/path/to/vllm-desk",
            ),
        )


class DesktopEntryNotWritable(DeskError):
    title = "The desktop launcher could not be written"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"vLLM Desk could not write {path} ({reason}).",
            fix=Fix(
                action="check_permissions",
                label="Check the folder",
                hint=f"Make {path.parent} writable (or point XDG_DATA_HOME elsewhere) and try again.",
            ),
        )
        self.path = path


@dataclass(frozen=True)
class DesktopEntryFiles:
    """What :func:`install_desktop_entry` wrote (or would remove)."""

    desktop_file: Path
    metainfo: Path
    icons: tuple[Path, ...]

    def all(self) -> tuple[Path, ...]:
        return (self.desktop_file, self.metainfo, *self.icons)


def data_home() -> Path:
    """``$XDG_DATA_HOME`` (default ``~/.local/share``)."""
    return platformdirs.user_data_path()


def launcher_command() -> str:
    """What the launcher's ``Exec`` runs: the bundle's binary, ``vllm-desk`` on PATH, or its full path."""
    if getattr(sys, "frozen", False):
        return sys.executable
    if shutil.which(COMMAND_NAME):
        return COMMAND_NAME
    # pip/pipx put the script next to the interpreter of the venv, which need not be on PATH.
    for candidate in (
        Path(sys.argv[0]) if sys.argv and sys.argv[0] else None,
        Path(sys.executable).parent / COMMAND_NAME,
    ):
        if candidate is not None and candidate.name == COMMAND_NAME and os.access(candidate, os.X_OK):
            return str(candidate.absolute())
    raise LauncherNotFound()


def escape_string(value: str) -> str:
    """A value as the Desktop Entry spec writes strings: backslash, line breaks and tabs as escapes."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def quote_exec_arg(arg: str) -> str:
    """Quote one ``Exec`` argument the way the Desktop Entry spec asks (and escape it for the file)."""
    arg = arg.replace("%", "%%")
    if not _RESERVED.intersection(arg):
        return arg
    inner = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
    return '"' + escape_string(inner) + '"'


def render_desktop_file(command: str, *, autostart: bool = False, args: Sequence[str] = ()) -> str:
    """The shipped ``.desktop`` template with ``Exec``/``TryExec`` pointing at ``command``.

    ``autostart=True`` gives the login-autostart variant: starts with ``--tray``, no actions. ``args``
    (e.g. ``["--data-dir", DIR]``) follow the command in every ``Exec``, quoted as the spec asks.
    """
    template = (resources_dir() / DESKTOP_FILE_NAME).read_text(encoding="utf-8")
    exe = " ".join(quote_exec_arg(part) for part in (command, *args))
    # TryExec is a plain path, not Exec syntax: GLib hides an entry whose TryExec is quoted (no such file).
    try_exec = escape_string(command)
    out: list[str] = []
    group = ""
    for line in template.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            group = stripped
        if autostart and group.startswith("[Desktop Action"):
            continue
        key, sep, value = line.partition("=")
        if sep and key == "Exec":
            rest = value.split(" ", 1)[1] if " " in value else ""
            if autostart:
                rest = "--tray"
            line = f"Exec={exe} {rest}".rstrip()
        elif sep and key == "TryExec":
            line = f"TryExec={try_exec}"
        elif sep and key == "Actions" and autostart:
            continue
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if autostart:
        out.append("X-GNOME-Autostart-enabled=true")
    return "\n".join(out) + "\n"


def _targets(home: Path) -> DesktopEntryFiles:
    icons = [home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ICON_NAME}.svg"]
    icons += [
        home / "icons" / "hicolor" / f"{s}x{s}" / "apps" / f"{APP_ICON_NAME}.png" for s in app_icon_pngs()
    ]
    return DesktopEntryFiles(
        desktop_file=home / "applications" / DESKTOP_FILE_NAME,
        metainfo=home / "metainfo" / METAINFO_FILE_NAME,
        icons=tuple(icons),
    )


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside and rename, so a desktop reading the folder never sees half a file.
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise DesktopEntryNotWritable(path, exc.strerror or str(exc)) from exc


def install_desktop_entry(home: Path | None = None, command: str | None = None) -> DesktopEntryFiles:
    """Put the launcher, metainfo and icons under ``home`` (default ``$XDG_DATA_HOME``)."""
    home = home or data_home()
    command = command or launcher_command()
    files = _targets(home)
    _write(files.desktop_file, render_desktop_file(command).encode("utf-8"))
    _write(files.metainfo, (resources_dir() / METAINFO_FILE_NAME).read_bytes())
    sources = [app_icon_svg(), *app_icon_pngs().values()]
    for source, target in zip(sources, files.icons, strict=True):
        _write(target, source.read_bytes())
    return files


def uninstall_desktop_entry(home: Path | None = None) -> list[Path]:
    """Remove what :func:`install_desktop_entry` wrote; returns the files that were there."""
    removed: list[Path] = []
    for path in _targets(home or data_home()).all():
        if path.is_file():
            try:
                path.unlink()
            except OSError as exc:
                raise DesktopEntryNotWritable(path, exc.strerror or str(exc)) from exc
            removed.append(path)
    return removed
