"""A reply looks the same while it streams as when the conversation is opened again: paragraphs keep their
gaps, headings their space above, quotes their indent (the streamed pieces are appended to the view one by
one, the reopened reply is rendered whole)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from desktop.widgets.markdown_view import SafeBrowser
from desktop.widgets.transcript import MessageWidget
from desktop.window.main_window import MainWindow
from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
REPLY = (
    "First paragraph, a few words long.\n\n"
    "## A heading in the middle\n\n"
    "Second paragraph, after the heading.\n\n"
    "> A quoted line\n> and its second line.\n\n"
    "Third paragraph.\n\n"
    "Last paragraph, still open when the stream ends."
)


def looks(message: MessageWidget) -> list[tuple[str, float, float, float, int]]:
    """Each text block of the message's views, top to bottom: its text and the format that spaces it."""
    views = [v for v in message.findChildren(SafeBrowser) if v.isVisible() and v.objectName() != "reasoning"]
    views.sort(key=lambda v: v.mapTo(message, QPoint(0, 0)).y())
    out = []
    for view in views:
        block = view.document().begin()
        while block.isValid():
            if block.text().strip():
                f = block.blockFormat()
                out.append(
                    (
                        block.text().strip()[:20],
                        f.topMargin(),
                        f.bottomMargin(),
                        f.leftMargin(),
                        f.headingLevel(),
                    )
                )
            block = block.next()
    return out


def test_a_streamed_reply_is_spaced_as_the_reopened_one(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--reply", REPLY, "--tokens-per-second", "60") as server:
        window: MainWindow = open_window(qtbot, app_paths, server.endpoint)
        try:
            window.composer.editor.setFocus()
            qtbot.keyClicks(window.composer.editor, "Write some Markdown")
            qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
            qtbot.waitUntil(lambda: bool(replies(window)) and replies(window)[0].streaming, timeout=10000)
            streamed = replies(window)[0]
            # The end of a reply is shown a slice per tick after its state says complete (the last pieces are
            # inserted and the tail view goes): read it once it is all shown.
            qtbot.waitUntil(
                lambda: streamed.data.state == "complete" and not streamed.finishing, timeout=20000
            )
            assert streamed.renders >= 2  # shown while it streamed: its pieces were appended one by one
            live = looks(streamed)
            conversation = window.conversation_id
            assert conversation is not None
            window.new_chat()
            window.open_conversation(conversation)
            # Shown, not only made: a message widget added to the shown transcript is shown on the loop's
            # next turn (looks() reads the views that are shown).
            qtbot.waitUntil(
                lambda: (
                    bool(replies(window))
                    and replies(window)[0] is not streamed
                    and replies(window)[0].isVisible()
                ),
                timeout=5000,
            )
            reopened = looks(replies(window)[0])
            assert [b[0] for b in live] == [b[0] for b in reopened]
            assert live == reopened
            quote = next(b for b in reopened if b[0].startswith("A quoted"))
            assert quote[3] > 0  # indented
            heading = next(b for b in reopened if b[0].startswith("A heading"))
            assert heading[4] == 2
            assert heading[1] > 0
        finally:
            close_window(qtbot, window)
