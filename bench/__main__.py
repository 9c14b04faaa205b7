"""``python -m bench [--quick] [--only NAME ...]``: run the benchmarks, print ratios, write results, docs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import registry, report
from bench.context import REPO_ROOT, BenchContext, default_cache_dir
from bench.machine import describe
from bench.plots import draw
from bench.result import BenchResult

RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
PLOTS = REPO_ROOT / "docs" / "bench"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer repeats (a few minutes)")
    parser.add_argument(
        "--only",
        action="append",
        choices=registry.names(),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(registry.names())}",
    )
    parser.add_argument(
        "--scale", type=float, default=None, help="data size factor (default 1, or 0.1 with --quick)"
    )
    parser.add_argument("--no-vllm", action="store_true", help="skip the parts that need the real vLLM")
    parser.add_argument("--cache-dir", type=Path, default=None, help="generated data (default ~/.cache/...)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--docs", type=Path, default=DOCS, help="Markdown summary to regenerate")
    parser.add_argument("--plots", type=Path, default=PLOTS, help="folder for the PNG plots")
    parser.add_argument(
        "--docs-only", action="store_true", help="only regenerate the Markdown summary from the results file"
    )
    return parser.parse_args(argv)


def _merge(previous: Path, fresh: list[BenchResult]) -> list[dict[str, object]]:
    """With --only, keep the other benchmarks' last results so the docs stay complete."""
    fresh_dicts = {r.name: r.to_dict() for r in fresh}
    old: dict[str, dict[str, object]] = {}
    if previous.exists():
        try:
            old = {b["name"]: b for b in json.loads(previous.read_text(encoding="utf-8"))["benchmarks"]}
        except (ValueError, KeyError):
            old = {}
    return [
        fresh_dicts.get(name) or old[name] for name in registry.names() if name in fresh_dicts or name in old
    ]


def write_docs(docs: Path, generated: str) -> None:
    """The generated summary, with the hand-written end of the file as it was (see report.HAND_WRITTEN)."""
    previous = docs.read_text(encoding="utf-8") if docs.exists() else ""
    docs.write_text(report.keeping_hand_written(generated, previous), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.docs_only:
        payload = json.loads(args.results.read_text(encoding="utf-8"))
        prefix = os.path.relpath(args.plots, args.docs.parent) + "/"
        write_docs(args.docs, report.markdown(payload, plot_prefix=prefix))
        return 0
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    started = dt.datetime.now(dt.UTC)
    machine = describe()
    t0 = time.perf_counter()
    chosen = [b for b in registry.BENCHMARKS if not args.only or b.name in args.only]
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="vllm-desk-bench-") as scratch:
        ctx = BenchContext(
            quick=args.quick,
            cache_dir=args.cache_dir or default_cache_dir(),
            work_dir=Path(scratch),
            scale=args.scale if args.scale is not None else (0.1 if args.quick else 1.0),
            real_vllm=not args.no_vllm,
        )
        for bench in chosen:
            print(f"== {bench.title} ({bench.name})", flush=True)
            result = registry.run_one(bench, ctx)
            result.taken_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            result.quick = args.quick
            result.plots = draw(result, args.plots)
            print(f"   {result.status} in {result.duration_s:.1f} s {result.reason}", flush=True)
            results.append(result)
    print()
    report.print_table(results)
    payload = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "duration_s": time.perf_counter() - t0,
        "machine": machine,
    }
    merged = _merge(args.results, results) if args.only else [r.to_dict() for r in results]
    if args.only and args.results.exists():
        # The run described at the top stays the full one; say what was rerun since.
        previous = json.loads(args.results.read_text(encoding="utf-8"))
        rerun = [*previous.get("rerun", []), f"{', '.join(args.only)} at {payload['started']}"]
        payload.update(
            started=previous.get("started", payload["started"]),
            quick=previous.get("quick", payload["quick"]),
            duration_s=previous.get("duration_s", payload["duration_s"]),
            rerun=rerun,
        )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({**payload, "benchmarks": merged}, indent=2, default=str) + "\n")
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    prefix = os.path.relpath(args.plots, args.docs.parent) + "/"
    write_docs(args.docs, report.markdown({**payload, "benchmarks": merged}, plot_prefix=prefix))
    print(f"\nresults: {args.results}\nsummary: {args.docs}\nplots:   {args.plots}")
    return 0 if all(r.status != "error" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
