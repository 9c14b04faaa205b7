"""The last minutes of a server's ``/metrics`` readings as series a dashboard can draw.

Counters (generated tokens, the time-to-first-token histogram) become rates between two readings; gauges
(running, waiting, KV-cache use) are kept as read. A counter that goes down means the server restarted: the
history starts over rather than drawing a negative rate. Qt-free; the desktop's dashboard draws it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from engine.server.metrics import MetricsSample

WINDOW_S = 10 * 60.0


@dataclass(frozen=True)
class MetricsPoint:
    """One point of every series, at ``at`` (monotonic seconds)."""

    at: float
    generation_tok_s: float
    ttft_ms: float | None  # mean over the requests that got their first token since the last reading
    kv_cache_percent: float
    running: int
    waiting: int


class MetricsHistory:
    """Keeps the points of the last ``window_s`` seconds; :meth:`add` takes each new reading."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._points: deque[MetricsPoint] = deque()
        self._last: MetricsSample | None = None

    def add(self, sample: MetricsSample) -> MetricsPoint | None:
        """Add a reading; returns the new point (None for the first reading, which has no rate yet)."""
        last, self._last = self._last, sample
        if last is not None and (
            sample.generation_tokens < last.generation_tokens or sample.ttft_count < last.ttft_count
        ):
            self.clear()  # the server restarted: its counters began again
            self._last = sample
            return None
        if last is None or sample.at <= last.at:
            return None
        elapsed = sample.at - last.at
        first_tokens = sample.ttft_count - last.ttft_count
        point = MetricsPoint(
            at=sample.at,
            generation_tok_s=(sample.generation_tokens - last.generation_tokens) / elapsed,
            ttft_ms=(sample.ttft_sum_s - last.ttft_sum_s) / first_tokens * 1000 if first_tokens > 0 else None,
            kv_cache_percent=sample.kv_cache_usage * 100,
            running=sample.running,
            waiting=sample.waiting,
        )
        self._points.append(point)
        while self._points and self._points[0].at < sample.at - self.window_s:
            self._points.popleft()
        return point

    def clear(self) -> None:
        self._points.clear()
        self._last = None

    def points(self) -> list[MetricsPoint]:
        return list(self._points)

    def series(self, now: float) -> dict[str, tuple[list[float], list[float]]]:
        """Each series as (seconds before ``now`` — negative —, values); TTFT only where requests started."""
        out: dict[str, tuple[list[float], list[float]]] = {}
        points = self.points()
        for name in ("generation_tok_s", "kv_cache_percent", "running", "waiting"):
            out[name] = ([p.at - now for p in points], [float(getattr(p, name)) for p in points])
        timed = [p for p in points if p.ttft_ms is not None]
        out["ttft_ms"] = ([p.at - now for p in timed], [float(p.ttft_ms or 0.0) for p in timed])
        return out
