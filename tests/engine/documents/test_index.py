"""Indexing: folders recursively, only new or changed files, removed files leave, bad files reported one by
one while the rest is indexed, cancel and resume, and a file's passages all or none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.documents.embedder import Embedder, EmbeddingFailed
from engine.documents.index import Indexer, IndexProgress
from engine.documents.store import DocumentStore, EmbedderMismatch
from tests.engine.documents.files import write_docx, write_encrypted_pdf, write_pdf


def library(root: Path) -> Path:
    """A folder of good documents in every supported format, one level nested."""
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "cats.md").write_text(
        "# Cats\n\nCats purr when they are content.\n\n## Food\n\nFish.\n"
    )
    (root / "stocks.txt").write_text("The stock market fell by three percent on Tuesday.\n")
    (root / "page.html").write_text("<h1>Garden</h1><p>Tomatoes need sun.</p>")
    (root / "data.csv").write_text("city,population\nLyon,500000\n")
    write_pdf(root / "report.pdf", [["Quarterly revenue rose."], ["Outlook is stable."]])
    write_docx(root / "manual.docx", [("Heading 1", "Setup"), ("", "Plug in the cable.")])
    (root / "image.png").write_bytes(b"\x89PNG\r\n")  # not a document: skipped in a folder
    (root / ".hidden.txt").write_text("hidden files are not documents")
    return root


def test_a_folder_is_indexed_recursively_with_pages_and_sections(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    root = library(tmp_path / "lib")
    report = Indexer(doc_store, embedder).add("lib", [root])
    assert report.ok, report.failed
    assert sorted(Path(p).name for p in report.added) == [
        "cats.md",
        "data.csv",
        "manual.docx",
        "page.html",
        "report.pdf",
        "stocks.txt",
    ]
    assert report.pages == 2
    docs = {d.content: d.meta for d in doc_store.filter_documents()}
    assert docs["Outlook is stable."]["page"] == 2
    assert docs["## Food\n\nFish."]["section"] == "Cats > Food"
    assert docs["# Setup\nPlug in the cable."]["section"] == "Setup"
    info = doc_store.collection("lib")
    assert info.embedder == embedder.name
    assert info.dims == 32
    assert info.roots == (str(root),)


def test_rescan_reindexes_only_changed_files_and_drops_removed_ones(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    root = library(tmp_path / "lib")
    indexer = Indexer(doc_store, embedder)
    indexer.add("lib", [root])
    before = {d.id for d in doc_store.filter_documents()}
    assert indexer.rescan("lib").unchanged == 6

    (root / "stocks.txt").write_text("The bond market rose.\n")
    (root / "page.html").unlink()
    (root / "notes" / "new.md").write_text("Brand new note.\n")
    report = indexer.rescan("lib")
    assert [Path(p).name for p in report.updated] == ["stocks.txt"]
    assert [Path(p).name for p in report.added] == ["new.md"]
    assert [Path(p).name for p in report.removed] == ["page.html"]
    assert report.unchanged == 4
    contents = {d.content for d in doc_store.filter_documents()}
    assert "The bond market rose." in contents
    assert "Brand new note." in contents
    assert not any("stock market" in c or "Tomatoes" in c for c in contents)
    unchanged_ids = {d.id for d in doc_store.filter_documents() if "Cats purr" in (d.content or "")}
    assert unchanged_ids <= before  # untouched files keep their passages as they were


def test_bad_files_each_get_a_reason_and_every_other_file_is_indexed(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    root = library(tmp_path / "lib")
    bad = root / "bad"
    bad.mkdir()
    write_encrypted_pdf(bad / "locked.pdf", [["secret"]])
    write_pdf(bad / "scan.pdf", [[]])
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    (bad / "junk.txt").write_bytes(os.urandom(4096) + b"\x00")
    with (bad / "huge.txt").open("wb") as fh:  # 1 GB, sparse: refused by its size, never read
        fh.truncate(2**30)
    (bad / "self.md").symlink_to(bad / "self.md")
    (bad / "dangling.txt").symlink_to(bad / "gone.txt")
    (bad / "loop").symlink_to(root)
    os.mkfifo(bad / "pipe.txt")  # in a folder: not a document, skipped like a .png
    os.mkfifo(tmp_path / "named.txt")  # named: reported (and never opened, which would block)
    report = Indexer(doc_store, embedder).add("lib", [root, tmp_path / "named.txt"])
    reasons = {Path(p.path).name: p.reason for p in report.failed}
    assert set(reasons) == {
        "locked.pdf",
        "scan.pdf",
        "corrupt.pdf",
        "junk.txt",
        "huge.txt",
        "self.md",
        "dangling.txt",
        "loop",
        "named.txt",
    }
    assert "encrypted" in reasons["locked.pdf"]
    assert "no text layer" in reasons["scan.pdf"]
    assert "damaged" in reasons["corrupt.pdf"]
    assert "binary data" in reasons["junk.txt"]
    assert "1,024 MB" in reasons["huge.txt"]
    assert "not indexed" in reasons["huge.txt"]
    assert "loop" in reasons["self.md"]
    assert "loop" in reasons["loop"]
    assert "broken symbolic link" in reasons["dangling.txt"]
    assert "not a regular file" in reasons["named.txt"]
    assert len(report.added) == 6
    # Every failed file is listed in the collection with its reason (a loop is a folder, not a file).
    failed = {Path(f.path).name: f.error for f in doc_store.files("lib") if f.state == "failed"}
    assert set(failed) == set(reasons) - {"loop"}
    assert failed["locked.pdf"] == reasons["locked.pdf"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_file_says_permission_denied(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    path = tmp_path / "private.txt"
    path.write_text("secret")
    path.chmod(0)
    report = Indexer(doc_store, embedder).add("c", [path])
    assert [p.reason for p in report.failed] == ["it cannot be read (permission denied)"]


def test_a_named_file_of_an_unsupported_format_is_reported(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    report = Indexer(doc_store, embedder).add("c", [tmp_path / "photo.jpg", tmp_path / "missing.txt"])
    assert [(Path(p.path).name, p.reason) for p in report.failed] == [
        ("photo.jpg", "the format .jpg is not supported"),
        ("missing.txt", "it does not exist (or is a broken symbolic link)"),
    ]


def test_a_file_changing_while_indexed_is_read_again_and_its_final_content_indexed(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    path = tmp_path / "log.txt"
    path.write_text("first version\n")
    indexer = Indexer(doc_store, embedder)
    edits = iter(["second version, longer\n"])

    def edit_once(p: Path) -> None:
        text = next(edits, None)
        if text is not None:
            p.write_text(text)

    indexer.before_commit = edit_once
    report = indexer.add("c", [path])
    assert report.ok
    assert [d.content for d in doc_store.filter_documents()] == ["second version, longer"]
    record = doc_store.file("c", str(path))
    assert record is not None
    assert record.size == len("second version, longer\n")


def test_a_file_that_keeps_changing_is_reported_and_leaves_nothing_half_indexed(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    path = tmp_path / "growing.txt"
    path.write_text("line 0\n")
    indexer = Indexer(doc_store, embedder)
    counter = iter(range(1, 100))
    indexer.before_commit = lambda p: p.write_text("".join(f"line {i}\n" for i in range(next(counter) + 1)))
    report = indexer.add("c", [path])
    assert [p.reason for p in report.failed] == [
        "the file kept changing while it was indexed; it is indexed at the next scan once it is still"
    ]
    assert doc_store.count_documents() == 0
    indexer.before_commit = None
    assert indexer.rescan("c").ok
    assert doc_store.count_documents() == 1


def test_cancel_drops_the_current_file_whole_and_rescan_resumes(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(5):
        (root / f"{i}.txt").write_text("\n\n".join(f"file {i} paragraph {j} " * 30 for j in range(10)))
    seen: list[IndexProgress] = []
    indexer = Indexer(doc_store, embedder, embed_batch=2)

    def watch(p: IndexProgress) -> None:
        seen.append(p)
        if p.phase == "index" and p.files_done == 2:
            indexer.cancel()

    indexer.progress = watch
    report = indexer.add("c", [root])
    assert report.cancelled
    assert not report.ok
    assert len(report.added) == 2
    assert doc_store.count_documents() == 2 * 10  # two whole files, nothing of the third
    assert seen[-1].phase == "done"
    resumed = Indexer(doc_store, embedder).rescan("c")
    assert resumed.unchanged == 2
    assert len(resumed.added) == 3
    assert resumed.ok
    assert doc_store.count_documents() == 5 * 10


def test_progress_reports_files_and_passages(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    root = library(tmp_path / "lib")
    seen: list[IndexProgress] = []
    Indexer(doc_store, embedder, progress=seen.append).add("lib", [root])
    assert seen[0].phase == "scan"
    indexing = [p for p in seen if p.phase == "index"]
    assert [p.files_done for p in indexing] == list(range(6))
    assert all(p.files_total == 6 for p in indexing)
    assert seen[-1].phase == "done"
    assert seen[-1].fraction == 1.0
    assert seen[-1].chunks > 6
    assert seen[-1].chunks_per_s > 0


def test_an_embedding_failure_fails_that_file_only(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    (tmp_path / "a.txt").write_text("fine text")
    (tmp_path / "b.txt").write_text("this text makes the server fail")
    real = embedder.embed_documents

    def flaky(documents):  # type: ignore[no-untyped-def]
        if any("fail" in (d.content or "") for d in documents):
            raise EmbeddingFailed(embedder.name, "HTTP 500")
        return real(documents)

    embedder.embed_documents = flaky  # type: ignore[method-assign]
    report = Indexer(doc_store, embedder).add("c", [tmp_path])
    assert [(Path(p.path).name, p.reason) for p in report.failed] == [
        ("b.txt", "the embedding model failed: HTTP 500")
    ]
    assert [Path(p).name for p in report.added] == ["a.txt"]


def test_another_embedding_model_is_refused_before_anything_changes(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    (tmp_path / "a.txt").write_text("text")
    Indexer(doc_store, embedder).add("c", [tmp_path])
    from engine.documents.embedder import hashing_embedder

    with pytest.raises(EmbedderMismatch):
        Indexer(doc_store, hashing_embedder(16)).add("c", [tmp_path])
    assert doc_store.collection("c").dims == 32


@pytest.mark.asyncio
async def test_add_async_relays_progress_to_the_loop_and_cancels_with_the_task(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    import asyncio
    import threading

    (tmp_path / "a.txt").write_text("text")
    threads: set[str] = set()
    indexer = Indexer(doc_store, embedder, progress=lambda p: threads.add(threading.current_thread().name))
    report = await indexer.add_async("c", [tmp_path])
    assert report.ok
    assert threads == {threading.current_thread().name}
    assert isinstance(asyncio.get_running_loop(), asyncio.AbstractEventLoop)
