"""The chat font size (Preferences > Appearance) is what the message box and the messages show from the start,
and OK in Preferences changes nothing when it was not changed.

Issue 21, 9e: "the message box font grows after pressing OK in Preferences". The box's own font was right, but
under the window's style sheet Qt did not hand a ``setFont`` on the box to its viewport, which draws the
placeholder ("Write a message…"): that stayed at the desktop's size until OK applied the sheet again, and then
grew. The messages' text never got the size at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from desktop.widgets.markdown_view import SafeBrowser
from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import fixture_window, open_window
from tests.support.qasync_loop import qloop  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


@pytest.fixture
def window(request: Any, qtbot: Any, app_paths: AppPaths) -> Iterator[MainWindow]:
    store = HistoryStore(app_paths.history_db)
    try:
        conversation = store.create_conversation(title="Fonts")
        user = store.add_message(conversation.id, None, "user", "Hello")
        store.add_message(conversation.id, user.id, "assistant", "Hi! **How** can I help?", state="complete")
    finally:
        store.close()
    with fixture_window(request, qtbot, open_window(qtbot, app_paths)) as shown:
        # Shown, not only made: a message added to the shown transcript is shown on the loop's next turn.
        qtbot.waitUntil(
            lambda: (
                len(shown.transcript.messages()) == 2
                and all(m.isVisible() for m in shown.transcript.messages())
            ),
            timeout=5000,
        )
        yield shown


def shown_sizes(window: MainWindow) -> dict[str, float]:
    """The point sizes the chat is drawn in: the message box's placeholder and typed text, each message."""
    editor = window.composer.editor
    sizes = {
        "placeholder": editor.viewport().font().pointSizeF(),
        "typed": editor.document().defaultFont().pointSizeF(),
    }
    for message in window.transcript.messages():
        piece = next(p for p in message.findChildren(SafeBrowser) if p.isVisible())
        sizes[message.data.role] = piece.document().defaultFont().pointSizeF()
    return sizes


def press_ok(qtbot: Any, window: MainWindow) -> None:
    dialog = window.open_preferences()
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    qtbot.wait(20)


def test_the_chat_is_drawn_at_the_chosen_size_from_the_start_and_ok_changes_nothing(
    qtbot: Any, window: MainWindow
) -> None:
    points = window.settings.settings.appearance.font_size
    assert points == 11
    everything = {"placeholder": 11.0, "typed": 11.0, "user": 11.0, "assistant": 11.0}
    assert shown_sizes(window) == everything
    for _ in range(2):
        press_ok(qtbot, window)
        assert shown_sizes(window) == everything


def test_a_new_size_reaches_the_message_box_and_every_message(qtbot: Any, window: MainWindow) -> None:
    current = window.settings.settings
    window.settings.update(
        current.model_copy(update={"appearance": current.appearance.model_copy(update={"font_size": 14})})
    )
    qtbot.waitUntil(lambda: shown_sizes(window)["placeholder"] == 14.0, timeout=5000)
    assert shown_sizes(window) == {"placeholder": 14.0, "typed": 14.0, "user": 14.0, "assistant": 14.0}
    press_ok(qtbot, window)
    assert set(shown_sizes(window).values()) == {14.0}
