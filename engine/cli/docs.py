"""``vllm-desk docs add|rescan|list|remove|search``: document collections from the command line.

``add`` and ``rescan`` index files (new or changed ones only) and ``search`` embeds the question; both start
the embedding server for the occasion (the built-in all-MiniLM-L6-v2, prepared on first use) and stop it
after, or use ``--embedder-url`` (any OpenAI-compatible ``/v1/embeddings``). ``add`` exits 1 when a file
could not be indexed, and lists each with its reason; Ctrl-C stops it cleanly (the file being indexed is
dropped whole; ``rescan`` goes on from there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from engine.cli.runner import interrupt_means, run_command
from engine.documents.embedder import Embedder, endpoint_embedder
from engine.documents.index import Indexer, IndexProgress, IndexReport
from engine.documents.store import DocumentStore, documents_db
from engine.paths import AppPaths

DEFAULT_COLLECTION = "default"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "docs",
        help="document collections: add, rescan, reindex, list, remove, search",
        description="Index your files into named collections and search them (hybrid keyword + vector).",
    )
    sub = parser.add_subparsers(dest="docs_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="add files or folders (recursively) to a collection and index them")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--collection", default=DEFAULT_COLLECTION, metavar="NAME")
    _embedder_options(add)
    add.add_argument("--json", action="store_true", help="print the report as JSON")
    add.set_defaults(func=run_add)

    rescan = sub.add_parser("rescan", help="index new and changed files of a collection, drop removed ones")
    rescan.add_argument("--collection", default=DEFAULT_COLLECTION, metavar="NAME")
    _embedder_options(rescan)
    rescan.add_argument("--json", action="store_true", help="print the report as JSON")
    rescan.set_defaults(func=run_rescan)

    reindex = sub.add_parser(
        "reindex",
        help="index every file of a collection again (after changing the embedding model)",
        description="Forget the collection's passages and vectors and index all its files again with the "
        "embedding model chosen now: vectors of two models are never mixed.",
    )
    reindex.add_argument("collection", metavar="NAME")
    _embedder_options(reindex)
    reindex.add_argument("--json", action="store_true", help="print the report as JSON")
    reindex.set_defaults(func=run_reindex)

    listing = sub.add_parser("list", help="the collections (with --files: each file and its state)")
    listing.add_argument("--files", action="store_true", help="also list every file and why one failed")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)

    remove = sub.add_parser("remove", help="remove a collection, or some of its files or folders")
    remove.add_argument("collection", metavar="NAME")
    remove.add_argument("paths", nargs="*", metavar="PATH", help="only these files or folders")
    remove.set_defaults(func=run_remove)

    search = sub.add_parser("search", help="the passages that best match a question")
    search.add_argument("query", metavar="QUERY")
    search.add_argument(
        "--collection",
        action="append",
        metavar="NAME",
        help="search this collection (repeatable; default: all)",
    )
    search.add_argument("--top", type=int, default=5, metavar="N", help="how many passages (default 5)")
    search.add_argument("--mode", choices=("hybrid", "keyword", "vector"), default="hybrid")
    _embedder_options(search)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=run_search)


def _embedder_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--embedder-profile",
        metavar="NAME",
        help="a saved server profile serving an embedding model (local, with --runner pooling in its extra "
        "arguments, or remote); default: documents.embedder in the settings (the built-in all-MiniLM-L6-v2)",
    )
    where.add_argument("--embedder-url", metavar="URL", help="an OpenAI-compatible /v1/embeddings server")
    parser.add_argument("--embedder-model", metavar="NAME", help="model name on --embedder-url")
    parser.add_argument("--embedder-key-env", metavar="VAR", help="environment variable holding its API key")


def _store(args: argparse.Namespace) -> DocumentStore:
    return DocumentStore(documents_db(AppPaths.resolve(args.data_dir).ensure()))


async def _embedder(args: argparse.Namespace, stack: AsyncExitStack) -> Embedder:
    """The embedder for this command: ``--embedder-url``, or the built-in model started for the occasion."""
    if args.embedder_url:
        from engine.cli.chat import remote_endpoint

        key = os.environ.get(args.embedder_key_env) if args.embedder_key_env else None
        endpoint = await remote_endpoint(args.embedder_url, args.embedder_model, key)
        return endpoint_embedder(endpoint)
    from engine.documents.service import EmbedderService
    from engine.settings.store import SettingsStore

    paths = AppPaths.resolve(args.data_dir).ensure()
    settings = SettingsStore.open(paths.settings_file)
    runtime_path = settings.settings.general.vllm_path
    if args.embedder_profile:
        from engine.cli.serve import choose_profile

        chosen = argparse.Namespace(profile=args.embedder_profile, model=None, port=None)
        profile = choose_profile(chosen, settings)
    else:  # the one Preferences > Documents chose (documents.embedder): the built-in model by default
        from engine.settings.embedder import chosen_embedder

        profile = chosen_embedder(settings.settings, paths)
    service = EmbedderService(
        paths,
        runtime_path=str(runtime_path) if runtime_path else None,
        profile=profile,
        progress=lambda p: print(f"{p.message} …", file=sys.stderr, flush=True),
    )
    stack.push_async_callback(service.shutdown)
    print("Starting the embedding model …", file=sys.stderr, flush=True)
    return await service.start()


class _ProgressLine:
    """Indexing progress on stderr: one line per file."""

    def __call__(self, p: IndexProgress) -> None:
        if p.phase == "scan":
            print("Looking for files …", file=sys.stderr, flush=True)
        elif p.phase == "index":
            rate = f", {p.chunks_per_s:.0f} passages/s" if p.chunks_per_s else ""
            print(
                f"[{p.files_done + 1}/{p.files_total}] {p.current} ({p.chunks} passages so far{rate})",
                file=sys.stderr,
                flush=True,
            )


def _report_json(report: IndexReport) -> dict[str, Any]:
    return {
        "collection": report.collection,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "failed": [{"path": f.path, "reason": f.reason} for f in report.failed],
        "passages": report.chunks,
        "pages": report.pages,
        "seconds": round(report.seconds, 3),
        "cancelled": report.cancelled,
    }


def _print_report(report: IndexReport, as_json: bool) -> int:
    if as_json:
        print(json.dumps(_report_json(report)))
    else:
        print(
            f"{report.collection}: {len(report.added)} added, {len(report.updated)} updated, "
            f"{report.unchanged} unchanged, {len(report.removed)} removed, {len(report.failed)} failed "
            f"({report.chunks} passages, {report.seconds:.1f} s)"
        )
        if report.cancelled:
            print("Stopped before the end; `vllm-desk docs rescan` goes on from here.")
        if report.failed:
            print("Not indexed:")
            for problem in report.failed:
                print(f"  {problem.path}: {problem.reason}")
    if report.cancelled:
        return 130
    return 1 if report.failed else 0


async def _index(args: argparse.Namespace, paths: list[Path] | None, *, again: bool = False) -> int:
    store = _store(args)
    try:
        async with AsyncExitStack() as stack:
            if paths is None:
                store.collection(args.collection)  # a missing collection is an error before any start
            embedder = await _embedder(args, stack)
            if again:  # only once the new embedder answers: a failed start leaves the old index usable
                await asyncio.to_thread(store.clear_index, args.collection)
            indexer = Indexer(store, embedder, progress=_ProgressLine())
            stack.enter_context(interrupt_means(indexer.cancel))  # Ctrl-C: stop indexing, report
            if paths is None:
                job = asyncio.ensure_future(asyncio.to_thread(indexer.rescan, args.collection))
            else:
                job = asyncio.ensure_future(asyncio.to_thread(indexer.add, args.collection, paths))
            try:
                report = await asyncio.shield(job)
            except asyncio.CancelledError:
                # Stopped by a signal (engine.cli.runner): the indexing thread ends (the file being indexed
                # is dropped whole) before the embedder stops and the store closes under it.
                indexer.cancel()
                with contextlib.suppress(Exception):
                    await job
                raise
            return _print_report(report, args.json)
    finally:
        store.close()
    raise AssertionError("unreachable")


def run_add(args: argparse.Namespace) -> int:
    return run_command(_index(args, [Path(p) for p in args.paths]))


def run_rescan(args: argparse.Namespace) -> int:
    return run_command(_index(args, None))


def run_reindex(args: argparse.Namespace) -> int:
    return run_command(_index(args, None, again=True))


def run_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        infos = store.collections()
        files = {i.name: store.files(i.name) for i in infos} if args.files else {}
    finally:
        store.close()
    if args.json:
        out = []
        for info in infos:
            item: dict[str, Any] = {
                "name": info.name,
                "files": info.files,
                "failed": info.failed,
                "passages": info.chunks,
                "embedder": info.embedder,
                "roots": list(info.roots),
                "created_at": info.created_at,
            }
            if args.files:
                item["file_list"] = [
                    {
                        "path": f.path,
                        "state": f.state,
                        "error": f.error,
                        "passages": f.chunks,
                        "pages": f.pages,
                    }
                    for f in files[info.name]
                ]
            out.append(item)
        print(json.dumps(out, indent=2))
        return 0
    if not infos:
        print("No collections yet. Add one: vllm-desk docs add PATH... [--collection NAME]")
    for info in infos:
        failed = f", {info.failed} failed" if info.failed else ""
        print(f"{info.name}: {info.files} files, {info.chunks} passages{failed}")
        for root in info.roots:
            print(f"  from {root}")
        for record in files.get(info.name, []):
            state = record.state if record.state == "indexed" else f"failed: {record.error}"
            print(f"    {record.path} ({record.chunks} passages; {state})")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        if not args.paths:
            store.delete_collection(args.collection)
            print(f"Removed the collection {args.collection}.")
            return 0
        removed = 0
        for raw in args.paths:
            target = str(Path(os.path.abspath(raw)))
            store.remove_root(args.collection, Path(target))
            for record in store.files(args.collection):
                if record.path == target or record.path.startswith(target.rstrip(os.sep) + os.sep):
                    removed += store.remove_file(args.collection, record.path)
        print(f"Removed {removed} files from {args.collection}.")
        return 0
    finally:
        store.close()


async def _search(args: argparse.Namespace) -> int:
    from engine.documents.retrieval import Retriever

    store = _store(args)
    try:
        collections = args.collection or [c.name for c in store.collections()]
        if not collections:
            print("No collections yet. Add one: vllm-desk docs add PATH... [--collection NAME]")
            return 0
        for name in collections:
            store.collection(name)  # CollectionNotFound before starting anything
        async with AsyncExitStack() as stack:
            embedder = None if args.mode == "keyword" else await _embedder(args, stack)
            retriever = Retriever(store, embedder)
            hits = await retriever.search_async(args.query, collections, top_k=args.top, mode=args.mode)
    finally:
        store.close()
    if args.json:
        print(json.dumps([h.to_json() for h in hits], indent=2))
        return 0
    if not hits:
        print("Nothing found.")
    for hit in hits:
        print(f"[{hit.rank}] {hit.file}" + (f", page {hit.page}" if hit.page is not None else ""), end="")
        print(f" — {hit.section}" if hit.section else "", end="")
        print(f"  (score {hit.score:.3f})")
        for line in hit.content.strip().splitlines():
            print(f"    {line}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    return run_command(_search(args))
