"""Retrieval: the Haystack pipeline (keyword + vector joined by reciprocal rank fusion) and fitting passages
into a token budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.documents.embedder import Embedder
from engine.documents.index import Indexer
from engine.documents.retrieval import (
    Hit,
    Ranking,
    Retriever,
    build_pipeline,
    context_block,
    estimate_tokens,
    fit_passages,
    passage_budget,
    reciprocal_rank_fusion,
)
from engine.documents.store import CollectionNotFound, DocumentStore, Passage
from tests.support.embeddings_server import bag_of_words


def bow_embedder() -> Embedder:
    """Haystack's mock embedders with a bag-of-words function: texts sharing words are near."""
    from haystack.components.embedders import MockDocumentEmbedder, MockTextEmbedder

    return Embedder(
        "bow",
        MockDocumentEmbedder(embedding_fn=bag_of_words),
        MockTextEmbedder(embedding_fn=bag_of_words),
    )


def test_hybrid_joins_both_sides_by_reciprocal_rank_fusion(doc_store: DocumentStore) -> None:
    doc_store.ensure_collection("c")
    # Keyword side ranks "alpha" first (and it has no vector); the vector side (hand-set vectors) ranks "beta"
    # first; "gamma" is second on both, so the fusion puts it first.
    rows = {"alpha gamma-word": None, "beta": [1.0, 0.0, 0.0], "gamma gamma-word": [0.9, 0.0, 0.1]}
    doc_store.replace_file(
        "c", "/f.txt", sha256="s", size=1, mtime=1.0, kind="text", pages=0,
        passages=[Passage(i, t, 0, 1, None, "", v) for i, (t, v) in enumerate(rows.items())],
    )  # fmt: skip
    from haystack.components.embedders import MockTextEmbedder

    embedder = Embedder("fixed", None, MockTextEmbedder(embedding=[1.0, 0.0, 0.0]))
    retriever = Retriever(doc_store, embedder)
    keyword = [h.content for h in retriever.search("alpha gamma", ["c"], mode="keyword")]
    vector = [h.content for h in retriever.search("anything", ["c"], mode="vector")]
    hybrid = [h.content for h in retriever.search("alpha gamma", ["c"], mode="hybrid")]
    assert keyword[0] == "alpha gamma-word"
    assert vector == ["beta", "gamma gamma-word"]
    assert hybrid[0] == "gamma gamma-word"
    assert set(hybrid) == {"alpha gamma-word", "beta", "gamma gamma-word"}


def ranking(*ids: int) -> Ranking:
    return Ranking.of([(i, 1.0 / (n + 1)) for n, i in enumerate(ids)])


def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank_from_each_side() -> None:
    fused = dict(reciprocal_rank_fusion([ranking(7, 8, 9), ranking(9, 7)], top_k=10, k=60))
    # scaled so that first on both sides is 1.0: (k + 1) / sides * sum of 1 / (k + rank)
    assert fused[7] == pytest.approx(61 / 2 * (1 / 61 + 1 / 62))
    assert fused[9] == pytest.approx(61 / 2 * (1 / 63 + 1 / 61))
    assert fused[8] == pytest.approx(61 / 2 * (1 / 62))
    assert [row for row, _ in reciprocal_rank_fusion([ranking(7, 8, 9), ranking(9, 7)], top_k=2)] == [7, 9]
    assert reciprocal_rank_fusion([ranking(3), ranking(3)], top_k=5) == [(3, pytest.approx(1.0))]


def test_a_small_fusion_constant_trusts_each_sides_top_more() -> None:
    # 5 is first on one side only; 6 is second on both. A large k rewards the agreement, a small k the top.
    sides = [ranking(5, 6), ranking(1, 6, 2, 3, 4, 5)]
    assert reciprocal_rank_fusion(sides, top_k=1, k=60)[0][0] == 6
    assert reciprocal_rank_fusion(sides, top_k=1, k=0)[0][0] == 5


def test_fusion_ties_keep_the_order_first_seen_and_bad_settings_are_refused(doc_store: DocumentStore) -> None:
    assert [r for r, _ in reciprocal_rank_fusion([ranking(1, 2), ranking(3, 4)], top_k=4)] == [1, 3, 2, 4]
    assert reciprocal_rank_fusion([], top_k=3) == []
    with pytest.raises(ValueError, match="fusion constant"):
        reciprocal_rank_fusion([ranking(1)], top_k=1, k=-1)
    with pytest.raises(ValueError, match="at least one candidate"):
        Retriever(doc_store, None, candidates=0)
    with pytest.raises(ValueError, match="fusion constant"):
        Retriever(doc_store, None, rrf_k=-5)


