"""Haystack (~60 MB) is imported only once the user starts writing: an idle window never loads it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_haystack_is_imported_at_the_first_keystroke_not_before(tmp_path: Path) -> None:
    code = f"""
import asyncio, sys, threading
from pathlib import Path
from PySide6.QtWidgets import QApplication
from desktop.app import warm_on_first_edit
from desktop.main_window import MainWindow
from engine.paths import AppPaths
from engine.store_async import AsyncHistoryStore

app = QApplication([])

async def main():
    paths = AppPaths.under(Path({str(tmp_path)!r})).ensure()
    store = await AsyncHistoryStore.open(paths.history_db)
    window = MainWindow(store=store, paths=paths)
    window.show()
    await window.restore()
    warm_on_first_edit(window.composer.editor)
    await asyncio.sleep(0.2)
    print("idle", "haystack" in sys.modules)
    window.composer.editor.insertPlainText("H")
    window.composer.editor.insertPlainText("i")
    warmers = [t for t in threading.enumerate() if t.name == "warm-imports"]
    print("threads", len(warmers))
    for thread in warmers:
        thread.join(60)
    print("typed", "haystack.components.generators.chat" in sys.modules)
    await window.shutdown()
    await store.close()

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    lines = out.stdout.strip().splitlines()
    assert lines[-3:] == ["idle False", "threads 1", "typed True"]
