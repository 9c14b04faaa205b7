"""Notifications: through the tray when it can show them, else the window's fallback, unless switched off."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from desktop.notifications import Level, Notification, Notifier, one_line
from engine import assets

pytestmark = pytest.mark.gui


def test_one_line_keeps_the_first_line_and_shortens_it() -> None:
    assert one_line("\n  Port 8000 is taken.  \nTraceback (most recent call last):") == "Port 8000 is taken."
    long = "word " * 100
    short = one_line(long, limit=40)
    assert len(short) == 40
    assert short.endswith("…")
    assert one_line("") == ""


def test_without_a_tray_the_fallback_gets_it(qtbot: QtBot) -> None:
    shown: list[tuple[str, str]] = []
    posted: list[Notification] = []
    notifier = Notifier(fallback=lambda title, message: shown.append((title, message)))
    notifier.posted.connect(posted.append)
    note = notifier.notify("Model ready", "alpha is ready to chat.\nignored second line")
    assert shown == [("Model ready", "alpha is ready to chat.")]
    assert note == Notification("Model ready", "alpha is ready to chat.", Level.INFO, "fallback")
    assert posted == [note]


def test_switched_off_nothing_is_shown_unless_always(qtbot: QtBot) -> None:
    shown: list[tuple[str, str]] = []
    notifier = Notifier(enabled=lambda: False, fallback=lambda t, m: shown.append((t, m)))
    assert notifier.notify("Model ready", "alpha").channel == "none"
    assert shown == []
    assert notifier.notify("Still running", "how to quit", always=True).channel == "fallback"
    assert shown == [("Still running", "how to quit")]


def test_with_nowhere_to_go_it_is_only_posted(qtbot: QtBot) -> None:
    posted: list[Notification] = []
    notifier = Notifier()
    notifier.posted.connect(posted.append)
    notifier.notify("Model failed to start", "alpha: port in use", Level.ERROR)
    assert [(n.level, n.channel) for n in posted] == [(Level.ERROR, "none")]


def test_a_hidden_tray_icon_is_not_used(qtbot: QtBot) -> None:
    icon = QSystemTrayIcon(QIcon(str(assets.tray_icon("ready"))))
    shown: list[str] = []
    notifier = Notifier(fallback=lambda t, m: shown.append(t))
    notifier.set_tray(icon)
    assert not icon.isVisible()  # no tray host offscreen: never shown
    assert notifier.notify("Model ready", "alpha").channel == "fallback"
    notifier.set_fallback(None)
    assert notifier.notify("Model ready", "alpha").channel == "none"
    assert shown == ["Model ready"]
