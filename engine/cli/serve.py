"""``vllm-desk serve [--profile NAME | --model M] [--port N] [--json] [--stop-strays]``: one server.

Prints the start's progress, then the base URL, served model name and API key a client needs; keeps running
until Ctrl-C, SIGTERM or SIGHUP (its terminal closing), then stops the whole process tree and exits 0. A
failed start prints the diagnosis and exits 1. With ``--json``, every event is one JSON object per line on
stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from engine.diagnosis.problems import ProcessesLeft
from engine.errors import DeskError
from engine.paths import AppPaths
from engine.server.profiles import ProfileInvalid, ServerProfile, builtin_profile
from engine.server.supervisor import LogLine, ServerState, StartProgress, StateChange, Supervisor
from engine.settings.store import SettingsStore
from engine.tools.parsers import suggest_parser


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="start a vLLM server (a saved profile, a model, or the built-in model) and keep it running",
        description="Start vLLM through the app's supervisor and print what a client needs (base URL, model "
        "name, API key). Ctrl-C stops the server and everything it started.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--profile", metavar="NAME", help="a profile saved in the settings")
    which.add_argument(
        "--model", metavar="M", help="a model folder or a Hugging Face repo id (default: the built-in model)"
    )
    parser.add_argument(
        "--port", type=port_number, metavar="N", help="port to listen on (default: a free one)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per event on stdout")
    parser.add_argument("--log", action="store_true", help="also print vLLM's own log lines on stderr")
    parser.add_argument(
        "--stop-strays",
        action="store_true",
        help="first stop vLLM processes an earlier crash left running (they are listed either way)",
    )
    parser.add_argument("--grace", type=float, default=5.0, metavar="S", help="seconds SIGTERM may take")
    parser.set_defaults(func=run)


def port_number(text: str) -> int:
    """``--port``: a whole number from 1 to 65535 (argparse turns the ValueError into a usage error)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1 to 65535)")
    return port


class ServeArgumentProblem(DeskError):
    title = "The serve command cannot be run as given"


def _check_arguments(args: argparse.Namespace) -> None:
    model = getattr(args, "model", None)
    if model and model.startswith("-"):
        raise ServeArgumentProblem(
            f"{model!r} is not a model: it looks like an option. "
            "Name a model folder or a Hugging Face repo id."
        )
    if model and model.startswith(("/", ".", "~")) and not Path(model).expanduser().is_dir():
        raise ServeArgumentProblem(
            f"There is no model folder at {model} (a path is never taken for a Hugging Face repo id)."
        )
    port = getattr(args, "port", None)
    if port is not None and 0 < port < 1024 and not _may_listen_on(port):
        raise ServeArgumentProblem(
            f"Port {port} is reserved for the system (below 1024); choose --port 1024 or higher."
        )


