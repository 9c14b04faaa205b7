"""The document store: one SQLite file with FTS5 for keywords and the vectors beside each passage.

Chosen by measurement (docs/documents.md): at 100,000 passages, keyword search through FTS5 (bm25) and an
exact vector search over a float32 matrix held in memory beat ``qdrant-haystack``'s local mode and
``sqlite-vec``, with no new dependency and one file to back up. The matrix of a collection is read from the
database on first search and refreshed only when the collection's ``vectors_version`` moved (every write
that changes its vectors moves it in the same transaction, whichever connection or process wrote); after
writes to single files only those files' rows are read and the cached rows patched without a copy
(``vector_changes``, ``_Vectors``; docs/documents.md, "Cached vectors").

It speaks Haystack's ``DocumentStore`` protocol (``count_documents``, ``filter_documents``,
``write_documents``, ``delete_documents``, ``to_dict``/``from_dict``) so stock Haystack components can use
it; the indexer writes through :meth:`DocumentStore.replace_file`, one transaction per file, so a file's
passages appear all or none.

Collections: a named set of files and folders ("roots"). Files carry their content hash, so a re-scan only
re-indexes what changed; a failed file keeps its reason (and no passages).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DeskError, Fix
from engine.paths import AppPaths


def documents_db(paths: AppPaths) -> Path:
    """Where the document index lives."""
    return paths.data / "documents.sqlite3"


# V1: the first schema (the statements say IF NOT EXISTS: files made before versions were counted had them).
_V1 = [
    """
    CREATE TABLE IF NOT EXISTS collections(
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        embedder TEXT NOT NULL DEFAULT '',
        dims INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS roots(
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        PRIMARY KEY(collection_id, path)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS files(
        id INTEGER PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        kind TEXT NOT NULL DEFAULT '',
        pages INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT '',
        indexed_at TEXT NOT NULL,
        UNIQUE(collection_id, path)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS chunks(
        id INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        doc_id TEXT NOT NULL UNIQUE,
        ordinal INTEGER NOT NULL,
        content TEXT NOT NULL,
        page INTEGER,
        section TEXT NOT NULL DEFAULT '',
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        embedding BLOB
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id)
    """,
    """
    CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
        content, section, content='chunks', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, content, section) VALUES (new.id, new.content, new.section);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, content, section)
        VALUES ('delete', old.id, old.content, old.section);
    END
    """,
]

# V2: a version per collection, moved in the same transaction as every write that changes the collection's
# vectors (a search reloads a cached matrix only when its collection's version moved, whichever connection
# or process wrote). Versions are drawn from one counter, so a collection never shows a version another one
# (deleted, its id reused) had: the cached (id, version) pair can never name other vectors.
_V2 = [
    "ALTER TABLE collections ADD COLUMN vectors_version INTEGER NOT NULL DEFAULT 0",
    "CREATE TABLE vector_versions(id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)",
    "INSERT INTO vector_versions VALUES (1, (SELECT coalesce(max(id), 0) FROM collections))",
    "UPDATE collections SET vectors_version = id",
]

# V3: ``vector_changes`` says what each version changed: one file (``file_id``) or the whole collection
# (NULL); a search whose cached matrix is a few file writes old reads only those files' rows. Only the
# changes after ``vector_versions.pruned`` are kept (see _CHANGES_KEPT); an older cache is read again whole.
_V3 = [
    "ALTER TABLE vector_versions ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0",
    "UPDATE vector_versions SET pruned = last",
    """
    CREATE TABLE vector_changes(
        version INTEGER PRIMARY KEY,
        collection_id INTEGER NOT NULL,
        file_id INTEGER
    )
    """,
]

MIGRATIONS: tuple[list[str], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)

# How many versions of changes are kept: a search whose cached matrix is older reads it whole again.
_CHANGES_KEPT = 1000

_INSERT_CHUNK = """INSERT INTO chunks(
    file_id, doc_id, ordinal, content, page, section, start, "end", embedding
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""

# Words too common to find anything by; the vector side still sees them.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "does",
        "do",
        "did",
        "can",
    ]
)


class DocumentsUnavailable(DeskError):
    title = "The document index cannot be used"

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            fix=Fix(
                action="choose_data_dir", label="Choose another folder", hint="Start with --data-dir DIR."
            ),
        )


