"""What a search pays after a write: the document store's cached vectors refreshed (docs/documents.md, "Cached
vectors").

Standalone (not in ``python -m bench``)::

    .venv/bin/python bench/document_refresh.py                      # this checkout's store
    git show 877e7e6:engine/documents/store.py > /tmp/old_store.py  # the store before per-collection versions
    .venv/bin/python bench/document_refresh.py --store /tmp/old_store.py

Builds collection B of N passages (random 384-dimension vectors, 100 a file) and a small collection A in a
scratch database, searches B once from a second store connection (as the window searches while its indexer
writes through its own), then times the next search on B: with nothing
written, after a write to A, after a new file in B, and after a changed file of B (its 100 passages
replaced). Printed: the median, min and max in ms of each.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

DIMS = 384
PER_FILE = 100


def load_store(path: str | None) -> ModuleType:
    if path is None:
        import engine.documents.store as module

        return module
    spec = importlib.util.spec_from_file_location("other_store", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_store"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--store", help="another engine/documents/store.py to measure (e.g. an older one)")
    args = parser.parse_args()
    mod = load_store(args.store)
    rng = np.random.default_rng(0)

    def write(store: object, collection: str, name: str, count: int) -> None:
        vecs = rng.standard_normal((count, DIMS)).astype(np.float32)
        store.replace_file(  # type: ignore[attr-defined]
            collection,
            name,
            sha256=name,
            size=1,
            mtime=1.0,
            kind="text",
            pages=0,
            passages=[mod.Passage(i, f"{name} {i}", 0, 1, None, "", vecs[i]) for i in range(count)],
        )

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "documents.sqlite3"
        writer = mod.DocumentStore(path)
        writer.ensure_collection("B")
        writer.ensure_collection("A")
        started = time.perf_counter()
        for f in range(args.passages // PER_FILE):
            write(writer, "B", f"/b/{f}", PER_FILE)
        print(f"built {args.passages} passages in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        searcher = mod.DocumentStore(path)
        query = rng.standard_normal(DIMS)
        searcher.vector_rows(query, ["B"])

        def search_ms() -> float:
            started = time.perf_counter()
            searcher.vector_rows(query, ["B"])
            return (time.perf_counter() - started) * 1000

        times: dict[str, list[float]] = {
            "nothing written": [],
            "after a write to A": [],
            "after a new file in B": [],
            "after a changed file of B": [],
        }
        for k in range(args.rounds):
            times["nothing written"].append(search_ms())
            write(writer, "A", f"/a/{k}", 1)
            times["after a write to A"].append(search_ms())
            write(writer, "B", f"/b/new{k}", 1)
            times["after a new file in B"].append(search_ms())
            write(writer, "B", f"/b/{k}", PER_FILE)  # its 100 passages replaced
            times["after a changed file of B"].append(search_ms())
        for label, values in times.items():
            print(
                f"search on B, {label}: median {statistics.median(values):.1f} ms "
                f"(min {min(values):.1f}, max {max(values):.1f})"
            )
        searcher.close()
        writer.close()


if __name__ == "__main__":
    main()
