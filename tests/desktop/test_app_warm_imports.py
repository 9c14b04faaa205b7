"""Haystack (~60 MB) is imported only once the user starts writing: an idle window never loads it."""

from __future__ import annotations

from pathlib import Path

from tests.support.fresh_window import run_offscreen, window_script


def test_haystack_is_imported_at_the_first_keystroke_not_before(tmp_path: Path) -> None:
    body = """
warm_on_first_edit(window.composer.editor)
await asyncio.sleep(0.2)
print("idle", "haystack" in sys.modules)
window.composer.editor.insertPlainText("H")
window.composer.editor.insertPlainText("i")
warmers = [t for t in threading.enumerate() if t.name == "lazy-imports"]
print("threads", len(warmers))
for thread in warmers:
    thread.join(60)
print("typed", "haystack.components.generators.chat" in sys.modules)
"""
    code = window_script(tmp_path, body, imports="from desktop.app import warm_on_first_edit")
    lines = run_offscreen(code, timeout=120)
    assert lines[-3:] == ["idle False", "threads 1", "typed True"]
