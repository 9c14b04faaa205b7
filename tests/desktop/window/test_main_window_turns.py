"""Replies that did not complete (stopped, failed mid-stream) can be answered again from the window, and the
user's message above them edited; the stand-in server process fails for real (vLLM's error event)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.endpoint import Endpoint
from engine.history.records import ConversationTree
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


def test_a_failed_reply_is_retried_from_its_own_button(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with (
        running_standin("--reply-tokens", "50", "--engine-error-after", "5") as failing,
        running_standin("--reply", "Second try worked.") as working,
    ):
        server: list[Endpoint] = [failing.endpoint()]
        window = open_window(qtbot, app_paths, lambda: server[0])
        try:
            window.composer.editor.setPlainText("Tell me something")
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(
                lambda: bool(replies(window)) and replies(window)[0].data.state == "error", timeout=20000
            )
            failed = replies(window)[0]
            assert failed.regenerate_button.isVisible()
            assert failed.regenerate_button.isEnabled()
            assert failed.regenerate_button.text() == "Retry"
            assert "failed" in failed.stats_label.text()
            user = window.transcript.messages()[0]
            assert user.edit_button.isVisible()
            assert user.edit_button.isEnabled()
            # The machine recovered (another server): one click answers again, as a new version of the reply.
            server[0] = working.endpoint()
            qtbot.mouseClick(failed.regenerate_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(
                lambda: bool(replies(window)) and replies(window)[0].data.state == "complete", timeout=20000
            )
            again = replies(window)[0]
            assert again.data.text == "Second try worked."
            qtbot.waitUntil(lambda: again.branch_label.text() == "2/2", timeout=5000)
            assert again.regenerate_button.text() == "Regenerate"
        finally:
            close_window(qtbot, window)


def test_a_message_in_the_shown_conversation_is_sent_without_reading_its_messages_again(
    qtbot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    history = HistoryStore(app_paths.history_db)
    try:
        conversation = history.create_conversation(title="Long")
        parent = None
        for i in range(20):
            question = history.add_message(conversation.id, parent, "user", f"question {i}")
            parent = history.add_message(conversation.id, question.id, "assistant", f"answer {i}").id
    finally:
        history.close()
    # A slow reply: the send's own work is over long before the reply ends and the window reloads.
    with running_standin("--reply-tokens", "20", "--tokens-per-second", "10") as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            assert window.shown.conversation_id == conversation.id
            loads: list[int] = []
            load = window.store.load

            async def counted(conversation_id: int) -> ConversationTree:
                loads.append(conversation_id)
                return await load(conversation_id)

            monkeypatch.setattr(window.store, "load", counted)
            window.composer.editor.setPlainText("And now?")
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: len(replies(window)) == 21, timeout=10000)  # send() returned
            assert loads == []  # the shown conversation was not read again on the way to the request
            qtbot.waitUntil(lambda: replies(window)[-1].data.state == "complete", timeout=20000)
            qtbot.waitUntil(lambda: loads == [conversation.id], timeout=5000)  # after the reply, as before
            tree = window.shown.tree
            assert tree is not None
            assert [m.text for m in tree.branch()][-3:-1] == ["answer 19", "And now?"]
        finally:
            close_window(qtbot, window)
