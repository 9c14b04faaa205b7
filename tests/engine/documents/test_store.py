"""The document store: collections, all-or-none file writes, keyword and vector search, Haystack protocol."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy

from engine.documents.store import (
    CollectionNotFound,
    DocumentStore,
    EmbedderMismatch,
    Passage,
    keyword_query,
)


def passages(texts: list[str], dims: int = 4, seed: int = 0) -> list[Passage]:
    rng = np.random.default_rng(seed)
    out, pos = [], 0
    for i, text in enumerate(texts):
        out.append(Passage(i, text, pos, pos + len(text), 1, "Intro", rng.standard_normal(dims)))
        pos += len(text) + 2
    return out


def put(store: DocumentStore, collection: str, path: str, texts: list[str], sha: str = "h1") -> None:
    store.ensure_collection(collection)
    store.replace_file(
        collection, path, sha256=sha, size=10, mtime=1.0, kind="text", pages=0, passages=passages(texts)
    )


def test_a_file_is_replaced_in_one_transaction_and_a_failure_leaves_the_old_passages(
    doc_store: DocumentStore,
) -> None:
    put(doc_store, "c", "/d/a.txt", ["old one", "old two"])
    broken = [*passages(["new one", "new two"]), Passage(2, None, 0, 1, None, "", None)]  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        doc_store.replace_file(
            "c", "/d/a.txt", sha256="h2", size=1, mtime=2.0, kind="text", pages=0, passages=broken
        )
    [record] = doc_store.files("c")
    assert (record.sha256, record.chunks) == ("h1", 2)
    assert [d.content for d in doc_store.filter_documents()] == ["old one", "old two"]
    assert {d.content for d in doc_store.keyword_search("old", ["c"])} == {"old one", "old two"}


def test_collections_count_files_failures_and_passages(doc_store: DocumentStore) -> None:
    put(doc_store, "work", "/w/a.md", ["alpha", "beta"])
    put(doc_store, "work", "/w/b.md", ["gamma"])
    doc_store.record_failure("work", "/w/c.pdf", sha256="", size=0, mtime=0.0, reason="the PDF is encrypted")
    doc_store.add_root("work", Path("/w"))
    [info] = doc_store.collections()
    assert (info.name, info.files, info.failed, info.chunks, info.roots) == ("work", 2, 1, 3, ("/w",))
    failed = doc_store.file("work", "/w/c.pdf")
    assert failed is not None
    assert failed.state == "failed"
    assert failed.error == "the PDF is encrypted"
    assert doc_store.remove_file("work", "/w/a.md")
    assert doc_store.collection("work").chunks == 1
    doc_store.delete_collection("work")
    assert doc_store.collections() == []
    assert doc_store.count_documents() == 0
    with pytest.raises(CollectionNotFound):
        doc_store.files("work")


def test_a_failure_removes_what_the_file_had_in_the_index(doc_store: DocumentStore) -> None:
    put(doc_store, "c", "/d/a.txt", ["valuable words"])
    doc_store.record_failure("c", "/d/a.txt", sha256="", size=0, mtime=0.0, reason="damaged")
    assert doc_store.keyword_search("valuable", ["c"]) == []
    assert doc_store.count_documents() == 0


def test_keyword_search_ranks_by_bm25_stems_and_stays_inside_the_collections(
    doc_store: DocumentStore,
) -> None:
    put(doc_store, "a", "/a/1.txt", ["The cat sat on the mat.", "Dogs are running in the park.", "Nothing."])
    put(doc_store, "b", "/b/1.txt", ["Running shoes for dogs."])
    hits = doc_store.keyword_search("Which dog runs?", ["a"])
    assert [h.content for h in hits] == ["Dogs are running in the park."]
    assert hits[0].meta["file"] == "/a/1.txt"
    assert hits[0].meta["section"] == "Intro"
    both = doc_store.keyword_search("dog running", ["a", "b"])
    assert {h.meta["collection"] for h in both} == {"a", "b"}
    assert doc_store.keyword_search("the", ["a"])  # only stopwords: still searched
    assert doc_store.keyword_search('"quoted" OR NEAR(', ["a"]) == []  # operators are words, not syntax


def test_keyword_query_quotes_words_and_drops_stopwords() -> None:
    assert keyword_query("What is the NEAR operator?") == '"near" OR "operator"'
    assert keyword_query("the") == '"the"'
    assert keyword_query("!!!") == ""


def test_vector_search_is_exact_cosine_over_every_collection_asked(doc_store: DocumentStore) -> None:
    doc_store.ensure_collection("v")
    vectors = {"east": [1.0, 0.0], "north": [0.0, 1.0], "north-east": [1.0, 1.0]}
    doc_store.replace_file(
        "v",
        "/v.txt",
        sha256="x",
        size=1,
        mtime=1.0,
        kind="text",
        pages=0,
        passages=[Passage(i, name, 0, 1, None, "", vec) for i, (name, vec) in enumerate(vectors.items())],
    )
    hits = doc_store.vector_search([0.9, 0.1], ["v"], top_k=2)
    assert [h.content for h in hits] == ["east", "north-east"]
    assert hits[0].score == pytest.approx(0.9 / np.hypot(0.9, 0.1), rel=1e-5)
    with pytest.raises(EmbedderMismatch):
        doc_store.vector_search([1.0, 0.0, 0.0], ["v"])


def test_another_process_writing_is_seen_by_the_next_vector_search(
    app_paths, doc_store: DocumentStore
) -> None:  # type: ignore[no-untyped-def]
    put(doc_store, "c", "/a.txt", ["first"])
    assert len(doc_store.vector_search([1, 0, 0, 0], ["c"])) == 1
    other = DocumentStore(doc_store.path)
    try:
        put(other, "c", "/b.txt", ["second", "third"])
    finally:
        other.close()
    assert len(doc_store.vector_search([1, 0, 0, 0], ["c"])) == 3


def test_the_embedding_model_of_a_collection_cannot_change_under_its_passages(
    doc_store: DocumentStore,
) -> None:
    put(doc_store, "c", "/a.txt", ["x"])
    doc_store.bind_embedder("c", "all-minilm-l6-v2", 384)
    doc_store.bind_embedder("c", "all-minilm-l6-v2", 384)
    with pytest.raises(EmbedderMismatch, match="all-minilm-l6-v2"):
        doc_store.bind_embedder("c", "other-model", 768)
    doc_store.remove_file("c", "/a.txt")
    doc_store.bind_embedder("c", "other-model", 768)  # an empty collection may start over
    assert doc_store.collection("c").embedder == "other-model"


def test_passage_context_gives_the_neighbours(doc_store: DocumentStore) -> None:
    put(doc_store, "c", "/a.txt", ["one", "two", "three"])
    middle = next(d for d in doc_store.filter_documents() if d.content == "two")
    assert doc_store.passage_context(middle.id) == ("one", "two", "three")
    assert doc_store.passage_context("nope") is None


def test_haystack_document_store_protocol(doc_store: DocumentStore) -> None:
    docs = [
        Document(id="d1", content="alpha", meta={"collection": "h", "file": "/f1"}, embedding=[1.0, 0.0]),
        Document(id="d2", content="beta", meta={"collection": "h", "file": "/f2"}, embedding=[0.0, 1.0]),
    ]
    assert doc_store.write_documents(docs) == 2
    assert doc_store.count_documents() == 2
    with pytest.raises(DuplicateDocumentError):
        doc_store.write_documents(docs[:1])
    assert doc_store.write_documents(docs[:1], DuplicatePolicy.SKIP) == 0
    changed = Document(id="d1", content="alpha two", meta={"collection": "h", "file": "/f1"})
    assert doc_store.write_documents([changed], DuplicatePolicy.OVERWRITE) == 1
    only_f1 = doc_store.filter_documents(
        {"operator": "AND", "conditions": [{"field": "meta.file", "operator": "==", "value": "/f1"}]}
    )
    assert [d.content for d in only_f1] == ["alpha two"]
    with pytest.raises(ValueError, match="unsupported filter"):
        doc_store.filter_documents({"field": "meta.page", "operator": ">", "value": 1})
    doc_store.delete_documents(["d1", "d2"])
    assert doc_store.count_documents() == 0
    again = DocumentStore.from_dict(doc_store.to_dict())
    assert again.path == doc_store.path
    again.close()


def test_a_store_from_a_newer_app_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "docs.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    from engine.documents.store import DocumentsUnavailable

    with pytest.raises(DocumentsUnavailable, match="newer"):
        DocumentStore(path)


def test_keyword_search_in_one_collection_finds_its_weak_match_under_anothers_strong_ones(
    doc_store: DocumentStore,
) -> None:
    put(doc_store, "loud", "/l.txt", ["dog dog dog"] * 120)
    put(doc_store, "quiet", "/q.txt", ["a long passage about many things and once a dog among them"])
    [hit] = doc_store.keyword_search("dog", ["quiet"], top_k=5)
    assert hit.meta["collection"] == "quiet"
    assert len(doc_store.keyword_search("dog", ["loud"], top_k=5)) == 5
    both = doc_store.keyword_search("dog", ["loud", "quiet"], top_k=200)
    assert len(both) == 121


def test_clear_index_keeps_the_collection_and_its_folders_for_another_model(tmp_path: Path) -> None:
    from engine.documents.store import DocumentStore, EmbedderMismatch, Passage

    store = DocumentStore(tmp_path / "docs.sqlite3")
    store.add_root("work", tmp_path / "papers")
    store.bind_embedder("work", "model-a", 3)
    passage = Passage(0, "Basalt is a volcanic rock.", 0, 26, None, "", [1.0, 0.0, 0.0])
    store.replace_file(
        "work", "/p/a.md", sha256="x", size=26, mtime=1.0, kind="md", pages=0, passages=[passage]
    )
    with pytest.raises(EmbedderMismatch) as refused:
        store.bind_embedder("work", "model-b", 4)
    assert (refused.value.collection, refused.value.indexed_with) == ("work", "model-a")
    store.clear_index("work")
    info = store.collection("work")
    assert (info.embedder, info.dims, info.files, info.chunks) == ("", 0, 0, 0)
    assert info.roots == (str(tmp_path / "papers"),)
    assert store.keyword_search("basalt", ["work"]) == []
    store.bind_embedder("work", "model-b", 4)  # another model is welcome now
    assert store.collection("work").embedder == "model-b"
    store.close()


def test_every_write_is_seen_by_the_next_vector_search(doc_store: DocumentStore) -> None:
    """The vectors are held in memory between searches; each way of writing makes the next search see it."""

    def found(collection: str = "c") -> set[str]:
        return {d.content for d in doc_store.vector_search([1.0, 0.0, 0.0, 0.0], [collection], top_k=50)}

    put(doc_store, "c", "/a.txt", ["a1", "a2"])
    put(doc_store, "c", "/b.txt", ["b1"])
    assert found() == {"a1", "a2", "b1"}
    put(doc_store, "c", "/a.txt", ["a3"], sha="h2")  # a changed file replaces its passages
    assert found() == {"a3", "b1"}
    doc_store.record_failure("c", "/b.txt", sha256="h3", size=1, mtime=2.0, reason="unreadable")
    assert found() == {"a3"}
    put(doc_store, "c", "/b.txt", ["b2"], sha="h4")
    assert doc_store.remove_file("c", "/a.txt")
    assert found() == {"b2"}
    doc_store.write_documents(
        [Document(id="w1", content="w1", meta={"collection": "c", "file": "/w.txt"}, embedding=[0, 1, 0, 0])]
    )
    assert found() == {"b2", "w1"}
    doc_store.delete_documents(["w1"])
    assert found() == {"b2"}
    put(doc_store, "d", "/d.txt", ["d1"])
    assert found("d") == {"d1"}
    doc_store.clear_index("c")  # a re-index starts here
    assert found() == set()
    assert found("d") == {"d1"}
    doc_store.delete_collection("d")
    with pytest.raises(CollectionNotFound):
        found("d")


def test_searches_with_no_write_between_read_the_vectors_once(doc_store: DocumentStore) -> None:
    put(doc_store, "c", "/a.txt", ["a1", "a2"])
    reads: list[str] = []

    def seen(sql: str) -> None:
        if sql.lstrip().startswith("SELECT") and "embedding" in sql:
            reads.append(sql)

    doc_store._conn.set_trace_callback(seen)
    for _ in range(3):
        doc_store.vector_search([1.0, 0.0, 0.0, 0.0], ["c"])
    assert len(reads) == 1
    put(doc_store, "c", "/b.txt", ["b1"])
    for _ in range(2):
        doc_store.vector_search([1.0, 0.0, 0.0, 0.0], ["c"])
    assert len(reads) == 2
