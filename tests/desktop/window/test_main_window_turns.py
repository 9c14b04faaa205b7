"""Replies that did not complete (stopped, failed mid-stream) can be answered again from the window, and the
user's message above them edited; the stand-in server process fails for real (vLLM's error event)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from engine.endpoint import Endpoint
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
