"""The window at 800×600 and on a 1366×768 laptop, sidebar open: nothing wider than the view, text wraps (also
code, a failed reply's words and a long model name), every message's actions stay on screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QSize
from PySide6.QtWidgets import QApplication, QWidget

from desktop.widgets.markdown_view import SafeBrowser
from desktop.window.main_window import MainWindow
from engine.diagnosis.problems import ServerFailed
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path("/tmp/vllm-desk-shots")

PARAGRAPH = "A paragraph long enough to need several lines in any window this app runs in, " * 4
CODE = (
    "```python\n"
    "def a_function_with_a_rather_long_name(argument_one, argument_two, argument_three, argument_four):\n"
    "    return argument_one + argument_two + argument_three + argument_four  # and a comment that goes on\n"
    "```"
)
TABLE = "| name | value | note |\n|---|---|---|\n| " + "word " * 30 + "| 1 | " + "more " * 20 + "|"
MODEL = "/home/someone/models/Qwen2.5-Coder-32B-Instruct-GPTQ-Int4-with-a-long-folder-name"
ERROR = (
    "The connection to the server broke in the middle of the reply; what arrived is kept. "
    "httpx.RemoteProtocolError: peer closed connection without sending complete message body"
)


def seed(paths: AppPaths) -> None:
    store = HistoryStore(paths.history_db)
    try:
        conversation = store.create_conversation(title="Sizes")
        user = store.add_message(conversation.id, None, "user", PARAGRAPH)
        code = store.add_message(
            conversation.id, user.id, "assistant", f"{PARAGRAPH}\n\n{CODE}\n\n{TABLE}", state="complete"
        )
        link = store.add_message(conversation.id, code.id, "user", "https://example.com/" + "a" * 200)
        store.add_message(conversation.id, link.id, "assistant", "Short.", state="complete", model=MODEL)
        reply = store.add_message(conversation.id, link.id, "assistant", "", state="streaming", model=MODEL)
        store.finish(reply.id, state="failed", text="Partial", reasoning="thinking " * 50, error=ERROR)
    finally:
        store.close()


def _right_edge(widget: QWidget, within: QWidget) -> int:
    return widget.mapTo(within, QPoint(widget.width(), 0)).x()


def _settle(qtbot, window: MainWindow) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(20)


@pytest.mark.parametrize("size", [(800, 600), (1366, 768)])
def test_everything_fits_and_wraps_at_small_window_sizes(qtbot, app_paths: AppPaths, size) -> None:  # type: ignore[no-untyped-def]
    seed(app_paths)
    window = open_window(qtbot, app_paths, size=(1600, 1000))  # opened wide, then made small
    try:
        window.resize(*size)
        window.show_problem(
            ServerFailed(
                "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig "
                "Value error, Invalid repository ID or local directory specified: '/models/none'",
                1,
                details="log",
            )
        )
        window.server_status.set_server("a-profile-with-a-long-name", MODEL)
        window.server_status.set_state(
            "failed", "vLLM stopped (exit code 1): pydantic_core._pydantic_core.ValidationError"
        )
        window.composer.set_notice(
            "This message will not fit: the conversation uses 2,010 of 2,048 tokens; leave out older turns."
        )
        _settle(qtbot, window)
        SHOTS.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(SHOTS / f"window-{size[0]}x{size[1]}.png"))
        window.transcript.verticalScrollBar().setValue(0)
        _settle(qtbot, window)
        window.grab().save(str(SHOTS / f"window-{size[0]}x{size[1]}-top.png"))

        assert window.minimumSizeHint().width() <= size[0]
        assert window.size() == QSize(*size)
        assert window.sidebar.isVisible()
        view = window.transcript.viewport()
        messages = window.transcript.messages()
        assert len(messages) == 4
        for message in messages:
            assert _right_edge(message, view) <= view.width(), message.data.role
            actions = [
                b
                for b in (
                    message.copy_button,
                    message.edit_button,
                    message.regenerate_button,
                    message.delete_button,
                )
                if not b.isHidden()
            ]
            assert actions
            for button in actions:
                assert _right_edge(button, view) <= view.width(), (message.data.role, button.text())
                assert button.width() >= button.sizeHint().width(), button.text()  # not squeezed
            for piece in message.findChildren(SafeBrowser):
                if piece.isVisible():
                    # The laid-out text is no wider than its view: it wrapped (code included).
                    assert piece.document().size().width() <= piece.viewport().width() + 1
        failed = replies(window)[-1]
        assert failed.data.state == "error"
        for label in (failed.stats_label, window.banner._text, window.composer.notice):
            assert label.isVisible()
            # Wrapped, and as tall as its wrapped lines (nothing cut off at the top or bottom).
            assert label.height() >= label.heightForWidth(label.width()), label.text()
        if size[0] == 800:
            assert failed.stats_label.height() > failed.stats_label.fontMetrics().height() * 2
        for label in (window.server_status.server_label, window.server_status.state_label):
            assert _right_edge(label, window) <= window.width()
            assert label.toolTip() == label.text()  # cut short on screen, whole in the tooltip
        banner_right = _right_edge(window.banner.fix_button, window)
        assert banner_right <= window.width()
    finally:
        close_window(qtbot, window)
