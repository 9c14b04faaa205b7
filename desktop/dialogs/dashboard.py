"""The server dashboard: live charts from vLLM's ``/metrics``, the start's phases, the process tree.

Charts are pyqtgraph (made for live Qt plots; imported when the dashboard is first opened, so the app's cold
start does not pay for it). The dashboard listens to the supervisor only while it is visible: hidden, it
unsubscribes, and the supervisor stops polling ``/metrics`` when nobody listens; the process table's timer
stops too. The series come from :class:`engine.server.metrics_history.MetricsHistory` (Qt-free).

The charts take the theme's colours (:func:`desktop.theme.colours`), again whenever the application's palette
changes (the theme was switched): pyqtgraph draws with its own background and pens, not the palette.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil
from PySide6.QtCore import QCoreApplication, QEvent, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop import theme
from engine.server.metrics import MetricsSample
from engine.server.metrics_history import MetricsHistory
from engine.server.supervisor import Supervisor

PROCESS_REFRESH_MS = 2000
SHOWN_S = 5 * 60  # the charts show the last five minutes (the history keeps ten)
# (series name, chart title, unit); "requests" draws running and waiting together.
CHARTS = (
    ("generation_tok_s", "Generation", "tokens/s"),
    ("ttft_ms", "Time to first token", "ms"),
    ("kv_cache_percent", "KV cache in use", "%"),
    ("requests", "Requests", "running / waiting"),
)


def tr(text: str) -> str:
    return QCoreApplication.translate("dashboard", text)


class ServerDashboard(QWidget):
    """A window (or panel) that shows one supervisor's server; see the module docstring."""

    def __init__(self, supervisor: Supervisor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg  # here, not at import: ~0.2 s the app's start should not pay

        self.supervisor = supervisor
        self.history = MetricsHistory()
        self._unsubscribe: Callable[[], None] | None = None
        # Kept between refreshes: psutil's CPU share is measured from one call to the next.
        self._known: dict[int, psutil.Process] = {}
        self.setObjectName("serverDashboard")  # the application's sheet styles it as a dialog
        self.setWindowTitle(tr("Server dashboard — vLLM Desk"))
        self.setAccessibleName(tr("Server dashboard"))
        self.resize(900, 700)

        self.heading = QLabel(self)
        self.heading.setWordWrap(True)
        charts = QGridLayout()
        self.plots: dict[str, Any] = {}
        self.curves: dict[str, Any] = {}
        for number, (name, title, unit) in enumerate(CHARTS):
            plot = pg.PlotWidget(self)
            plot.setLabel("left", tr(unit))
            plot.setLabel("bottom", tr("seconds ago"))
            for side in ("left", "bottom"):
                plot.getAxis(side).enableAutoSIPrefix(False)  # "(x0.001)" on a time axis only confuses
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMouseEnabled(x=False, y=False)
            plot.setXRange(-SHOWN_S, 0, padding=0)
            plot.setLimits(yMin=0)
            if name == "kv_cache_percent":
                plot.setYRange(0, 100, padding=0)
            else:
                plot.enableAutoRange(axis="y")
            plot.setMinimumHeight(140)
            plot.setAccessibleName(tr(title))
            self.plots[name] = plot
            if name == "requests":
                plot.addLegend(offset=(-10, 10))
                self.curves["running"] = plot.plot(name=tr("running"))
                self.curves["waiting"] = plot.plot(name=tr("waiting"))
            else:
                self.curves[name] = plot.plot(symbol=None)
            charts.addWidget(plot, number // 2, number % 2)
        self.chart_dark: bool | None = None  # the theme the charts are drawn in
        self.recolour()

        self.timeline = QTreeWidget(self)
        self.timeline.setHeaderLabels([tr("Start phase"), tr("At"), tr("Took")])
        self.timeline.setAccessibleName(tr("Start phases"))
        self.timeline.setRootIsDecorated(False)
        self.timeline.setColumnWidth(0, 240)
        self.processes = QTreeWidget(self)
        self.processes.setHeaderLabels([tr("Process"), tr("PID"), tr("Memory"), tr("CPU")])
        self.processes.setAccessibleName(tr("Server processes"))
        self.processes.setRootIsDecorated(False)
        self.processes.setColumnWidth(0, 160)
        lists = QGridLayout()
        lists.addWidget(QLabel(tr("Last start"), self), 0, 0)
        lists.addWidget(QLabel(tr("Processes"), self), 0, 1)
        lists.addWidget(self.timeline, 1, 0)
        lists.addWidget(self.processes, 1, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(charts, 3)
        layout.addLayout(lists, 2)

        self.process_timer = QTimer(self)
        self.process_timer.setInterval(PROCESS_REFRESH_MS)
        self.process_timer.timeout.connect(self.refresh_processes)
        self._state_unsubscribe = supervisor.state_changed.connect(lambda _change: self.refresh_heading())
        self.refresh_heading()

    # --- the theme's colours --------------------------------------------------------------------------------
    def recolour(self) -> None:
        """The charts' background, axes, titles and lines in the application's theme (light or dark)."""
        import pyqtgraph as pg

        dark = theme.app_is_dark()
        if dark == self.chart_dark:
            return
        self.chart_dark = dark
        c = theme.colours(dark)
        for (name, title, _unit), plot in zip(CHARTS, self.plots.values(), strict=True):
            plot.setBackground(c.chat)
            plot.setTitle(tr(title), color=c.text)
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(c.border)  # the line and grid; it colours the axis' label too, so first
                axis.setTextPen(c.muted)  # the ticks' numbers and the label
            legend = plot.getPlotItem().legend
            if legend is not None:
                legend.setLabelTextColor(c.text)
            if name != "requests":
                self.curves[name].setPen(pg.mkPen(c.accent, width=2))
        self.curves["running"].setPen(pg.mkPen(c.accent, width=2))
        self.curves["waiting"].setPen(pg.mkPen(c.chart_second, width=2))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the application's palette: the theme changed
            self.recolour()

    # --- listening only while shown ----------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        return self._unsubscribe is not None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._unsubscribe is None:
            self._unsubscribe = self.supervisor.metrics.connect(self.add_sample)
        self.process_timer.start()
        self.refresh_processes()
        self.refresh_timeline()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.stop_listening()

    def stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.process_timer.stop()

    def close_dashboard(self) -> None:
        """Drop every subscription (the window is going away)."""
        self.stop_listening()
        self._state_unsubscribe()

    # --- drawing -------------------------------------------------------------------------------------------
    def add_sample(self, sample: MetricsSample) -> None:
        self.history.add(sample)
        self.redraw(sample.at)

    def redraw(self, now: float | None = None) -> None:
        series = self.history.series(time.monotonic() if now is None else now)
        for name in ("generation_tok_s", "ttft_ms", "kv_cache_percent", "running", "waiting"):
            xs, ys = series[name]
            self.curves[name].setData(xs, ys)

    def refresh_heading(self) -> None:
        sup = self.supervisor
        endpoint = sup.endpoint
        where = f" — {endpoint.model} at {endpoint.base_url}" if endpoint is not None else ""
        self.heading.setText(tr("Server: {state}{where}").format(state=sup.state.value, where=where))
        self.refresh_timeline()

    def refresh_timeline(self) -> None:
        phases = list(self.supervisor.start_phases)
        self.timeline.clear()
        for number, step in enumerate(phases):
            after = phases[number + 1].elapsed_s if number + 1 < len(phases) else None
            took = f"{after - step.elapsed_s:.1f} s" if after is not None else ""
            QTreeWidgetItem(self.timeline, [step.label, f"{step.elapsed_s:.1f} s", took])

    def refresh_processes(self) -> None:
        self.processes.clear()
        current = {p.pid: self._known.get(p.pid, p) for p in self.supervisor.processes()}
        self._known = current
        for proc in current.values():
            try:
                with proc.oneshot():
                    name = proc.name()
                    rss = proc.memory_info().rss
                    cpu = proc.cpu_percent(interval=None)
            except psutil.Error:
                continue
            row = [name, str(proc.pid), f"{rss / 2**20:,.0f} MiB", f"{cpu:.0f} %"]
            QTreeWidgetItem(self.processes, row)


class DashboardOpener:
    """Opens the one dashboard window of a supervisor on request (made on first use), raises it after."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.dashboard: ServerDashboard | None = None

    def open(self) -> ServerDashboard:
        if self.dashboard is None:
            self.dashboard = ServerDashboard(self.supervisor)
        self.dashboard.show()
        self.dashboard.raise_()
        self.dashboard.activateWindow()
        return self.dashboard

    def close(self) -> None:
        if self.dashboard is not None:
            self.dashboard.close_dashboard()
            self.dashboard.close()
            self.dashboard.deleteLater()
            self.dashboard = None
