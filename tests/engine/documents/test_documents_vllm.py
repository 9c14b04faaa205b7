"""Documents against the real embedding model served by vLLM on the CPU (one shared session server)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.documents.embedder import endpoint_embedder
from engine.documents.index import Indexer
from engine.documents.retrieval import Retriever
from engine.documents.store import DocumentStore
from tests.engine.documents.files import write_docx, write_pdf

pytestmark = pytest.mark.vllm


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


# Cosines from transformers on the same folder (float32, mean pooling, normalised; measured here):
# vLLM's pooling runner must give the same vectors.
REFERENCE = [
    ("cat", "kitten", 0.7882),
    ("cat", "stocks", 0.2028),
    ("The cat sat on the mat.", "A kitten is playing.", 0.4749),
    ("The cat sat on the mat.", "Stocks fell sharply today.", 0.0776),
]


def test_the_builtin_embedder_serves_384_dimensions_like_transformers(vllm_embedder) -> None:  # type: ignore[no-untyped-def]
    embedder = endpoint_embedder(vllm_embedder)
    assert len(embedder.embed_query("cat")) == 384
    for a, b, expected in REFERENCE:
        assert cosine(embedder.embed_query(a), embedder.embed_query(b)) == pytest.approx(expected, abs=0.005)


def test_index_and_search_real_files_through_the_real_model(
    tmp_path: Path,
    doc_store: DocumentStore,
    vllm_embedder,  # type: ignore[no-untyped-def]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(
        docs / "pets.pdf",
        [["Our shelter has many animals."], ["Kittens are young cats that sleep most of the day."]],
    )
    (docs / "finance.md").write_text("# Markets\n\n## Bonds\n\nInterest rates rose and bond prices fell.\n")
    write_docx(docs / "garden.docx", [("Heading 1", "Vegetables"), ("", "Tomatoes need full sun and water.")])
    embedder = endpoint_embedder(vllm_embedder)
    report = Indexer(doc_store, embedder).add("mixed", [docs])
    assert report.ok, report.failed
    assert doc_store.collection("mixed").embedder == "all-minilm-l6-v2"
    assert doc_store.collection("mixed").dims == 384

    retriever = Retriever(doc_store, embedder)
    # No word in common with the passage: only the vector side can find it.
    [by_meaning] = retriever.search("feline pets napping", ["mixed"], top_k=1, mode="vector")
    assert (Path(by_meaning.file).name, by_meaning.page) == ("pets.pdf", 2)
    [hybrid, *_] = retriever.search("what happened to bond prices", ["mixed"], top_k=3)
    assert hybrid.place == "finance.md, Markets > Bonds"
    [garden, *_] = retriever.search("growing tomatoes", ["mixed"], top_k=3)
    assert garden.place == "garden.docx, Vegetables"


@pytest.mark.slow
def test_docs_add_starts_the_embedder_and_stops_it_after(
    tmp_path: Path,
    vllm_paths,  # type: ignore[no-untyped-def]
    builtin_embedder_dir,  # type: ignore[no-untyped-def]
    vllm_embedder,  # type: ignore[no-untyped-def]
) -> None:
    # A fresh home whose runtime and models are the test cache's (links), like the chat CLI test.
    home = tmp_path / "desk"
    (home / "data").mkdir(parents=True)
    (home / "data" / "runtime").symlink_to(vllm_paths.runtime)
    (home / "data" / "models").symlink_to(vllm_paths.models)
    (tmp_path / "notes.md").write_text("# Notes\n\nThe meeting moved to Thursday afternoon.\n")
    cli = [sys.executable, "-m", "engine.cli", "--data-dir", str(home), "docs"]
    added = subprocess.run(
        [*cli, "add", str(tmp_path / "notes.md")], capture_output=True, text=True, timeout=600, check=False
    )
    assert added.returncode == 0, added.stderr
    assert "Starting the embedding model" in added.stderr
    assert "default: 1 added" in added.stdout
    # The command's own server is gone (the leak check would also say so); search through the shared one.
    shared = ["--embedder-url", vllm_embedder.base_url, "--embedder-key-env", "EMBEDDER_KEY"]
    found = subprocess.run(
        [*cli, "search", "when is the meeting", *shared],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "EMBEDDER_KEY": vllm_embedder.api_key or ""},
    )
    assert found.returncode == 0, found.stderr
    assert "The meeting moved to Thursday afternoon." in found.stdout


@pytest.mark.slow
def test_chat_with_docs_answers_from_a_passage_and_prints_its_source(
    tmp_path: Path,
    vllm_paths,  # type: ignore[no-untyped-def]
    builtin_model_dir,  # type: ignore[no-untyped-def]
    builtin_embedder_dir,  # type: ignore[no-untyped-def]
    vllm_embedder,  # type: ignore[no-untyped-def]
) -> None:
    from engine.history.store import HistoryStore

    home = tmp_path / "desk"
    (home / "data").mkdir(parents=True)
    (home / "data" / "runtime").symlink_to(vllm_paths.runtime)
    (home / "data" / "models").symlink_to(vllm_paths.models)
    docs = tmp_path / "lighthouse"
    docs.mkdir()
    (docs / "keeper.md").write_text(
        "# Kelvar lighthouse\n\nThe keeper of the Kelvar lighthouse is named Orla Brennick.\n\n"
        "# Harbour\n\nFishing boats leave the harbour at dawn.\n"
    )
    write_pdf(docs / "tides.pdf", [["Tide tables for the northern coast."], ["High tide is at noon."]])
    cli = [sys.executable, "-m", "engine.cli", "--data-dir", str(home)]
    env = {**os.environ, "EMBEDDER_KEY": vllm_embedder.api_key or ""}
    shared = ["--embedder-url", vllm_embedder.base_url, "--embedder-key-env", "EMBEDDER_KEY"]
    added = subprocess.run(
        [*cli, "docs", "add", str(docs), "--collection", "coast", *shared],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    # chat starts the embedding model for the search, stops it, then starts the chat model.
    answered = subprocess.run(
        [*cli, "chat", "--docs", "coast", "--temperature", "0", "--max-tokens", "40",
         "Who is the keeper of the Kelvar lighthouse?"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert answered.returncode == 0, answered.stderr
    assert "Searching the documents" in answered.stderr
    answer, _, sources = answered.stdout.partition("\nSources the reply ")
    assert "Brennick" in answer
    # The passage with the answer is listed first, as one the reply used (cited, or matched by the app:
    # the built-in model rarely writes [1] itself), before any other given to the model.
    heading, first, quote, *_ = sources.splitlines()
    assert heading.startswith(("cites:", "draws on (matched by the app")), sources
    assert first.startswith(f"[1] {docs / 'keeper.md'} — Kelvar lighthouse"), sources
    assert "The keeper of the Kelvar lighthouse is named Orla Brennick." in quote
    store = HistoryStore(home / "data" / "history.sqlite3")
    try:
        tree = store.load(1)
    finally:
        store.close()
    # The question is stored as typed; the passages the answer was given are stored with the reply.
    question, reply = tree.messages[-2], tree.messages[-1]
    assert question.role == "user"
    assert question.text == "Who is the keeper of the Kelvar lighthouse?"
    assert reply.state == "complete"
    assert "Brennick" in reply.text
    sources = reply.content["meta"]["sources"]
    assert sources[0]["number"] == 1
    assert sources[0]["file"] == str(docs / "keeper.md")
    assert "Orla Brennick" in sources[0]["passage"]
    assert sources[0]["use"] in ("cited", "matched")
