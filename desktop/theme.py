"""Looks that follow the system: light or dark, each a designed set of colours (not one inverted), an icon
set per theme (``resources/icons/{light,dark}``) and one style sheet built from the colours.

The user's ``appearance.theme`` setting can force light or dark; "system" follows the desktop and changes
with it while the app runs (:class:`SchemeWatcher`). The chosen colours are the application's palette
(:func:`apply_app`), so every window takes them: the dashboard, the server log, Preferences, About, message
boxes and input dialogs, not only the main window; the desktop's own palette, from before ours replaced it, is
kept to tell the system's light or dark where Qt reports no colour scheme. An application-level sheet
(:func:`app_sheet`) styles what the palette alone leaves plain in those windows (the main window has its own).

The chat's text size (the user's setting) is set by the sheet too, on the widgets that show the chat's
text (:func:`set_chat_font_size`), never with ``setFont``: under a style sheet Qt hands a ``setFont`` on a
container to its children by the sheet's own rules, so the message box's viewport (its placeholder) kept the
desktop's size until the next sheet (OK in Preferences) made it grow, and the messages' text never got it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QLayout, QWidget

from engine import assets


@dataclass(frozen=True)
class Colours:
    """One theme's colours (hex)."""

    chat: str  # the conversation and the composer's surroundings
    side: str  # the sidebar, menus, status bar
    surface: str  # fields: the composer, search box, combo boxes
    raised: str  # hovered rows and buttons
    border: str
    text: str
    muted: str
    accent: str
    accent_hover: str
    on_accent: str
    selection: str  # the sidebar's current chat
    bubble: str  # the user's messages
    bubble_text: str
    code: str  # a code block's body (MarkdownRenderer.code_background matches it)
    code_header: str
    focus: str
    good: str  # a server state that is fine (ready): text on chat/side, WCAG AA (4.5:1) in both themes
    busy: str  # starting, preparing, stopping
    bad: str  # failed
    chart_second: str  # a chart's second series (the accent draws the first)


LIGHT = Colours(
    chat="#ffffff",
    side="#f6f6f7",
    surface="#ffffff",
    raised="#ececef",
    border="#e0e0e4",
    text="#1b1b1f",
    muted="#6b6b76",
    accent="#2563eb",
    accent_hover="#1d4ed8",
    on_accent="#ffffff",
    selection="#e3e8f4",
    bubble="#eef1f6",
    bubble_text="#1b1b1f",
    code="#f4f4f6",
    code_header="#e8e8ec",
    focus="#2563eb",
    good="#1e7b34",
    busy="#8a5a00",
    bad="#b3261e",
    chart_second="#d9480f",
)
DARK = Colours(
    chat="#1f1f23",
    side="#17171a",
    surface="#2a2a2f",
    raised="#303036",
    border="#3a3a41",
    text="#e8e8ec",
    muted="#a0a0ab",
    accent="#3b82f6",
    accent_hover="#60a5fa",
    on_accent="#ffffff",
    selection="#2c3442",
    bubble="#2e3440",
    bubble_text="#eceff4",
    code="#151518",
    code_header="#26262c",
    focus="#3b82f6",
    good="#81c995",
    busy="#fdd663",
    bad="#ff8a80",
    chart_second="#fb923c",
)


def colours(dark: bool) -> Colours:
    return DARK if dark else LIGHT


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme()
    if scheme != Qt.ColorScheme.Unknown:
        return scheme == Qt.ColorScheme.Dark
    return _dark_palette(system_palette())


@dataclass
class _Applied:
    """What :func:`apply_app` set, and the desktop's palette from before it."""

    system: QPalette | None = None
    ours: QPalette | None = None
    dark: bool | None = None


_applied = _Applied()


def system_palette() -> QPalette:
    """The desktop's palette: the application's, unless it is still the one :func:`apply_app` set."""
    current = QGuiApplication.palette()
    if _applied.system is not None and current == _applied.ours:
        return _applied.system
    return current


def app_is_dark() -> bool:
    """Whether the application's colours (:func:`apply_app`) are the dark set; before it: the system's."""
    return _applied.dark if _applied.dark is not None else system_is_dark()


