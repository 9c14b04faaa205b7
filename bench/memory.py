"""Memory: RSS of the GUI idle with the large history, and with a 2,000-message conversation open.

The app runs with ``VLLM_DESK_BENCH_STARTUP=stay`` (no server); RSS (process and children, psutil) is read
after the first conversation is painted and the app has idled for a moment. Baseline: a bare ``QMainWindow``.
"""

from __future__ import annotations

import time

from bench.app_launch import app_command, bare_command, home_env, launched, prepare_home
from bench.cold_start import app_available
from bench.context import BenchContext
from bench.history_data import for_context
from bench.result import BenchResult, Goal, Metric
from bench.stats import median

IDLE_S = 3.0
MB = 1e6


def _rss(
    ctx: BenchContext, cmd: list[str], env: dict[str, str], failures: list[str], expect: int | None = None
) -> float:
    """RSS after the first paint and a short idle; a start that never paints is retried (and noted)."""
    for _attempt in range(3):
        try:
            # A 2,000-message conversation can take long to paint on a busy machine.
            with launched(cmd, env, ctx.repo_root, stay=True, timeout=150) as launch:
                time.sleep(IDLE_S)
                if expect is not None and launch.details.get("painted") != str(expect):
                    failures.append(
                        f"expected conversation {expect} on screen, "
                        f"the app painted {launch.details.get('painted')}"
                    )
                return launch.rss_bytes() / MB
        except RuntimeError as exc:
            failures.append(str(exc).splitlines()[0])
    raise RuntimeError("the app never painted its first conversation in 3 tries: " + "; ".join(failures))


def run(ctx: BenchContext) -> BenchResult:
    app_available(ctx)
    result = BenchResult("memory", "Memory")
    data = for_context(ctx.cache_dir, ctx.scale)
    reps = 1 if ctx.quick else 2
    bare: list[float] = []
    empty: list[float] = []
    idle: list[float] = []
    big: list[float] = []
    failures: list[str] = []
    ctx.say(
        f"{reps} round(s): bare window, app empty, app idle with history, app with the big conversation open"
    )
    for _round in range(reps):
        bare.append(_rss(ctx, bare_command(ctx, stay=True), ctx.child_env(), failures))
        home = prepare_home(ctx, "mem-empty", None, None)
        empty.append(_rss(ctx, app_command(ctx), home_env(ctx, home, True), failures))
        home = prepare_home(ctx, "mem-idle", data.app_db, data.big_conversation_id - 1)
        idle.append(
            _rss(ctx, app_command(ctx), home_env(ctx, home, True), failures, data.big_conversation_id - 1)
        )
        home = prepare_home(ctx, "mem-big", data.app_db, data.big_conversation_id)
        big.append(_rss(ctx, app_command(ctx), home_env(ctx, home, True), failures, data.big_conversation_id))
    size = f"{data.conversations:,} conversations / {data.messages:,} messages"
    result.add(
        Metric(
            "rss_empty_mb", "RSS idle, empty history", median(empty), "MB", median(bare), "bare QMainWindow"
        )
    )
    result.add(
        Metric(
            "rss_idle_mb",
            f"RSS idle, {size}",
            median(idle),
            "MB",
            median(bare),
            "bare QMainWindow",
            Goal("<=", 150),
        )
    )
    result.add(
        Metric(
            "rss_big_mb",
            f"RSS with a {data.big_messages:,}-message conversation open",
            median(big),
            "MB",
            median(bare),
            "bare QMainWindow",
        )
    )
    if failures:
        result.status = "partial"
        result.notes.append(
            f"{len(failures)} problem(s) with the app's starts: " + "; ".join(sorted(set(failures)))
        )
    result.notes.append(
        f"RSS after the first paint plus {IDLE_S:.0f} s idle; median of {reps}; 1 MB = 10^6 bytes."
    )
    result.series["rss"] = {
        "kind": "bars",
        "title": "Resident memory (RSS)",
        "ylabel": "MB",
        "data": {
            "bare window": {"RSS": median(bare)},
            "app, empty": {"RSS": median(empty)},
            "app, idle, history": {"RSS": median(idle)},
            f"app, {data.big_messages:,} msgs open": {"RSS": median(big)},
        },
    }
    return result
