"""The per-collection vectors version: a search reads a collection's vectors again only when a write (from any
connection or process) changed that collection; the schema migrates an old database in place."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.documents.store import (
    SCHEMA_VERSION,
    CollectionNotFound,
    DocumentsTooNew,
    DocumentStore,
    Passage,
)

DIMS = 4


def vec(*values: float) -> list[float]:
    return list(values) + [0.0] * (DIMS - len(values))


def put(store: DocumentStore, collection: str, path: str, vectors: list[list[float]]) -> None:
    store.ensure_collection(collection)
    store.replace_file(
        collection,
        path,
        sha256=path,
        size=1,
        mtime=1.0,
        kind="text",
        pages=0,
        passages=[Passage(i, f"{path} {i}", 0, 1, None, "", v) for i, v in enumerate(vectors)],
    )


class Reads:
    """Counts the vector reads of a store (the SELECTs of embeddings) by collection id: whole collections
    (``of``) and only some files' rows (``files_of``)."""

    def __init__(self, store: DocumentStore) -> None:
        self.whole: list[int] = []
        self.files: list[int] = []
        self._store = store
        store._conn.set_trace_callback(self._seen)

    def _seen(self, sql: str) -> None:
        if sql.lstrip().startswith("SELECT") and "k.embedding FROM chunks" in sql:
            # The trace shows the statement with its parameters put in: "... f.collection_id=3 ...".
            cid = int(sql.split("f.collection_id=")[1].split()[0])
            (self.files if "k.file_id IN" in sql else self.whole).append(cid)

    def of(self, store: DocumentStore, name: str) -> int:
        return self.whole.count(store._collection_id(name))

    def files_of(self, store: DocumentStore, name: str) -> int:
        return self.files.count(store._collection_id(name))


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[DocumentStore, DocumentStore]]:
    path = tmp_path / "documents.sqlite3"
    searcher, writer = DocumentStore(path), DocumentStore(path)
    yield searcher, writer
    searcher.close()
    writer.close()


def best(store: DocumentStore, collection: str, query: list[float]) -> str:
    return str(store.vector_search(query, [collection], top_k=1)[0].meta["file"])


def test_a_write_in_one_collection_leaves_the_others_matrix_cached(
    two: tuple[DocumentStore, DocumentStore],
) -> None:
    searcher, writer = two
    put(writer, "a", "/a1", [vec(1.0)])
    put(writer, "b", "/b1", [vec(0.0, 1.0)])
    reads = Reads(searcher)
    searcher.vector_rows(vec(1.0), ["a", "b"])
    assert (reads.of(searcher, "a"), reads.of(searcher, "b")) == (1, 1)

    put(writer, "a", "/a2", [vec(0.0, 0.0, 1.0)])  # another connection writes to a only
    assert best(searcher, "a", vec(0.0, 0.0, 1.0)) == "/a2"
    assert best(searcher, "b", vec(0.0, 1.0)) == "/b1"
    # a's new file's rows are read, nothing else
    assert (reads.of(searcher, "a"), reads.files_of(searcher, "a")) == (1, 1)
    assert (reads.of(searcher, "b"), reads.files_of(searcher, "b")) == (1, 0)

    put(searcher, "a", "/a3", [vec(0.0, 0.0, 0.0, 1.0)])  # and its own connection too
    assert best(searcher, "a", vec(0.0, 0.0, 0.0, 1.0)) == "/a3"
    searcher.vector_rows(vec(1.0), ["a", "b"])
    assert (reads.of(searcher, "a"), reads.files_of(searcher, "a")) == (1, 2)
    assert (reads.of(searcher, "b"), reads.files_of(searcher, "b")) == (1, 0)


