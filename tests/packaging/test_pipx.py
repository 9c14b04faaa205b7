"""`pipx install .` and `uv tool install .` from the repository: `vllm-desk` on PATH, with its icons."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
# What a fresh clone holds: no virtual environments, build outputs or caches from this checkout.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "shots", ".hypothesis"
)

# Run inside the installed app's own Python: the desktop side finds and renders the tray icons.
ICON_CHECK = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtGui import QGuiApplication, QIcon
from engine import assets
app = QGuiApplication([])
root = assets.resources_dir()
icons = [QIcon(str(assets.tray_icon(s))) for s in assets.TRAY_STATES]
ok = all(not i.pixmap(22, 22).isNull() for i in icons)
print(root)
sys.exit(0 if ok else 1)
"""


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))}
    env.update(
        HOME=str(home),
        PIPX_HOME=str(home / "pipx"),
        PIPX_BIN_DIR=str(home / "bin"),
        PIPX_MAN_DIR=str(home / "man"),
        UV_TOOL_DIR=str(home / "uv-tools"),
        UV_TOOL_BIN_DIR=str(home / "bin"),
        UV_CACHE_DIR=str(home / "uv-cache"),
        PATH=f"{home / 'bin'}:/usr/bin:/bin",
        XDG_DATA_HOME=str(home / "share"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


# Each installer: its command and where it puts the app's own virtual environment.
INSTALLERS = {
    "pipx": (["pipx", "install"], Path("pipx") / "venvs" / "vllm-desk"),
    "uv": (["uv", "tool", "install"], Path("uv-tools") / "vllm-desk"),
}


@pytest.mark.parametrize("installer", sorted(INSTALLERS))
def test_tool_install_from_the_repository(tmp_path: Path, installer: str) -> None:
    command, venv = INSTALLERS[installer]
    clone = tmp_path / "vllm-desk"
    shutil.copytree(REPO, clone, ignore=NOT_IN_A_CLONE)
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home)
    install = subprocess.run(
        [sys.executable, "-m", *command, str(clone)],
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
        cwd=home,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    exe = shutil.which("vllm-desk", path=env["PATH"])
    assert exe == str(home / "bin" / "vllm-desk")
    version = subprocess.run(
        [exe, "--version"], env=env, capture_output=True, text=True, timeout=60, check=False, cwd=home
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"vLLM Desk {engine.__version__}"

    entry = subprocess.run(
        [exe, "install-desktop-entry", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert entry.returncode == 0, entry.stderr
    desktop_file = home / "share" / "applications" / "vllm-desk.desktop"
    assert str(desktop_file) in json.loads(entry.stdout)["installed"]
    assert "\nExec=vllm-desk\n" in desktop_file.read_text()  # on PATH, so by name

    app_python = home / venv / "bin" / "python"
    icons = subprocess.run(
        [str(app_python), "-c", ICON_CHECK],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=home,
    )
    assert icons.returncode == 0, icons.stdout + icons.stderr
    # The wheel's copy, not this checkout's resources/.
    assert icons.stdout.strip().endswith("site-packages/engine/_resources")
