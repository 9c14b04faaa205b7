"""Dropped files: the one way a drop handler is put on the window's widgets."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QAbstractScrollArea, QWidget


def install_drop_filter(event_filter: QObject, *widgets: QWidget) -> None:
    """Let ``event_filter`` see the drops on ``widgets`` (for a scroll area, on its viewport too).

    Drag events go to a scroll area's viewport, and reach the area's handlers without passing an event
    filter installed on the area itself. A text editor would otherwise take a file's URL as text.
    """
    for widget in widgets:
        targets = [widget]
        if isinstance(widget, QAbstractScrollArea):
            targets.append(widget.viewport())
        for target in targets:
            target.setAcceptDrops(True)
            target.installEventFilter(event_filter)
