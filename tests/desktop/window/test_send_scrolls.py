"""Sending shows what was sent: from a transcript scrolled up, or opened on a search hit far up, the view goes
to the end, and the new message and its streaming reply are on screen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def seed(paths: AppPaths, count: int) -> None:
    store = HistoryStore(paths.history_db)
    try:
        conversation = store.create_conversation(title="A long chat")
        parent = None
        for i in range(count):
            text = "Tell me about zeppelins" if i == 10 else f"Message {i}, a line of text about nothing much"
            role = "user" if i % 2 == 0 else "assistant"
            state = "complete"
            parent = store.add_message(conversation.id, parent, role, text, state=state).id
    finally:
        store.close()


def _on_screen(window: MainWindow, widget) -> bool:  # type: ignore[no-untyped-def]
    view = window.transcript.viewport()
    top = widget.mapTo(view, QPoint(0, 0)).y()
    return top < view.height() and top + widget.height() > 0


def _send_and_watch(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    window.composer.editor.setFocus()
    qtbot.keyClicks(window.composer.editor, "And now?")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: replies(window)[-1].data.state == "streaming", timeout=10000)
    qtbot.waitUntil(lambda: replies(window)[-1].data.state == "complete", timeout=20000)
    # The reply's end is inserted a slice per tick after its state says complete, and the view follows the
    # layout on a later turn of the loop: read where it ends once both happened.
    last = replies(window)[-1]
    bar = window.transcript.verticalScrollBar()
    qtbot.waitUntil(lambda: not last.finishing and bar.value() == bar.maximum(), timeout=10000)
    qtbot.wait(100)
    sent = next(w for w in window.transcript.messages() if w.data.text == "And now?")
    assert _on_screen(window, sent) or _on_screen(window, replies(window)[-1])
    assert _on_screen(window, replies(window)[-1])
    assert bar.value() == bar.maximum()
    assert window.transcript.following


def test_sending_while_scrolled_up_scrolls_to_the_new_message(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    seed(app_paths, 30)
    with running_standin("--reply", "A reply long enough to stream for a moment. " * 5) as server:
        window = open_window(qtbot, app_paths, server.endpoint, size=(900, 600))
        try:
            qtbot.waitUntil(lambda: len(window.transcript.messages()) == 30, timeout=5000)
            bar = window.transcript.verticalScrollBar()
            qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=5000)
            bar.setValue(bar.maximum() // 3)  # the user scrolled up to read
            assert not window.transcript.following
            _send_and_watch(qtbot, window)
        finally:
            close_window(qtbot, window)


def test_sending_after_jumping_to_a_search_hit_scrolls_to_the_new_message(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    seed(app_paths, 30)  # the hit is among the shown messages: the view scrolls up to it
    with running_standin("--reply", "A reply long enough to stream for a moment. " * 5) as server:
        window = open_window(qtbot, app_paths, server.endpoint, size=(900, 600))
        try:
            qtbot.waitUntil(lambda: bool(window.transcript.messages()), timeout=5000)
            qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
            qtbot.keyClicks(window.sidebar.search_box, "zeppelins")
            qtbot.waitUntil(lambda: window.sidebar.results.rowCount() == 1, timeout=5000)
            qtbot.keyClick(window.sidebar.search_box, Qt.Key.Key_Return)

            def hit_shown() -> bool:
                hits = [w for w in window.transcript.messages() if "zeppelins" in w.data.text]
                return bool(hits) and _on_screen(window, hits[0]) and not window.transcript.following

            qtbot.waitUntil(hit_shown, timeout=5000)
            bar = window.transcript.verticalScrollBar()
            assert bar.value() < bar.maximum()  # the hit is far above the end
            _send_and_watch(qtbot, window)
        finally:
            close_window(qtbot, window)
