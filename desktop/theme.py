"""Looks that follow the system: light or dark from the palette, a small style sheet built from its colours.

The user's ``appearance.theme`` setting can force light or dark; "system" follows the desktop and changes
with it while the app runs.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme()
    if scheme != Qt.ColorScheme.Unknown:
        return scheme == Qt.ColorScheme.Dark
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def is_dark(theme: str) -> bool:
    """``theme``: "system", "light" or "dark"."""
    if theme == "dark":
        return True
    if theme == "light":
        return False
    return system_is_dark()


def apply(app: QApplication, theme: str) -> bool:
    """Ask Qt for the colour scheme ("system": follow the desktop); returns whether it is dark.

    The window applies :func:`style_sheet` to itself (and again when the scheme changes).
    """
    hints = app.styleHints()
    if theme == "dark":
        hints.setColorScheme(Qt.ColorScheme.Dark)
    elif theme == "light":
        hints.setColorScheme(Qt.ColorScheme.Light)
    else:
        hints.unsetColorScheme()
    return is_dark(theme)


def _mix(a: QColor, b: QColor, t: float) -> str:
    r = round(a.red() * (1 - t) + b.red() * t)
    g = round(a.green() * (1 - t) + b.green() * t)
    bl = round(a.blue() * (1 - t) + b.blue() * t)
    return f"#{r:02x}{g:02x}{bl:02x}"


def style_sheet(palette: QPalette, dark: bool) -> str:
    base = palette.color(QPalette.ColorRole.Base)
    window = palette.color(QPalette.ColorRole.Window)
    text = palette.color(QPalette.ColorRole.Text)
    accent = palette.color(QPalette.ColorRole.Highlight)
    user_bg = _mix(base, accent, 0.22 if dark else 0.10)
    reply_bg = _mix(base, window, 0.5)
    border = _mix(base, text, 0.18)
    muted = _mix(text, base, 0.45)
    failed = "#ff8a80" if dark else "#b3261e"
    ready = "#81c995" if dark else "#1e7b34"
    starting = "#fdd663" if dark else "#8a5a00"
    banner_bg = "#5c2b29" if dark else "#fdecea"
    return f"""
QFrame#userMessage {{ background: {user_bg}; border: 1px solid {border}; border-radius: 8px; }}
QFrame#assistantMessage {{ background: {reply_bg}; border: 1px solid {border}; border-radius: 8px; }}
QFrame#userMessage QTextBrowser, QFrame#assistantMessage QTextBrowser {{ background: transparent; }}
QWidget#transcriptInner {{ background: {base}; }}
QLabel#messageStats, QLabel#placeholder, QLabel#composerNotice {{ color: {muted}; }}
QLabel#serverState[state="failed"] {{ color: {failed}; font-weight: bold; }}
QLabel#serverState[state="ready"] {{ color: {ready}; }}
QLabel#serverState[state="starting"] {{ color: {starting}; }}
QFrame#errorBanner {{ background: {banner_bg}; border: 1px solid {failed}; border-radius: 6px; }}
QFrame#firstRun {{ border: 1px solid {border}; border-radius: 6px; }}
"""
