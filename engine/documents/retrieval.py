"""Finding passages for a question: a Haystack pipeline of keyword and vector search joined by reciprocal
rank fusion, and fitting the best passages into a prompt's token budget.

The pipeline (``mode="hybrid"``)::

    question ─┬─> text embedder ─> EmbeddingRetriever ─┐
              └────────────────────> KeywordRetriever ──┴─> RankFusion (reciprocal rank fusion) ─> passages

``mode="keyword"`` and ``mode="vector"`` run one side alone (the benchmark compares the three).
Blocking; :meth:`Retriever.search_async` runs it in a thread.

The retrievers hand the fusion a :class:`Ranking` (row ids and scores as two arrays), not Haystack
``Document`` objects: Haystack deep-copies every value passed between components, element by element for a
list, which cost ~10 ms a question at 20 candidates a side (profiled at 100,000 passages). The fusion's
output is still ``documents`` (bare ids and fused scores) so the pipeline works as a ``PipelineTool``; the
passages themselves are read for the winners only.
"""

# No `from __future__ import annotations`: Haystack reads the components' socket types at run time.

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.documents.embedder import Embedder, EmbeddingFailed
from engine.documents.store import DocumentStore, EmbedderMismatch

Mode = Literal["hybrid", "keyword", "vector"]
# How many candidates each side hands to the fusion: more than asked, so a passage ranked well by one side
# and moderately by the other can still win (docs/documents.md: the recall bench with 10, 20 and 50).
CANDIDATES = 20
# Reciprocal rank fusion's constant: a passage at rank r of a side gets 1 / (RRF_K + r). The paper's (and
# Haystack's) 60 flattens the ranks so much that passages ranked fair on both sides beat the one passage a
# side is sure of (an exact part number that the vector side cannot tell from its neighbours); 10 keeps each
# side's top. Chosen on a second generated question set, not the benchmark's (docs/documents.md, "Fusion").
RRF_K = 10


@dataclass(frozen=True)
class Ranking:
    """One side's candidates, best first: passage row ids and their scores (higher is better)."""

    ids: np.ndarray
    scores: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[tuple[int, float]]) -> "Ranking":
        return cls(
            np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
            np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)),
        )


def reciprocal_rank_fusion(
    rankings: Sequence[Ranking], top_k: int, k: int = RRF_K
) -> list[tuple[int, float]]:
    """(row id, fused score) best first: each ranking gives a passage at rank r (from 1) 1 / (k + r); the
    sum is scaled so that a passage first on every side scores 1.0. Ties keep the order of first sight."""
    if k < 0:
        raise ValueError(f"the fusion constant k must be 0 or more, not {k}")
    if not rankings:
        return []
    scale = (k + 1) / len(rankings)
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking.ids.tolist(), start=1):
            fused[row] = fused.get(row, 0.0) + scale / (k + rank)
    # sorted() is stable: equal scores stay in the order they were first seen.
    return sorted(fused.items(), key=lambda item: -item[1])[:top_k]


@dataclass(frozen=True)
class Hit:
    """One passage found: where it is (file, page, section, character span) and how it ranked."""

    rank: int
    score: float
    collection: str
    file: str
    page: int | None
    section: str
    start: int
    end: int
    content: str
    doc_id: str

    @property
    def place(self) -> str:
        """ "report.pdf, page 3" / "guide.md, Install > Linux": how a citation names where the passage is."""
        where = [Path(self.file).name]
        if self.page is not None:
            where.append(f"page {self.page}")
        if self.section:
            where.append(self.section)
        return ", ".join(where)

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": self.score,
            "collection": self.collection,
            "file": self.file,
            "page": self.page,
            "section": self.section,
            "start": self.start,
            "end": self.end,
            "passage": self.content,
        }