def test_more_passages_asked_than_candidates_a_side_are_still_found(doc_store: DocumentStore) -> None:
    doc_store.ensure_collection("c")
    doc_store.replace_file(
        "c", "/f.txt", sha256="s", size=1, mtime=1.0, kind="text", pages=0,
        passages=[Passage(i, f"common word{i}", 0, 1, None, "", None) for i in range(12)],
    )  # fmt: skip
    hits = Retriever(doc_store, None, candidates=3).search("common", ["c"], top_k=10, mode="keyword")
    assert len(hits) == 10


def test_the_pipeline_is_a_haystack_pipeline_with_the_three_parts(doc_store: DocumentStore) -> None:
    pipe = build_pipeline(doc_store, bow_embedder(), ["c"], mode="hybrid")
    assert set(pipe.graph.nodes) == {"keyword", "embed", "vector", "join"}
    assert set(build_pipeline(doc_store, None, ["c"], mode="keyword").graph.nodes) == {"keyword", "join"}
    with pytest.raises(ValueError, match="needs an embedder"):
        build_pipeline(doc_store, None, ["c"], mode="vector")


def test_hits_carry_file_page_section_and_span(tmp_path: Path, doc_store: DocumentStore) -> None:
    from tests.engine.documents.files import write_pdf

    embedder = bow_embedder()
    write_pdf(tmp_path / "r.pdf", [["Intro page."], ["Revenue rose by ten percent."]])
    (tmp_path / "g.md").write_text("# Guide\n\n## Install\n\nRun the installer twice.\n")
    Indexer(doc_store, embedder).add("c", [tmp_path])
    [top, *_] = Retriever(doc_store, embedder).search("revenue percent", ["c"], top_k=1)
    assert (Path(top.file).name, top.page, top.content) == ("r.pdf", 2, "Revenue rose by ten percent.")
    assert top.place == "r.pdf, page 2"
    text = (tmp_path / "g.md").read_text()
    [guide] = Retriever(doc_store, embedder).search("installer", ["c"], top_k=1)
    assert guide.place == "g.md, Guide > Install"
    assert text[guide.start : guide.end] == guide.content
    assert guide.to_json()["passage"] == guide.content


def test_search_in_a_missing_collection_says_so(doc_store: DocumentStore) -> None:
    with pytest.raises(CollectionNotFound):
        Retriever(doc_store, None).search("x", ["nope"])


def hit(n: int, chars: int) -> Hit:
    return Hit(n, 1.0, "c", f"/docs/f{n}.txt", None, "", 0, chars, "x" * chars, f"id{n}")


def test_passages_fit_the_budget_best_first_and_never_overflow() -> None:
    hits = [hit(1, 600), hit(2, 3000), hit(3, 300)]
    for budget in (50, 120, 300, 400, 1000, 2000):
        chosen = fit_passages(hits, budget)
        assert estimate_tokens(context_block(chosen)) <= budget + 5 * len(chosen)
        assert [h.rank for h in chosen] == sorted(h.rank for h in chosen)
    assert [h.rank for h in fit_passages(hits, 400)] == [1, 3]  # the big one is left out, a smaller one fits
    assert fit_passages(hits, 10) == []
    assert len(fit_passages(hits, 10_000)) == 3


def test_a_small_model_gets_fewer_passages() -> None:
    hits = [hit(i, 700) for i in range(1, 11)]
    small = fit_passages(hits, passage_budget(2048, prompt_tokens=300, reply_tokens=512))
    large = fit_passages(hits, passage_budget(32768, prompt_tokens=300, reply_tokens=512))
    assert 0 < len(small) < len(large) == 10
    assert passage_budget(2048, 3000, 512) == 0


def test_context_block_numbers_the_sources_with_their_place() -> None:
    block = context_block([Hit(1, 1.0, "c", "/d/a.pdf", 3, "Results", 0, 5, "Text.", "x")])
    assert block.endswith("[1] a.pdf, page 3, Results\nText.")
    assert "Cite the sources you use as [1]" in block
    assert context_block([]) == ""
