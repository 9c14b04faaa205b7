"""``python -m tests.engine.cli.standin_cli ARGS...``: the ``vllm-desk`` command line as a real process, with
the stand-in as the vLLM that every supervisor it makes launches (chat model, embedder).

The stand-in's options come from ``STANDIN_OPTIONS`` (a JSON list, e.g. ``["--startup-delay", "60"]``). Run it
from the repository root (the ``tests`` package is imported).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import engine.server.supervisor
from engine.cli import main
from engine.paths import AppPaths
from tests.support.standin.launch import StandinRuntime


def _standin(_paths: AppPaths, _settings_path: str | os.PathLike[str] | None = None) -> StandinRuntime:
    return StandinRuntime(json.loads(os.environ.get("STANDIN_OPTIONS", "[]")))


engine.server.supervisor.locate_runtime = _standin  # type: ignore[attr-defined,assignment]

if __name__ == "__main__":
    sys.argv[0] = str(Path(__file__).name)
    sys.exit(main())