def apply_app(dark: bool) -> None:
    """The theme's palette and :func:`app_sheet` for the whole application (every window and dialog).

    Setting the palette again only when it changes: a new application palette is heard by
    :class:`SchemeWatcher` (the desktop's may have changed), which applies the theme again.
    """
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    current = app.palette()
    if current != _applied.ours or dark != _applied.dark:
        if current != _applied.ours:  # not ours: the desktop's (or the first time)
            _applied.system = QPalette(current)
        _applied.dark = dark
        app.setPalette(palette(dark))
        _applied.ours = QPalette(app.palette())
    sheet = app_sheet(dark)
    if app.styleSheet() != sheet:
        app.setStyleSheet(sheet)


def restore_system_look() -> None:
    """The desktop's own palette and no application sheet again (tests leave the application as found)."""
    app = QApplication.instance()
    if isinstance(app, QApplication) and _applied.system is not None:
        system = _applied.system
        _applied.system = _applied.ours = _applied.dark = None
        app.setPalette(system)
        app.setStyleSheet("")


def is_dark(theme: str) -> bool:
    """``theme``: "system", "light" or "dark"."""
    if theme == "dark":
        return True
    if theme == "light":
        return False
    return system_is_dark()


def apply(app: QApplication, theme: str) -> bool:
    """Ask Qt for the colour scheme ("system": follow the desktop); returns whether it is dark.

    The window applies :func:`style_window` to itself (and again when the scheme changes).
    """
    hints = app.styleHints()
    if theme == "dark":
        hints.setColorScheme(Qt.ColorScheme.Dark)
    elif theme == "light":
        hints.setColorScheme(Qt.ColorScheme.Light)
    else:
        hints.unsetColorScheme()
    return is_dark(theme)


class SchemeWatcher(QObject):
    """Says when the system's light or dark may have changed: Qt's colour-scheme hint, or a new application
    palette (desktops and platforms that report no scheme change the palette only). Several signals of one
    change come out as one :attr:`changed`."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.changed)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._timer.start)
        app = QGuiApplication.instance()
        # The signal, not an event filter on the application: that would see every event of every widget.
        if isinstance(app, QGuiApplication):
            app.paletteChanged.connect(self._timer.start)


def palette(dark: bool) -> QPalette:
    """The window's palette: what Qt's style paints with where the sheet says nothing."""
    c = colours(dark)
    p = QPalette()
    role = QPalette.ColorRole
    for r, value in (
        (role.Window, c.side),
        (role.WindowText, c.text),
        (role.Base, c.chat),
        (role.AlternateBase, c.side),
        (role.Text, c.text),
        (role.Button, c.surface),
        (role.ButtonText, c.text),
        (role.BrightText, "#ffffff"),
        (role.Highlight, c.accent),
        (role.HighlightedText, c.on_accent),
        (role.ToolTipBase, c.surface),
        (role.ToolTipText, c.text),
        (role.PlaceholderText, c.muted),
        (role.Link, c.accent_hover if dark else c.accent),
        (role.LinkVisited, c.accent_hover if dark else c.accent),
        (role.Light, c.raised),
        (role.Midlight, c.border),
        (role.Mid, c.border),
        (role.Dark, c.muted),
        (role.Shadow, "#000000"),
    ):
        p.setColor(r, QColor(value))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, QColor(c.muted))
    return p


@cache
def _icons_dir() -> Path:
    return assets.resources_dir() / "icons"


def icon_path(name: str, dark: bool) -> Path:
    """The SVG of icon ``name`` for the theme (``resources/icons/{light,dark}/name.svg``)."""
    return _icons_dir() / ("dark" if dark else "light") / f"{name}.svg"


@cache
def icon(name: str, dark: bool) -> QIcon:
    path = icon_path(name, dark)
    if not path.is_file():
        raise FileNotFoundError(path)
    return QIcon(str(path))


# The window's actions (attribute names) and their icons; a name the window does not have is left out.
ACTION_ICONS = {
    "new_action": "new-chat",
    "quit_action": "quit",
    "find_action": "search",
    "preferences_action": "settings",
    "stop_action": "stop-server",
    "regenerate_action": "regenerate",
    "rename_action": "rename",
    "pin_action": "pin",
    "delete_action": "delete",
    "chat_settings_action": "chat-settings",
    "start_action": "start",
    "stop_server_action": "stop-server",
    "log_action": "log",
    "dashboard_action": "dashboard",
    "about_action": "about",
}


CHAT_POINTS = "chatPoints"  # the window's property: the chat's font size (points), None: the desktop's
DARK_PROPERTY = "darkTheme"


def set_chat_font_size(window: QWidget, points: int) -> None:
    """The chat's text size (messages and the message box), through the window's sheet."""
    if window.property(CHAT_POINTS) != points:
        window.setProperty(CHAT_POINTS, points)
        window.setStyleSheet(style_sheet(window.palette(), bool(window.property(DARK_PROPERTY)), points))


def style_window(window: QWidget, dark: bool) -> None:
    """Colours, the style sheet and the icons of the window's actions, for light or dark (and the same colours
    for the whole application: :func:`apply_app`)."""
    apply_app(dark)
    window.setProperty(DARK_PROPERTY, dark)
    if window.palette() != (colours_now := palette(dark)):
        window.setPalette(colours_now)
    points = window.property(CHAT_POINTS)
    sheet = style_sheet(window.palette(), dark, points if isinstance(points, int) else None)
    if window.styleSheet() != sheet:  # a new sheet polishes every widget again (~10 ms): only on a change
        window.setStyleSheet(sheet)
    for attribute, name in ACTION_ICONS.items():
        action = getattr(window, attribute, None)
        if action is not None and hasattr(action, "setIcon"):
            action.setIcon(icon(name, dark))
    transfer = getattr(window, "transfer", None)
    for attribute, name in (("import_action", "import"), ("export_action", "export")):
        action = getattr(transfer, attribute, None) if transfer is not None else None
        if action is not None:
            action.setIcon(icon(name, dark))
    for part in ("sidebar", "composer", "transcript"):
        widget = getattr(window, part, None)
        set_icons = getattr(widget, "set_icons", None)
        if callable(set_icons):
            set_icons(dark)
    new_button = getattr(getattr(window, "sidebar", None), "new_button", None)
    if new_button is not None:
        new_button.setIcon(icon("new-chat", dark))


def style_sheet(_palette: QPalette, dark: bool, chat_points: int | None = None) -> str:
    c = colours(dark)
    chat_font = (
        "QScrollArea#transcript, QScrollArea#transcript QTextBrowser, QScrollArea#transcript QPlainTextEdit, "
        "QPlainTextEdit#composerEditor "
        f"{{ font-size: {chat_points}pt; }}"
        if chat_points
        else ""
    )
    arrow = icon_path("expand", dark).as_posix()
    up = icon_path("collapse", dark).as_posix()
    return (
        chat_font
        + f"""
