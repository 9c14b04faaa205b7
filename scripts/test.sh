#!/usr/bin/env bash
# The README's test command (`make test`): installs everything the suite needs, then runs all of it.
#   1. Debian tools the tests use (with CI=true a missing one fails the run; it is never skipped).
#   2. The app's virtual environment with the dev extras.
#   3. Static checks (ruff, mypy, import-linter).
#   4. The engine's tests in an environment WITHOUT PySide6 (proves the engine is Qt-free).
#   5. The whole suite, real vLLM on the CPU included (runtime and built-in model cached under
#      $VLLM_DESK_TEST_CACHE, built from scratch on a fresh machine by the app's own code).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export VLLM_DESK_TEST_CACHE=${VLLM_DESK_TEST_CACHE:-$HOME/.cache/vllm-desk-tests}
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n=== %s ===\n' "$*"; }

step "Debian tools"
bash scripts/install-test-tools.sh

step "App environment (.venv)"
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/pip install -q -e '.[dev,bench]'

step "Static checks"
VENV=.venv bash scripts/lint.sh

step "Engine tests without Qt (.venv-engine)"
if [ ! -x .venv-engine/bin/python ]; then "$PYTHON" -m venv .venv-engine; fi
.venv-engine/bin/pip install -q -e '.[dev]'
.venv-engine/bin/pip uninstall -q -y PySide6-Essentials shiboken6 qasync pytest-qt
.venv-engine/bin/python - <<'PY'
import importlib.util, sys
sys.exit(1 if importlib.util.find_spec("PySide6") else 0)
PY
.venv-engine/bin/pytest -q tests/engine -m "not vllm and not gui" -p no:cacheprovider

step "vLLM runtime and built-in model for the tests (minutes on a fresh machine, cached after)"
.venv/bin/python -m tests.support.vllm_fixtures

step "Full suite (real vLLM included)"
.venv/bin/pytest -q tests
