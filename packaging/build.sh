#!/usr/bin/env bash
# Build the standalone folder dist/vllm-desk/ (run it as dist/vllm-desk/vllm-desk; no Python needed).
#   bash packaging/build.sh [DIST_DIR [WORK_DIR]]
# Uses the app's .venv (PyInstaller comes with the dev extra); vLLM itself is not bundled.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DIST=${1:-dist}
WORK=${2:-build/pyinstaller}
"$VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/vllm-desk.spec
echo "built $DIST/vllm-desk/vllm-desk"
