"""Entry point of the ``vllm-desk`` command: subcommands go to the engine's CLI, no command opens the GUI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine.cli import main as cli_main


def _launch_gui(args: argparse.Namespace) -> int:
    # Imported here so that `vllm-desk doctor` and friends never load Qt.
    from desktop.app import run_app

    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(argv, gui=_launch_gui, capabilities=_capabilities())


def _capabilities() -> dict[str, object]:
    from desktop import capabilities

    return capabilities.available()


if __name__ == "__main__":
    sys.exit(main())
