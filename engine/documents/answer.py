"""Answering from documents: find the passages for a question, put what fits into the prompt, name them.

Used by ``vllm-desk chat --docs NAME``: :func:`find_passages` starts the embedding server for the search and
stops it before the chat model starts (two servers never share a small machine's memory for this);
:func:`grounded_message` puts the best passages that fit the chat model's context before the question
(numbered, so the reply can cite [1], [2]; it is sent in the request, and the reply is stored with its
sources, each marked used or not: see ``engine.cli.chat`` and engine.documents.attribution);
:func:`sources_lines` is how the stored sources are shown under the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.documents.attribution import HEADINGS, OTHERS_HEADING, grouped, use_of
from engine.documents.retrieval import (
    Hit,
    Retriever,
    context_block,
    estimate_tokens,
    fit_passages,
    passage_budget,
)
from engine.documents.store import DocumentStore, documents_db
from engine.paths import AppPaths

if TYPE_CHECKING:
    from engine.server.profiles import ServerProfile

CANDIDATES = 8
# Room kept for the reply when the request sets no max_tokens, and for the chat template's own tokens.
DEFAULT_REPLY_TOKENS = 512
TEMPLATE_TOKENS = 64


async def find_passages(
    paths: AppPaths,
    collections: Sequence[str],
    question: str,
    *,
    runtime_path: str | None = None,
    top_k: int = CANDIDATES,
    profile: ServerProfile | None = None,
) -> list[Hit]:
    """The best passages of ``collections`` for ``question`` (hybrid search), with the embedding model
    (``profile``, default the built-in one) started for the search and stopped after it."""
    from engine.documents.service import EmbedderService

    store = DocumentStore(documents_db(paths))
    try:
        for name in collections:
            store.collection(name)  # CollectionNotFound before any server starts
        service = EmbedderService(paths, runtime_path=runtime_path, profile=profile)
        try:
            embedder = await service.start()
            return await Retriever(store, embedder).search_async(question, list(collections), top_k=top_k)
        finally:
            await service.shutdown()
    finally:
        store.close()


def grounded_message(
    question: str, hits: Sequence[Hit], *, system: str, max_model_len: int | None, reply_tokens: int | None
) -> tuple[str, list[Hit]]:
    """The message to send: the instruction and the numbered sources that fit, then the question; and those
    sources (best first). Without any that fit, the question alone.

    The sources go in the user's message, not the system prompt: the built-in 135M model answered "Who is the
    keeper of the Kelvar lighthouse?" from its passage only that way (measured; with the same text as a
    system prompt it made a keeper up). The budget is the model's context less the question, the system
    prompt, the template and the reply's room, counted pessimistically: a 2,048-token model gets fewer
    passages, never an overflow.
    """
    used = estimate_tokens(system) + estimate_tokens(question) + TEMPLATE_TOKENS
    budget = passage_budget(max_model_len or 2048, used, reply_tokens or DEFAULT_REPLY_TOKENS)
    chosen = fit_passages(hits, budget)
    if not chosen:
        return question, []
    return f"{context_block(chosen)}\n\nQuestion: {question}", chosen


def sources_lines(sources: Sequence[Mapping[str, Any]], *, excerpt_chars: int = 300) -> list[str]:
    """The sources stored with a reply (``meta["sources"]``), the ones it used first under a heading that says
    how that is known (cited, or matched by the app), then the others given to the model: each
    ``[1] /path/report.pdf, page 3 — Results`` and the quoted passage (cut at ``excerpt_chars``)."""
    how, used, others = grouped(sources)
    lines = [f"{HEADINGS[how]}:"]
    for source in used:
        lines += _source_lines(source, excerpt_chars)
    if others:
        if used:
            lines.append(f"{OTHERS_HEADING}:")
        for source in others:
            lines += _source_lines(source, excerpt_chars)
    return lines


def _source_lines(source: Mapping[str, Any], excerpt_chars: int) -> list[str]:
    where = str(source.get("file", ""))
    where += f", page {source['page']}" if source.get("page") is not None else ""
    where += f" — {source['section']}" if source.get("section") else ""
    if use_of(source) == "matched":
        where += f" (matched {round(100 * float(source.get('match') or 0))}%)"
    text = " ".join(str(source.get("passage", "")).split())
    quote = f"    “{text[:excerpt_chars]}{'…' if len(text) > excerpt_chars else ''}”"
    return [f"[{source.get('number', '?')}] {where}", quote]


def sources_json(sources: Sequence[Mapping[str, Any]]) -> str:
    """``chat --docs --json``'s ``sources`` event: the records stored with the reply (with their ``use``)."""
    return json.dumps({"event": "sources", "sources": [dict(s) for s in sources]})
