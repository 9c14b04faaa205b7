"""The dashboard's series: rates from counters, gauges as read, a bounded window, restarts start over."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.server.metrics import MetricsSample
from engine.server.metrics_history import MetricsHistory


def reading(at: float, gen: int, ttft_sum: float = 0.0, ttft_n: int = 0, kv: float = 0.1) -> MetricsSample:
    return MetricsSample(
        running=1, waiting=2, kv_cache_usage=kv, prompt_tokens=0, generation_tokens=gen, at=at,
        ttft_sum_s=ttft_sum, ttft_count=ttft_n,
    )  # fmt: skip


def test_counters_become_rates_and_gauges_stay() -> None:
    history = MetricsHistory()
    assert history.add(reading(100.0, 1000)) is None  # no rate from one reading
    point = history.add(reading(102.0, 1080, ttft_sum=0.3, ttft_n=2, kv=0.42))
    assert point is not None
    assert point.generation_tok_s == pytest.approx(40.0)
    assert point.ttft_ms == pytest.approx(150.0)  # 0.3 s over 2 first tokens
    assert point.kv_cache_percent == pytest.approx(42.0)
    assert (point.running, point.waiting) == (1, 2)
    idle = history.add(reading(103.0, 1080, ttft_sum=0.3, ttft_n=2))
    assert idle is not None
    assert idle.generation_tok_s == 0.0
    assert idle.ttft_ms is None  # nobody started a request: no point rather than a fake zero
    series = history.series(now=103.0)
    assert series["generation_tok_s"] == ([-1.0, 0.0], [40.0, 0.0])
    assert series["ttft_ms"] == ([-1.0], [pytest.approx(150.0)])


def test_a_restarted_server_starts_the_history_over() -> None:
    history = MetricsHistory()
    history.add(reading(1.0, 500))
    history.add(reading(2.0, 600))
    assert history.add(reading(3.0, 10)) is None  # counters went down: a new server
    assert history.points() == []
    point = history.add(reading(4.0, 30))
    assert point is not None
    assert point.generation_tok_s == pytest.approx(20.0)


@given(st.lists(st.floats(min_value=0.01, max_value=30.0), min_size=1, max_size=200))
def test_the_window_is_bounded_and_rates_are_never_negative(gaps: list[float]) -> None:
    history = MetricsHistory(window_s=60.0)
    at, gen = 0.0, 0
    history.add(reading(at, gen))
    for gap in gaps:
        at += gap
        gen += int(gap * 10)
        history.add(reading(at, gen))
    points = history.points()
    assert all(at - p.at <= 60.0 for p in points)
    assert all(p.generation_tok_s >= 0 for p in points)
