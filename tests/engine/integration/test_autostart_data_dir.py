"""Autostart for an app on its own data folder: the login start must use that folder, not the defaults."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from engine.integration.autostart import autostart_file, data_dir_args, enable_autostart, set_autostart
from engine.integration.desktop_entry import render_desktop_file
from engine.paths import HOME_ENV, AppPaths
from tests.engine.integration.test_desktop_entry import desktop_values

# Everything the Desktop Entry spec makes awkward in an Exec argument: a space, quotes, $, %, a backslash.
AWKWARD = 'desk data/it\'s "mine" $HOME 100% a\\b'


def test_default_folders_add_nothing(isolated_dirs: Path) -> None:
    assert data_dir_args() == []
    assert data_dir_args(AppPaths.default()) == []
    assert desktop_values(enable_autostart(command="vllm-desk").read_text())["Exec"] == "vllm-desk --tray"


def test_vllm_desk_home_is_carried_as_data_dir(isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = isolated_dirs / "desk home"
    monkeypatch.setenv(HOME_ENV, str(home))
    path = enable_autostart(command="vllm-desk")
    assert desktop_values(path.read_text())["Exec"] == f'vllm-desk --data-dir "{home}" --tray'


def test_the_folder_given_with_data_dir_is_carried(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(isolated_dirs / "from-env"))  # --data-dir wins, as in AppPaths.resolve
    paths = AppPaths.resolve(isolated_dirs / "from-option")
    set_autostart(True, command="/opt/vd/vllm-desk", paths=paths)
    exec_line = desktop_values(autostart_file().read_text())["Exec"]
    assert exec_line == f"/opt/vd/vllm-desk --data-dir {isolated_dirs / 'from-option'} --tray"


def test_a_relative_data_dir_is_written_absolute(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The login session starts in another folder than the one the user typed the option in.
    monkeypatch.chdir(tmp_path)
    assert data_dir_args(AppPaths.resolve("rel/desk")) == ["--data-dir", str(tmp_path / "rel" / "desk")]


def test_folders_no_data_dir_can_express_are_refused(tmp_path: Path) -> None:
    mixed = AppPaths(
        config=tmp_path / "a", data=tmp_path / "b" / "data", cache=tmp_path / "c", state=tmp_path / "d"
    )
    with pytest.raises(ValueError, match="neither the default folders nor one --data-dir folder"):
        data_dir_args(mixed)


def test_awkward_folder_names_are_quoted_per_spec(isolated_dirs: Path) -> None:
    text = render_desktop_file("vllm-desk", autostart=True, args=["--data-dir", f"/srv/{AWKWARD}"])
    exec_line = desktop_values(text)["Exec"]
    assert (
        exec_line
        == 'vllm-desk --data-dir "/srv/desk data/it\'s \\\\"mine\\\\" \\\\$HOME 100%% a\\\\\\\\b" --tray'
    )


def test_try_exec_is_a_plain_path_not_exec_quoting(isolated_dirs: Path) -> None:
    # GLib looks TryExec up as a file name: quotes would make it hide the entry.
    values = desktop_values(render_desktop_file("/opt/vllm desk/vllm-desk", autostart=True))
    assert values["TryExec"] == "/opt/vllm desk/vllm-desk"
    assert values["Exec"] == '"/opt/vllm desk/vllm-desk" --tray'


@pytest.mark.tools
def test_autostart_with_an_awkward_data_dir_validates(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(isolated_dirs / AWKWARD))
    path = enable_autostart(command="/home/a b/.local/bin/vllm-desk")
    run = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "error" not in run.stdout + run.stderr


@pytest.mark.tools
def test_a_desktop_launches_it_with_exactly_that_folder(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GLib (``gio launch``) reads the file as a login session would; the program records its arguments."""
    if shutil.which("gio") is None:
        pytest.skip("gio (libglib2.0-bin) is not installed")
    record = isolated_dirs / "argv"
    program = isolated_dirs / "bin dir" / "vllm-desk"
    program.parent.mkdir()
    program.write_text(f'#!/bin/sh\nprintf \'%s\\0\' "$@" > "{record}.tmp" && mv "{record}.tmp" "{record}"\n')
    program.chmod(0o755)
    data_dir = isolated_dirs / AWKWARD
    monkeypatch.setenv(HOME_ENV, str(data_dir))
    path = enable_autostart(command=str(program))

    run = subprocess.run(
        ["gio", "launch", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    deadline = time.monotonic() + 30  # a hang guard: the program is started asynchronously
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    assert record.read_text().split("\0")[:-1] == ["--data-dir", str(data_dir), "--tray"]