QMainWindow#mainWindow {{ background: {c.chat}; }}
QSplitter QPlainTextEdit, QSplitter QLineEdit, QSplitter QSpinBox, QSplitter QDoubleSpinBox,
QSplitter QComboBox {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border};
  border-radius: 8px; padding: 4px 6px; selection-background-color: {c.accent};
  selection-color: {c.on_accent}; }}
QSplitter QPlainTextEdit:focus, QSplitter QLineEdit:focus, QSplitter QSpinBox:focus,
QSplitter QDoubleSpinBox:focus, QSplitter QComboBox:focus {{ border: 1px solid {c.focus}; }}
QSplitter QPushButton {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border};
  border-radius: 8px; padding: 5px 12px; }}
QSplitter QPushButton:hover {{ background: {c.raised}; }}
QSplitter QPushButton:focus {{ border: 1px solid {c.focus}; }}
QSplitter QPushButton:disabled {{ color: {c.muted}; }}
QMainWindow#mainWindow QSplitter::handle {{ background: {c.border}; }}
QMainWindow#mainWindow QSplitter::handle:horizontal {{ width: 1px; }}
QWidget#sidebar {{ background: {c.side}; }}
QWidget#sidebar QPushButton {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border};
  border-radius: 8px; padding: 7px 12px; text-align: left; }}
QWidget#sidebar QPushButton:hover {{ background: {c.raised}; }}
QWidget#sidebar QLineEdit, QWidget#sidebar QComboBox {{ background: {c.surface}; color: {c.text};
  border: 1px solid {c.border}; border-radius: 8px; padding: 5px 8px; }}
QWidget#sidebar QLineEdit:focus, QWidget#sidebar QComboBox:focus {{ border: 1px solid {c.focus}; }}
QWidget#sidebar QListView {{ background: {c.side}; border: none; outline: none; color: {c.text}; }}
QWidget#sidebar QListView::item {{ padding: 6px 8px; border-radius: 8px; }}
QWidget#sidebar QListView::item:hover {{ background: {c.raised}; }}
QWidget#sidebar QListView::item:selected {{ background: {c.selection}; color: {c.text}; }}
QWidget#sidebar QListView:focus {{ border: 1px solid {c.focus}; border-radius: 8px; }}
QWidget#modelPicker {{ background: {c.chat}; border-bottom: 1px solid {c.border}; }}
QWidget#modelPicker QComboBox {{ background: {c.chat}; color: {c.text}; border: 1px solid transparent;
  border-radius: 8px; padding: 4px 8px; font-weight: 600; }}
