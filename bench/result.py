"""The shape of a benchmark's results: metrics beside their baselines, goals, and data for plots."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "partial", "missing", "error"]


class SubjectMissing(Exception):
    """The code a benchmark measures does not exist (yet) in this tree; the row says so instead of failing."""


@dataclass
class Goal:
    """``value op limit`` must hold, e.g. ``Goal("<=", 50, "ms")``."""

    op: Literal["<=", ">=", "==", ">"]
    limit: float

    def met(self, value: float) -> bool:
        if self.op == "<=":
            return value <= self.limit
        if self.op == ">=":
            return value >= self.limit
        if self.op == ">":
            return value > self.limit
        return value == self.limit

    def margin(self, value: float) -> float:
        """How far inside (positive) or outside (negative) the goal ``value`` lies, in the metric's unit."""
        if self.op == "<=":
            return self.limit - value
        if self.op in (">=", ">"):
            return value - self.limit
        return -abs(value - self.limit)


@dataclass
class Metric:
    """One measured figure, with the same figure for the baseline when there is one."""

    name: str
    label: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    goal: Goal | None = None
    # A lower bound (the measurement was capped, e.g. a naive baseline stopped after a time limit).
    at_least: bool = False
    baseline_at_least: bool = False

    @property
    def ratio(self) -> float | None:
        """value / baseline; below 1 means the app needs less than the baseline."""
        if self.baseline is None or self.baseline == 0 or math.isnan(self.baseline):
            return None
        return self.value / self.baseline

    @property
    def goal_met(self) -> bool | None:
        return None if self.goal is None else self.goal.met(self.value)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["goal_met"] = self.goal_met
        out["goal_margin"] = None if self.goal is None else self.goal.margin(self.value)
        return out


@dataclass
class BenchResult:
    """What one benchmark reports: its metrics, free-form notes, and series the plots are drawn from."""

    name: str
    title: str
    status: Status = "ok"
    reason: str = ""
    duration_s: float = 0.0
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    # When and in which mode it was taken (``--only`` merges one fresh result into older ones).
    taken_at: str = ""
    quick: bool = False
    method: str = ""  # how it is measured (the benchmark module's docstring)

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def skip_part(self, what: str, why: str) -> None:
        """A part could not be measured: the result becomes partial and says why."""
        if self.status == "ok":
            self.status = "partial"
        self.notes.append(f"not measured: {what} — {why}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["metrics"] = [m.to_dict() for m in self.metrics]
        return out