def _components() -> tuple[Any, Any, Any, Any]:
    """The pipeline's components over our store (defined on first use: Haystack imports slowly)."""
    from haystack import Document, component
    from haystack.core.component.types import Variadic

    @component
    class KeywordRetriever:
        """FTS5 bm25 search over the collections' passages."""

        def __init__(self, store: DocumentStore, collections: Sequence[str], top_k: int = CANDIDATES) -> None:
            self.store = store
            self.collections = list(collections)
            self.top_k = top_k

        @component.output_types(ranking=Ranking)
        def run(self, query: str) -> dict[str, Ranking]:
            return {"ranking": Ranking.of(self.store.keyword_rows(query, self.collections, self.top_k))}

    @component
    class EmbeddingRetriever:
        """Exact cosine search over the collections' passage vectors."""

        def __init__(self, store: DocumentStore, collections: Sequence[str], top_k: int = CANDIDATES) -> None:
            self.store = store
            self.collections = list(collections)
            self.top_k = top_k

        @component.output_types(ranking=Ranking)
        def run(self, query_embedding: np.ndarray) -> dict[str, Ranking]:
            rows = self.store.vector_rows(query_embedding, self.collections, self.top_k)
            return {"ranking": Ranking.of(rows)}

    @component
    class QueryEmbedder:
        """The question's vector from the shared :class:`Embedder` (Haystack lets a component instance
        belong to one pipeline only; this wrapper is made per pipeline, the HTTP client is not)."""

        def __init__(self, embedder: Embedder) -> None:
            self.embedder = embedder

        # An array, not list[float]: Haystack deep-copies values between components, element by element
        # for a list (~20 ms a question at 384 dimensions here), in one go for an array.
        @component.output_types(embedding=np.ndarray)
        def run(self, text: str) -> dict[str, np.ndarray]:
            return {"embedding": np.asarray(self.embedder.embed_query(text), dtype=np.float32)}

    @component
    class RankFusion:
        """Reciprocal rank fusion of the retrievers' rankings; documents carry the row id and fused score."""

        def __init__(self, top_k: int, k: int = RRF_K) -> None:
            self.top_k = top_k
            self.k = k

        @component.output_types(documents=list[Document])
        def run(self, rankings: Variadic[Ranking]) -> dict[str, list[Document]]:
            fused = reciprocal_rank_fusion(list(rankings), self.top_k, self.k)
            return {"documents": [Document(id=str(row), score=score) for row, score in fused]}

    return KeywordRetriever, EmbeddingRetriever, QueryEmbedder, RankFusion


def build_pipeline(
    store: DocumentStore,
    embedder: Embedder | None,
    collections: Sequence[str],
    *,
    mode: Mode = "hybrid",
    top_k: int = 5,
    candidates: int = CANDIDATES,
    rrf_k: int = RRF_K,
) -> Any:
    """The retrieval pipeline: inputs ``keyword.query`` and ``embed.text`` (the question), output
    ``join.documents`` (row ids and fused scores, best first; :meth:`DocumentStore.documents_for` reads the
    passages)."""
    from haystack import Pipeline

    keyword_cls, embedding_cls, query_cls, fusion_cls = _components()
    pipe = Pipeline()
    if mode in ("hybrid", "keyword"):
        pipe.add_component("keyword", keyword_cls(store, collections, candidates))
    if mode in ("hybrid", "vector"):
        if embedder is None:
            raise ValueError(f"mode {mode!r} needs an embedder")
        pipe.add_component("embed", query_cls(embedder))
        pipe.add_component("vector", embedding_cls(store, collections, candidates))
        pipe.connect("embed.embedding", "vector.query_embedding")
    pipe.add_component("join", fusion_cls(top_k, rrf_k))
    if mode in ("hybrid", "keyword"):
        pipe.connect("keyword.ranking", "join.rankings")
    if mode in ("hybrid", "vector"):
        pipe.connect("vector.ranking", "join.rankings")
    return pipe


