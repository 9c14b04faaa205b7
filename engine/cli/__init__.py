"""The ``vllm-desk`` command line: drives the engine without Qt.

Each subcommand lives in its own module here with ``register(subparsers)``; the module sets
``func=run`` where ``run(args: argparse.Namespace) -> int``. ``desktop.main`` calls :func:`main` and passes
``gui`` to launch the window when no subcommand is given (and extra capabilities such as PDF export,
which needs Qt).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from engine import APP_NAME, __version__
from engine.errors import DeskError

# Add a module name here when you add a subcommand module.
COMMAND_MODULES: tuple[str, ...] = (
    "chat",
    "desktop_entry",
    "docs",
    "doctor",
    "history",
    "runtime",
    "serve",
    "tools",
    "transfer",
)

GuiLauncher = Callable[[argparse.Namespace], int]


def build_parser(*, with_commands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vllm-desk",
        description=f"{APP_NAME}: chat with LLMs on your own workstation through a managed vLLM server. "
        "Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep all state (config, history, logs, runtime, models) under DIR (env: VLLM_DESK_HOME)",
    )
    parser.add_argument("--tray", action="store_true", help="start with no window, only the tray launcher")
    parser.add_argument("--new-chat", action="store_true", help="open the window on a new conversation")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    if not with_commands:
        parser.set_defaults(command=None)
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"engine.cli.{name}").register(sub)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    gui: GuiLauncher | None = None,
    capabilities: dict[str, Any] | None = None,
) -> int:
    """Run the command line. ``capabilities`` lets the desktop package offer extras (e.g. ``"pdf"``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # Without a command (opening the window) the command modules, some heavy (Haystack, httpx), stay unloaded:
    # they cost the window's cold start ~0.3 s.
    rest: list[str] = argv
    if not {"-h", "--help"} & set(argv):  # the help lists every command
        args, rest = build_parser(with_commands=False).parse_known_args(argv)
    if rest:
        args = build_parser().parse_args(argv)
    args.capabilities = capabilities or {}
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        if gui is None:
            print("The window needs PySide6; use a command (see --help).", file=sys.stderr)
            return 2
        return gui(args)
    from engine.cli.runner import StoppedBySignal, say_stopped

    try:
        result: int = args.func(args)
    except StoppedBySignal as stopped:  # what the command started is stopped (engine.cli.runner)
        return say_stopped(stopped)
    except DeskError as problem:
        print(f"error: {problem}", file=sys.stderr)
        if problem.fix is not None and problem.fix.hint:
            print(f"fix: {problem.fix.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
