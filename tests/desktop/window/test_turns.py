"""The TurnController on its own: a real chat engine on a stand-in server, a real store, the transcript
and the composer, no MainWindow. What it needs from the window comes as callables; it says what happened
through its signal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from desktop.errors import Problem
from desktop.widgets.chat_settings import ChatSettingsPanel
from desktop.widgets.composer import Composer
from desktop.widgets.markdown_view import MarkdownRenderer
from desktop.widgets.transcript import TranscriptView
from desktop.window.outbox import Outbox
from desktop.window.shown import ShownConversation
from desktop.window.turns import TurnController
from engine.chat.engine import ChatEngine, EndpointProvider
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import ConversationTree
from engine.paths import AppPaths
from engine.settings.store import SettingsStore
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


class Parts:
    """The controller and what it was given, plus what it called back."""

    def __init__(self, qtbot: Any, app_paths: AppPaths, endpoint: EndpointProvider) -> None:
        self.store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
        self.shown = ShownConversation(
            QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat)
        )
        self.transcript, self.composer = TranscriptView(MarkdownRenderer()), Composer()
        self.chat_settings = ChatSettingsPanel(self.store)
        for widget in (self.transcript, self.composer, self.chat_settings):
            qtbot.addWidget(widget)
        self.outbox = Outbox(self.shown, self.transcript, self.composer)
        self.reshown: list[int] = []
        self.trees: list[ConversationTree | None] = []
        self.problems: list[Problem] = []
        self.finished: list[Any] = []
        self.turns = TurnController(
            store=self.store,
            shown=self.shown,
            outbox=self.outbox,
            transcript=self.transcript,
            composer=self.composer,
            chat_settings=self.chat_settings,
            reshow=self._reshow,
            tree_changed=self.trees.append,
            show_problem=self.problems.append,
        )
        self.turns.turn_finished.connect(self.finished.append)
        self.chat = ChatEngine(self.store, endpoint)
        self.chat.turn_events.connect(self.turns.on_turn_event)  # what the window's bridge does
        self.starting = False
        self.turns.attach(self.chat, SettingsStore.open(app_paths.settings_file), lambda: self.starting)

    async def _reshow(self, conversation_id: int) -> None:
        self.reshown.append(conversation_id)

    def texts(self) -> list[tuple[str, str, str]]:
        return [(w.data.role, w.data.text, w.data.state) for w in self.transcript.messages()]

    def close(self, qtbot: Any) -> None:
        run(qtbot, self.chat.shutdown())
        run(qtbot, self.store.close())


@contextmanager
def controller(qtbot: Any, app_paths: AppPaths, *options: str) -> Iterator[Parts]:
    with running_standin(*options) as server:
        parts = Parts(qtbot, app_paths, server.endpoint)
        try:
            yield parts
        finally:
            parts.close(qtbot)


def test_a_message_in_a_new_chat_makes_its_conversation_and_streams_the_reply(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    with controller(qtbot, app_paths, "--reply", "Hello there.") as parts:
        parts.turns.send_message("Hi")
        qtbot.waitUntil(lambda: len(parts.finished) == 1, timeout=20_000)
        conversation_id = parts.shown.conversation_id
        assert conversation_id is not None  # the new chat on screen adopted the conversation it made
        assert parts.finished[0].conversation_id == conversation_id
        assert parts.texts() == [("user", "Hi", "complete"), ("assistant", "Hello there.", "complete")]
        assert parts.shown.tree is not None
        assert [m.text for m in parts.shown.tree.branch()] == ["Hi", "Hello there."]
        assert parts.trees[-1] is parts.shown.tree  # the context meter was told
        assert not parts.composer.busy
        assert parts.problems == []


def test_a_message_written_while_the_server_starts_waits_in_the_outbox_then_goes(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    with controller(qtbot, app_paths, "--reply", "Sent late.") as parts:
        parts.starting = True
        parts.chat.endpoint_provider, endpoint = (lambda: None), parts.chat.endpoint_provider
        parts.turns.send_message("Queued")
        assert [m.text for m in parts.outbox.pending] == ["Queued"]
        assert parts.texts() == [("user", "Queued", "queued")]
        parts.starting = False
        parts.chat.endpoint_provider = endpoint  # the server link says it is ready
        parts.turns.server_became_ready()
        qtbot.waitUntil(lambda: len(parts.finished) == 1, timeout=20_000)
        assert parts.outbox.pending == ()
        assert parts.texts() == [("user", "Queued", "complete"), ("assistant", "Sent late.", "complete")]


def test_deleting_a_message_offers_undo_and_shows_the_conversation_again(qtbot, app_paths) -> None:  # type: ignore[no-untyped-def]
    with controller(qtbot, app_paths, "--reply", "Fine.") as parts:
        parts.turns.send_message("Delete me")
        qtbot.waitUntil(lambda: len(parts.finished) == 1, timeout=20_000)
        conversation_id = parts.shown.conversation_id
        question = parts.transcript.messages()[0].data.id
        assert isinstance(question, int)
        parts.turns.message_action("delete", question)
        qtbot.waitUntil(lambda: len(parts.problems) == 1, timeout=5000)
        fix = parts.problems[0].fix
        assert fix is not None
        assert fix.action == "undo_delete_message"
        assert parts.reshown == [conversation_id]
        assert not run(qtbot, parts.store.load(conversation_id)).messages  # type: ignore[arg-type]
        parts.turns.undo_delete_message(fix)
        qtbot.waitUntil(lambda: len(parts.reshown) == 2, timeout=5000)
        assert len(run(qtbot, parts.store.load(conversation_id)).messages) == 2  # type: ignore[arg-type]
