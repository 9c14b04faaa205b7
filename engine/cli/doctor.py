"""``vllm-desk doctor [--json]``: report the runtime, GPUs, keyring, folders and built-in model."""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.cli.runtime import configured_vllm
from engine.paths import AppPaths
from engine.server.doctor import format_report, run_doctor


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the vLLM runtime, GPUs, keyring, folders and built-in model",
        description="Report what vLLM Desk finds on this machine. Exits with status 1 when no usable vLLM "
        "runtime exists, printing the command that fixes it.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--vllm", metavar="PATH", help="check this vLLM (venv folder, vllm script or Python)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.resolve(args.data_dir)
    report = run_doctor(paths, configured_vllm(args, paths))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return 0 if report.ok else 1
