"""File > Export… from the window: the file is named after the chat, the system prompt the chat was answered
with (a preset's, kept in its settings) is in the Markdown, HTML and PDF, and a PDF's code block is shaded
as one block, not line by line."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QDialogButtonBox

from desktop.export_pdf import print_document
from desktop.window.main_window import MainWindow
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.transfer import history_adapter
from engine.transfer.html_format import PRINT_CODE_BACKGROUND, render_html
from tests.support.main_window import fixture_window, open_window
from tests.support.qasync_loop import qloop, run  # noqa: F401 - qloop is a fixture

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SYSTEM = "You are a patient pirate who explains Python."
CODE = "\n".join(f"line_{i} = {i}  # arr" for i in range(12))
REPLY = f"Arr, here:\n\n```python\n{CODE}\n```\n\nThat be all."


@pytest.fixture
def window(
    request: pytest.FixtureRequest, qtbot: Any, app_paths: AppPaths, tmp_path: Path
) -> Iterator[MainWindow]:
    store = HistoryStore(app_paths.history_db)
    # As the window makes a new chat: the model's preset (with its system prompt) in the settings.
    conversation = store.create_conversation(
        title="Pirate lessons", settings={"system_prompt": SYSTEM, "temperature": 0.2}
    )
    user = store.add_message(conversation.id, None, "user", "Show me some code")
    store.add_message(conversation.id, user.id, "assistant", REPLY, state="complete")
    store.close()
    win = open_window(qtbot, app_paths)
    win.transfer.export_dir = tmp_path
    with fixture_window(request, qtbot, win):
        yield win


def export(qtbot: Any, window: MainWindow, fmt: str) -> Path:
    actions = window.transfer
    actions.dialog = None
    window.transfer.export_action.trigger()  # File > Export… (Ctrl+E): the shown conversation
    qtbot.waitUntil(lambda: actions.dialog is not None and actions.dialog.isVisible(), timeout=10000)
    dialog = actions.dialog
    dialog.format_box.setCurrentIndex(dialog.format_box.findData(fmt))
    target = Path(dialog.path_edit.text())
    with qtbot.waitSignal(actions.exported, timeout=20000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert target.exists()
    return target


def test_the_export_is_named_after_the_chat_and_keeps_its_system_prompt(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    qtbot.waitUntil(lambda: window.conversation_id is not None, timeout=5000)
    markdown = export(qtbot, window, "md")
    assert markdown.parent == tmp_path
    assert markdown.name.endswith("-pirate-lessons.md"), markdown.name
    text = markdown.read_text()
    assert "## System prompt" in text
    assert SYSTEM in text
    page = export(qtbot, window, "html")
    assert page.name.endswith("-pirate-lessons.html")
    assert SYSTEM in page.read_text()


@pytest.mark.tools
def test_the_pdf_export_keeps_the_system_prompt(qtbot: Any, window: MainWindow) -> None:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext (poppler-utils) is needed: make test installs it")
    qtbot.waitUntil(lambda: window.conversation_id is not None, timeout=5000)
    pdf = export(qtbot, window, "pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert SYSTEM in " ".join(text.split())


def test_a_pdf_code_block_is_shaded_as_one_block(qtbot: Any, window: MainWindow) -> None:
    # What the PDF writer lays out on the pages, drawn to an image: inside the code block, no unshaded
    # rows between its lines (the old <pre> background left a white stripe under every line).
    qtbot.waitUntil(lambda: window.conversation_id is not None, timeout=5000)
    tree = run(qtbot, window.store.export_tree(window.conversation_id))
    document = print_document(render_html(history_adapter.from_tree(tree), for_print=True))
    document.setTextWidth(600)
    assert SYSTEM in document.toPlainText()  # what the PDF writer lays out has the system prompt
    size = document.size().toSize()
    image = QImage(size, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    document.drawContents(painter, QRectF(0, 0, size.width(), size.height()))
    painter.end()
    shade = QColor(PRINT_CODE_BACKGROUND).rgb()
    columns = [
        x for x in range(size.width()) if any(image.pixel(x, y) == shade for y in range(size.height()))
    ]
    assert columns, "no shaded code block"
    x = columns[0] + 2  # the block's left padding: shaded, never text
    shaded = [y for y in range(size.height()) if image.pixel(x, y) == shade]
    top, bottom = shaded[0], shaded[-1]
    gaps = [y for y in range(top, bottom) if image.pixel(x, y) != shade]
    assert gaps == [], f"{len(gaps)} unshaded rows inside the code block"
    assert bottom - top > 12 * 8  # the whole block (12 lines) is one shaded area
