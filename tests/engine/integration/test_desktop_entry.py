"""The launcher, metainfo and icons: shipped files are sound, installed where desktops look, and valid."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import engine
from engine import assets
from engine.cli import main as cli_main
from engine.integration.desktop_entry import (
    DesktopEntryNotWritable,
    LauncherNotFound,
    install_desktop_entry,
    launcher_command,
    quote_exec_arg,
    render_desktop_file,
    uninstall_desktop_entry,
)

REPO = Path(__file__).resolve().parents[3]
SIZES = [16, 22, 24, 32, 48, 64, 128, 256, 512]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def desktop_values(text: str, group: str = "Desktop Entry") -> dict[str, str]:
    out: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line and current == group:
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_resources_are_found_in_the_checkout() -> None:
    assert assets.resources_dir() == REPO / "resources"


def test_app_icon_pngs_exist_at_every_usual_size() -> None:
    pngs = assets.app_icon_pngs()
    assert list(pngs) == SIZES
    for size, path in pngs.items():
        assert png_size(path) == (size, size)


def test_icons_are_svg_drawn_for_each_tray_state() -> None:
    for path in [assets.app_icon_svg()] + [assets.tray_icon(s) for s in assets.TRAY_STATES]:
        root = ET.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("viewBox")
    with pytest.raises(ValueError, match="no tray icon for state 'loading'"):
        assets.tray_icon("loading")


def test_metainfo_version_is_the_app_version() -> None:
    root = ET.parse(assets.resources_dir() / assets.METAINFO_FILE_NAME).getroot()
    releases = root.findall("./releases/release")
    assert releases, "metainfo has no release"
    assert releases[0].get("version") == engine.__version__
    assert root.findtext("launchable") == assets.DESKTOP_FILE_NAME


def test_rendered_launcher_runs_the_given_command_with_its_actions() -> None:
    text = render_desktop_file("vllm-desk")
    main = desktop_values(text)
    assert main["Exec"] == "vllm-desk"
    assert main["Icon"] == "vllm-desk"
    assert main["Actions"] == "new-chat;tray-only;"
    assert desktop_values(text, "Desktop Action new-chat") == {
        "Name": "New chat",
        "Exec": "vllm-desk --new-chat",
    }
    assert desktop_values(text, "Desktop Action tray-only") == {
        "Name": "Tray only",
        "Exec": "vllm-desk --tray",
    }


def test_exec_arguments_are_quoted_per_spec() -> None:
    assert quote_exec_arg("/opt/vllm-desk/vllm-desk") == "/opt/vllm-desk/vllm-desk"
    assert quote_exec_arg("/home/a b/vllm-desk") == '"/home/a b/vllm-desk"'
    assert quote_exec_arg("/x/100%/$HOME") == '"/x/100%%/\\\\$HOME"'


def test_install_puts_everything_under_xdg_data_home(isolated_dirs: Path) -> None:
    files = install_desktop_entry(command="/opt/vllm desk/vllm-desk")
    home = isolated_dirs / "data"
    assert files.desktop_file == home / "applications" / "vllm-desk.desktop"
    assert files.metainfo == home / "metainfo" / assets.METAINFO_FILE_NAME
    assert home / "icons/hicolor/scalable/apps/vllm-desk.svg" in files.icons
    for size in SIZES:
        png = home / f"icons/hicolor/{size}x{size}/apps/vllm-desk.png"
        assert png in files.icons
        assert png_size(png) == (size, size)
    values = desktop_values(files.desktop_file.read_text())
    assert values["Exec"] == '"/opt/vllm desk/vllm-desk"'
    assert values["TryExec"] == "/opt/vllm desk/vllm-desk"  # a path, not Exec syntax
    assert not list(home.rglob("*.tmp"))

    removed = uninstall_desktop_entry()
    assert sorted(removed) == sorted(files.all())
    assert not any(p.exists() for p in files.all())
    assert uninstall_desktop_entry() == []


def test_unwritable_data_home_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    with pytest.raises(DesktopEntryNotWritable) as info:
        install_desktop_entry(command="vllm-desk")
    assert str(blocker) in str(info.value)
    assert info.value.fix is not None
    assert "XDG_DATA_HOME" in info.value.fix.hint


def test_launcher_command_prefers_path_then_the_venv_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "vllm-desk"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", ["pytest"])
    monkeypatch.setenv("PATH", str(bindir))
    assert launcher_command() == "vllm-desk"

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    assert launcher_command() == str(script)

    monkeypatch.setattr(sys, "executable", str(tmp_path / "elsewhere" / "python"))
    with pytest.raises(LauncherNotFound, match="neither on PATH"):
        launcher_command()

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert launcher_command() == str(tmp_path / "elsewhere" / "python")


def test_cli_installs_and_removes(isolated_dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["install-desktop-entry", "--exec", "/opt/vd/vllm-desk", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    desktop = isolated_dirs / "data" / "applications" / "vllm-desk.desktop"
    assert str(desktop) in report["installed"]
    assert desktop.is_file()
    assert cli_main(["install-desktop-entry", "--remove"]) == 0
    out = capsys.readouterr().out
    assert f"Removed {len(report['installed'])} files:" in out
    assert not desktop.exists()


def test_cli_reports_unwritable_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    assert cli_main(["install-desktop-entry", "--exec", "vllm-desk"]) == 1
    err = capsys.readouterr().err
    assert "error: vLLM Desk could not write" in err
    assert "fix: Make" in err


@pytest.mark.tools
def test_shipped_and_installed_files_validate(isolated_dirs: Path) -> None:
    files = install_desktop_entry(command="/opt/vllm desk/vllm-desk")
    for desktop in (REPO / "resources" / "vllm-desk.desktop", files.desktop_file):
        run = subprocess.run(
            [shutil.which("desktop-file-validate") or "desktop-file-validate", str(desktop)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "error" not in run.stdout + run.stderr
    run = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(files.metainfo)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Validation was successful" in run.stdout


def test_cli_autostart_with_a_data_dir_starts_on_that_folder(isolated_dirs: Path) -> None:
    from engine.integration.autostart import autostart_file

    home = isolated_dirs / "my desk"
    assert (
        cli_main(
            ["--data-dir", str(home), "install-desktop-entry", "--exec", "vllm-desk", "--autostart", "on"]
        )
        == 0
    )
    exec_line = next(line for line in autostart_file().read_text().splitlines() if line.startswith("Exec="))
    assert exec_line == f'Exec=vllm-desk --data-dir "{home}" --tray'
