"""Where Tab goes in the main window: from the message box to Send (and Stop), the problem banner's buttons,
the model picker, the conversation and each message's actions (top to bottom), then the sidebar and the
server log button; Shift+Tab goes back. Only widgets a user sees and can use are stops; message text is not
one (it shows no focus; its words are selected with the mouse, and Copy copies them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

if TYPE_CHECKING:
    from desktop.errors import ErrorBanner
    from desktop.widgets.composer import Composer
    from desktop.widgets.model_picker import ModelPicker
    from desktop.widgets.sidebar import Sidebar
    from desktop.widgets.status_bar import ServerStatusBar
    from desktop.widgets.transcript import TranscriptView


class WindowParts(Protocol):
    """What the Tab order walks (the main window has these; this module does not import it)."""

    @property
    def composer(self) -> Composer: ...
    @property
    def banner(self) -> ErrorBanner: ...
    @property
    def sidebar(self) -> Sidebar: ...
    @property
    def model_picker(self) -> ModelPicker: ...
    @property
    def transcript(self) -> TranscriptView: ...
    @property
    def server_status(self) -> ServerStatusBar: ...


def focus_stops(window: WindowParts) -> list[QWidget]:
    """The window's Tab stops now, in order."""
    composer, banner, sidebar = window.composer, window.banner, window.sidebar
    chain: list[QWidget] = [composer.editor, composer.send_button, composer.stop_button]
    chain += [banner.fix_button, banner.close_button, window.model_picker.combo, window.transcript]
    for message in window.transcript.messages():
        chain += message.action_buttons()
    chain += [sidebar.new_button, sidebar.search_box, sidebar.filter_box, sidebar.list]
    chain.append(window.server_status.log_button)
    return [w for w in chain if w.isVisible() and w.isEnabled() and w.focusPolicy() & Qt.FocusPolicy.TabFocus]


def move_focus(window: WindowParts, forward: bool) -> bool:
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
