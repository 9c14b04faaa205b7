"""The chat's look, through a real window: the user's words in bubbles on the right and replies full width;
a message's actions drawn on hover and on keyboard focus only (still Tab stops); code blocks with a header
whose Copy says "Copied"; one rounded composer field; light and dark themes that follow the system, with an
icon set for each. Screenshots of both themes at three sizes go to /tmp/vllm-desk-shots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QEnterEvent, QGuiApplication, QImage, QPalette, QTextCursor
from PySide6.QtWidgets import QApplication, QWidget

from desktop import theme
from desktop.widgets.markdown_view import SafeBrowser
from desktop.widgets.transcript import MessageWidget
from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.main_window import fixture_window, open_window, replies
from tests.support.qasync_loop import qloop  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SHOTS = Path("/tmp/vllm-desk-shots")
QUESTION = "How do I sort a dict by value in Python?"
ANSWER = (
    "Use `sorted()` with a key that reads the value:\n\n"
    "```python\nprices = {'apple': 3, 'pear': 1, 'fig': 2}\n"
    "by_price = dict(sorted(prices.items(), key=lambda item: item[1]))\n```\n\n"
    "For the largest first, pass `reverse=True`. A few points:\n\n"
    "- `sorted()` returns a new list of pairs; `dict()` turns it back into a dict.\n"
    "- Dicts keep insertion order (Python 3.7+), so the result stays sorted.\n"
)


def seed(paths: AppPaths) -> int:
    store = HistoryStore(paths.history_db)
    try:
        older = store.create_conversation(title="Trip to Lisbon: a three-day plan")
        store.add_message(older.id, None, "user", "Plan three days in Lisbon")
        store.update_conversation(older.id, pinned=True)
        conversation = store.create_conversation(title="Sorting a dict by value")
        user = store.add_message(conversation.id, None, "user", QUESTION)
        store.add_message(conversation.id, user.id, "assistant", ANSWER, state="complete", model="Qwen3-8B")
        short = store.add_message(
            conversation.id, store.load(conversation.id).branch()[-1].id, "user", "Thanks!"
        )
        store.add_message(conversation.id, short.id, "assistant", "You're welcome.", state="complete")
    finally:
        store.close()
    return conversation.id


@pytest.fixture
def window(request: Any, qtbot: Any, app_paths: AppPaths) -> Iterator[MainWindow]:
    conversation = seed(app_paths)
    with fixture_window(request, qtbot, open_window(qtbot, app_paths, size=(1280, 800))) as shown:
        shown.open_conversation(conversation)
        qtbot.waitUntil(lambda: len(shown.transcript.messages()) == 4, timeout=5000)
        settle(qtbot)
        yield shown


def settle(qtbot: Any) -> None:
    for _ in range(4):
        QApplication.processEvents()
        qtbot.wait(20)


def painted(widget: QWidget) -> bool:
    """Whether anything but one flat colour is drawn where ``widget`` is (in its parent's picture, so a
    widget that paints nothing shows the background behind it)."""
    parent = widget.parentWidget()
    assert parent is not None
    image: QImage = parent.grab(widget.geometry()).toImage()
    first = image.pixel(0, 0)
    return any(image.pixel(x, y) != first for x in range(image.width()) for y in range(image.height()))


def hover(message: MessageWidget, inside: bool) -> None:
    if inside:
        point = QPointF(5, 5)
        QApplication.sendEvent(message, QEnterEvent(point, point, QPointF(message.mapToGlobal(QPoint(5, 5)))))
    else:
        from PySide6.QtCore import QEvent

        QApplication.sendEvent(message, QEvent(QEvent.Type.Leave))


def test_the_user_s_words_are_bubbles_on_the_right_and_replies_are_full_width(
    qtbot: Any, window: MainWindow
) -> None:
    view = window.transcript.viewport()
    user, reply, thanks, _ = window.transcript.messages()
    assert (user.data.role, reply.data.role, thanks.data.role) == ("user", "assistant", "user")
    bubble, short = user._bubble, thanks._bubble
    assert bubble is not None
    assert short is not None
    assert reply._bubble is None
    assert bubble.objectName() == "userBubble"

    def left(w: QWidget) -> int:
        return w.mapTo(view, QPoint(0, 0)).x()

    def right(w: QWidget) -> int:
        return w.mapTo(view, QPoint(w.width(), 0)).x()

    text = next(p for p in reply.findChildren(SafeBrowser) if p.isVisible())
    # Same right edge for bubbles and replies; a bubble starts well right of the reply's left edge.
    assert abs(right(bubble) - right(text)) <= 4
    assert left(bubble) > left(text) + 100
    assert left(short) > left(bubble)  # a short message is a short bubble
    assert short.width() < text.width() / 3
    # Replies are unframed; the user's bubble has a background of its own.
    image = window.transcript.viewport().grab().toImage()
    background = window.palette().color(QPalette.ColorRole.Base)
    inside_bubble = bubble.mapTo(view, QPoint(4, bubble.height() // 2))
    assert QColor(image.pixel(inside_bubble)) != background
    beside_reply = text.mapTo(view, QPoint(text.width() - 3, 3))
    assert QColor(image.pixel(beside_reply)) == background


def test_actions_are_drawn_on_hover_and_on_keyboard_focus_only(qtbot: Any, window: MainWindow) -> None:
    reply = replies(window)[0]
    buttons = [b for b in reply.action_buttons() if not b.isHidden()]
    assert [b.accessibleName() for b in buttons] == [
        "Copy message",
        "Regenerate reply",
        "Delete this message and the replies under it",
    ]
    assert all(b.isVisible() for b in buttons)  # in the layout and Tab's order all the time
    assert not reply.revealed
    assert not any(painted(b) for b in buttons)
    hover(reply, True)
    assert reply.revealed
    settle(qtbot)
    assert all(painted(b) for b in buttons)
    hover(reply, False)
    settle(qtbot)
    assert not reply.revealed
    assert not any(painted(b) for b in buttons)
    # Keyboard: Tab from the conversation reaches the first message's actions, and a focused action's
    # message shows them.
    first = window.transcript.messages()[0]
    window.transcript.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(window.transcript.hasFocus, timeout=2000)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is first.copy_button, timeout=2000)
    assert first.revealed
    settle(qtbot)
    assert painted(first.copy_button)
    assert painted(first.edit_button)
    qtbot.keyClick(first.copy_button, Qt.Key.Key_Space)
    assert QGuiApplication.clipboard().text() == QUESTION
    # Focus moves on to the next message: the first hides its actions, the next shows its own.
    for _ in range(3):  # Edit, Delete, then the reply's Copy
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is reply.copy_button, timeout=2000)
    assert reply.revealed
    assert not first.revealed


def test_a_code_block_has_a_header_whose_copy_says_copied(qtbot: Any, window: MainWindow) -> None:
    reply = replies(window)[0]
    piece = next(p for p in reply.findChildren(SafeBrowser) if "desk-copy:0" in p.toHtml())
    lines = piece.toPlainText().splitlines()
    header = lines.index("python")  # the header's cells: the language, then Copy; the code below them
    assert lines[header + 1] == "Copy code"
    assert lines[header + 2].startswith("prices = ")
    cell = piece.document().findBlock(piece.toPlainText().index("Copy code"))
    language = piece.document().findBlock(piece.toPlainText().index("python\n"))
    assert piece.cursorRect(QTextCursor(cell)).top() == piece.cursorRect(QTextCursor(language)).top()
    piece.anchorClicked.emit(QUrl("desk-copy:0"))
    assert QGuiApplication.clipboard().text().startswith("prices = {")
    assert "Copied" in piece.toPlainText()
    assert "Copy code" not in piece.toPlainText()
    assert "desk-copy:0" in piece.toHtml()  # still the link: it can be clicked again
    qtbot.waitUntil(lambda: "Copy code" in piece.toPlainText(), timeout=5000)


def test_the_composer_is_one_field_with_send_and_stop_in_one_place(qtbot: Any, window: MainWindow) -> None:
    composer = window.composer
    field = composer.field
    assert composer.editor.parentWidget() is field
    assert composer.send_button.parentWidget() is field
    assert composer.send_button.isVisible()
    assert not composer.stop_button.isVisible()
    send_at = composer.send_button.geometry()
    composer.set_busy(True)
    settle(qtbot)
    assert composer.stop_button.isVisible()
    assert not composer.send_button.isVisible()
    assert composer.stop_button.geometry() == send_at
    composer.set_busy(False)
    # Attach waits for the documents feature to handle it: hidden until then, and says what it does.
    assert composer.attach_button.isHidden()
    assert composer.attach_button.accessibleName() == "Attach documents"
    composer.set_attach_enabled(True)
    with qtbot.waitSignal(composer.attach_requested, timeout=1000):
        qtbot.mouseClick(composer.attach_button, Qt.MouseButton.LeftButton)
    composer.editor.setFocus()
    qtbot.waitUntil(composer.editor.hasFocus, timeout=2000)
    assert field.property("focused") is True


def test_the_theme_follows_the_system_palette_and_each_has_its_icons(qtbot: Any, window: MainWindow) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    assert window.settings.settings.appearance.theme == "system"
    system = app.palette()
    light_base = window.palette().color(QPalette.ColorRole.Base).name()
    assert light_base == theme.LIGHT.chat
    icon_before = window.preferences_action.icon().pixmap(24, 24).toImage()
    dark_system = QPalette(system)
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
        dark_system.setColor(role, QColor("#202020"))
    try:
        app.setPalette(dark_system)  # the desktop went dark
        qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Base).name() == theme.DARK.chat)
        assert window.transcript.cache.renderer.dark
        assert "#272822" in replies(window)[0].findChildren(SafeBrowser)[0].toHtml()  # dark code colours
        icon_after = window.preferences_action.icon().pixmap(24, 24).toImage()
        assert icon_after != icon_before  # the dark set's light strokes
        shoot(window, "dark")
    finally:
        app.setPalette(system)
    qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Base).name() == theme.LIGHT.chat)
    assert not window.transcript.cache.renderer.dark


def test_dark_chosen_on_a_light_desktop_darkens_what_is_made_later(qtbot: Any, window: MainWindow) -> None:
    current = window.settings.settings
    window.settings.update(
        current.model_copy(update={"appearance": current.appearance.model_copy(update={"theme": "dark"})})
    )
    qtbot.waitUntil(lambda: window.palette().color(QPalette.ColorRole.Base).name() == theme.DARK.chat)
    assert not theme.system_is_dark()  # the desktop: light (the application's palette is the theme's now)
    user = window.transcript.messages()[0]
    editor = user.begin_edit()  # a field made after the theme was applied
    settle(qtbot)
    assert editor.viewport().grab().toImage().pixelColor(5, 5).lightness() < 80
    save = user.save_edit_button
    assert save is not None
    assert save.grab().toImage().pixelColor(save.width() // 2, 3).lightness() < 80
    user.end_edit()
    QApplication.styleHints().unsetColorScheme()


def shoot(window: MainWindow, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size in ((1280, 800), (800, 600), (1366, 768)):
        window.resize(*size)
        for _ in range(4):
            QApplication.processEvents()
        window.grab().save(str(SHOTS / f"look-{name}-{size[0]}x{size[1]}.png"))


def test_light_screenshots(qtbot: Any, window: MainWindow) -> None:
    replies(window)[0].update_revealed()
    shoot(window, "light")
    assert (SHOTS / "look-light-800x600.png").is_file()


@pytest.mark.parametrize("dark", [False, True])
def test_every_icon_has_a_light_and_a_dark_drawing(qapp: Any, dark: bool) -> None:
    names = {
        *theme.ACTION_ICONS.values(),
        "copy",
        "check",
        "edit",
        "regenerate",
        "delete",
        "previous",
        "next",
    }
    names |= {"send", "stop", "attach", "import", "export"}
    for name in sorted(names):
        path = theme.icon_path(name, dark)
        assert path.is_file(), path
        assert not theme.icon(name, dark).pixmap(16, 16).isNull(), name
    light = theme.icon("copy", False).pixmap(24, 24).toImage()
    drawn = theme.icon("copy", True).pixmap(24, 24).toImage()
    strokes = [
        (light.pixelColor(x, y).lightness(), drawn.pixelColor(x, y).lightness())
        for x in range(24)
        for y in range(24)
        if light.pixelColor(x, y).alpha() == 255
    ]
    assert strokes
    assert all(dark_stroke > light_stroke for light_stroke, dark_stroke in strokes)
