"""The live context meter against the stand-in server process (its real ``/tokenize``): counted a moment after
typing stops, shown as "used / max", a warning while the draft will not fit, and the banner's one-click
"leave out the oldest turns" that sends it anyway."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from desktop.window.context_watch import DEBOUNCE_MS
from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
LIMIT = 60
SHOTS = Path(__file__).resolve().parents[3] / "shots"


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def test_meter_counts_the_draft_and_a_too_long_message_goes_without_the_oldest_turn(
    qtbot, app_paths: AppPaths
) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--reply", "Ok.") as server:
        endpoint = dataclasses.replace(server.endpoint(), max_model_len=LIMIT)
        window = open_window(qtbot, app_paths, lambda: endpoint)
        try:
            watch = window.context_watch
            assert watch is not None
            qtbot.waitUntil(lambda: watch.usage is not None, timeout=5000)
            before = watch.counts
            # Typing a word a key at a time asks the server once, after the pause.
            qtbot.keyClicks(window.composer.editor, "hello there friend")
            qtbot.wait(DEBOUNCE_MS * 3)
            assert watch.counts == before + 1
            assert watch.usage is not None
            assert watch.usage.exact
            assert watch.usage.used == 3  # the stand-in counts words
            assert window.composer.meter.text() == f"3 / {LIMIT} tokens"
            window.composer.editor.clear()
            for n in range(2):  # two turns of 21 tokens each
                window.composer.editor.setPlainText(words(20, f"t{n}w"))
                qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
                qtbot.waitUntil(
                    lambda n=n: (
                        len(replies(window)) == n + 1 and replies(window)[-1].data.state == "complete"
                    ),
                    timeout=15000,
                )
            qtbot.waitUntil(lambda: watch.usage is not None and watch.usage.used == 42, timeout=5000)
            # A draft that will not fit: the meter and a notice say so before sending.
            draft = words(30, "d")
            window.composer.editor.setPlainText(draft)
            qtbot.waitUntil(lambda: watch.usage is not None and watch.usage.used == 72, timeout=5000)
            assert window.composer.meter.property("over") is True
            assert "will not fit" in window.composer.notice.text()
            SHOTS.mkdir(exist_ok=True)
            assert window.grab().save(str(SHOTS / "context-too-long.png"))
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            banner = window.banner
            qtbot.waitUntil(lambda: banner.isVisible() and banner.problem is not None, timeout=5000)
            assert "too long" in banner.problem.title
            assert banner.fix_button.text() == "Leave out the oldest 1 turn(s)"
            assert window.composer.editor.toPlainText() == draft  # nothing lost
            assert len(replies(window)) == 2  # and nothing stored
            qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(
                lambda: len(replies(window)) == 3 and replies(window)[-1].data.state == "complete",
                timeout=15000,
            )
            assert window.transcript.messages()[-2].data.text == draft
            assert window.composer.editor.toPlainText() == ""
        finally:
            close_window(qtbot, window)