@pytest.mark.parametrize(
    ("write", "reads_whole"),
    [
        pytest.param(lambda w: put(w, "a", "/a1", [vec(0.0, 0.0, 1.0)]), False, id="replace-file"),
        pytest.param(
            lambda w: w.record_failure("a", "/a1", sha256="x", size=1, mtime=2.0, reason="broken"),
            False,
            id="failure",
        ),
        pytest.param(lambda w: w.remove_file("a", "/a1"), False, id="remove-file"),
        pytest.param(lambda w: w.clear_index("a"), True, id="clear-index"),
        pytest.param(lambda w: w.delete_documents([w.filter_documents()[0].id]), True, id="delete-documents"),
    ],
)
def test_every_write_from_another_connection_is_seen_by_the_next_search(
    two: tuple[DocumentStore, DocumentStore], write: object, reads_whole: bool
) -> None:
    searcher, writer = two
    put(writer, "a", "/a1", [vec(1.0)])
    put(writer, "b", "/b1", [vec(1.0)])
    reads = Reads(searcher)
    assert searcher.vector_rows(vec(1.0), ["a"])
    old = searcher.vector_rows(vec(1.0), ["a"])
    assert reads.of(searcher, "a") == 1
    write(writer)  # type: ignore[operator]
    new = searcher.vector_rows(vec(1.0), ["a"])
    assert new != old
    expected = (2, 0) if reads_whole else (1, 1)
    assert (reads.of(searcher, "a"), reads.files_of(searcher, "a")) == expected
    searcher.vector_rows(vec(1.0), ["b"])
    assert reads.of(searcher, "b") == 1


def test_a_rebound_embedder_moves_the_version_and_an_unchanged_one_does_not(
    two: tuple[DocumentStore, DocumentStore],
) -> None:
    searcher, writer = two
    writer.bind_embedder("a", "m1", DIMS)
    version = searcher._conn.execute("SELECT vectors_version FROM collections WHERE name='a'").fetchone()
    writer.bind_embedder("a", "m1", DIMS)
    assert (
        searcher._conn.execute("SELECT vectors_version FROM collections WHERE name='a'").fetchone() == version
    )
    writer.bind_embedder("a", "m2", DIMS)  # no passages yet: allowed
    assert (
        searcher._conn.execute("SELECT vectors_version FROM collections WHERE name='a'").fetchone() != version
    )


def test_a_deleted_collection_whose_id_is_reused_is_not_served_from_the_old_matrix(
    two: tuple[DocumentStore, DocumentStore],
) -> None:
    searcher, writer = two
    put(writer, "a", "/a1", [vec(1.0)])
    assert best(searcher, "a", vec(1.0)) == "/a1"
    cid = searcher._collection_id("a")
    writer.delete_collection("a")
    with pytest.raises(CollectionNotFound):
        searcher.vector_rows(vec(1.0), ["a"])
    assert cid not in searcher._vectors  # its matrix is let go
    writer.ensure_collection("z")
    assert searcher._collection_id("z") == cid  # SQLite gave the id again
    assert searcher.vector_rows(vec(1.0), ["z"]) == []
    put(writer, "z", "/z1", [vec(0.0, 1.0)])
    assert best(searcher, "z", vec(0.0, 1.0)) == "/z1"


_OTHER_PROCESS = """
import sys
from engine.documents.store import DocumentStore, Passage
store = DocumentStore(sys.argv[1])
store.replace_file("a", "/from-child", sha256="c", size=1, mtime=1.0, kind="text", pages=0,
                   passages=[Passage(0, "child", 0, 1, None, "", [0.0, 0.0, 0.0, 1.0])])
store.close()
"""


def test_a_write_from_another_process_is_seen_by_the_next_search(tmp_path: Path) -> None:
    path = tmp_path / "documents.sqlite3"
    store = DocumentStore(path)
    put(store, "a", "/a1", [vec(1.0)])
    put(store, "b", "/b1", [vec(1.0)])
    reads = Reads(store)
    store.vector_rows(vec(1.0), ["a", "b"])
    subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(path)], check=True, cwd=Path(__file__).parents[3]
    )
    assert best(store, "a", vec(0.0, 0.0, 0.0, 1.0)) == "/from-child"
    store.vector_rows(vec(1.0), ["b"])
    assert (reads.of(store, "a"), reads.files_of(store, "a")) == (1, 1)
    assert (reads.of(store, "b"), reads.files_of(store, "b")) == (1, 0)
    store.close()


def cached(store: DocumentStore, name: str) -> dict[int, list[float]]:
    """What a search scans for a collection: row id -> vector."""
    store.vector_rows(vec(1.0), [name])
    vectors = store._vectors[store._collection_id(name)]
    rows = np.concatenate(vectors.blocks) if vectors.blocks else np.zeros((0, DIMS), dtype=np.float32)
    if vectors.live is not None:
        rows = rows[vectors.live]
    assert len(rows) == len(vectors.live_ids)
    return {int(i): row.tolist() for i, row in zip(vectors.live_ids, rows, strict=True)}