QWidget#modelPicker QComboBox:hover {{ background: {c.raised}; }}
QWidget#modelPicker QComboBox:focus {{ border: 1px solid {c.focus}; }}
QSplitter QComboBox::drop-down, QWidget#modelPicker QComboBox::drop-down,
QWidget#sidebar QComboBox::drop-down {{ border: none; width: 22px; }}
QSplitter QComboBox::down-arrow, QWidget#modelPicker QComboBox::down-arrow,
QWidget#sidebar QComboBox::down-arrow {{ image: url({arrow}); width: 14px; height: 14px; }}
QSplitter QSpinBox::up-button, QSplitter QDoubleSpinBox::up-button, QSplitter QSpinBox::down-button,
QSplitter QDoubleSpinBox::down-button {{ border: none; width: 18px; }}
QSplitter QSpinBox::up-arrow, QSplitter QDoubleSpinBox::up-arrow {{ image: url({up}); width: 12px;
  height: 12px; }}
QSplitter QSpinBox::down-arrow, QSplitter QDoubleSpinBox::down-arrow {{ image: url({arrow}); width: 12px;
  height: 12px; }}
QComboBox QAbstractItemView {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border};
  selection-background-color: {c.selection}; selection-color: {c.text}; outline: none; }}
QScrollArea#transcript, QWidget#transcriptInner {{ background: {c.chat}; }}
QScrollArea#transcript {{ border: 2px solid transparent; }}
QScrollArea#transcript:focus {{ border: 2px solid {c.focus}; }}
QFrame#userMessage, QFrame#assistantMessage {{ background: transparent; border: none; }}
QFrame#userBubble {{ background: {c.bubble}; border: none; border-radius: 16px; }}
QFrame#userBubble QTextBrowser {{ background: transparent; color: {c.bubble_text}; }}
QFrame#assistantMessage QTextBrowser {{ background: transparent; color: {c.text}; }}
QLabel#messageRole {{ color: {c.muted}; font-weight: 600; }}
QLabel#messageStats, QLabel#placeholder, QLabel#composerNotice, QLabel#branchLabel {{ color: {c.muted}; }}
QToolButton#messageAction {{ background: transparent; border: 1px solid transparent; border-radius: 6px;
  padding: 3px; color: {c.muted}; }}
QToolButton#messageAction:hover {{ background: {c.raised}; }}
QToolButton#messageAction:focus {{ border: 2px solid {c.focus}; }}
QToolButton#messageAction:disabled {{ background: transparent; }}
QToolButton#reasoningToggle {{ color: {c.muted}; border: none; padding: 2px 0; }}
QFrame#assistantMessage QTextBrowser#reasoning {{ color: {c.muted}; background: {c.side}; border: none;
  border-left: 3px solid {c.border}; padding-left: 8px; font-style: italic; }}
QPushButton#olderMessages, QPushButton#newerMessages {{ color: {c.accent}; border: none; }}
QWidget#composer {{ background: {c.chat}; }}
QFrame#composerField {{ background: {c.surface}; border: 1px solid {c.border}; border-radius: 18px; }}
QFrame#composerField[focused="true"] {{ border: 1px solid {c.focus}; }}
QPlainTextEdit#composerEditor {{ background: transparent; color: {c.text}; border: none; }}
QToolButton#sendButton, QToolButton#stopButton {{ background: {c.accent}; border: none;
  border-radius: 17px; }}
QToolButton#sendButton:hover, QToolButton#stopButton:hover {{ background: {c.accent_hover}; }}
QToolButton#sendButton:disabled {{ background: {c.border}; }}
QToolButton#sendButton:focus, QToolButton#stopButton:focus {{ border: 2px solid {c.text}; }}
QToolButton#attachButton {{ background: transparent; border: none; border-radius: 17px; }}
QToolButton#attachButton:hover {{ background: {c.raised}; }}
QToolButton#attachButton:focus {{ border: 2px solid {c.focus}; }}
QProgressBar#contextMeter {{ background: {c.raised}; border: none; border-radius: 3px; }}
QProgressBar#contextMeter::chunk {{ background: {c.accent}; border-radius: 3px; }}
QProgressBar#contextMeter[over="true"]::chunk {{ background: #d93025; }}
QFrame#firstRun {{ background: {c.side}; border: 1px solid {c.border}; border-radius: 12px; }}
QStatusBar {{ background: {c.side}; color: {c.muted}; border-top: 1px solid {c.border}; }}
QStatusBar QLabel {{ color: {c.muted}; }}
QStatusBar QToolButton, QStatusBar QPushButton {{ color: {c.text}; background: transparent; border: none;
  padding: 2px 8px; border-radius: 6px; }}
