#!/usr/bin/env bash
# Debian tools the suite uses. Installed when missing (we are root on the test machines).
set -euo pipefail
TOOLS=(chromium gnome-keyring dbus dbus-x11 desktop-file-utils appstream poppler-utils libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 fonts-dejavu-core binutils)
missing=()
for pkg in "${TOOLS[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Debian's own python3 makes virtual environments only with python3-venv (a pyenv or python.org build has it).
if ! "${PYTHON:-python3}" -c "import ensurepip, venv" >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
for cmd in chromium gnome-keyring-daemon dbus-run-session desktop-file-validate appstreamcli pdftotext objdump; do
  command -v "$cmd" >/dev/null || { echo "missing tool after install: $cmd" >&2; exit 1; }
done
