"""Keyboard and per-chat settings: Tab from the message box goes Send → the conversation and each message's
actions → the sidebar → Server log and round again, every stop visible (no stop on message text); the chat
settings panel sets this chat's system prompt and temperature (also for a new chat, before its first
message), and the next request carries them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractButton, QApplication, QWidget

from desktop.widgets.markdown_view import SafeBrowser
from desktop.window.main_window import MainWindow
from engine.chat.generation import GenerationSettings
from engine.chat.request import request_messages
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import fixture_window, open_window, replies
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import Standin, running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


@pytest.fixture
def server() -> Iterator[Standin]:
    with running_standin("--reply", "Bonjour.") as standin:
        yield standin


@pytest.fixture
def window(
    request: pytest.FixtureRequest, qtbot: Any, app_paths: AppPaths, server: Standin
) -> Iterator[MainWindow]:
    store = HistoryStore(app_paths.history_db)
    conversation = store.create_conversation(title="Chat", settings={"top_p": 0.9})
    user = store.add_message(conversation.id, None, "user", "Hello")
    store.add_message(
        conversation.id, user.id, "assistant", "Hi, **friend**.\n\nA [link](https://x.org).", state="complete"
    )
    store.close()
    win = open_window(qtbot, app_paths, server.endpoint, size=(1100, 700))
    qtbot.waitUntil(lambda: len(win.transcript.messages()) == 2, timeout=5000)
    # A message widget added to the shown transcript is shown on the loop's next turn (a hidden one is no Tab
    # stop), and the window's activation arrives as an event: focus goes nowhere before it.
    qtbot.waitUntil(lambda: all(m.isVisible() for m in win.transcript.messages()), timeout=5000)
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    with fixture_window(request, qtbot, win):
        yield win


def name(widget: QWidget | None) -> str:
    if widget is None:
        return "nothing"
    text = widget.text() if isinstance(widget, QAbstractButton) else ""
    label = widget.accessibleName() or type(widget).__name__
    return f"{label}:{text}" if text else label


def tab_round(qtbot: Any, window: MainWindow, key: Any = Qt.Key.Key_Tab) -> list[str]:
    start = window.composer.editor
    seen = [name(start)]
    for _ in range(30):
        focused = QApplication.focusWidget()
        assert focused is not None
        qtbot.keyClick(focused, key)
        focused = QApplication.focusWidget()
        assert not isinstance(focused, SafeBrowser)  # message text is never a stop
        if focused is start:
            return seen
        seen.append(name(focused))
    raise AssertionError(f"Tab never came back to the message box: {seen}")


def test_tab_goes_round_the_window_in_a_useful_order(qtbot: Any, window: MainWindow) -> None:
    window.composer.editor.setFocus()
    qtbot.keyClicks(window.composer.editor, "draft")  # Send is enabled with text
    forward = tab_round(qtbot, window)
    assert forward == [
        "Message",
        "Send message:Send",
        "Conversation",
        "Copy message:Copy",
        "Edit message and resend:Edit",
        "Delete this message and the replies under it:Delete",
        "Copy message:Copy",
        "Regenerate reply:Regenerate",
        "Delete this message and the replies under it:Delete",
        "New chat:New chat",
        "Search conversations",
        "Conversations",
        "Open the server log:Server log",
    ]
    backward = tab_round(qtbot, window, Qt.Key.Key_Backtab)
    assert backward == [forward[0], *reversed(forward[1:])]
    # Focus is visible where it lands: a message's button and the conversation get a frame in the accent.
    accent = window.palette().color(QPalette.ColorRole.Highlight).rgb()
    for widget in (replies(window)[0].copy_button, window.transcript):
        widget.setFocus(Qt.FocusReason.TabFocusReason)
        qtbot.waitUntil(widget.hasFocus, timeout=2000)
        qtbot.wait(20)
        image = widget.grab().toImage()
        framed = [image.pixel(x, image.height() // 2) == accent for x in range(4)]
        assert any(framed), name(widget)


def test_chat_settings_set_this_chat_s_system_prompt_and_temperature(
    qtbot: Any, window: MainWindow, app_paths: AppPaths
) -> None:
    conversation = window.conversation_id
    assert conversation is not None
    qtbot.keyClick(
        window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    panel = window.chat_settings
    qtbot.waitUntil(panel.isVisible, timeout=2000)
    assert panel.width() >= panel.minimumWidth() > 0  # really there, not a collapsed splitter pane
    assert panel.geometry().right() <= window.width()
    qtbot.waitUntil(panel.system_edit.hasFocus, timeout=2000)
    assert panel.temperature.text() == "model default"
    qtbot.keyClicks(panel.system_edit, "Answer in French.")
    panel.temperature.setValue(0.7)
    assert panel.apply_button.isEnabled()
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.apply_button.isEnabled(), timeout=5000)

    tree = run(qtbot, window.store.load(conversation))
    settings = GenerationSettings.parse(tree.conversation.settings)
    assert tree.conversation.system_prompt == "Answer in French."
    assert settings.temperature == 0.7
    assert settings.top_p == 0.9  # the rest of the chat's settings stay
    # What the next turn sends: the system prompt first, the temperature in the request.
    assert request_messages(tree.conversation, list(tree.branch()), settings)[0] == (
        "system",
        "Answer in French.",
    )
    assert settings.to_generation_kwargs()["temperature"] == 0.7

    # Another chat and back: the panel shows each chat's own settings.
    window.new_chat()
    assert panel.system_edit.toPlainText() == ""
    window.open_conversation(conversation)
    qtbot.waitUntil(lambda: panel.system_edit.toPlainText() == "Answer in French.", timeout=5000)
    assert panel.temperature.value() == pytest.approx(0.7)


def test_chat_settings_of_a_new_chat_go_into_the_chat_its_first_message_makes(
    qtbot: Any, window: MainWindow
) -> None:
    window.new_chat()
    window.chat_settings_action.trigger()
    panel = window.chat_settings
    assert panel.isVisible()
    panel.system_edit.setPlainText("You are terse.")
    panel.temperature.setValue(0.3)
    window.composer.editor.setFocus()
    qtbot.keyClicks(window.composer.editor, "Hi")
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: bool(replies(window)) and replies(window)[-1].data.state == "complete", timeout=20000
    )
    assert window.conversation_id is not None
    tree = run(qtbot, window.store.load(window.conversation_id))
    settings = GenerationSettings.parse(tree.conversation.settings)
    assert (settings.system_prompt, settings.temperature) == ("You are terse.", 0.3)
    qtbot.waitUntil(lambda: panel.system_edit.toPlainText() == "You are terse.", timeout=5000)
