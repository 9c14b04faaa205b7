"""Which document store for "chat with your documents": measured, not picked by habit (docs/documents.md).

Standalone (not in ``python -m bench``): the candidates are packages the app does not install, so run it
with a scratch venv that has them, e.g.::

    python3 -m venv /tmp/sb && /tmp/sb/bin/pip install haystack-ai qdrant-haystack sqlite-vec numpy
    /tmp/sb/bin/python bench/document_stores.py --chunks 100000 --only sqlite-numpy,sqlite-vec,qdrant

Every store gets the same N chunks (synthetic words, random unit 384-dim vectors like all-MiniLM-L6-v2's)
and answers the same 100 vector queries (top 20) and 100 keyword queries where it has keyword search.
Printed: ingest seconds, query p50/p95 in ms, the process's RSS growth, and the store's size on disk.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil

DIM = 384
WORDS = [f"w{i}" for i in range(20000)]


def corpus(n: int, seed: int = 1) -> tuple[list[str], np.ndarray]:
    rnd = random.Random(seed)
    texts = [" ".join(rnd.choices(WORDS, k=120)) for _ in range(n)]
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, DIM), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return texts, vecs


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def timed(queries: list[Callable[[], object]]) -> tuple[float, float]:
    times = []
    for q in queries:
        t = time.perf_counter()
        q()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fts_setup(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE chunks(id INTEGER PRIMARY KEY, content TEXT, embedding BLOB)")
    db.execute("CREATE VIRTUAL TABLE fts USING fts5(content, content='chunks', content_rowid='id')")


def keyword_queries(db: sqlite3.Connection, n: int = 100) -> list[Callable[[], object]]:
    rnd = random.Random(7)
    out = []
    for _ in range(n):
        q = " OR ".join(rnd.choices(WORDS, k=3))
        out.append(
            lambda q=q: db.execute(
                "SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT 20", (q,)
            ).fetchall()
        )
    return out


def bench_sqlite_numpy(texts: list[str], vecs: np.ndarray, folder: Path) -> dict[str, float]:
    path = folder / "store.db"
    before = rss()
    t = time.perf_counter()
    db = sqlite3.connect(path)
    fts_setup(db)
    with db:
        db.executemany(
            "INSERT INTO chunks(id, content, embedding) VALUES (?, ?, ?)",
            ((i + 1, s, v.tobytes()) for i, (s, v) in enumerate(zip(texts, vecs, strict=True))),
        )
        db.execute("INSERT INTO fts(fts) VALUES ('rebuild')")
    ingest = time.perf_counter() - t
    t = time.perf_counter()
    blobs = db.execute("SELECT embedding FROM chunks ORDER BY id").fetchall()
    matrix = np.frombuffer(b"".join(b for (b,) in blobs), dtype=np.float32).reshape(-1, DIM)
    del blobs
    load = time.perf_counter() - t
    qs = np.random.default_rng(3).standard_normal((100, DIM), dtype=np.float32)

    def vq(q: np.ndarray) -> object:
        scores = matrix @ q
        top = np.argpartition(-scores, 20)[:20]
        return top[np.argsort(-scores[top])]

    vp50, vp95 = timed([lambda q=q: vq(q) for q in qs])
    kp50, kp95 = timed(keyword_queries(db))
    return {
        "ingest_s": ingest,
        "load_vectors_s": load,
        "vector_p50_ms": vp50,
        "vector_p95_ms": vp95,
        "keyword_p50_ms": kp50,
        "keyword_p95_ms": kp95,
        "rss_growth_mb": (rss() - before) / 2**20,
        "disk_mb": dir_size(folder) / 2**20,
    }


def bench_sqlite_vec(texts: list[str], vecs: np.ndarray, folder: Path) -> dict[str, float]:
    import sqlite_vec

    path = folder / "store.db"
    before = rss()
    t = time.perf_counter()
    db = sqlite3.connect(path)
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    fts_setup(db)
    db.execute(f"CREATE VIRTUAL TABLE vec USING vec0(embedding float[{DIM}] distance_metric=cosine)")
    with db:
        db.executemany(
            "INSERT INTO chunks(id, content) VALUES (?, ?)", ((i + 1, s) for i, s in enumerate(texts))
        )
        db.execute("INSERT INTO fts(fts) VALUES ('rebuild')")
        db.executemany(
            "INSERT INTO vec(rowid, embedding) VALUES (?, ?)",
            ((i + 1, v.tobytes()) for i, v in enumerate(vecs)),
        )
    ingest = time.perf_counter() - t
    qs = np.random.default_rng(3).standard_normal((100, DIM), dtype=np.float32)
    sql = "SELECT rowid, distance FROM vec WHERE embedding MATCH ? AND k = 20"
    vp50, vp95 = timed([lambda q=q: db.execute(sql, (q.tobytes(),)).fetchall() for q in qs])
    kp50, kp95 = timed(keyword_queries(db))
    return {
        "ingest_s": ingest,
        "vector_p50_ms": vp50,
        "vector_p95_ms": vp95,
        "keyword_p50_ms": kp50,
        "keyword_p95_ms": kp95,
        "rss_growth_mb": (rss() - before) / 2**20,
        "disk_mb": dir_size(folder) / 2**20,
    }


def bench_qdrant(texts: list[str], vecs: np.ndarray, folder: Path) -> dict[str, float]:
    from haystack import Document
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    before = rss()
    t = time.perf_counter()
    store = QdrantDocumentStore(path=str(folder / "qdrant"), embedding_dim=DIM, recreate_index=True)
    docs = [Document(content=s, embedding=v.tolist()) for s, v in zip(texts, vecs, strict=True)]
    store.write_documents(docs)
    ingest = time.perf_counter() - t
    del docs
    qs = np.random.default_rng(3).standard_normal((100, DIM), dtype=np.float32)
    vp50, vp95 = timed(
        # The store's own vector query, without the retriever component around it: the store's cost alone.
        [lambda q=q: store._query_by_embedding(query_embedding=q.tolist(), top_k=20) for q in qs]  # noqa: SLF001
    )
    return {
        "ingest_s": ingest,
        "vector_p50_ms": vp50,
        "vector_p95_ms": vp95,
        "rss_growth_mb": (rss() - before) / 2**20,
        "disk_mb": dir_size(folder) / 2**20,
    }


def bench_chroma(texts: list[str], vecs: np.ndarray, folder: Path) -> dict[str, float]:
    from haystack import Document
    from haystack_integrations.document_stores.chroma import ChromaDocumentStore

    before = rss()
    t = time.perf_counter()
    store = ChromaDocumentStore(persist_path=str(folder / "chroma"), distance_function="cosine")
    docs = [Document(content=s, embedding=v.tolist()) for s, v in zip(texts, vecs, strict=True)]
    for i in range(0, len(docs), 5000):
        store.write_documents(docs[i : i + 5000])
    ingest = time.perf_counter() - t
    del docs
    qs = np.random.default_rng(3).standard_normal((100, DIM), dtype=np.float32)
    vp50, vp95 = timed([lambda q=q: store.search_embeddings([q.tolist()], top_k=20) for q in qs])
    # No keyword side: chroma-haystack's text `search` embeds the query with Chroma's own ONNX model (a
    # download at first use), it is not a keyword search.
    return {
        "ingest_s": ingest,
        "vector_p50_ms": vp50,
        "vector_p95_ms": vp95,
        "rss_growth_mb": (rss() - before) / 2**20,
        "disk_mb": dir_size(folder) / 2**20,
    }


STORES: dict[str, Callable[[list[str], np.ndarray, Path], dict[str, float]]] = {
    "sqlite-numpy": bench_sqlite_numpy,
    "sqlite-vec": bench_sqlite_vec,
    "qdrant": bench_qdrant,
    "chroma": bench_chroma,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--only", default=",".join(STORES))
    args = parser.parse_args()
    texts, vecs = corpus(args.chunks)
    for name in args.only.split(","):
        gc.collect()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                result = STORES[name](texts, vecs, Path(tmp))
            except Exception as exc:
                result = {"error": f"{type(exc).__name__}: {exc}"}  # type: ignore[dict-item]
            print(
                json.dumps({"store": name, "chunks": args.chunks, "pid": os.getpid(), **result}), flush=True
            )


if __name__ == "__main__":
    main()
