"""Indexing files into a collection: visible, cancellable, resumable, and never half done.

:meth:`Indexer.add` registers files and folders as the collection's roots and scans them;
:meth:`Indexer.rescan` scans every root again. Folders are walked recursively (symbolic links followed,
loops detected). A file whose content hash is the one already indexed is skipped, so a scan after a crash,
a quit or a cancel goes on where the last one stopped, and a re-scan only re-indexes what changed; files
that disappeared from a root leave the index.

Each file is read once (its hash and its text come from the same bytes), converted, split, embedded, and
then written in one transaction (:meth:`~engine.documents.store.DocumentStore.replace_file`): its passages
appear all or none. A file that changed while it was indexed is read again (once); a file that cannot be
indexed gets a reason in words, and every other file goes on.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.documents.chunks import Chunk, split_text
from engine.documents.convert import MAX_FILE_BYTES, FileRejected, _too_big, convert_bytes, kind_of
from engine.documents.embedder import Embedder, EmbeddingFailed
from engine.documents.store import DocumentStore, EmbedderMismatch, Passage

EMBED_BATCH = 64


@dataclass(frozen=True)
class FileProblem:
    path: str
    reason: str
    folder: bool = False  # a folder that could not be walked (or a link looping back), not a file


@dataclass(frozen=True)
class IndexProgress:
    """Where an indexing run is: ``phase`` scan | index | done; counts so far; ``current`` file."""

    phase: str
    files_total: int = 0
    files_done: int = 0
    chunks: int = 0
    failed: int = 0
    current: str = ""
    chunks_per_s: float = 0.0

    @property
    def fraction(self) -> float | None:
        return self.files_done / self.files_total if self.files_total else None


@dataclass
class IndexReport:
    collection: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    failed: list[FileProblem] = field(default_factory=list)
    chunks: int = 0
    pages: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled


class IndexCancelled(Exception):
    """Raised inside a run when :meth:`Indexer.cancel` was called; the run reports ``cancelled``."""


ProgressCallback = Callable[[IndexProgress], object]


class Indexer:
    """Indexes files into ``store`` with ``embedder``. Blocking; :meth:`add_async`/:meth:`rescan_async` run
    it in a thread. :meth:`cancel` may be called from any thread: the file being indexed is dropped whole."""

    def __init__(
        self,
        store: DocumentStore,
        embedder: Embedder,
        *,
        progress: ProgressCallback | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
        embed_batch: int = EMBED_BATCH,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.progress = progress or (lambda _p: None)
        self.max_file_bytes = max_file_bytes
        self.embed_batch = embed_batch
        self._cancel = threading.Event()
        # Seen between two reads of a file; tests use it to change a file while it is indexed.
        self.before_commit: Callable[[Path], object] | None = None

    def cancel(self) -> None:
        self._cancel.set()

    # -- entry points -------------------------------------------------------------------------------
    def add(self, collection: str, paths: Sequence[Path]) -> IndexReport:
        """Add files and folders to ``collection`` (created if new) and index what is new or changed."""
        self.store.ensure_collection(collection)
        roots = [Path(os.path.abspath(p)) for p in paths]
        for root in roots:
            self.store.add_root(collection, root)
        return self._run(collection, roots)

    def rescan(self, collection: str) -> IndexReport:
        """Scan every root of ``collection`` again: index new and changed files, drop removed ones."""
        info = self.store.collection(collection)
        return self._run(collection, [Path(r) for r in info.roots])

    async def add_async(self, collection: str, paths: Sequence[Path]) -> IndexReport:
        return await self._in_thread(self.add, collection, paths)

    async def rescan_async(self, collection: str) -> IndexReport:
        return await self._in_thread(self.rescan, collection)

    async def _in_thread(self, fn: Callable[..., IndexReport], *args: Any) -> IndexReport:
        loop = asyncio.get_running_loop()
        report = self.progress

        def relay(p: IndexProgress) -> None:
            loop.call_soon_threadsafe(report, p)

        self.progress = relay
        try:
            return await asyncio.to_thread(fn, *args)
        except asyncio.CancelledError:
            self.cancel()  # the thread stops at its next check, dropping the file it was on
            raise
        finally:
            self.progress = report

    # -- the run ------------------------------------------------------------------------------------
    def _run(self, collection: str, roots: list[Path]) -> IndexReport:
        began = time.monotonic()
        report = IndexReport(collection)
        info = self.store.collection(collection)
        if info.embedder and info.embedder != self.embedder.name and info.chunks:
            raise EmbedderMismatch(collection, info.embedder, self.embedder.name)
        self.progress(IndexProgress("scan"))
        found: list[Path] = []
        scanned_roots: list[Path] = []
        for root in roots:
            files, problems, complete = scan(root)
            found += files
            report.failed += problems
            if complete:
                scanned_roots.append(root)
        found = list(dict.fromkeys(found))
        known = {f.path: f for f in self.store.files(collection)}
        present = {str(p) for p in found}
        for problem in report.failed:
            if not problem.folder:  # a file that cannot be read is listed in the collection, with why
                present.add(problem.path)
                self.store.record_failure(
                    collection, problem.path, sha256="", size=0, mtime=0.0, reason=problem.reason
                )
        for old in known:
            if old not in present and any(_under(old, root) for root in scanned_roots):
                self.store.remove_file(collection, old)
                report.removed.append(old)
        embedded = 0
        embed_time = 0.0
        done = 0
        try:
            for done, path in enumerate(found):
                self._check_cancel()
                self.progress(
                    IndexProgress(
                        "index",
                        len(found),
                        done,
                        report.chunks,
                        len(report.failed),
                        str(path),
                        embedded / embed_time if embed_time else 0.0,
                    )
                )
                before = known.get(str(path))
                try:
                    outcome = self._index_file(
                        collection, path, before.sha256 if before else None, before.state if before else None
                    )
                except FileRejected as rejected:
                    # Whatever the file had in the index before leaves it: it no longer says that.
                    self.store.record_failure(
                        collection, str(path), sha256="", size=0, mtime=0.0, reason=rejected.reason
                    )
                    report.failed.append(FileProblem(str(path), rejected.reason))
                    continue
                if outcome is None:
                    report.unchanged += 1
                    continue
                chunks, pages, seconds = outcome
                embedded += chunks
                embed_time += seconds
                report.chunks += chunks
                report.pages += pages
                (report.updated if before else report.added).append(str(path))
        except IndexCancelled:
            report.cancelled = True
        report.seconds = time.monotonic() - began
        self.progress(
            IndexProgress(
                "done",
                len(found),
                len(found) if not report.cancelled else done,
                report.chunks,
                len(report.failed),
                "",
                embedded / embed_time if embed_time else 0.0,
            )
        )
        return report

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise IndexCancelled()

    def _index_file(
        self, collection: str, path: Path, known_sha: str | None, known_state: str | None
    ) -> tuple[int, int, float] | None:
        """Index one file; None when it is unchanged. Raises :class:`FileRejected` (recorded in the store)."""
        for attempt in range(2):
            data, st = self._read(path)
            sha = hashlib.sha256(data).hexdigest()
            if sha == known_sha and known_state == "indexed":
                return None
            converted = convert_bytes(path, data)
            chunks = split_text(converted.text, paged=converted.paged, structured=converted.structured)
            began = time.monotonic()
            vectors = self._embed(collection, path, chunks)
            seconds = time.monotonic() - began
            if self.before_commit is not None:
                self.before_commit(path)
            if _unchanged(path, st, sha):
                passages = [
                    Passage(c.ordinal, c.content, c.start, c.end, c.page, c.section, v)
                    for c, v in zip(chunks, vectors, strict=True)
                ]
                self.store.bind_embedder(collection, self.embedder.name, self.embedder.dims)
                self.store.replace_file(
                    collection,
                    str(path),
                    sha256=sha,
                    size=st.st_size,
                    mtime=st.st_mtime,
                    kind=converted.kind,
                    pages=converted.pages,
                    passages=passages,
                )
                return len(chunks), converted.pages, seconds
            if attempt == 0:
                continue  # it changed while we read it: once more, from its new content
        raise FileRejected(
            path,
            "the file kept changing while it was indexed; it is indexed at the next scan once it is still",
        )

    def _read(self, path: Path) -> tuple[bytes, os.stat_result]:
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise FileRejected(path, "it is not a regular file")
            if st.st_size > self.max_file_bytes:
                reason = (
                    _too_big(st.st_size)
                    if self.max_file_bytes == MAX_FILE_BYTES
                    else (f"the file is {st.st_size:,} bytes; the limit is {self.max_file_bytes:,} bytes")
                )
                raise FileRejected(path, reason)
            with path.open("rb") as fh:
                data = fh.read(self.max_file_bytes + 1)
        except OSError as exc:
            raise FileRejected(path, _os_reason(exc)) from exc
        return data, st

    def _embed(self, collection: str, path: Path, chunks: list[Chunk]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for i in range(0, len(chunks), self.embed_batch):
            self._check_cancel()
            batch = [_embedding_text(path, c) for c in chunks[i : i + self.embed_batch]]
            try:
                vectors += self.embedder.embed_texts(batch)
            except EmbeddingFailed as exc:
                raise FileRejected(path, f"the embedding model failed: {exc.reason}") from exc
        return vectors


def _embedding_text(path: Path, chunk: Chunk) -> str:
    # The section's name helps a passage that does not repeat it ("Installation" > "Requirements").
    return f"{chunk.section}\n{chunk.content}" if chunk.section else chunk.content


def _unchanged(path: Path, st: os.stat_result, sha: str) -> bool:
    try:
        now = path.stat()
        if (now.st_size, now.st_mtime_ns) == (st.st_size, st.st_mtime_ns):
            return True
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha
    except OSError:
        return False


def _under(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root).rstrip(os.sep) + os.sep)


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link that points back to itself (a loop)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "it cannot be read (permission denied)"
    if exc.errno == errno.ENOENT:
        return "it does not exist (or is a broken symbolic link)"
    return f"it cannot be read ({exc.strerror or exc})"


def scan(root: Path) -> tuple[list[Path], list[FileProblem], bool]:
    """The supported files under ``root`` (or ``root`` itself), problems met, and whether the scan was
    complete (a root that cannot be read says nothing about which of its files are gone)."""
    problems: list[FileProblem] = []
    try:
        st = root.stat()
    except OSError as exc:
        return [], [FileProblem(str(root), _os_reason(exc))], False
    if not stat.S_ISDIR(st.st_mode):
        if kind_of(root) is None:
            reason = f"the format {root.suffix or '(no extension)'} is not supported"
            return [], [FileProblem(str(root), reason)], True
        return [root], [], True
    files: list[Path] = []
    complete = True
    for item in _walk(root, problems, {(st.st_dev, st.st_ino)}):
        files.append(item)
    if any(p.folder and p.reason.startswith("the folder cannot be read") for p in problems):
        complete = False
    return files, problems, complete


def _walk(folder: Path, problems: list[FileProblem], seen: set[tuple[int, int]]) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        reason = f"the folder cannot be read ({exc.strerror or exc})"
        problems.append(FileProblem(str(folder), reason, folder=True))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden files and folders (.git, editor swap files) are not documents
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
            is_file = entry.is_file(follow_symlinks=True)
        except OSError as exc:
            problems.append(FileProblem(str(path), _os_reason(exc)))
            continue
        if entry.is_symlink() and not is_dir and not is_file:
            try:
                path.stat()
            except OSError as exc:
                problems.append(FileProblem(str(path), _os_reason(exc)))
            continue
        if is_dir:
            st = path.stat()
            key = (st.st_dev, st.st_ino)
            if key in seen:
                reason = "a symbolic link loop: this folder is already being indexed; skipped"
                problems.append(FileProblem(str(path), reason, folder=True))
                continue
            yield from _walk(path, problems, seen | {key})
        elif is_file and kind_of(path) is not None:
            yield path
