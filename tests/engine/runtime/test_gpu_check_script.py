"""scripts/gpu-check.py on this machine (no NVIDIA GPU): it runs with the engine's standard-library modules,
says there is nothing to compare, and writes the pre-install check's verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]


def test_without_a_gpu_it_reports_nvml_and_the_preflight(tmp_path: Path) -> None:
    out = tmp_path / "gpu-check.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu-check.py"), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "No NVIDIA GPU found through NVML" in done.stdout
    report = json.loads(out.read_text())
    assert report["nvml"]["gpus"] == []
    assert report["nvml"]["reason"]
    checks = {c["name"]: c for c in report["preflight"]}
    assert set(checks) == {"driver", "gpu", "python", "compiler", "headers", "disk"}
    assert checks["driver"]["ok"] is False
    assert report["disagreements"] == ["no NVIDIA GPU: nothing was compared"]
