"""Where Tab goes in the main window: from the message box to Send (and Stop), the problem banner's buttons,
the model picker, the conversation and each message's actions (top to bottom), then the sidebar and the
server log button; Shift+Tab goes back. Only widgets a user sees and can use are stops; message text is not
one (it shows no focus; its words are selected with the mouse, and Copy copies them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

if TYPE_CHECKING:
    from desktop.window.main_window import MainWindow


def focus_stops(window: MainWindow) -> list[QWidget]:
    """The window's Tab stops now, in order."""
    composer, banner, sidebar = window.composer, window.banner, window.sidebar
    chain: list[QWidget] = [composer.editor, composer.send_button, composer.stop_button]
    chain += [banner.fix_button, banner.close_button, window.model_picker.combo, window.transcript]
    for message in window.transcript.messages():
        chain += message.action_buttons()
    chain += [sidebar.new_button, sidebar.search_box, sidebar.filter_box, sidebar.list]
    chain.append(window.server_status.log_button)
    return [w for w in chain if w.isVisible() and w.isEnabled() and w.focusPolicy() & Qt.FocusPolicy.TabFocus]


def move_focus(window: MainWindow, forward: bool) -> bool:
    """Tab (``forward``) or Shift+Tab from the focused widget; ``False`` if it is not one of the stops (then
    Qt's own order applies, e.g. inside a message being edited)."""
    stops = focus_stops(window)
    current = QApplication.focusWidget()
    if current not in stops:
        return False
    step = 1 if forward else -1
    target = stops[(stops.index(current) + step) % len(stops)]
    reason = Qt.FocusReason.TabFocusReason if forward else Qt.FocusReason.BacktabFocusReason
    target.setFocus(reason)
    return True
