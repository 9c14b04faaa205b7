"""The benchmark harness works: its pure pieces run in quick mode at a tiny size and report results of the
right shape. Nothing here looks at how fast anything is."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import registry, report
from bench.__main__ import main
from bench.context import BenchContext
from bench.markdown_reply import reply, tokens
from bench.plots import draw
from bench.report import HAND_WRITTEN
from bench.result import BenchResult, Goal, Metric, SubjectMissing
from bench.stats import percentile, summary


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([10], 99) == 10
    assert percentile(list(range(101)), 99) == pytest.approx(99)
    assert summary([3.0, 1.0, 2.0])["median"] == 2.0
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_goals_and_ratios_say_met_or_missed_and_by_how_much() -> None:
    missed = Metric("stall", "stall", 80.0, "ms", baseline=40.0, goal=Goal("<=", 50))
    met = Metric("lost", "lost", 0.0, "tokens", goal=Goal("==", 0))
    assert missed.ratio == pytest.approx(2.0)
    assert missed.goal_met is False
    assert missed.to_dict()["goal_margin"] == pytest.approx(-30.0)
    assert met.goal_met is True
    table = report.rows([BenchResult("x", "X", metrics=[missed, met])])
    assert table[0][-1] == "<= 50.0 ms: MISSED by 30.0 ms"
    assert table[1][-1].endswith(": met")


def test_markdown_reply_has_exactly_the_requested_stand_in_tokens() -> None:
    text = reply(2000)
    assert len(tokens(text)) == 2000
    assert "```python" in text
    assert "| setting | value |" in text


def test_a_missing_subject_or_a_crash_becomes_a_row_not_an_abort(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import bench.history

    ctx = BenchContext(quick=True, cache_dir=tmp_path / "cache", work_dir=tmp_path / "work", scale=0.005)

    def missing(_ctx: BenchContext) -> BenchResult:
        raise SubjectMissing("engine/nothing.py does not exist yet")

    monkeypatch.setattr(bench.history, "run", missing)
    result = registry.run_one(registry.BENCHMARKS[0], ctx)
    assert (result.status, result.reason) == ("missing", "engine/nothing.py does not exist yet")

    def broken(_ctx: BenchContext) -> BenchResult:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(bench.history, "run", broken)
    result = registry.run_one(registry.BENCHMARKS[0], ctx)
    assert result.status == "error"
    assert "ZeroDivisionError: boom" in result.reason


def test_plots_are_png_files(tmp_path: Path) -> None:
    result = BenchResult("demo", "Demo")
    result.series["bars"] = {"kind": "bars", "title": "b", "data": {"g": {"app": 1.0, "baseline": 2.0}}}
    result.series["box"] = {"kind": "box", "title": "x", "data": {"app": [1.0, 2.0, 3.0]}, "log": True}
    result.series["lines"] = {"kind": "lines", "title": "l", "data": {"app": [[0.0, 1.0], [1.0, 2.0]]}}
    written = [Path(p) for p in draw(result, tmp_path)]
    assert sorted(p.name for p in written) == ["demo-bars.png", "demo-box.png", "demo-lines.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_quick_history_run_writes_results_docs_and_plots(tmp_path: Path) -> None:
    results, docs, plots = tmp_path / "latest.json", tmp_path / "benchmarks.md", tmp_path / "plots"
    argv = ["--quick", "--only", "history", "--scale", "0.005", "--no-vllm",
            "--cache-dir", str(tmp_path / "cache"),
            "--results", str(results), "--docs", str(docs), "--plots", str(plots)]  # fmt: skip
    assert main(argv) == 0
    payload = json.loads(results.read_text())
    assert payload["quick"] is True
    assert {"cpu", "logical_cpus", "memory_gib", "python"} <= set(payload["machine"])
    [history] = payload["benchmarks"]
    assert history["status"] == "ok"
    names = [m["name"] for m in history["metrics"]]
    assert names == ["sidebar_ms", "open_ms", "search_p50_ms", "search_p95_ms"]
    for metric in history["metrics"]:
        assert metric["value"] > 0
        assert metric["baseline"] > 0
        assert metric["ratio"] == pytest.approx(metric["value"] / metric["baseline"])
    goals = {m["name"]: m["goal"] for m in history["metrics"] if m["goal"]}
    assert goals == {
        "sidebar_ms": {"op": "<=", "limit": 1000},
        "open_ms": {"op": "<=", "limit": 150},
        "search_p95_ms": {"op": "<=", "limit": 30},
    }
    assert "50 conversations / 2,500 messages" in history["metrics"][0]["label"]
    pngs = sorted(p.name for p in plots.iterdir())
    assert pngs == ["history-latency.png", "history-search.png"]
    text = docs.read_text()
    assert "| History at scale | FTS search p95 |" in text
    # A hand-written end of the file survives the next run; the generated part above it is written anew.
    docs.write_text(
        text.replace("| FTS search p95 |", "| edited |") + f"\n{HAND_WRITTEN}\n\n## Notes\n\nKept.\n"
    )
    assert re.search(r"!\[History at scale\]\(plots/history-latency\.png\)", text)
    # A second run reuses the generated history (same files, not rebuilt).
    cached = sorted((tmp_path / "cache").iterdir())
    stamps = [p.stat().st_mtime_ns for p in cached]
    assert main(argv) == 0
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / "cache").iterdir())] == stamps
    again = docs.read_text()
    assert "| History at scale | FTS search p95 |" in again
    assert "| edited |" not in again
    assert again.endswith(f"{HAND_WRITTEN}\n\n## Notes\n\nKept.\n")
    assert again.count(HAND_WRITTEN) == 1
