"""A fresh interpreter opening the main window over an empty history: to test what gets imported when."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def window_script(data_dir: Path, body: str, imports: str = "") -> str:
    """Python source that shows a restored ``MainWindow`` over ``data_dir``, runs ``body``, then closes it.

    ``body`` is the inside of an ``async def`` in which ``window`` (and ``sys``, ``threading``) are bound.
    """
    return f"""
import asyncio, sys, threading
from pathlib import Path
from PySide6.QtWidgets import QApplication
from desktop.window.main_window import MainWindow
from engine.paths import AppPaths
from engine.history.async_store import AsyncHistoryStore
{imports}

app = QApplication([])

async def main():
    paths = AppPaths.under(Path({str(data_dir)!r})).ensure()
    store = await AsyncHistoryStore.open(paths.history_db)
    window = MainWindow(store=store, paths=paths)
    window.show()
    await window.restore()
{textwrap.indent(textwrap.dedent(body), "    ")}
    await window.shutdown()
    await store.close()

asyncio.run(main())
"""


def run_offscreen(code: str, timeout: float = 60) -> list[str]:
    """Run ``code`` in a fresh interpreter with the offscreen Qt platform; its printed lines."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    return out.stdout.strip().splitlines()
