"""The small defects a new user met, each through the window: Preferences put a whole-profile error under the
field it is about, in the label's words; the pin is drawn, not an emoji; name dialogs are wide; the context
meter's numbers sit beside its bar; the message box keeps its font after OK in Preferences; the title bar
follows the chat's name; Copy says it copied; search snippets are words, not Markdown; expanded reasoning
looks apart from the answer."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from desktop.widgets.markdown_view import SafeBrowser
from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import fixture_window, open_window, replies
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import Standin, running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
REPLY = "Here:\n\n```python\nprint('hi')\n```\n\nDone."


@pytest.fixture
def server() -> Iterator[Standin]:
    with running_standin("--reply", REPLY, "--reasoning", "Thinking about printing.") as standin:
        yield standin


@pytest.fixture
def window(
    request: pytest.FixtureRequest, qtbot: Any, app_paths: AppPaths, server: Standin
) -> Iterator[MainWindow]:
    store = HistoryStore(app_paths.history_db)
    pinned = store.create_conversation(title="Pinned one")
    store.update_conversation(pinned.id, pinned=True)
    fish = store.create_conversation(title="Birds")
    store.add_message(fish.id, None, "user", "Do **pelicans** eat `fish` and _crabs_?")
    store.close()
    win = open_window(qtbot, app_paths, server.endpoint, size=(1100, 720))
    with fixture_window(request, qtbot, win):
        yield win


def send(qtbot: Any, window: MainWindow, text: str) -> None:
    window.composer.editor.setFocus()
    qtbot.keyClicks(window.composer.editor, text)
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: bool(replies(window)) and replies(window)[-1].data.state == "complete", timeout=20000
    )


def test_a_whole_profile_error_shows_under_its_field_in_the_label_s_words(
    qtbot: Any, window: MainWindow
) -> None:
    dialog = window.open_preferences()
    dialog.show_page("Server profiles")
    form = dialog.profiles_page.form
    kind = form.rows["kind"].editor
    kind.setCurrentIndex(kind.findText("remote"))  # a remote profile without its URL
    qtbot.waitUntil(lambda: bool(form.errors), timeout=2000)
    assert form.errors == {"base_url": "a remote profile needs a URL"}
    assert form.rows["base_url"].error.isVisible()
    assert not form.rows["name"].error.text()
    dialog.reject()


def test_the_pin_is_drawn_not_an_emoji(window: MainWindow) -> None:
    model = window.sidebar.model
    row = next(i for i, c in enumerate(model.conversations()) if c.pinned)
    text = model.data(model.index(row, 0))
    assert text == "Pinned one"
    assert all(unicodedata.category(ch) != "So" for ch in text)
    assert not model.data(model.index(row, 0), Qt.ItemDataRole.DecorationRole).isNull()
    other = next(i for i, c in enumerate(model.conversations()) if not c.pinned)
    assert model.data(model.index(other, 0), Qt.ItemDataRole.DecorationRole) is None


def test_rename_folder_and_tags_dialogs_are_wide_enough(qtbot: Any, window: MainWindow) -> None:
    conversation = window.sidebar.model.conversations()[0].id
    for ask in (
        lambda: window.conversations.rename(conversation),
        lambda: window.sidebar.ask_folder([conversation]),
        lambda: window.sidebar.ask_tags([conversation]),
    ):
        ask()
        qtbot.waitUntil(lambda: window.sidebar.name_dialog is not None, timeout=2000)
        dialog = window.sidebar.name_dialog
        qtbot.waitUntil(dialog.isVisible, timeout=2000)
        assert dialog.width() >= 420, dialog.windowTitle()
        dialog.reject()
        qtbot.waitUntil(lambda: window.sidebar.name_dialog is None, timeout=2000)


def test_the_context_meter_s_numbers_sit_beside_its_bar_on_one_line(qtbot: Any, window: MainWindow) -> None:
    composer = window.composer
    composer.set_context(123_456, 131_072, exact=False)
    qtbot.wait(20)
    label, bar = composer.meter_label, composer.meter
    assert label.text() == "~123,456 / 131,072 tokens"
    assert not bar.isTextVisible()
    assert not label.geometry().intersects(bar.geometry())
    assert label.width() >= label.sizeHint().width()  # not cut
    assert label.height() < 2 * label.fontMetrics().lineSpacing()  # not wrapped


def test_the_message_box_keeps_its_font_after_ok_in_preferences(qtbot: Any, window: MainWindow) -> None:
    editor = window.composer.editor
    before = (editor.fontInfo().pixelSize(), editor.font().pointSize())
    assert editor.font().pointSize() == window.settings.settings.appearance.font_size
    for _ in range(2):
        dialog = window.open_preferences()
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        qtbot.waitUntil(lambda d=dialog: not d.isVisible(), timeout=5000)
        qtbot.wait(20)
        assert (editor.fontInfo().pixelSize(), editor.font().pointSize()) == before


def test_the_title_bar_follows_the_chat_s_name(qtbot: Any, window: MainWindow) -> None:
    window.new_chat()
    assert window.windowTitle() == "New chat — vLLM Desk"
    send(qtbot, window, "Sorting dicts in Python")
    qtbot.waitUntil(lambda: window.windowTitle() == "Sorting dicts in Python — vLLM Desk", timeout=5000)


def test_copy_and_copy_code_say_what_they_copied(qtbot: Any, window: MainWindow) -> None:
    window.new_chat()
    send(qtbot, window, "Show me code")
    reply = replies(window)[-1]
    qtbot.mouseClick(reply.copy_button, Qt.MouseButton.LeftButton)
    assert reply.copy_button.text() == "Copied"
    assert window.server_status.currentMessage() == "Message copied to the clipboard"
    assert QGuiApplication.clipboard().text() == REPLY
    qtbot.waitUntil(lambda: reply.copy_button.text() == "Copy", timeout=5000)
    piece = next(p for p in reply.findChildren(SafeBrowser) if "desk-copy:" in p.toHtml())
    piece.anchorClicked.emit(QUrl("desk-copy:0"))  # the "Copy code" link under the block
    assert QGuiApplication.clipboard().text() == "print('hi')\n"
    assert window.server_status.currentMessage() == "Code copied to the clipboard"


def test_search_snippets_are_words_not_markdown(qtbot: Any, window: MainWindow) -> None:
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(window.sidebar.search_box, "pelicans")
    qtbot.waitUntil(lambda: window.sidebar.searching and window.sidebar.results.rowCount() == 1, timeout=5000)
    shown = window.sidebar.results.data(window.sidebar.results.index(0, 0))
    assert "Do pelicans eat fish and crabs?" in shown
    assert not any(mark in shown for mark in ("**", "`", "_crabs_"))


def test_expanded_reasoning_looks_apart_from_the_answer(qtbot: Any, window: MainWindow) -> None:
    window.new_chat()
    send(qtbot, window, "Print something")
    reply = replies(window)[-1]
    qtbot.mouseClick(reply.reasoning_button, Qt.MouseButton.LeftButton)
    view = reply.reasoning_view
    qtbot.waitUntil(view.isVisible, timeout=2000)
    QApplication.processEvents()
    answer = next(p for p in reply.findChildren(SafeBrowser) if p is not view and p.isVisible())
    reasoning_colour = view.palette().color(QPalette.ColorRole.Text)
    answer_colour = answer.palette().color(QPalette.ColorRole.Text)
    assert reasoning_colour != answer_colour  # muted
    assert view.font().italic()
    assert not answer.font().italic()
    image = view.grab().toImage()
    edge = QColor(image.pixel(1, image.height() // 2))
    inside = QColor(image.pixel(image.width() // 2, 2))
    assert edge != inside  # a bar down its left side
