"""Help > About shows the version from the one place it is set (``engine.__version__``)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMainWindow
from pytestqt.qtbot import QtBot

import engine
from desktop.dialogs.about import about_text, show_about

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("does not support propagateSizeHints")]


def test_about_box_names_the_version_and_shows_the_icon(qtbot: QtBot) -> None:
    parent = QMainWindow()
    qtbot.addWidget(parent)
    box = show_about(parent)
    try:
        assert f"vLLM Desk {engine.__version__}" in box.text()
        assert box.text() == about_text()
        assert not box.iconPixmap().isNull()
        assert box.windowTitle() == "About vLLM Desk"
    finally:
        box.close()