class Retriever:
    """Searches collections of a :class:`DocumentStore`; pipelines are built once per (collections, mode)."""

    def __init__(
        self,
        store: DocumentStore,
        embedder: Embedder | None,
        *,
        candidates: int = CANDIDATES,
        rrf_k: int = RRF_K,
    ) -> None:
        if candidates < 1:
            raise ValueError(f"each side needs at least one candidate, not {candidates}")
        if rrf_k < 0:
            raise ValueError(f"the fusion constant k must be 0 or more, not {rrf_k}")
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._pipes: dict[tuple[tuple[str, ...], Mode, int], Any] = {}

    def search(
        self, query: str, collections: Sequence[str], *, top_k: int = 5, mode: Mode = "hybrid"
    ) -> list[Hit]:
        if self.embedder is None and mode == "hybrid":
            mode = "keyword"
        for name in collections:
            indexed_with = self.store.embedder_of(name)  # raises CollectionNotFound
            embedder = self.embedder
            if mode != "keyword" and embedder and indexed_with and indexed_with != embedder.name:
                raise EmbedderMismatch(name, indexed_with, embedder.name)
        key = (tuple(collections), mode, top_k)
        pipe = self._pipes.get(key)
        if pipe is None:
            pipe = self._pipes[key] = build_pipeline(
                self.store,
                self.embedder,
                collections,
                mode=mode,
                top_k=top_k,
                candidates=max(self.candidates, top_k),
                rrf_k=self.rrf_k,
            )
        inputs: dict[str, Any] = {}
        if mode in ("hybrid", "keyword"):
            inputs["keyword"] = {"query": query}
        if mode in ("hybrid", "vector"):
            inputs["embed"] = {"text": query}
        try:
            result = pipe.run(inputs)
        except Exception as exc:
            failed = _embedding_failure(exc)
            if failed is not None:
                raise failed from exc
            raise
        # The fusion hands on bare ids; the passages themselves are read for the winners only.
        joined = result["join"]["documents"]
        documents = self.store.documents_for([(int(d.id), float(d.score or 0.0)) for d in joined])
        return [hit_from_document(rank, doc) for rank, doc in enumerate(documents, start=1)]

    async def search_async(
        self, query: str, collections: Sequence[str], *, top_k: int = 5, mode: Mode = "hybrid"
    ) -> list[Hit]:
        return await asyncio.to_thread(self.search, query, collections, top_k=top_k, mode=mode)


def _embedding_failure(exc: BaseException) -> EmbeddingFailed | None:
    # Haystack wraps a component's failure in PipelineRuntimeError; ours is its cause.
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, EmbeddingFailed):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def hit_from_document(rank: int, doc: Any) -> Hit:
    """A retrieved Haystack ``Document`` (with our passage metadata) as a :class:`Hit` at ``rank``."""
    meta = doc.meta
    return Hit(
        rank=rank,
        score=float(doc.score or 0.0),
        collection=str(meta.get("collection", "")),
        file=str(meta.get("file", "")),
        page=meta.get("page"),
        section=str(meta.get("section", "")),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        content=doc.content or "",
        doc_id=doc.id,
    )


# -- into the prompt ---------------------------------------------------------------------------------
SOURCES_INTRO = (
    "Answer the question using the numbered sources below. Cite the sources you use as [1], [2]. "
    "If the sources do not contain the answer, say so."
)


def source_text(number: int, hit: Hit) -> str:
    return f"[{number}] {hit.place}\n{hit.content.strip()}"


def estimate_tokens(text: str) -> int:
    """A pessimistic count for budgeting when no tokenizer is at hand: 3 characters a token."""
    return math.ceil(len(text) / 3) + 4


def fit_passages(
    hits: Sequence[Hit], budget_tokens: int, count: Callable[[str], int] = estimate_tokens
) -> list[Hit]:
    """The best-ranked passages whose text (as :func:`context_block` writes it) fits ``budget_tokens``.

    A passage that does not fit is left out and smaller, lower-ranked ones may still fit: a model with a
    small context gets fewer passages, never an overflow.
    """
    chosen: list[Hit] = []
    used = count(SOURCES_INTRO)
    if used > budget_tokens:
        return []
    for hit in hits:
        cost = count(source_text(len(chosen) + 1, hit)) + 1
        if used + cost <= budget_tokens:
            chosen.append(hit)
            used += cost
    return chosen


def context_block(hits: Sequence[Hit]) -> str:
    """The text put before the question: the instruction and the numbered sources."""
    if not hits:
        return ""
    return "\n\n".join([SOURCES_INTRO, *(source_text(i, h) for i, h in enumerate(hits, start=1))])


def passage_budget(max_model_len: int, prompt_tokens: int, reply_tokens: int) -> int:
    """Tokens left for passages: the context less the conversation's prompt and the reply's room."""
    return max(0, max_model_len - prompt_tokens - reply_tokens)
