"""Cold start: process start → main window shown → first conversation painted, empty and large history.

App: ``python -m desktop.main`` (the ``vllm-desk`` entry point) with ``VLLM_DESK_BENCH_STARTUP=1``, no server
started. Baselines: ``python -c "import PySide6.QtWidgets"`` (spawn → exit) and a bare ``QMainWindow``
(:mod:`bench.bare_window`). Runs are interleaved; medians are reported.

The app and the bare window read their modules' bytecode, as an installed app does (pip compiles a wheel's
modules; an editable install writes them at its first start): the children get a bytecode cache of their
own under the work folder (``PYTHONPYCACHEPREFIX``, even where the caller set ``PYTHONDONTWRITEBYTECODE``, as
these machines' shells do), filled by one start of each that is not counted. Without it every start compiled
the app's own modules again (~50–70 ms here), which no user's start does.
"""

from __future__ import annotations

from pathlib import Path

from bench.app_launch import app_command, bare_command, home_env, launched, plain_import_seconds, prepare_home
from bench.context import BenchContext
from bench.history_data import for_context
from bench.result import BenchResult, Goal, Metric, SubjectMissing
from bench.stats import median


def app_available(ctx: BenchContext) -> None:
    if not (ctx.repo_root / "desktop" / "app.py").exists():
        raise SubjectMissing("desktop/app.py (run_app) does not exist yet")
    if "VLLM_DESK_BENCH_STARTUP" not in (ctx.repo_root / "desktop" / "app.py").read_text(encoding="utf-8"):
        raise SubjectMissing("desktop/app.py has no VLLM_DESK_BENCH_STARTUP hook yet")


def with_bytecode(ctx: BenchContext, env: dict[str, str]) -> dict[str, str]:
    """``env`` for a child that writes and reads compiled modules in a cache of the benchmark's own."""
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(bytecode_dir(ctx))
    return env


def bytecode_dir(ctx: BenchContext) -> Path:
    return ctx.work_dir / "pycache"


def run(ctx: BenchContext) -> BenchResult:
    app_available(ctx)
    result = BenchResult("cold_start", "Cold start")
    data = for_context(ctx.cache_dir, ctx.scale)
    reps = 3 if ctx.quick else 7
    samples: dict[str, list[float]] = {k: [] for k in ("import", "bare", "empty_shown", "empty_painted",
                                                          "large_shown", "large_painted", "empty_cpu",
                                                          "large_cpu")}  # fmt: skip
    not_reopened: list[str] = []
    ctx.say(
        f"{reps} rounds: import, bare window, app with empty history, "
        f"app with {data.conversations:,} conversations"
    )
    bare_env = with_bytecode(ctx, ctx.child_env())
    empty = prepare_home(ctx, "start-empty", None, None)
    # Not counted: compiles what the timed starts read (the bytecode cache), as a first start after install.
    with launched(bare_command(ctx), bare_env, ctx.repo_root, stay=False):
        pass
    with launched(
        app_command(ctx), with_bytecode(ctx, home_env(ctx, empty, False)), ctx.repo_root, stay=False
    ):
        pass
    for _round in range(reps):
        samples["import"].append(plain_import_seconds(ctx))
        with launched(bare_command(ctx), bare_env, ctx.repo_root, stay=False) as bare_window:
            samples["bare"].append(bare_window.since_spawn("shown"))
        empty = prepare_home(ctx, "start-empty", None, None)
        empty_env = with_bytecode(ctx, home_env(ctx, empty, False))
        with launched(app_command(ctx), empty_env, ctx.repo_root, stay=False) as launch:
            samples["empty_shown"].append(launch.since_spawn("shown"))
            samples["empty_painted"].append(launch.since_spawn("painted"))
            if "shown_cpu" in launch.marks:  # an app from before the mark existed has none
                samples["empty_cpu"].append(launch.marks["shown_cpu"])
        # The last conversation is a typical one (the 2,000-message one is the memory benchmark's case).
        large = prepare_home(ctx, "start-large", data.app_db, data.big_conversation_id - 1)
        large_env = with_bytecode(ctx, home_env(ctx, large, False))
        with launched(app_command(ctx), large_env, ctx.repo_root, stay=False) as launch:
            samples["large_shown"].append(launch.since_spawn("shown"))
            samples["large_painted"].append(launch.since_spawn("painted"))
            if "shown_cpu" in launch.marks:
                samples["large_cpu"].append(launch.marks["shown_cpu"])
            if launch.details.get("painted") != str(data.big_conversation_id - 1):
                not_reopened.append(launch.details.get("painted", "?"))
    bare = median(samples["bare"])
    size = f"{data.conversations:,} conversations"
    for key, label, goal in (
        ("empty_shown", "window shown, empty history", Goal("<=", 0.6)),
        ("empty_painted", "first conversation painted, empty history", None),
        ("large_shown", f"window shown, {size}", Goal("<=", 0.6)),
        ("large_painted", f"last conversation painted, {size}", None),
    ):
        result.add(Metric(key, label, median(samples[key]), "s", bare, "bare QMainWindow shown", goal))
    for key, label in (
        ("empty_cpu", "CPU until the window is shown, empty history"),
        ("large_cpu", f"CPU until the window is shown, {size}"),
    ):
        # The process's CPU time (all threads): what the start costs, less disturbed by a busy machine.
        if samples[key]:
            result.add(Metric(key, label, median(samples[key]), "s"))
    result.add(
        Metric(
            "import_floor", "python + import PySide6.QtWidgets (spawn → exit)", median(samples["import"]), "s"
        )
    )
    result.notes.append(
        f"Medians of {reps} interleaved runs, offscreen Qt, from spawn (time.time() before Popen) "
        "to the hook's mark, the modules' bytecode cached as installed (one uncounted start fills it). "
        f"Large history: {size} / {data.messages:,} messages; the reopened conversation is a typical one."
    )
    if not_reopened:
        result.status = "partial"
        result.notes.append(
            f"In {len(not_reopened)} of {reps} large-history starts the app did not reopen the last "
            f"conversation (it painted {not_reopened[0]}): 'painted' there is an empty transcript."
        )
    result.series["startup"] = {
        "kind": "box",
        "title": "Cold start (spawn → mark)",
        "ylabel": "s",
        "data": {
            "import\nPySide6": samples["import"],
            "bare\nQMainWindow": samples["bare"],
            "app shown\nempty": samples["empty_shown"],
            "app painted\nempty": samples["empty_painted"],
            "app shown\nlarge": samples["large_shown"],
            "app painted\nlarge": samples["large_painted"],
        },
    }
    return result
