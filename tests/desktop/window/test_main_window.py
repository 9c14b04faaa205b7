"""The chat window driven like a user would, against the stand-in server process (real HTTP, real Haystack,
real SQLite): send and see the streamed reply, stop, regenerate and switch branches, edit and resend, search
and jump."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from desktop.window.main_window import MainWindow
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import Standin, running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path(__file__).resolve().parents[3] / "shots"
SHOT_SIZE = (1000, 700)

REPLY = """Here is a function:

```python
def greet(name):
    return f"Hello, {name}!"
```

| language | typed |
|---|---|
| Python | gradually |

Done."""


@pytest.fixture
def paced_server() -> Iterator[Standin]:
    # Paced so that a reply lasts about a second: long enough to see it stream, short enough to wait for.
    with running_standin("--reply", REPLY, "--tokens-per-second", "40") as server:
        yield server


@pytest.fixture
def slow_server() -> Iterator[Standin]:
    with running_standin("--reply-tokens", "2000", "--tokens-per-second", "40") as server:
        yield server


def type_and_send(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    window.composer.editor.setFocus()
    qtbot.keyClicks(window.composer.editor, text)
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)


def save_shot(qtbot, window: MainWindow, name: str) -> None:  # type: ignore[no-untyped-def]
    qtbot.wait(300)  # let pending layout requests settle before the picture
    SHOTS.mkdir(exist_ok=True)
    assert window.grab().save(str(SHOTS / name))


def test_send_and_see_the_streamed_reply(qtbot, app_paths, paced_server) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, app_paths, paced_server.endpoint, size=SHOT_SIZE)
    try:
        # Shift+Enter is a new line, Enter sends.
        window.composer.editor.setFocus()
        qtbot.keyClicks(window.composer.editor, "Write a greeting")
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
        qtbot.keyClicks(window.composer.editor, "in Python")
        assert window.composer.editor.toPlainText() == "Write a greeting\nin Python"
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: len(replies(window)) == 1, timeout=10000)
        assert window.composer.editor.toPlainText() == ""
        # Send became Stop before the first token (the reply takes ~1 s at this server's pace).
        assert window.composer.stop_button.isVisible()
        reply = replies(window)[0]
        qtbot.waitUntil(lambda: reply.streaming and reply.renders >= 1, timeout=10000)
        # Its end (the last pieces, their code blocks) is inserted a slice per tick after it is complete.
        qtbot.waitUntil(
            lambda: not reply.streaming and reply.data.state == "complete" and not reply.finishing,
            timeout=20000,
        )
        assert not window.composer.stop_button.isVisible()
        assert reply.data.text == REPLY
        assert reply.code_blocks == ['def greet(name):\n    return f"Hello, {name}!"\n']
        assert re.search(r"\d+ tokens · [\d.]+ tok/s · first token [\d.]+ s", reply.stats_label.text())
        # The conversation is listed with a title taken from the first message.
        qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 1, timeout=5000)
        assert "Write a greeting" in window.sidebar.model.conversations()[0].title
        assert "2,048" in window.composer.meter.text() or "2048" in window.composer.meter.format()
        save_shot(qtbot, window, "chat-reply.png")
    finally:
        close_window(qtbot, window)


def test_stop_mid_stream_with_esc(qtbot, app_paths, slow_server) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, app_paths, slow_server.endpoint, size=SHOT_SIZE)
    try:
        type_and_send(qtbot, window, "Count for me")
        qtbot.waitUntil(
            lambda: len(replies(window)) == 1 and len(replies(window)[0].data.text) > 20, timeout=10000
        )
        # The window follows the engine's turn events: the turn itself queues none of them.
        assert window.conversation_id is not None
        turn = window.chat.running_turn(window.conversation_id)
        assert turn is not None
        assert turn._queue is None
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Escape)
        reply = replies(window)[0]
        qtbot.waitUntil(lambda: not reply.streaming, timeout=5000)
        assert reply.data.state == "stopped"
        assert "stopped" in reply.stats_label.text()
        assert 0 < len(reply.data.text.split()) < 2000
        assert window.composer.send_button.isVisible()
    finally:
        close_window(qtbot, window)


def test_regenerate_then_switch_branches(qtbot, app_paths, paced_server) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, app_paths, paced_server.endpoint, size=SHOT_SIZE)
    try:
        type_and_send(qtbot, window, "Hello")
        qtbot.waitUntil(
            lambda: bool(replies(window)) and replies(window)[0].data.state == "complete", timeout=15000
        )
        first_id = replies(window)[0].data.id
        qtbot.mouseClick(replies(window)[0].regenerate_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: (
                bool(replies(window))
                and replies(window)[0].data.id != first_id
                and replies(window)[0].data.state == "complete"
            ),
            timeout=15000,
        )
        second = replies(window)[0]
        qtbot.waitUntil(lambda: second.branch_label.text() == "2/2", timeout=5000)
        assert second.prev_button.isVisible()
        assert second.prev_button.isEnabled()
        qtbot.mouseClick(second.prev_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: bool(replies(window)) and replies(window)[0].data.id == first_id, timeout=5000
        )
        assert replies(window)[0].branch_label.text() == "1/2"
        save_shot(qtbot, window, "branches.png")
    finally:
        close_window(qtbot, window)


def test_edit_a_message_and_resend(qtbot, app_paths, paced_server) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, app_paths, paced_server.endpoint, size=SHOT_SIZE)
    try:
        for text in ("Hello", "Helo again"):
            type_and_send(qtbot, window, text)
            qtbot.waitUntil(
                lambda t=text: (
                    len(window.transcript.messages()) >= 2
                    and window.transcript.messages()[-2].data.text == t
                    and replies(window)[-1].data.state == "complete"
                ),
                timeout=15000,
            )
        user = window.transcript.messages()[2]
        qtbot.mouseClick(user.edit_button, Qt.MouseButton.LeftButton)
        editor = user.editor
        assert editor is not None
        assert editor.hasFocus()
        assert editor.toPlainText() == "Helo again"
        editor.selectAll()
        qtbot.keyClicks(editor, "Hello again, fixed")
        assert user.save_edit_button is not None
        qtbot.mouseClick(user.save_edit_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: (
                len(window.transcript.messages()) == 4
                and window.transcript.messages()[2].data.text == "Hello again, fixed"
                and replies(window)[-1].data.state == "complete"
            ),
            timeout=15000,
        )
        edited = window.transcript.messages()[2]
        qtbot.waitUntil(lambda: edited.branch_label.text() == "2/2", timeout=5000)
        # The first version is still there, one click away.
        qtbot.mouseClick(edited.prev_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: (
                len(window.transcript.messages()) == 4
                and window.transcript.messages()[2].data.text == "Helo again"
            ),
            timeout=5000,
        )
        # A search hit on the branch not shown switches to that branch and selects the hit.
        window.sidebar.focus_search()
        qtbot.keyClicks(window.sidebar.search_box, "fixed")
        qtbot.waitUntil(lambda: window.sidebar.results.rowCount() >= 1, timeout=5000)
        qtbot.keyClick(window.sidebar.search_box, Qt.Key.Key_Return)
        qtbot.waitUntil(
            lambda: (
                len(window.transcript.messages()) == 4
                and window.transcript.messages()[2].data.text == "Hello again, fixed"
            ),
            timeout=5000,
        )
        hit = window.transcript.messages()[2]
        assert hit._pieces[0].textCursor().selectedText() == "fixed"
        # Editing the very first message starts a new branch from the root.
        first = window.transcript.messages()[0]
        qtbot.mouseClick(first.edit_button, Qt.MouseButton.LeftButton)
        assert first.editor is not None
        first.editor.selectAll()
        qtbot.keyClicks(first.editor, "Hi")
        assert first.save_edit_button is not None
        qtbot.mouseClick(first.save_edit_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: (
                [w.data.text for w in window.transcript.messages()][:1] == ["Hi"]
                and len(window.transcript.messages()) == 2
                and replies(window)[-1].data.state == "complete"
            ),
            timeout=15000,
        )
        qtbot.waitUntil(lambda: window.transcript.messages()[0].branch_label.text() == "2/2", timeout=5000)
    finally:
        close_window(qtbot, window)


def test_search_and_jump_to_the_hit(qtbot, app_paths, paced_server) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, app_paths, paced_server.endpoint, size=SHOT_SIZE)
    try:
        for text in ("Tell me about pelicans", "Tell me about marmots"):
            qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
            type_and_send(qtbot, window, text)
            qtbot.waitUntil(
                lambda: bool(replies(window)) and replies(window)[-1].data.state == "complete", timeout=15000
            )
        qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 2, timeout=5000)
        qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        assert window.sidebar.search_box.hasFocus()
        qtbot.keyClicks(window.sidebar.search_box, "pelican")
        qtbot.waitUntil(
            lambda: window.sidebar.searching and window.sidebar.results.rowCount() >= 1, timeout=5000
        )
        qtbot.keyClick(window.sidebar.search_box, Qt.Key.Key_Return)
        qtbot.waitUntil(
            lambda: (
                bool(window.transcript.messages())
                and window.transcript.messages()[0].data.text == "Tell me about pelicans"
            ),
            timeout=5000,
        )
        hit = window.transcript.messages()[0]
        assert hit._pieces[0].textCursor().selectedText().lower().startswith("pelican")
        save_shot(qtbot, window, "search.png")
    finally:
        close_window(qtbot, window)


def test_keyboard_only_new_chat_search_and_preferences(qtbot, app_paths, paced_server) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, app_paths, paced_server.endpoint, size=SHOT_SIZE)
    try:
        type_and_send(qtbot, window, "First chat")
        qtbot.waitUntil(
            lambda: bool(replies(window)) and replies(window)[0].data.state == "complete", timeout=15000
        )
        qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
        assert window.conversation_id is None
        assert window.transcript.messages() == []
        assert window.composer.editor.hasFocus()
        qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        assert window.sidebar.search_box.hasFocus()
        qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
        dialog = getattr(window, "preferences_dialog", None)
        assert dialog is not None
        assert dialog.isVisible()
        dialog.close()
    finally:
        close_window(qtbot, window)


def test_reasoning_is_shown_collapsed_above_the_answer(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--reasoning", "First think about geography.", "--reply", "Paris.") as server:
        window = open_window(qtbot, app_paths, server.endpoint, size=SHOT_SIZE)
        try:
            type_and_send(qtbot, window, "Capital of France?")
            qtbot.waitUntil(
                lambda: bool(replies(window)) and replies(window)[0].data.state == "complete", timeout=15000
            )
            reply = replies(window)[0]
            assert reply.data.text == "Paris."
            assert reply.data.reasoning == "First think about geography."
            assert reply.reasoning_button.isVisible()
            assert not reply.reasoning_view.isVisible()  # collapsed
            qtbot.mouseClick(reply.reasoning_button, Qt.MouseButton.LeftButton)
            assert reply.reasoning_view.isVisible()
            assert reply.reasoning_view.toPlainText() == "First think about geography."
        finally:
            close_window(qtbot, window)


def test_a_search_hit_deep_in_a_long_conversation_opens_at_once_on_the_hit(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    from engine.history.store import HistoryStore

    store = HistoryStore(app_paths.history_db)
    try:
        conversation = store.create_conversation(title="A very long chat")
        parent = None
        for i in range(1200):
            text = "Tell me about zeppelins" if i == 100 else f"Message {i} about nothing in particular"
            parent = store.add_message(
                conversation.id, parent, "user" if i % 2 == 0 else "assistant", text
            ).id
    finally:
        store.close()
    window = open_window(qtbot, app_paths, size=SHOT_SIZE)
    try:
        qtbot.waitUntil(lambda: bool(window.transcript.messages()), timeout=5000)
        qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClicks(window.sidebar.search_box, "zeppelins")
        qtbot.waitUntil(lambda: window.sidebar.results.rowCount() == 1, timeout=5000)
        qtbot.keyClick(window.sidebar.search_box, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.transcript.newer_count > 0, timeout=5000)
        # A page around the hit, not widgets for the 1,100 messages below it; the hit is on screen, marked.
        assert len(window.transcript.messages()) <= 40
        hit = next(w for w in window.transcript.messages() if "zeppelins" in w.data.text)
        top = hit.mapTo(window.transcript.viewport(), QPoint(0, 0)).y()
        assert 0 <= top < window.transcript.viewport().height()
        assert hit._pieces[0].textCursor().selectedText().lower() == "zeppelins"
    finally:
        close_window(qtbot, window)


@pytest.mark.parametrize("history", ["empty", "a conversation to restore"])
def test_typing_after_the_window_opens_goes_into_the_message_box(qtbot, app_paths, history) -> None:  # type: ignore[no-untyped-def]
    from engine.history.store import HistoryStore

    if history != "empty":
        store = HistoryStore(app_paths.history_db)
        try:
            conversation = store.create_conversation(title="Yesterday's chat")
            first = store.add_message(conversation.id, None, "user", "Hello")
            store.add_message(conversation.id, first.id, "assistant", "Hi there")
        finally:
            store.close()
    window = open_window(qtbot, app_paths, size=SHOT_SIZE)
    try:
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
        if history != "empty":
            assert [m.data.text for m in window.transcript.messages()] == ["Hello", "Hi there"]
        # No click first: the keys go wherever the window put the focus when it opened.
        qtbot.keyClicks(QApplication.focusWidget(), "What is new?")
        assert window.composer.editor.toPlainText() == "What is new?"
        assert window.sidebar.search_box.text() == ""
    finally:
        close_window(qtbot, window)


def _two_saved_chats(app_paths) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    from engine.history.store import HistoryStore

    store = HistoryStore(app_paths.history_db)
    try:
        ids = []
        for title in ("Trip plans", "Recipes"):
            conversation = store.create_conversation(title=title)
            first = store.add_message(conversation.id, None, "user", f"About {title.lower()}")
            store.add_message(conversation.id, first.id, "assistant", "Sure")
            ids.append(conversation.id)
        return ids[0], ids[1]
    finally:
        store.close()


def test_typing_after_a_click_in_the_conversation_list_goes_into_the_message_box(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    trip, recipes = _two_saved_chats(app_paths)  # Recipes, the newer, is listed above
    window = open_window(qtbot, app_paths, size=SHOT_SIZE)
    try:
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
        listing = window.sidebar.list
        row = window.sidebar.model.row_of(trip)
        rect = listing.visualRect(window.sidebar.model.index(row, 0))
        qtbot.mouseClick(listing.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.waitUntil(lambda: window.conversation_id == trip, timeout=5000)
        assert QApplication.focusWidget() is listing  # a click leaves the focus in the list
        for key in "More? Yes":  # each key where the focus is then, as a user's keys go
            qtbot.keyClicks(QApplication.focusWidget(), key)
        assert window.composer.editor.toPlainText() == "More? Yes"
        assert QApplication.focusWidget() is window.composer.editor
        assert window.conversation_id == trip  # the keys chose no other chat
        # The list's own keys stay its own: Up moves to the chat above.
        listing.setFocus()
        qtbot.waitUntil(listing.hasFocus, timeout=5000)
        qtbot.keyClick(listing, Qt.Key.Key_Up)
        assert listing.currentIndex().row() == window.sidebar.model.row_of(recipes) == row - 1
        assert listing.hasFocus()
        assert window.composer.editor.toPlainText() == "More? Yes"
    finally:
        close_window(qtbot, window)


def test_esc_in_the_search_box_clears_the_search(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    _two_saved_chats(app_paths)
    window = open_window(qtbot, app_paths, size=SHOT_SIZE)
    try:
        search = window.sidebar.search_box
        search.setFocus()
        qtbot.keyClicks(search, "trip")
        qtbot.waitUntil(lambda: window.sidebar.searching, timeout=5000)
        qtbot.keyClick(search, Qt.Key.Key_Escape)
        assert search.text() == ""
        qtbot.waitUntil(lambda: not window.sidebar.searching, timeout=5000)
        assert window.sidebar.model.rowCount() == 2
    finally:
        close_window(qtbot, window)
