"""The Outbox on its own (a transcript, a composer and a ShownConversation, no MainWindow): messages written
while the server starts wait with their conversation, go grouped per conversation, and come back when they
cannot go."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from desktop.widgets.composer import Composer
from desktop.widgets.markdown_view import MarkdownRenderer
from desktop.widgets.transcript import TranscriptView
from desktop.window.outbox import Outbox, QueuedMessage
from desktop.window.shown import ShownConversation

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]


def _outbox(qtbot, tmp_path: Path) -> tuple[Outbox, ShownConversation]:  # type: ignore[no-untyped-def]
    shown = ShownConversation(QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
    transcript, composer = TranscriptView(MarkdownRenderer()), Composer()
    qtbot.addWidget(transcript)
    qtbot.addWidget(composer)
    return Outbox(shown, transcript, composer), shown


def _placeholders(outbox: Outbox) -> list[str]:
    return [w.data.text for w in outbox.transcript.messages() if w.data.state == "queued"]


def test_queued_messages_go_joined_per_conversation(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outbox, shown = _outbox(qtbot, tmp_path)
    outbox.queue("one")
    outbox.queue("two")
    assert _placeholders(outbox) == ["one", "two"]
    assert "starting" in outbox.composer.notice.text()
    shown.show_new_chat()  # another new chat: what is written there goes elsewhere
    outbox.queue("three")
    sent: list[QueuedMessage] = []
    outbox.flush(sent.append)
    assert [m.text for m in sent] == ["one\n\ntwo", "three"]
    assert sent[0].new_chat != sent[1].new_chat
    assert outbox.pending == ()
    assert _placeholders(outbox) == []  # their placeholders are gone


def test_what_cannot_go_comes_back_into_the_box_or_waits_with_its_chat(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outbox, shown = _outbox(qtbot, tmp_path)
    outbox.queue("written in the first chat")
    shown.show_new_chat()
    outbox.queue("written here")
    outbox.composer.editor.setPlainText("a draft")
    outbox.return_queued("The server did not start")
    assert outbox.composer.editor.toPlainText() == "written here\n\na draft"
    assert [m.text for m in outbox.pending] == ["written in the first chat"]  # waits with its chat
    notice = outbox.composer.notice.text()
    assert notice.startswith("The server did not start: your message was not sent")
    outbox.clear_given_back_notice()  # a server became ready
    assert outbox.composer.notice.text() == ""
