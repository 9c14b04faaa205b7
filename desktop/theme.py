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
    reasoning_bg = _mix(base, window, 0.8)  # expanded reasoning: set apart from the answer
    return f"""
QFrame#userMessage {{ background: {user_bg}; border: 1px solid {border}; border-radius: 8px; }}
QFrame#assistantMessage {{ background: {reply_bg}; border: 1px solid {border}; border-radius: 8px; }}
QFrame#userMessage QTextBrowser, QFrame#assistantMessage QTextBrowser {{ background: transparent; }}
QWidget#transcriptInner {{ background: {base.name()}; }}
QLabel#messageStats, QLabel#placeholder, QLabel#composerNotice {{ color: {muted}; }}
QFrame#firstRun {{ border: 1px solid {border}; border-radius: 6px; }}
QFrame#userMessage QToolButton:focus, QFrame#assistantMessage QToolButton:focus {{
  border: 2px solid {accent.name()}; border-radius: 4px; }}
QFrame#assistantMessage QTextBrowser#reasoning {{ color: {muted}; background: {reasoning_bg}; border: none;
  border-left: 3px solid {border}; padding-left: 6px; font-style: italic; }}
QScrollArea#transcript {{ border: 2px solid transparent; }}
QScrollArea#transcript:focus {{ border: 2px solid {accent.name()}; }}
"""


def _dark_palette(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def state_style(kind: str, palette: QPalette) -> str:
    """The server state's own style (set on the label itself: property selectors in the window's sheet are
    not re-evaluated reliably when the property changes)."""
    dark = _dark_palette(palette)
    colours = {
        "failed": ("#ff8a80" if dark else "#b3261e") + "; font-weight: bold",
        "ready": "#81c995" if dark else "#1e7b34",
        "starting": "#fdd663" if dark else "#8a5a00",
    }
    colour = colours.get(kind)
    return f"color: {colour};" if colour else ""


def banner_style(palette: QPalette) -> str:
    dark = _dark_palette(palette)
    background, border = ("#5c2b29", "#ff8a80") if dark else ("#fdecea", "#b3261e")
    return (
        f"QFrame#errorBanner {{ background: {background}; border: 1px solid {border}; border-radius: 6px; }}"
    )
