"""The sidebar's date groups, as chat apps show them: Pinned, Today, Yesterday, Previous 7 days, Previous 30
days, then one group a month (``November 2026``), each conversation by its last activity.

Qt-free arithmetic (:func:`date_group`) and the delegate that draws a group's heading above its first row,
so the list model keeps one row per conversation (selection, paging and keyboard use stay as they are).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from PySide6.QtCore import QCoreApplication, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QFont, QPainter, QPalette
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

_Index = QModelIndex | QPersistentModelIndex


def tr(text: str) -> str:
    return QCoreApplication.translate("sidebar", text)


def date_group(when: datetime, now: datetime, *, pinned: bool = False) -> str:
    """The heading ``when`` belongs under, seen from ``now`` (both in local time; only dates count)."""
    if pinned:
        return tr("Pinned")
    day, today = when.date(), now.date()
    if day >= today:  # today, or a clock that runs ahead
        return tr("Today")
    if day == today - timedelta(days=1):
        return tr("Yesterday")
    if day > today - timedelta(days=7):
        return tr("Previous 7 days")
    if day > today - timedelta(days=30):
        return tr("Previous 30 days")
    return _month(day)


def _month(day: date) -> str:
    months = (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    )  # fmt: skip
    return f"{tr(months[day.month - 1])} {day.year}"


class DateGroupDelegate(QStyledItemDelegate):
    """Draws ``group_role``'s heading above each row that starts a group (the first row, or one whose group
    differs from the row above); the row itself is drawn as usual below it."""

    def __init__(self, group_role: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group_role = group_role

    def heading(self, index: _Index) -> str | None:
        """The heading drawn above ``index``'s row, or None when the row continues the group above."""
        group = index.data(self.group_role)
        if not group:
            return None
        if index.row() == 0:
            return str(group)
        above = index.model().index(index.row() - 1, index.column(), index.parent()).data(self.group_role)
        return None if above == group else str(group)

    def _heading_height(self, option: QStyleOptionViewItem) -> int:
        return option.fontMetrics.height() + 12

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        size = super().sizeHint(option, index)
        if self.heading(index) is not None:
            size.setHeight(size.height() + self._heading_height(option))
        return size

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        text = self.heading(index)
        if text is None:
            super().paint(painter, option, index)
            return
        extra = self._heading_height(option)
        heading = QRect(option.rect.left() + 6, option.rect.top() + 6, option.rect.width() - 12, extra - 6)
        painter.save()
        font = QFont(option.font)
        font.setBold(True)
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        painter.setPen(option.palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
        painter.drawText(heading, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.restore()
        row = QStyleOptionViewItem(option)
        row.rect = QRect(
            option.rect.left(), option.rect.top() + extra, option.rect.width(), option.rect.height() - extra
        )
        super().paint(painter, row, index)
