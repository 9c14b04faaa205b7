"""The benchmarks, in the order they run. Each module has ``run(ctx: BenchContext) -> BenchResult``."""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from bench.context import BenchContext
from bench.result import BenchResult, SubjectMissing


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    title: str


BENCHMARKS: tuple[Bench, ...] = (
    Bench("history", "bench.history", "History at scale"),
    Bench("streaming", "bench.streaming", "Streaming overhead"),
    Bench("ui_stream", "bench.ui_stream", "UI under a stream"),
    Bench("cold_start", "bench.cold_start", "Cold start"),
    Bench("memory", "bench.memory", "Memory"),
    Bench("lifecycle", "bench.lifecycle", "Server lifecycle"),
    Bench("cpu_dtype", "bench.cpu_dtype", "CPU dtype: float32 against bfloat16"),
    Bench("documents", "bench.documents", "Documents: ingest, query latency, recall"),
)


def names() -> list[str]:
    return [b.name for b in BENCHMARKS]


def run_one(bench: Bench, ctx: BenchContext) -> BenchResult:
    """Run a benchmark; a missing subject or a crash becomes a result that says so, never an abort."""
    start = time.perf_counter()
    method = ""
    try:
        module = importlib.import_module(bench.module)
        method = " ".join((module.__doc__ or "").split())
        runner: Callable[[BenchContext], BenchResult] = module.run
        result = runner(ctx)
    except SubjectMissing as missing:
        result = BenchResult(bench.name, bench.title, status="missing", reason=str(missing))
    except Exception as exc:
        result = BenchResult(
            bench.name,
            bench.title,
            status="error",
            reason=f"{type(exc).__name__}: {exc}",
            notes=[traceback.format_exc(limit=8)],
        )
    result.duration_s = time.perf_counter() - start
    result.method = method
    return result