def test_vectors_patched_file_by_file_equal_the_collection_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "documents.sqlite3"
    searcher, writer = DocumentStore(path), DocumentStore(path)
    rng = np.random.default_rng(7)
    for f in range(6):
        put(writer, "a", f"/a{f}", [list(rng.standard_normal(DIMS)) for _ in range(3)])
    put(writer, "b", "/b0", [vec(1.0)])
    reads = Reads(searcher)
    cached(searcher, "a")
    blocks: list[int] = []
    dead: list[int] = []
    for step in range(60):
        # One to three writes between searches: new files, changed ones (more or fewer passages), failures,
        # removals; now and then a write to another collection.
        for _ in range(int(rng.integers(1, 4))):
            name = f"/a{int(rng.integers(0, 9))}"
            action = int(rng.integers(0, 6))
            if action <= 2:
                count = int(rng.integers(0, 5))
                put(writer, "a", name, [list(rng.standard_normal(DIMS)) for _ in range(count)])
            elif action == 3:
                writer.record_failure("a", name, sha256="x", size=1, mtime=1.0, reason="broken")
            elif action == 4:
                writer.remove_file("a", name)
            else:
                put(writer, "b", f"/b{step}", [vec(1.0)])
        whole = DocumentStore(path)
        assert cached(searcher, "a") == cached(whole, "a"), f"step {step}"
        whole.close()
        # And the scan agrees with the dot products of those vectors.
        query = rng.standard_normal(DIMS)
        vectors = cached(searcher, "a")
        expected = sorted(vectors, key=lambda i: -float(np.dot(vectors[i], query / np.linalg.norm(query))))
        assert [i for i, _ in searcher.vector_rows(query, ["a"], top_k=5)] == expected[:5]
        patched = searcher._vectors[searcher._collection_id("a")]
        blocks.append(len(patched.blocks))
        dead.append(len(patched.ids) - len(patched.live_ids))
        assert dead[-1] * 4 <= len(patched.ids)
    assert reads.of(searcher, "a") == 1  # every refresh after the first read only the changed files
    assert reads.files_of(searcher, "a") > 30
    # The rows went into more than one block and some were left dead (the paths without a copy were taken);
    # blocks are merged along the way.
    assert max(blocks) > 1
    assert max(dead) > 0
    assert max(blocks) <= 8
    searcher.close()
    writer.close()


