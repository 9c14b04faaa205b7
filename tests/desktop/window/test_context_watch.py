"""The context meter's count of a restored conversation, and a count that arrives after the user moved to
another conversation (never shown: the meter shows the conversation on screen), against the stand-in server
process (its real ``/tokenize`` counts words)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from desktop.window import context_watch
from engine.history.records import ConversationTree
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
LIMIT = 100_000


def add_conversation(paths: AppPaths, title: str, user_words: int) -> int:
    """A conversation of one question (``user_words`` words) and its one-word answer."""
    store = HistoryStore(paths.history_db)
    try:
        conversation = store.create_conversation(title=title)
        question = store.add_message(conversation.id, None, "user", " ".join(["word"] * user_words))
        store.add_message(conversation.id, question.id, "assistant", "Ok.")
        return conversation.id
    finally:
        store.close()


def test_the_restored_conversation_is_counted_and_its_messages_are_put_together_off_the_gui_thread(
    qtbot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    add_conversation(app_paths, "Long", 2000)
    threads: list[threading.Thread] = []
    history = context_watch._request_history  # watched, not replaced

    def watched(tree: ConversationTree | None) -> object:
        threads.append(threading.current_thread())
        return history(tree)

    monkeypatch.setattr(context_watch, "_request_history", watched)
    with running_standin("--reply", "Ok.") as server:
        endpoint = dataclasses.replace(server.endpoint(), max_model_len=LIMIT)
        window = open_window(qtbot, app_paths, lambda: endpoint)
        try:
            watch = window.context_watch
            assert watch is not None
            qtbot.waitUntil(lambda: watch.usage is not None and watch.usage.used > 0, timeout=10000)
            assert watch.usage is not None
            assert watch.usage.exact
            assert watch.usage.used == 2001  # the question's words and the answer's one
            assert window.composer.meter.text() == f"2,001 / {LIMIT:,} tokens"
            assert threads
            assert threading.main_thread() not in threads
        finally:
            close_window(qtbot, window)


def test_a_count_that_arrives_after_a_switch_is_not_shown(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    first = add_conversation(app_paths, "First", 40)
    second = add_conversation(app_paths, "Second", 7)
    with running_standin("--reply", "Ok.") as server:
        endpoint = dataclasses.replace(server.endpoint(), max_model_len=LIMIT)
        window = open_window(qtbot, app_paths, lambda: endpoint)
        # The first conversation's count is held up in the draft hook (as a slow search of attached
        # documents would be) and does not stop when the next count starts.
        release = asyncio.Event()
        held: list[asyncio.Task[None]] = []  # the first conversation's count
        try:
            watch = window.context_watch
            assert watch is not None
            qtbot.waitUntil(lambda: watch.usage is not None and watch.usage.used > 0, timeout=10000)

            async def slow_hook(tree: ConversationTree | None, draft: str) -> str:
                if tree is not None and tree.conversation.id == first:
                    task = asyncio.current_task()
                    assert task is not None
                    held.append(task)
                    while not release.is_set():
                        try:
                            await release.wait()
                        except asyncio.CancelledError:
                            task.uncancel()
                return draft

            watch.draft_hook = slow_hook
            window.composer.editor.setPlainText("one two three")
            window.open_conversation(first)  # as the sidebar's click does
            qtbot.waitUntil(lambda: len(held) == 1, timeout=10000)
            window.open_conversation(second)
            # The second conversation's count: its 7 + 1 words and the draft's 3.
            qtbot.waitUntil(lambda: watch.usage is not None and watch.usage.used == 11, timeout=10000)
            assert window.composer.meter.text() == f"11 / {LIMIT:,} tokens"
            release.set()  # now the first conversation's count (41 + 3 tokens) arrives: too late
            qtbot.waitUntil(held[0].done, timeout=10000)
            assert window.composer.meter.text() == f"11 / {LIMIT:,} tokens"
            assert watch.usage is not None
            assert watch.usage.used == 11
            assert watch.dropped == 1
            assert window.shown.conversation_id == second
        finally:
            release.set()
            close_window(qtbot, window)


def test_nothing_is_counted_after_the_watch_is_closed(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    # At shutdown the watch closes first; a reply stopped after it shows its conversation again, and the count
    # that started then ran on a loop that was gone ("There is no current event loop", a coroutine never
    # awaited).
    add_conversation(app_paths, "Open", 5)
    with running_standin("--reply", "Ok.") as server:
        endpoint = dataclasses.replace(server.endpoint(), max_model_len=LIMIT)
        window = open_window(qtbot, app_paths, lambda: endpoint)
        try:
            watch = window.context_watch
            assert watch is not None
            qtbot.waitUntil(lambda: watch.usage is not None and watch.usage.used > 0, timeout=10000)
            counts = watch.counts
            run(qtbot, watch.aclose())
            watch.set_tree(watch.tree)  # as a turn ending after the close does
            window.composer.editor.setPlainText("typed after the close")
            watch.refresh()
            assert not watch._timer.isActive()
            qtbot.wait(3 * context_watch.DEBOUNCE_MS)  # past when a count would have started
            assert watch.counts == counts
        finally:
            close_window(qtbot, window)
