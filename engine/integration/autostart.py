"""Start the tray launcher at login: the XDG autostart ``.desktop`` file (``~/.config/autostart``).

The preferences switch calls :func:`set_autostart`; the file runs ``vllm-desk --tray`` so that logging in
shows only the tray launcher (or, where no tray exists, the window). An app running on a data folder of its
own (``--data-dir DIR`` or ``VLLM_DESK_HOME``) writes ``vllm-desk --data-dir DIR --tray``: the login session
has neither the option nor, usually, the variable.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

from engine.assets import DESKTOP_FILE_NAME
from engine.integration.desktop_entry import DesktopEntryNotWritable, launcher_command, render_desktop_file
from engine.paths import AppPaths


def autostart_file(config_home: Path | None = None) -> Path:
    """``$XDG_CONFIG_HOME/autostart/vllm-desk.desktop``."""
    return (config_home or platformdirs.user_config_path()) / "autostart" / DESKTOP_FILE_NAME


def is_autostart_enabled(config_home: Path | None = None) -> bool:
    """True when our autostart file exists and is not switched off (``Hidden=true`` disables it per spec)."""
    path = autostart_file(config_home)
    if not path.is_file():
        return False
    lines = {line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()}
    return "Hidden=true" not in lines and "X-GNOME-Autostart-enabled=false" not in lines


def data_dir_args(paths: AppPaths | None = None) -> list[str]:
    """``["--data-dir", DIR]`` that makes a fresh start use ``paths``; empty for the default folders.

    ``paths`` defaults to what this process resolves without ``--data-dir`` (so ``VLLM_DESK_HOME`` counts).
    """
    paths = paths or AppPaths.resolve()
    if paths == AppPaths.default():
        return []
    root = paths.data.parent
    if AppPaths.under(root) != paths:
        raise ValueError(f"{paths} is neither the default folders nor one --data-dir folder")
    return ["--data-dir", str(root)]


def enable_autostart(
    config_home: Path | None = None, command: str | None = None, paths: AppPaths | None = None
) -> Path:
    """Write the autostart file for the app using ``paths`` (see :func:`data_dir_args`); returns its path."""
    path = autostart_file(config_home)
    text = render_desktop_file(command or launcher_command(), autostart=True, args=data_dir_args(paths))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise DesktopEntryNotWritable(path, exc.strerror or str(exc)) from exc
    return path


def disable_autostart(config_home: Path | None = None) -> bool:
    """Remove the autostart file; returns whether there was one."""
    path = autostart_file(config_home)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise DesktopEntryNotWritable(path, exc.strerror or str(exc)) from exc
    return True


def set_autostart(
    enabled: bool,
    config_home: Path | None = None,
    command: str | None = None,
    paths: AppPaths | None = None,
) -> None:
    """Make the autostart file match the preference (``paths``: the data folders the app runs with)."""
    if enabled:
        enable_autostart(config_home, command, paths)
    else:
        disable_autostart(config_home)
