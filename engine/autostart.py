"""Start the tray launcher at login: the XDG autostart ``.desktop`` file (``~/.config/autostart``).

The preferences switch calls :func:`set_autostart`; the file runs ``vllm-desk --tray`` so that logging in
shows only the tray launcher (or, where no tray exists, the window).
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

from engine.assets import DESKTOP_FILE_NAME
from engine.desktop_entry import DesktopEntryNotWritable, launcher_command, render_desktop_file


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


def enable_autostart(config_home: Path | None = None, command: str | None = None) -> Path:
    """Write the autostart file; returns its path."""
    path = autostart_file(config_home)
    text = render_desktop_file(command or launcher_command(), autostart=True)
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


def set_autostart(enabled: bool, config_home: Path | None = None, command: str | None = None) -> None:
    """Make the autostart file match the preference."""
    if enabled:
        enable_autostart(config_home, command)
    else:
        disable_autostart(config_home)
