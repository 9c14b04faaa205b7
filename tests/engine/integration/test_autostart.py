"""The login-autostart switch: an XDG autostart file that starts the tray launcher."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.integration.autostart import (
    autostart_file,
    disable_autostart,
    enable_autostart,
    is_autostart_enabled,
    set_autostart,
)
from engine.integration.desktop_entry import DesktopEntryNotWritable


def test_enable_writes_a_tray_only_entry(isolated_dirs: Path) -> None:
    assert not is_autostart_enabled()
    path = enable_autostart(command="vllm-desk")
    assert path == isolated_dirs / "config" / "autostart" / "vllm-desk.desktop"
    text = path.read_text()
    assert "Exec=vllm-desk --tray\n" in text
    assert "Actions=" not in text
    assert "[Desktop Action" not in text
    assert "X-GNOME-Autostart-enabled=true" in text
    assert is_autostart_enabled()


def test_disable_removes_it_and_is_idempotent(isolated_dirs: Path) -> None:
    enable_autostart(command="vllm-desk")
    assert disable_autostart() is True
    assert not autostart_file().exists()
    assert not is_autostart_enabled()
    assert disable_autostart() is False


def test_hidden_entry_counts_as_off(isolated_dirs: Path) -> None:
    path = enable_autostart(command="vllm-desk")
    path.write_text(path.read_text() + "Hidden=true\n")
    assert not is_autostart_enabled()


def test_set_autostart_follows_the_preference(isolated_dirs: Path) -> None:
    set_autostart(True, command="/opt/vd/vllm-desk")
    assert is_autostart_enabled()
    assert "Exec=/opt/vd/vllm-desk --tray" in autostart_file().read_text()
    set_autostart(False)
    assert not is_autostart_enabled()


def test_unwritable_config_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "config-is-a-file"
    blocker.write_text("x")
    with pytest.raises(DesktopEntryNotWritable) as info:
        enable_autostart(config_home=blocker, command="vllm-desk")
    assert info.value.path == blocker / "autostart" / "vllm-desk.desktop"
    assert "could not write" in str(info.value)


@pytest.mark.tools
def test_autostart_file_validates(isolated_dirs: Path) -> None:
    path = enable_autostart(command="/home/a b/.local/bin/vllm-desk")
    run = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