def test_a_cache_older_than_the_kept_changes_is_read_whole(
    two: tuple[DocumentStore, DocumentStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.documents.store as store_module

    monkeypatch.setattr(store_module, "_CHANGES_KEPT", 3)
    searcher, writer = two
    put(writer, "a", "/a0", [vec(1.0)])
    reads = Reads(searcher)
    cached(searcher, "a")
    for f in range(1, 3):
        put(writer, "a", f"/a{f}", [vec(0.0, 1.0)])
    cached(searcher, "a")
    assert (reads.of(searcher, "a"), reads.files_of(searcher, "a")) == (1, 1)
    assert writer._conn.execute("SELECT count(*) FROM vector_changes").fetchone()[0] == 3
    for f in range(3, 7):
        put(writer, "a", f"/a{f}", [vec(0.0, 1.0)])
    assert len(cached(searcher, "a")) == 7
    assert (reads.of(searcher, "a"), reads.files_of(searcher, "a")) == (2, 1)


# The schema as vLLM Desk wrote it before the vectors version (user_version 1), kept verbatim.
_OLD_SCHEMA = """
CREATE TABLE collections(
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, embedder TEXT NOT NULL DEFAULT '',
    dims INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL
);
CREATE TABLE roots(
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    path TEXT NOT NULL, PRIMARY KEY(collection_id, path)
);
CREATE TABLE files(
    id INTEGER PRIMARY KEY, collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT '', pages INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '', indexed_at TEXT NOT NULL, UNIQUE(collection_id, path)
);
CREATE TABLE chunks(
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    doc_id TEXT NOT NULL UNIQUE, ordinal INTEGER NOT NULL, content TEXT NOT NULL, page INTEGER,
    section TEXT NOT NULL DEFAULT '', start INTEGER NOT NULL, "end" INTEGER NOT NULL, embedding BLOB
);
CREATE INDEX chunks_file ON chunks(file_id);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    content, section, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, content, section) VALUES (new.id, new.content, new.section);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, content, section)
    VALUES ('delete', old.id, old.content, old.section);
END;
PRAGMA user_version = 1;
"""


def old_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_SCHEMA)
    for cid, name in ((1, "a"), (2, "b")):
        conn.execute("INSERT INTO collections VALUES (?, ?, 'm1', 4, 'then')", (cid, name))
        conn.execute("INSERT INTO roots VALUES (?, ?)", (cid, f"/{name}"))
        conn.execute(
            "INSERT INTO files VALUES (?, ?, ?, 'h', 1, 1.0, 'text', 0, 'indexed', '', 'then')",
            (cid, cid, f"/{name}/f.txt"),
        )
        blob = np.asarray(vec(1.0) if name == "a" else vec(0.0, 1.0), dtype=np.float32).tobytes()
        conn.execute(
            """INSERT INTO chunks(file_id, doc_id, ordinal, content, page, section, start, "end", embedding)
            VALUES (?, ?, 0, ?, NULL, '', 0, 10, ?)""",
            (cid, f"doc-{name}", f"lighthouse keeper {name}", blob),
        )
    conn.commit()
    conn.close()


def test_a_database_of_the_old_schema_is_migrated_in_place_and_works(tmp_path: Path) -> None:
    path = tmp_path / "documents.sqlite3"
    old_database(path)
    store = DocumentStore(path)
    assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert [(c.name, c.files, c.chunks, c.roots) for c in store.collections()] == [
        ("a", 1, 1, ("/a",)),
        ("b", 1, 1, ("/b",)),
    ]
    assert best(store, "a", vec(1.0)) == "/a/f.txt"
    assert {d.meta["collection"] for d in store.keyword_search("lighthouse", ["a", "b"])} == {"a", "b"}
    # Each old collection has a version of its own, and versions given later are new ones.
    versions = dict(store._conn.execute("SELECT name, vectors_version FROM collections").fetchall())
    assert len(set(versions.values())) == 2
    put(store, "c", "/c1", [vec(0.0, 0.0, 1.0)])
    put(store, "a", "/a2", [vec(0.0, 0.0, 0.0, 1.0)])
    after = dict(store._conn.execute("SELECT name, vectors_version FROM collections").fetchall())
    assert after["b"] == versions["b"]
    assert after["a"] not in versions.values()
    assert after["c"] not in versions.values()
    assert after["a"] != after["c"]
    assert best(store, "a", vec(0.0, 0.0, 0.0, 1.0)) == "/a2"
    store.close()
    # Opened again, nothing is migrated twice.
    again = DocumentStore(path)
    assert best(again, "b", vec(0.0, 1.0)) == "/b/f.txt"
    again.close()


def test_a_database_newer_than_this_code_is_refused_with_the_versions(tmp_path: Path) -> None:
    path = tmp_path / "documents.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(
        DocumentsTooNew, match=rf"schema version {SCHEMA_VERSION + 1}.*up to {SCHEMA_VERSION}"
    ):
        DocumentStore(path)


def test_new_files_searched_one_by_one_keep_few_blocks(two: tuple[DocumentStore, DocumentStore]) -> None:
    searcher, writer = two
    rng = np.random.default_rng(3)
    put(writer, "a", "/big", [list(rng.standard_normal(DIMS)) for _ in range(200)])
    cached(searcher, "a")
    counts = []
    for f in range(40):  # as while a collection is being indexed: new files, a search after each
        put(writer, "a", f"/new{f}", [list(rng.standard_normal(DIMS))])
        cached(searcher, "a")
        vectors = searcher._vectors[searcher._collection_id("a")]
        assert vectors.live is None  # nothing was dropped
        counts.append(len(vectors.blocks))
    assert max(counts) <= 6  # trailing blocks merged (without, one block a file: 41)
    assert counts[-1] > 1  # and the big one was not copied to take them in
    whole = DocumentStore(writer.path)
    assert cached(searcher, "a") == cached(whole, "a")
    whole.close()
