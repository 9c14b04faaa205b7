"""``python -m tests.desktop.standin_app --data-dir DIR``: the whole app as ``vllm-desk`` opens it
(``desktop.app.run_app``), with the stand-in as its vLLM (options: ``STANDIN_OPTIONS``, a JSON list) and no
single-instance lock. Run it from the repository root with ``QT_QPA_PLATFORM=offscreen``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import desktop.app
from tests.support.standin.launch import StandinRuntime

_build = desktop.app.build


async def _with_standin(args: argparse.Namespace, app: Any, **_options: Any) -> Any:
    runtime = StandinRuntime(json.loads(os.environ.get("STANDIN_OPTIONS", "[]")))
    return await _build(args, app, runtime=runtime, single_instance=False)


desktop.app.build = _with_standin

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    args.tray = False
    args.new_chat = False
    sys.exit(desktop.app.run_app(args))