def _may_listen_on(port: int) -> bool:
    """Whether this process may bind ``port`` at all (root, CAP_NET_BIND_SERVICE or the system's
    ``ip_unprivileged_port_start`` decide; a port merely in use is said later, by the start itself)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except PermissionError:
            return False
        except OSError:
            return True  # in use, or the like: not a question of permission
    return True


def open_settings(path: Path) -> SettingsStore:
    """The settings for a command; what a damaged file made the app replace is said once, on stderr."""
    store = SettingsStore.open(path)
    report = store.take_problems()
    if report is not None:
        print(f"warning: {report}", file=sys.stderr, flush=True)
    return store


def choose_profile(args: argparse.Namespace, store: SettingsStore) -> ServerProfile:
    """The profile named by ``--profile``, one made from ``--model``, else the default or built-in one."""
    _check_arguments(args)
    settings = store.settings
    if args.profile:
        found = settings.profile(args.profile)
        if found is None:
            names = ", ".join(p.name for p in settings.profiles) or "none saved"
            raise ProfileInvalid(args.profile, f"there is no such profile (profiles: {names})")
        profile = found
    elif args.model and args.model != "builtin":
        folder = Path(args.model).expanduser()
        # Tool calling on, with the parser of the model's family (none known: off).
        parser = suggest_parser(args.model)
        if folder.is_dir():
            profile = ServerProfile(
                name=f"serve {args.model}",
                source="folder",
                model=str(folder.absolute()),
                tool_call_parser=parser,
            )
        else:
            profile = ServerProfile(
                name=f"serve {args.model}", source="hf_repo", model=args.model, tool_call_parser=parser
            )
    else:
        profile = builtin_profile()
    if args.port is not None:
        profile = profile.model_copy(update={"port": args.port})
    return profile


class _Printer:
    def __init__(self, as_json: bool, show_log: bool) -> None:
        self.as_json = as_json
        self.show_log = show_log

    def emit(self, event: str, **data: Any) -> None:
        print(json.dumps({"event": event, **data}), flush=True)

    def state(self, change: StateChange) -> None:
        if self.as_json:
            self.emit(
                "state", state=change.state.value, previous=change.previous.value, profile=change.profile_name
            )
        elif change.state in (ServerState.STOPPING, ServerState.STOPPED):
            print(f"Server {change.state.value}.", flush=True)

    def progress(self, p: StartProgress) -> None:
        if self.as_json:
            data = {k: v for k, v in vars(p).items() if v is not None}
            self.emit("progress", **{**data, "phase": p.phase.value, "elapsed_s": round(p.elapsed_s, 2)})
            return
        extra = f" {p.fraction:.0%}" if p.fraction is not None else ""
        if p.kv_cache_gib is not None:
            extra += f" ({p.kv_cache_gib:g} GiB)"
        eta = f" of ~{p.expected_s:.0f}s" if p.expected_s else ""
        print(f"[{p.elapsed_s:6.1f}s{eta}] {p.label}{extra}", flush=True)

    def log(self, line: LogLine) -> None:
        if self.show_log:
            print(line.text, file=sys.stderr, flush=True)


async def handle_strays(supervisor: Supervisor, printer: _Printer, *, stop: bool) -> None:
    """List the ``VLLM::`` processes an earlier crash left; with ``stop``, stop them (the start goes on)."""
    strays = await supervisor.find_strays()
    if not strays:
        return
    if printer.as_json:
        printer.emit(
            "strays",
            pids=[s.pid for s in strays],
            processes=[
                {"pid": s.pid, "command": s.cmdline, "age_s": round(s.age_s, 1), "rss_bytes": s.rss_bytes}
                for s in strays
            ],
        )
    else:
        print("warning: vLLM processes left by an earlier run are still running:", file=sys.stderr)
        for s in strays:
            mib = s.rss_bytes / (1 << 20)
            print(f"  {s.pid:>7}  {s.age_s:8.0f}s old  {mib:8.0f} MiB  {s.cmdline[:80]}", file=sys.stderr)
        if not stop:
            print("  (vllm-desk serve --stop-strays stops them)", file=sys.stderr)
    if not stop:
        return
    left = await supervisor.clean_up_strays(strays)
    if left:
        report_problem(ProcessesLeft(left), printer)
    elif printer.as_json:
        printer.emit("strays_stopped", pids=[s.pid for s in strays])
    else:
        print(f"Stopped {len(strays)} leftover vLLM process(es).", file=sys.stderr)


async def serve(
    profile: ServerProfile, supervisor: Supervisor, printer: _Printer, *, stop_strays: bool = False
) -> int:
    """Start, report, wait for a signal (or the server's death), stop; the exit status.

    ``stop_strays``: first stop the ``VLLM::`` processes an earlier crash left (they are always listed).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    supervisor.state_changed.connect(printer.state)
    supervisor.progress.connect(printer.progress)
    supervisor.log_line.connect(printer.log)
    supervisor.state_changed.connect(lambda c: stop.set() if c.state is ServerState.FAILED else None)
    await handle_strays(supervisor, printer, stop=stop_strays)
    try:
        start = asyncio.ensure_future(supervisor.start(profile))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({start, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():  # Ctrl-C during the start
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await start
            return 0
        stopper.cancel()
        try:
            endpoint = start.result()
        except DeskError as problem:
            report_problem(problem, printer)
            return 1
        if printer.as_json:
            printer.emit(
                "ready",
                base_url=endpoint.base_url,
                model=endpoint.model,
                api_key=endpoint.api_key,
                max_model_len=endpoint.max_model_len,
                pid=supervisor.pid,
                log=str(supervisor.log_path),
            )
        else:
            print(f"Ready: {endpoint.base_url}", flush=True)
            print(f"Model: {endpoint.model}", flush=True)
            print(f"API key: {endpoint.api_key}", flush=True)
            print("Press Ctrl-C to stop.", flush=True)
        await stop.wait()
        if supervisor.state is ServerState.FAILED and supervisor.problem is not None:
            report_problem(supervisor.problem, printer)
            return 1
        return 0
    finally:
        await supervisor.shutdown()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def report_problem(problem: DeskError, printer: _Printer) -> None:
    if printer.as_json:
        printer.emit("error", **problem.to_dict())
        return
    print(f"error: {problem}", file=sys.stderr)
    if problem.fix is not None and problem.fix.hint:
        print(f"fix: {problem.fix.hint}", file=sys.stderr)
    if problem.details:
        print("--- last lines of the server log ---", file=sys.stderr)
        print("\n".join(problem.details.splitlines()[-15:]), file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    paths = AppPaths.resolve(args.data_dir).ensure()
    store = open_settings(paths.settings_file)
    profile = choose_profile(args, store)
    runtime_path = store.settings.general.vllm_path
    supervisor = Supervisor(
        paths, runtime_path=str(runtime_path) if runtime_path else None, grace_s=args.grace
    )
    printer = _Printer(args.json, args.log)
    try:
        return asyncio.run(serve(profile, supervisor, printer, stop_strays=args.stop_strays))
    except PermissionError as exc:
        report_problem(
            ServeArgumentProblem(f"The server could not be started: {exc.strerror or exc}."), printer
        )
        return 1
