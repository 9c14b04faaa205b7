"""At start, offer to stop the ``VLLM::`` processes an earlier crash of the app left behind.

A killed app can leave vLLM's engine processes running (re-parented, holding gigabytes). After the window is
shown, :func:`offer_stray_cleanup` looks for them off the GUI thread; if there are any, a non-modal
:class:`StraysDialog` lists them (pid, command, age, memory) with "Stop them" and "Leave them". Stopping goes
through the engine (:func:`engine.server.processes.clean_up_strays`) in an
:class:`~desktop.operations.Operation`, so a
failure reaches the one error renderer. Wiring (``desktop/app.py``, after the window is shown)::

    offer_stray_cleanup(window)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.operations import Operation
from engine.diagnosis.problems import ProcessesLeft
from engine.server import processes as procs
from engine.server.processes import StrayProcess

FindStrays = Callable[[], Awaitable[list[StrayProcess]]]
StopStrays = Callable[[list[StrayProcess]], Awaitable[list[int]]]


def tr(text: str) -> str:
    return QCoreApplication.translate("strays", text)


async def find_strays() -> list[StrayProcess]:
    """The engine's search, on a worker thread: it walks every process on the machine."""
    return await asyncio.to_thread(procs.find_strays)


async def stop_strays(strays: list[StrayProcess]) -> list[int]:
    """Stop ``strays`` through the engine; :class:`ProcessesLeft` if any survived."""
    left = await procs.clean_up_strays(strays)
    if left:
        raise ProcessesLeft(left)
    return [s.pid for s in strays]


def format_age(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h``, ``2 d``: enough to tell an old leftover from a fresh one."""
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{max(0, int(seconds))} s"


def format_memory(rss_bytes: int) -> str:
    """``512 MiB`` or ``1.2 GiB`` (resident memory)."""
    if rss_bytes >= 1 << 30:
        return f"{rss_bytes / (1 << 30):.1f} GiB"
    return f"{rss_bytes / (1 << 20):.0f} MiB"


class StraysDialog(QDialog):
    """Non-modal: the app stays usable while the list is open. ``stopped`` carries the pids stopped."""

    stopped = Signal(list)

    COLUMNS = ("PID", "Command", "Age", "Memory")

    def __init__(
        self, strays: Sequence[StrayProcess], parent: QWidget | None = None, stop: StopStrays = stop_strays
    ) -> None:
        super().__init__(parent)
        self.strays = list(strays)
        self._stop = stop
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(tr("vLLM processes left running"))
        total = format_memory(sum(s.rss_bytes for s in self.strays))
        intro = QLabel(
            tr(
                "{count} vLLM process(es) from an earlier run are still running and hold {memory} of memory. "
                "They no longer serve anything."
            ).format(count=len(self.strays), memory=total),
            self,
        )
        intro.setWordWrap(True)
        self.table = QTreeWidget(self)
        self.table.setRootIsDecorated(False)
        self.table.setHeaderLabels([tr(c) for c in self.COLUMNS])
        self.table.setAccessibleName(tr("Leftover vLLM processes"))
        for stray in self.strays:
            row = QTreeWidgetItem(
                [str(stray.pid), stray.cmdline, format_age(stray.age_s), format_memory(stray.rss_bytes)]
            )
            row.setToolTip(1, stray.cmdline)
            self.table.addTopLevelItem(row)
        self.table.resizeColumnToContents(0)
        self.buttons = QDialogButtonBox(self)
        self.stop_button = QPushButton(tr("Stop them"), self)
        self.leave_button = QPushButton(tr("Leave them"), self)
        self.buttons.addButton(self.stop_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.leave_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.stop_button.clicked.connect(self.stop_them)
        self.leave_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table)
        layout.addWidget(self.buttons)
        self.resize(640, 260)

    def rows(self) -> list[list[str]]:
        """The table's text, row by row (what the user reads)."""
        return [
            [item.text(col) for col in range(len(self.COLUMNS))]
            for item in (self.table.topLevelItem(i) for i in range(self.table.topLevelItemCount()))
            if item is not None
        ]

    def stop_them(self) -> asyncio.Task[None]:
        """Stop the listed processes; the dialog closes when they are gone, else the problem is shown."""
        return Operation(self.buttons, lambda: self._stop(self.strays)).success(self._on_stopped).run()

    def _on_stopped(self, pids: list[int]) -> None:
        self.stopped.emit(pids)
        self.accept()


def offer_stray_cleanup(
    parent: QWidget | None,
    find: FindStrays = find_strays,
    stop: StopStrays = stop_strays,
    shown: Callable[[StraysDialog], object] | None = None,
) -> asyncio.Task[None]:
    """Look for strays in the background; if any, show a :class:`StraysDialog` (passed to ``shown``)."""

    def offer(strays: list[StrayProcess]) -> None:
        if not strays:
            return
        dialog = StraysDialog(strays, parent, stop)
        dialog.show()
        if shown is not None:
            shown(dialog)

    return Operation(None, find).success(offer).run()