QStatusBar QToolButton:hover, QStatusBar QPushButton:hover {{ background: {c.raised}; }}
QMenuBar {{ background: {c.side}; color: {c.text}; }}
QMenuBar::item {{ padding: 4px 10px; background: transparent; border-radius: 6px; }}
QMenuBar::item:selected {{ background: {c.raised}; }}
QMenu {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border}; padding: 4px; }}
QMenu::item {{ padding: 5px 24px 5px 8px; border-radius: 6px; }}
QMenu::item:selected {{ background: {c.selection}; }}
QMenu::item:disabled {{ color: {c.muted}; }}
QMenu::separator {{ height: 1px; background: {c.border}; margin: 4px 6px; }}
QMenu::icon {{ padding-left: 6px; }}
QToolTip {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border}; padding: 4px; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 0; }}
QScrollBar::handle:vertical {{ background: {c.border}; border-radius: 4px; min-height: 32px; margin: 2px; }}
QScrollBar::handle:vertical:hover {{ background: {c.muted}; }}
QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: transparent; }}
"""
    )


def _dark_palette(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def state_colour(kind: str, dark: bool) -> str | None:
    """The colour of a server state's look (``desktop.server_states``: ready, starting, failed, stopped);
    ``None`` for a kind without one (the text's own colour)."""
    c = colours(dark)
    return {"ready": c.good, "starting": c.busy, "failed": c.bad, "stopped": c.muted}.get(kind)


def state_style(kind: str, palette: QPalette) -> str:
    """The server state's own style (set on the label itself: property selectors in the window's sheet are
    not re-evaluated reliably when the property changes)."""
    colour = state_colour(kind, _dark_palette(palette))
    if colour is None:
        return ""
    return f"color: {colour};" + (" font-weight: bold;" if kind == "failed" else "")


def banner_style(dark: bool, notice: bool = False) -> str:
    """The banner's look: red for a problem; for a notice (something done that can be undone) the calm
    colours of the app's own (the sidebar's current chat, framed in the accent)."""
    if notice:
        c = colours(dark)
        background, border = c.selection, c.accent
    else:
        background, border = ("#5c2b29", "#ff8a80") if dark else ("#fdecea", "#b3261e")
    return (
        f"QFrame#errorBanner {{ background: {background}; border: 1px solid {border}; border-radius: 8px; }}"
    )


def app_sheet(dark: bool) -> str:
    """The application's sheet: dialogs and the dashboard (the main window's own sheet styles the window).

    Only what the palette leaves plain or undesigned: rounded fields and buttons, the lists' frames, headers;
    menus made outside the window (the tray's) look like the window's.
    Apart from menus and tooltips (drawn as the window's), every rule is under a dialog or the dashboard, so
    the main window's widgets are not touched by it.
    """
    c = colours(dark)
    arrow = icon_path("expand", dark).as_posix()
    up = icon_path("collapse", dark).as_posix()
    check = icon_path("check", True).as_posix()  # light strokes, on the accent in both themes
    tops = ("QDialog", "QWidget#serverDashboard")

    def under(*selectors: str) -> str:
        return ", ".join(f"{top} {s}" for top in tops for s in selectors)

    fields = under("QLineEdit", "QPlainTextEdit", "QTextEdit", "QComboBox", "QSpinBox", "QDoubleSpinBox")
    lists = under("QListWidget", "QListView", "QTreeWidget", "QTreeView", "QTableView", "QTableWidget")
    buttons = under("QPushButton")
    return f"""
QDialog, QWidget#serverDashboard {{ background: {c.side}; color: {c.text}; }}
{fields} {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border}; border-radius: 6px;
  padding: 4px 6px; selection-background-color: {c.accent}; selection-color: {c.on_accent}; }}
{
        under(
            "QLineEdit:focus",
            "QPlainTextEdit:focus",
            "QTextEdit:focus",
            "QComboBox:focus",
            "QSpinBox:focus",
            "QDoubleSpinBox:focus",
        )
    } {{ border: 1px solid {c.focus}; }}
{
        under(
            "QSpinBox::up-button",
            "QDoubleSpinBox::up-button",
            "QSpinBox::down-button",
            "QDoubleSpinBox::down-button",
        )
    } {{ border: none; width: 18px; }}
{under("QSpinBox::up-arrow", "QDoubleSpinBox::up-arrow")} {{ image: url({up}); width: 12px; height: 12px; }}
{under("QSpinBox::down-arrow", "QDoubleSpinBox::down-arrow")} {{ image: url({arrow}); width: 12px;
  height: 12px; }}
{under("QLineEdit:disabled", "QComboBox:disabled", "QSpinBox:disabled")} {{ color: {c.muted}; }}
{under("QComboBox::drop-down")} {{ border: none; width: 22px; }}
{under("QComboBox::down-arrow")} {{ image: url({arrow}); width: 14px; height: 14px; }}
{buttons} {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border}; border-radius: 6px;
  padding: 5px 14px; min-width: 56px; }}
{under("QPushButton:hover")} {{ background: {c.raised}; }}
{under("QPushButton:focus")} {{ border: 1px solid {c.focus}; }}
{under("QDialogButtonBox QPushButton:default")} {{ background: {c.accent}; color: {c.on_accent};
  border: 1px solid {c.accent}; }}
{under("QDialogButtonBox QPushButton:default:hover")} {{ background: {c.accent_hover}; }}
{under("QPushButton:disabled")} {{ color: {c.muted}; background: {c.side}; }}
{lists} {{ background: {c.chat}; color: {c.text}; border: 1px solid {c.border}; border-radius: 6px;
  alternate-background-color: {c.side}; selection-background-color: {c.selection}; selection-color: {c.text};
  outline: none; }}
{under("QListWidget::item", "QListView::item")} {{ padding: 3px 6px; }}
QDialog QListWidget#pages {{ background: {c.side}; border: none; }}
QDialog QListWidget#pages::item:selected {{ background: {c.selection}; color: {c.text}; }}
{under("QCheckBox::indicator", "QRadioButton::indicator")} {{ width: 14px; height: 14px;
  background: {c.surface}; border: 1px solid {c.muted}; border-radius: 4px; }}
{under("QRadioButton::indicator")} {{ border-radius: 8px; }}
{under("QCheckBox::indicator:checked", "QRadioButton::indicator:checked")} {{ background: {c.accent};
  border: 1px solid {c.accent}; }}
{under("QCheckBox::indicator:checked")} {{ image: url({check}); }}
{under("QCheckBox::indicator:focus", "QRadioButton::indicator:focus")} {{ border: 1px solid {c.focus}; }}
{under("QHeaderView::section")} {{ background: {c.side}; color: {c.muted}; border: none;
  border-bottom: 1px solid {c.border}; padding: 4px 6px; }}
{under("QScrollArea")} {{ background: transparent; border: none; }}
{under("QProgressBar")} {{ background: {c.raised}; color: {c.text}; border: none; border-radius: 4px;
  text-align: center; }}
{under("QProgressBar::chunk")} {{ background: {c.accent}; border-radius: 4px; }}
QToolTip {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border}; padding: 4px; }}
QMenu {{ background: {c.surface}; color: {c.text}; border: 1px solid {c.border}; padding: 4px; }}
QMenu::item {{ padding: 5px 24px 5px 8px; border-radius: 6px; }}
QMenu::item:selected {{ background: {c.selection}; }}
QMenu::item:disabled {{ color: {c.muted}; }}
QMenu::separator {{ height: 1px; background: {c.border}; margin: 4px 6px; }}
"""


COLUMN_WIDTH = 860  # the widest the conversation's column gets (px): the transcript and the composer share it
COLUMN_MIN_MARGIN = 16


def centre_column(layout: QLayout, width: int) -> None:
    """Side margins that keep ``layout``'s content in one centred column of readable width, as chat apps
    show a conversation; set only when they change (a new margin lays the widget out again)."""
    side = max(COLUMN_MIN_MARGIN, (width - COLUMN_WIDTH) // 2)
    margins = layout.contentsMargins()
    if margins.left() != side:
        layout.setContentsMargins(side, margins.top(), side, margins.bottom())
