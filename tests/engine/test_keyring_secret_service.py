"""Once through a real Secret Service: gnome-keyring in a private D-Bus session, keyring's backend."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tools

SCRIPT = r"""
set -eu
printf 'desk-test-password' \
  | gnome-keyring-daemon --foreground --unlock --components=secrets >"$WORK/gkd.log" 2>&1 &
GKD=$!
trap 'kill $GKD 2>/dev/null; wait $GKD 2>/dev/null || true' EXIT
"$PY" - <<'PY'
import sys, time
from keyring.backends import SecretService
from engine.secrets import SecretStore

backend = SecretService.Keyring()
store = SecretStore(backend=backend)
for _ in range(50):  # the daemon needs a moment to own its bus name
    if store.keychain_available:
        break
    time.sleep(0.1)
print("problem:", store.keychain_problem() or "none")
store.set("endpoint:lab", "sk-real-secret-service-42")
print("read back:", SecretStore(backend=SecretService.Keyring()).get("endpoint:lab"))
store.rename("endpoint:lab", "endpoint:lab2")
print("renamed:", store.get("endpoint:lab2"), store.get("endpoint:lab"))
PY
"""


def test_secret_round_trip_through_gnome_keyring(tmp_path: Path) -> None:
    for tool in ("dbus-run-session", "gnome-keyring-daemon"):
        assert shutil.which(tool), f"{tool} is missing: run scripts/install-test-tools.sh"
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "WORK": str(tmp_path),
        "PY": sys.executable,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    env.pop("PYTHON_KEYRING_BACKEND", None)
    result = subprocess.run(
        ["dbus-run-session", "--", "bash", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "problem: none" in result.stdout
    assert "read back: sk-real-secret-service-42" in result.stdout
    assert "renamed: sk-real-secret-service-42 None" in result.stdout
    keyrings = list(tmp_path.rglob("*.keyring"))
    assert keyrings, "gnome-keyring wrote no keyring file under the test's dirs"
    # The keyring file gnome-keyring wrote is encrypted: the key is nowhere on disk in clear text.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"sk-real-secret-service-42" not in path.read_bytes(), path