class DocumentsTooNew(DocumentsUnavailable):
    title = "The document index was written by a newer vLLM Desk"

    def __init__(self, path: Path, found: int, supported: int) -> None:
        DeskError.__init__(
            self,
            f"The document index at {path} uses schema version {found}; this vLLM Desk understands up to "
            f"{supported}.",
            fix=Fix(action="update_app", label="Update vLLM Desk", hint="Install the newer vLLM Desk again."),
        )


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION` in place (each step one transaction); returns the
    version it started at. A database newer than this code is refused rather than half-understood."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise DocumentsTooNew(path, found, SCHEMA_VERSION)
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            # PRAGMA does not take parameters; the value is our own integer.
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found


class CollectionNotFound(DeskError):
    title = "No such collection"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"There is no document collection named “{name}”.",
            fix=Fix(action="list_collections", label="Show collections", hint="Run: vllm-desk docs list"),
        )
        self.name = name


class EmbedderMismatch(DeskError):
    title = "The collection was indexed with another embedding model"

    def __init__(self, collection: str, indexed_with: str, now: str) -> None:
        super().__init__(
            f"The collection “{collection}” was indexed with the embedding model {indexed_with}, not {now}; "
            "its passages cannot be compared with this model's.",
            fix=Fix(
                action="reindex_collection",
                label="Re-index the collection",
                hint="Re-index it (the Documents panel offers it), or remove it and add its files again. "
                f"Run: vllm-desk docs reindex {collection}",
            ),
        )
        self.collection = collection
        self.indexed_with = indexed_with


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    embedder: str
    dims: int
    created_at: str
    roots: tuple[str, ...]
    files: int
    failed: int
    chunks: int


@dataclass(frozen=True)
class FileRecord:
    collection: str
    path: str
    sha256: str
    size: int
    mtime: float
    kind: str
    pages: int
    state: str  # "indexed" | "failed"
    error: str
    chunks: int
    indexed_at: str


@dataclass(frozen=True)
class Passage:
    """One chunk to write: its text, where it sits in the file, and its vector (or None)."""

    ordinal: int
    content: str
    start: int
    end: int
    page: int | None
    section: str
    embedding: Sequence[float] | np.ndarray | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def keyword_query(text: str) -> str:
    """An FTS5 query matching any of the words of ``text`` (quoted, so no word is taken as an operator)."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS]
    if not words:
        words = re.findall(r"\w+", text.lower())
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


class DocumentStore:
    """The document index in one SQLite file; thread-safe (one connection behind a lock).

    Also a Haystack ``DocumentStore``: documents are passages whose ``meta`` holds ``collection``, ``file``,
    ``page``, ``section``, ``start``, ``end`` and ``ordinal``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=10.0, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            migrate(self._conn, self.path)
        except sqlite3.Error as exc:
            raise DocumentsUnavailable(
                f"The document index at {self.path} cannot be opened ({exc})."
            ) from exc
        except OSError as exc:
            raise DocumentsUnavailable(
                f"The document index at {self.path} cannot be created ({exc})."
            ) from exc
        # collection id -> its vectors as last read (refreshed when the collection's version moved)
        self._vectors: dict[int, _Vectors] = {}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- collections --------------------------------------------------------------------------------
    def ensure_collection(self, name: str) -> int:
        name = name.strip()
        if not name:
            raise ValueError("a collection needs a name")
        with self._lock:
            row = self._conn.execute("SELECT id FROM collections WHERE name=?", (name,)).fetchone()
            if row is not None:
                return int(row[0])
            with self._tx():
                cur = self._conn.execute(
                    "INSERT OR IGNORE INTO collections(name, created_at) VALUES (?, ?)", (name, _now())
                )
                cid = int(
                    self._conn.execute("SELECT id FROM collections WHERE name=?", (name,)).fetchone()[0]
                )
                if cur.rowcount:
                    # A fresh version even for an empty collection: its id may be a deleted one's.
                    self._bump(cid)
                return cid

    def _collection_id(self, name: str) -> int:
        row = self._conn.execute("SELECT id FROM collections WHERE name=?", (name,)).fetchone()
        if row is None:
            raise CollectionNotFound(name)
        return int(row[0])

    def has_collection(self, name: str) -> bool:
        with self._lock:
            return (
                self._conn.execute("SELECT 1 FROM collections WHERE name=?", (name,)).fetchone() is not None
            )

    def collections(self) -> list[CollectionInfo]:
        with self._lock:
            rows = self._conn.execute(
                """SELECT c.id, c.name, c.embedder, c.dims, c.created_at,
                    (SELECT count(*) FROM files f WHERE f.collection_id=c.id AND f.state='indexed'),
                    (SELECT count(*) FROM files f WHERE f.collection_id=c.id AND f.state='failed'),
                    (SELECT count(*) FROM chunks k JOIN files f ON k.file_id=f.id WHERE f.collection_id=c.id)
                FROM collections c ORDER BY c.name"""
            ).fetchall()
            out = []
            for cid, name, embedder, dims, created, files, failed, chunks in rows:
                roots = tuple(
                    r[0]
                    for r in self._conn.execute(
                        "SELECT path FROM roots WHERE collection_id=? ORDER BY path", (cid,)
                    )
                )
                out.append(CollectionInfo(name, embedder, dims, created, roots, files, failed, chunks))
            return out

    def collection(self, name: str) -> CollectionInfo:
        for info in self.collections():
            if info.name == name:
                return info
        raise CollectionNotFound(name)

    def embedder_of(self, name: str) -> str:
        """The embedding model a collection's vectors come from ("" before any); cheap, for every search."""
        with self._lock:
            row = self._conn.execute("SELECT embedder FROM collections WHERE name=?", (name,)).fetchone()
        if row is None:
            raise CollectionNotFound(name)
        return str(row[0])

    def delete_collection(self, name: str) -> None:
        with self._lock, self._tx():
            cid = self._collection_id(name)
            self._conn.execute(
                "DELETE FROM chunks WHERE file_id IN (SELECT id FROM files WHERE collection_id=?)", (cid,)
            )
            self._conn.execute("DELETE FROM files WHERE collection_id=?", (cid,))
            self._conn.execute("DELETE FROM collections WHERE id=?", (cid,))

    def clear_index(self, name: str) -> None:
        """Forget a collection's files, passages and embedding model, keeping its name and folders: the next
        rescan indexes every file again (with another embedding model, whose vectors never mix with the
        old ones)."""
        with self._lock, self._tx():
            cid = self._collection_id(name)
            self._conn.execute(
                "DELETE FROM chunks WHERE file_id IN (SELECT id FROM files WHERE collection_id=?)", (cid,)
            )
            self._conn.execute("DELETE FROM files WHERE collection_id=?", (cid,))
            self._conn.execute("UPDATE collections SET embedder='', dims=0 WHERE id=?", (cid,))
            self._bump(cid)

    def add_root(self, collection: str, path: Path) -> None:
        with self._lock:
            cid = self.ensure_collection(collection)
            self._conn.execute("INSERT OR IGNORE INTO roots VALUES (?, ?)", (cid, str(path)))

    def remove_root(self, collection: str, path: Path) -> None:
        with self._lock:
            cid = self._collection_id(collection)
            self._conn.execute("DELETE FROM roots WHERE collection_id=? AND path=?", (cid, str(path)))

    def bind_embedder(self, collection: str, embedder: str, dims: int) -> None:
        """Record which embedding model a collection's vectors come from; another one is refused."""
        with self._lock, self._tx():
            cid = self.ensure_collection(collection)
            row = self._conn.execute("SELECT embedder, dims FROM collections WHERE id=?", (cid,)).fetchone()
            if (row[0], row[1]) == (embedder, dims):
                return
            if row[0]:
                has_chunks = self._conn.execute(
                    "SELECT 1 FROM chunks k JOIN files f ON k.file_id=f.id WHERE f.collection_id=? LIMIT 1",
                    (cid,),
                ).fetchone()
                if has_chunks:
                    raise EmbedderMismatch(collection, row[0], embedder)
            self._conn.execute("UPDATE collections SET embedder=?, dims=? WHERE id=?", (embedder, dims, cid))
            self._bump(cid)

    # -- files ---------------------------------------------------------------------------------------
    def files(self, collection: str) -> list[FileRecord]:
        with self._lock:
            cid = self._collection_id(collection)
            rows = self._conn.execute(
                """SELECT f.path, f.sha256, f.size, f.mtime, f.kind, f.pages, f.state, f.error,
                    (SELECT count(*) FROM chunks k WHERE k.file_id=f.id), f.indexed_at
                FROM files f WHERE f.collection_id=? ORDER BY f.path""",
                (cid,),
            ).fetchall()
        return [FileRecord(collection, *row) for row in rows]

    def file(self, collection: str, path: str) -> FileRecord | None:
        with self._lock:
            cid = self._collection_id(collection)
            row = self._conn.execute(
                """SELECT f.path, f.sha256, f.size, f.mtime, f.kind, f.pages, f.state, f.error,
                    (SELECT count(*) FROM chunks k WHERE k.file_id=f.id), f.indexed_at
                FROM files f WHERE f.collection_id=? AND f.path=?""",
                (cid, path),
            ).fetchone()
        return FileRecord(collection, *row) if row else None

    def replace_file(
        self,
        collection: str,
        path: str,
        *,
        sha256: str,
        size: int,
        mtime: float,
        kind: str,
        pages: int,
        passages: Sequence[Passage],
    ) -> None:
        """Put a file's passages in place of its old ones, in one transaction: all or none."""
        with self._lock, self._tx():
            cid = self._collection_id(collection)
            file_id = self._upsert_file(cid, path, sha256, size, mtime, kind, pages, "indexed", "")
            self._conn.execute("DELETE FROM chunks WHERE file_id=?", (file_id,))
            self._conn.executemany(
                _INSERT_CHUNK,
                (
                    (
                        file_id,
                        _doc_id(collection, path, sha256, p.ordinal),
                        p.ordinal,
                        p.content,
                        p.page,
                        p.section,
                        p.start,
                        p.end,
                        _blob(p.embedding),
                    )
                    for p in passages
                ),
            )
            self._bump(cid, file_id)

    def record_failure(
        self, collection: str, path: str, *, sha256: str, size: int, mtime: float, reason: str
    ) -> None:
        """Remember why a file could not be indexed; any passages it had before leave the index."""
        with self._lock, self._tx():
            cid = self._collection_id(collection)
            file_id = self._upsert_file(cid, path, sha256, size, mtime, "", 0, "failed", reason)
            if self._conn.execute("DELETE FROM chunks WHERE file_id=?", (file_id,)).rowcount:
                self._bump(cid, file_id)

    def remove_file(self, collection: str, path: str) -> bool:
        with self._lock, self._tx():
            cid = self._collection_id(collection)
            row = self._conn.execute(
                "SELECT id FROM files WHERE collection_id=? AND path=?", (cid, path)
            ).fetchone()
            if row is None:
                return False
            if self._conn.execute("DELETE FROM chunks WHERE file_id=?", (row[0],)).rowcount:
                self._bump(cid, int(row[0]))
            self._conn.execute("DELETE FROM files WHERE id=?", (row[0],))
            return True

    def _upsert_file(
        self,
        cid: int,
        path: str,
        sha: str,
        size: int,
        mtime: float,
        kind: str,
        pages: int,
        state: str,
        error: str,
    ) -> int:
        self._conn.execute(
            """INSERT INTO files(
                collection_id, path, sha256, size, mtime, kind, pages, state, error, indexed_at
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(collection_id, path) DO UPDATE SET sha256=excluded.sha256, size=excluded.size,
                mtime=excluded.mtime, kind=excluded.kind, pages=excluded.pages, state=excluded.state,
                error=excluded.error, indexed_at=excluded.indexed_at""",
            (cid, path, sha, size, mtime, kind, pages, state, error, _now()),
        )
        row = self._conn.execute(
            "SELECT id FROM files WHERE collection_id=? AND path=?", (cid, path)
        ).fetchone()
        return int(row[0])

    # -- search --------------------------------------------------------------------------------------
    def keyword_search(self, query: str, collections: Sequence[str], top_k: int = 10) -> list[Any]:
        """Haystack Documents ranked by bm25 (``score``: higher is better)."""
        return self.documents_for(self.keyword_rows(query, collections, top_k))

    def vector_search(
        self, embedding: Sequence[float] | np.ndarray, collections: Sequence[str], top_k: int = 10
    ) -> list[Any]:
        """Haystack Documents ranked by cosine similarity (``score``), exact (no approximate index)."""
        return self.documents_for(self.vector_rows(embedding, collections, top_k))

    def keyword_rows(
        self, query: str, collections: Sequence[str], top_k: int = 10
    ) -> list[tuple[int, float]]:
        """(passage row id, bm25 score) best first: what a search needs before the passages are read."""
        match = keyword_query(query)
        if not match or not collections:
            return []
        with self._lock:
            ids = [self._collection_id(c) for c in collections]
            every = self._conn.execute("SELECT count(*) FROM collections").fetchone()[0] == len(set(ids))
            # FTS5 ranks fastest alone (ORDER BY rank over the index); the collection filter is applied to
            # an over-fetched best part, and only when that leaves too few is the filtered query run.
            fetch = top_k if every else top_k * 10
            rows = self._conn.execute(
                "SELECT rowid, -rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?",
                (match, fetch),
            ).fetchall()
            if not every and rows:
                marks = ",".join("?" * len(ids))
                inside = {
                    r[0]
                    for r in self._conn.execute(
                        f"""SELECT k.id FROM chunks k JOIN files f ON f.id = k.file_id
                        WHERE k.id IN ({",".join("?" * len(rows))}) AND f.collection_id IN ({marks})""",
                        (*(r[0] for r in rows), *ids),
                    )
                }
                kept = [r for r in rows if r[0] in inside][:top_k]
                if len(kept) < top_k and len(rows) == fetch:
                    kept = self._conn.execute(
                        f"""SELECT k.id, -bm25(chunks_fts) FROM chunks_fts
                        JOIN chunks k ON k.id = chunks_fts.rowid JOIN files f ON f.id = k.file_id
                        WHERE chunks_fts MATCH ? AND f.collection_id IN ({marks})
                        ORDER BY bm25(chunks_fts) LIMIT ?""",
                        (match, *ids, top_k),
                    ).fetchall()
                rows = kept
        return [(int(r[0]), float(r[1])) for r in rows]

    def vector_rows(
        self, embedding: Sequence[float] | np.ndarray, collections: Sequence[str], top_k: int = 10
    ) -> list[tuple[int, float]]:
        """(passage row id, cosine similarity) best first, exact over every vector of ``collections``."""
        if not collections:
            return []
        query = np.asarray(embedding, dtype=np.float32)
        norm = float(np.linalg.norm(query))
        if norm == 0.0:
            return []
        query = query / norm
        with self._lock:
            # Cached arrays are never changed in place (a reload makes new ones): the scan needs no lock.
            current = {
                str(r[0]): (int(r[1]), int(r[2]))
                for r in self._conn.execute("SELECT name, id, vectors_version FROM collections")
            }
            # Let go of the matrices of collections deleted (by any connection) since they were read.
            live = {cid for cid, _ in current.values()}
            for cid in [c for c in self._vectors if c not in live]:
                del self._vectors[cid]
            matrices = []
            for name in collections:
                if name not in current:
                    raise CollectionNotFound(name)
                matrices.append((name, self._matrix(*current[name])))
        found_ids: list[np.ndarray] = []
        found_scores: list[np.ndarray] = []
        for name, vectors in matrices:
            ids = vectors.live_ids
            if not len(ids):
                continue
            if vectors.dims != query.shape[0]:
                raise EmbedderMismatch(name, f"a {vectors.dims}-dimension model", f"{query.shape[0]}")
            scores = vectors.scores(query)
            k = min(top_k, len(scores))
            top = np.argpartition(scores, len(scores) - k)[len(scores) - k :]
            found_ids.append(ids[top])
            found_scores.append(scores[top])
        if not found_ids:
            return []
        all_ids = np.concatenate(found_ids)
        all_scores = np.concatenate(found_scores)
        order = np.argsort(-all_scores, kind="stable")[:top_k]
        return [(int(i), float(v)) for i, v in zip(all_ids[order], all_scores[order], strict=True)]

    def documents_for(self, rows: Sequence[tuple[int, float]]) -> list[Any]:
        """Haystack Documents (content and ``meta``) for (row id, score) pairs, in their order."""
        with self._lock:
            return self._documents([r[0] for r in rows], [r[1] for r in rows])

    def _matrix(self, cid: int, version: int) -> _Vectors:
        """A collection's vectors, read again only when its ``vectors_version`` moved: only the changed
        files' rows when every change since the cached version was to a file, else all of them."""
        cached = self._vectors.get(cid)
        if cached is not None and cached.version == version:
            return cached
        conn = self._conn
        # The version, the changes and the rows from one snapshot: a write committed between them would
        # otherwise leave its rows cached under the version before it.
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            row = conn.execute("SELECT vectors_version FROM collections WHERE id=?", (cid,)).fetchone()
            if row is None:  # deleted since the caller looked
                return _Vectors.empty(version)
            now = int(row[0])
            changed = self._changed_files(cid, cached, now)
            select = """SELECT k.id, k.file_id, k.embedding FROM chunks k JOIN files f ON f.id=k.file_id
                WHERE f.collection_id=? AND k.embedding IS NOT NULL"""
            if changed is None:
                rows = conn.execute(select + " ORDER BY k.id", (cid,)).fetchall()
            else:
                rows = conn.execute(
                    select + f" AND k.file_id IN ({','.join('?' * len(changed))}) ORDER BY k.id",
                    (cid, *changed),
                ).fetchall()
        finally:
            if own:
                conn.execute("COMMIT")
        fresh = _Vectors.of(now, rows)
        if changed is not None and cached is not None:
            fresh = cached.patched(now, changed, fresh)
        self._vectors[cid] = fresh
        return fresh

    def _changed_files(self, cid: int, cached: _Vectors | None, now: int) -> list[int] | None:
        """The files whose passages changed between the cached vectors and version ``now``; None when the
        cache must be read whole (none, empty, older than the kept changes, or a change to the collection)."""
        if cached is None or not len(cached.ids) or now < cached.version:
            return None
        pruned = int(self._conn.execute("SELECT pruned FROM vector_versions").fetchone()[0])
        if cached.version < pruned:
            return None
        files = [
            r[0]
            for r in self._conn.execute(
                "SELECT file_id FROM vector_changes WHERE collection_id=? AND version > ? AND version <= ?",
                (cid, cached.version, now),
            )
        ]
        if not files or None in files:
            return None
        return sorted(set(files))

    def _documents(self, row_ids: list[int], scores: list[float]) -> list[Any]:
        from haystack import Document

        if not row_ids:
            return []
        marks = ",".join("?" * len(row_ids))
        rows = {
            r[0]: r
            for r in self._conn.execute(
                f"""SELECT k.id, k.doc_id, k.content, k.page, k.section, k.start, k."end", k.ordinal,
                    f.path, c.name, f.kind FROM chunks k JOIN files f ON f.id=k.file_id
                    JOIN collections c ON c.id=f.collection_id WHERE k.id IN ({marks})""",
                row_ids,
            )
        }
        out = []
        for rid, score in zip(row_ids, scores, strict=True):
            r = rows[rid]
            meta = {
                "collection": r[9],
                "file": r[8],
                "kind": r[10],
                "page": r[3],
                "section": r[4],
                "start": r[5],
                "end": r[6],
                "ordinal": r[7],
            }
            out.append(Document(id=r[1], content=r[2], meta=meta, score=score))
        return out

    def passage_context(self, doc_id: str, chars: int = 400) -> tuple[str, str, str] | None:
        """The passage with up to ``chars`` characters of its neighbours before and after (for "show in
        context"): (before, passage, after), from the stored passages of the same file."""
        with self._lock:
            row = self._conn.execute(
                "SELECT file_id, ordinal, content FROM chunks WHERE doc_id=?", (doc_id,)
            ).fetchone()
            if row is None:
                return None
            near = dict(
                self._conn.execute(
                    "SELECT ordinal, content FROM chunks WHERE file_id=? AND ordinal IN (?, ?)",
                    (row[0], row[1] - 1, row[1] + 1),
                ).fetchall()
            )
        return near.get(row[1] - 1, "")[-chars:], row[2], near.get(row[1] + 1, "")[:chars]

    # -- Haystack DocumentStore protocol --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "type": f"{type(self).__module__}.{type(self).__name__}",
            "init_parameters": {"path": str(self.path)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentStore:
        return cls(Path(data["init_parameters"]["path"]))

    def count_documents(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Any]:
        """Passages matching ``filters`` (only ``meta.collection`` / ``meta.file`` equality, combined with
        AND, are understood; anything else raises ``ValueError``)."""
        where, params = _filter_sql(filters)
        with self._lock:
            ids = [
                r[0]
                for r in self._conn.execute(
                    f"""SELECT k.id FROM chunks k JOIN files f ON f.id=k.file_id
                JOIN collections c ON c.id=f.collection_id WHERE {where} ORDER BY k.id""",
                    params,
                )
            ]
            return self._documents(ids, [0.0] * len(ids))

    def write_documents(self, documents: list[Any], policy: Any = None) -> int:
        """Write Haystack Documents whose ``meta`` has ``collection`` and ``file``; a document id that
        exists already is overwritten (policy OVERWRITE) or skipped (SKIP); FAIL/NONE raise on a duplicate."""
        from haystack.document_stores.errors import DuplicateDocumentError
        from haystack.document_stores.types import DuplicatePolicy

        policy = policy or DuplicatePolicy.NONE
        written = 0
        changed: set[int] = set()
        with self._lock, self._tx():
            for doc in documents:
                exists = self._conn.execute(
                    "SELECT f.collection_id FROM chunks k JOIN files f ON f.id=k.file_id WHERE k.doc_id=?",
                    (doc.id,),
                ).fetchone()
                if exists:
                    if policy == DuplicatePolicy.SKIP:
                        continue
                    if policy != DuplicatePolicy.OVERWRITE:
                        raise DuplicateDocumentError(f"document {doc.id} exists already")
                    self._conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc.id,))
                    changed.add(int(exists[0]))
                meta = doc.meta
                cid = self.ensure_collection(str(meta["collection"]))
                path = str(meta["file"])
                row = self._conn.execute(
                    "SELECT id FROM files WHERE collection_id=? AND path=?", (cid, path)
                ).fetchone()
                file_id = (
                    int(row[0]) if row else self._upsert_file(cid, path, "", 0, 0.0, "", 0, "indexed", "")
                )
                content = doc.content or ""
                self._conn.execute(
                    _INSERT_CHUNK,
                    (
                        file_id,
                        doc.id,
                        int(meta.get("ordinal", 0)),
                        content,
                        meta.get("page"),
                        str(meta.get("section", "")),
                        int(meta.get("start", 0)),
                        int(meta.get("end", len(content))),
                        _blob(doc.embedding),
                    ),
                )
                changed.add(cid)
                written += 1
            for cid in changed:
                self._bump(cid)
        return written

    def delete_documents(self, document_ids: list[str]) -> None:
        with self._lock, self._tx():
            changed: set[int] = set()
            for doc_id in document_ids:
                row = self._conn.execute(
                    "SELECT f.collection_id FROM chunks k JOIN files f ON f.id=k.file_id WHERE k.doc_id=?",
                    (doc_id,),
                ).fetchone()
                if row is not None:
                    self._conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
                    changed.add(int(row[0]))
            for cid in changed:
                self._bump(cid)

    # -- helpers ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any error); nested uses join the outer one."""
        conn = self._conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _bump(self, cid: int, file_id: int | None = None) -> None:
        """Move a collection's vectors version (inside the write's transaction: the two commit together) and
        say what moved it: one file's passages, or (``file_id`` None) anything in the collection."""
        conn = self._conn
        conn.execute(
            "UPDATE vector_versions SET last = last + 1, pruned = max(pruned, last + 1 - ?)", (_CHANGES_KEPT,)
        )
        conn.execute(
            "UPDATE collections SET vectors_version = (SELECT last FROM vector_versions) WHERE id=?", (cid,)
        )
        conn.execute(
            "INSERT INTO vector_changes VALUES ((SELECT last FROM vector_versions), ?, ?)", (cid, file_id)
        )
        conn.execute("DELETE FROM vector_changes WHERE version <= (SELECT pruned FROM vector_versions)")


@dataclass(frozen=True)
class _Vectors:
    """A collection's vectors as of ``version``, never changed in place (a search scans them outside the
    store's lock; a refresh makes new ones).

    The normalised float32 rows lie in ``blocks`` (matrices, in the order of ``ids`` and ``files``); a
    refresh after file writes appends the files' new rows as a block and marks their old rows dead in
    ``live`` (None: all live) instead of copying the whole matrix. Trailing blocks are merged while the one
    before is at most twice as large (a few blocks, each row copied a few times), and all are compacted
    into one when a quarter of the rows are dead.
    """

    version: int
    blocks: tuple[np.ndarray, ...]
    ids: np.ndarray
    files: np.ndarray
    live: np.ndarray | None
    live_ids: np.ndarray

    @classmethod
    def make(
        cls, version: int, blocks: tuple[np.ndarray, ...], ids: np.ndarray, files: np.ndarray, live: Any
    ) -> _Vectors:
        if live is not None and bool(live.all()):
            live = None
        return cls(version, blocks, ids, files, live, ids if live is None else ids[live])

    @classmethod
    def empty(cls, version: int) -> _Vectors:
        none = np.zeros(0, dtype=np.int64)
        return cls.make(version, (), none, none, None)

    @classmethod
    def of(cls, version: int, rows: Sequence[tuple[int, int, bytes]]) -> _Vectors:
        """From (row id, file id, embedding) rows."""
        if not rows:
            return cls.empty(version)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        files = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return cls.make(version, (matrix,), ids, files, None)

    @property
    def dims(self) -> int:
        return int(self.blocks[0].shape[1]) if self.blocks else 0

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine similarity of every live row with the (normalised) query, in the order of ``live_ids``."""
        # einsum, not `matrix @ query`: NumPy's own single-threaded loop reads the matrix once at memory
        # speed, where OpenBLAS's threaded gemv waited for a busy second core (profiled at 100,000
        # passages on 2 cores: p50 14 against 23-35 ms, p95 23 against 40-190 ms).
        parts = [np.einsum("ij,j->i", block, query) for block in self.blocks]
        scores = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return scores if self.live is None else scores[self.live]

    def patched(self, version: int, files: Sequence[int], now: _Vectors) -> _Vectors:
        """These vectors with the rows of ``files`` replaced by ``now`` (those files' rows as of
        ``version``)."""
        gone = np.isin(self.files, np.asarray(files, dtype=np.int64))
        live = ~gone if self.live is None else self.live & ~gone
        blocks, ids, row_files = self.blocks, self.ids, self.files
        if len(now.ids):
            if self.blocks and now.dims != self.dims:
                raise ValueError("vectors of different lengths in one collection")
            blocks = (*blocks, *now.blocks)
            ids = np.concatenate([ids, now.ids])
            row_files = np.concatenate([row_files, now.files])
            live = np.concatenate([live, np.ones(len(now.ids), dtype=bool)])
        dead = len(live) - int(live.sum())
        if dead * 4 > len(live):
            # One matrix of the live rows, written in place.
            matrix = np.empty((len(live) - dead, self.dims or now.dims), dtype=np.float32)
            at = 0
            for block, keep in zip(
                blocks, np.split(live, np.cumsum([len(b) for b in blocks])[:-1]), strict=True
            ):
                kept = int(keep.sum())
                np.compress(keep, block, axis=0, out=matrix[at : at + kept])
                at += kept
            return _Vectors.make(version, (matrix,), ids[live], row_files[live], None)
        merged = list(blocks)
        while len(merged) > 1 and len(merged[-2]) <= 2 * len(merged[-1]):
            last = merged.pop()
            merged[-1] = np.concatenate([merged[-1], last])
        return _Vectors.make(version, tuple(merged), ids, row_files, live)


def _blob(embedding: Sequence[float] | np.ndarray | None) -> bytes | None:
    if embedding is None:
        return None
    vec = np.asarray(embedding, dtype=np.float32)
    norm = float(np.linalg.norm(vec))
    # Stored normalised: a search is then one matrix product.
    return (vec / norm if norm else vec).tobytes()


def _doc_id(collection: str, path: str, sha256: str, ordinal: int) -> str:
    return hashlib.sha256(f"{collection}\0{path}\0{sha256}\0{ordinal}".encode()).hexdigest()[:32]


def _filter_sql(filters: dict[str, Any] | None) -> tuple[str, list[Any]]:
    if not filters:
        return "1", []
    conditions = filters.get("conditions") if "conditions" in filters else [filters]
    if "conditions" in filters and filters.get("operator") != "AND":
        raise ValueError("only AND filters are supported")
    columns = {"meta.collection": "c.name", "meta.file": "f.path"}
    parts, params = [], []
    for cond in conditions or []:
        if cond.get("field") not in columns or cond.get("operator") != "==":
            raise ValueError(f"unsupported filter: {cond}")
        parts.append(f"{columns[cond['field']]} = ?")
        params.append(cond["value"])
    return " AND ".join(parts) or "1", params
