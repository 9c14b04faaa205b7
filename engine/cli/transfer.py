"""``vllm-desk export (ID... | --all) --format md|json|html|pdf -o PATH`` and ``vllm-desk import PATH``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

from engine.cli.history import history_errors, open_history
from engine.history.store import HistoryStore
from engine.transfer.exporter import EXPORT_FORMATS, ExportFormat, PdfRenderer, export_from_store
from engine.transfer.importer import IMPORT_FORMATS, ImportFormat, ImportLimits, import_path


def register(subparsers: Any) -> None:
    export = subparsers.add_parser(
        "export",
        help="export conversations as Markdown, JSON, HTML or PDF",
        description="Write conversations to a file. Several conversations go to a folder (one file each) or, "
        "when PATH ends in .zip, to a zip file. JSON keeps every branch and can be imported again.",
    )
    export.add_argument(
        "ids", nargs="*", type=int, metavar="ID", help="conversation ids (see `vllm-desk list`)"
    )
    export.add_argument("--all", action="store_true", help="export every conversation")
    export.add_argument("--format", choices=EXPORT_FORMATS, help="file format (default: from PATH's suffix)")
    export.add_argument("-o", "--output", required=True, metavar="PATH", help="file, folder or .zip to write")
    export.add_argument(
        "--all-branches", action="store_true", help="Markdown/HTML/PDF: every branch, not only the shown one"
    )
    export.set_defaults(func=run_export)

    imp = subparsers.add_parser(
        "import",
        help="import conversations (a vLLM Desk export or ChatGPT's conversations.json)",
        description="Add the conversations in PATH (a .json file, a .zip, or a folder of exported files) to "
        "the history. Nothing is written if the file is damaged; importing it again adds nothing twice.",
    )
    imp.add_argument("path", metavar="PATH")
    imp.add_argument(
        "--format", choices=IMPORT_FORMATS, default="auto", help="what PATH holds (default: auto)"
    )
    imp.add_argument(
        "--max-size", type=int, default=512, metavar="MIB", help="refuse files larger than this (default 512)"
    )
    imp.set_defaults(func=run_import)


@history_errors
def run_export(args: argparse.Namespace) -> int:
    target = Path(args.output).expanduser()
    if args.all == bool(args.ids):
        print("error: name conversation ids or use --all (not both)", file=sys.stderr)
        return 2
    fmt = args.format or target.suffix.lower().lstrip(".")
    if fmt == "markdown":
        fmt = "md"
    if fmt not in EXPORT_FORMATS:
        print(
            f"error: choose --format ({', '.join(EXPORT_FORMATS)}); {target.name!r} does not say",
            file=sys.stderr,
        )
        return 2
    pdf = cast("PdfRenderer | None", args.capabilities.get("pdf"))
    store = _open_store(args)
    try:
        summary = export_from_store(
            store,
            None if args.all else args.ids,
            target,
            cast(ExportFormat, fmt),
            all_branches=args.all_branches,
            pdf=pdf,
        )
    finally:
        store.close()
    print(summary.sentence())
    return 1 if summary.unreadable else 0


@history_errors
def run_import(args: argparse.Namespace) -> int:
    if not args.path.strip():
        print(
            "error: name a file, zip or folder to import (an empty name is not the current folder)",
            file=sys.stderr,
        )
        return 2
    store = _open_store(args)
    try:
        summary = import_path(
            store,
            Path(args.path).expanduser(),
            cast(ImportFormat, args.format),
            limits=ImportLimits(max_bytes=args.max_size * 2**20),
        )
    finally:
        store.close()
    print(summary.sentence())
    if 0 < len(summary.imported) <= 50:
        print("New conversation ids: " + " ".join(str(i) for i in summary.imported))
    elif summary.imported:
        print(f"New conversation ids: {summary.imported[0]} ... {summary.imported[-1]}")
    return 0


def _open_store(args: argparse.Namespace) -> HistoryStore:
    return open_history(args)
