#!/usr/bin/env bash
# Static checks: ruff, mypy (strict for engine/), the import contract.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check engine desktop tests bench
"$VENV/bin/mypy" engine desktop
"$VENV/bin/lint-imports"
