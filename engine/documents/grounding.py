"""Chat turns grounded in a conversation's attached document collections.

A conversation's settings name its collections (``GenerationSettings.documents``; :func:`attach` and
:func:`detach` change them). For each turn, :class:`Grounder` (set as ``ChatEngine.augment``) searches those
collections for the user's newest message, puts the best passages that fit the model's context before
it — the conversation and the question counted by the chat engine's own meter (the server's ``/tokenize``
where it has one), passages counted pessimistically, the reply's room kept — and hands the chosen
passages on as the reply's ``sources`` (stored with the reply, so citations survive restarts and exports).
When the reply is saved, each source gets its ``use`` (engine.documents.attribution): cited by the reply's
[n] markers, matched by the app to the reply's wording when it has no markers, or given but unused.
The user's own text is what the history keeps; a 2,048-token model gets fewer passages, never an overflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.chat.generation import GenerationSettings
from engine.chat.request import RequestAugment
from engine.chat.tokens import ContextMeter
from engine.documents.attribution import attribute
from engine.documents.embedder import Embedder, EmbeddingFailed
from engine.documents.retrieval import Hit, Retriever, context_block, fit_passages, passage_budget
from engine.documents.store import DocumentStore, EmbedderMismatch
from engine.endpoint import Endpoint
from engine.history.async_store import AsyncHistoryStore
from engine.history.records import Conversation

log = logging.getLogger(__name__)

CANDIDATES = 8
# Room kept for the reply when the conversation sets no max_tokens, and for the words around the passages.
DEFAULT_REPLY_TOKENS = 512
WRAP_TOKENS = 16
FALLBACK_CONTEXT = 2048  # a server that does not say its context length is treated as a small one


@dataclass(frozen=True)
class Grounded:
    """The question with its passages (``text``), and those passages (best first; numbered from 1)."""

    text: str
    sources: list[Hit]


def grounded_text(question: str, hits: Sequence[Hit]) -> str:
    return f"{context_block(hits)}\n\nQuestion: {question}" if hits else question


def source_record(number: int, hit: Hit) -> dict[str, Any]:
    """How one source is stored in a reply's meta (``meta["sources"]``) and exported."""
    return {"number": number, **hit.to_json(), "doc_id": hit.doc_id}


def finish_sources(sources: list[dict[str, Any]], question: str) -> Callable[[str], dict[str, Any]]:
    """``RequestAugment.finish_meta``: the reply's sources, each with its ``use`` (which the reply used)."""

    def finish(reply: str) -> dict[str, Any]:
        try:
            return {"sources": attribute(reply, sources, question)}
        except Exception:  # the reply is saved whatever happens, its sources as given
            log.exception("documents: could not attribute a reply to its sources")
            return {}

    return finish


def sources_of(meta: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The sources stored in a message's meta (``content["meta"]``), in their numbered order."""
    found = (meta or {}).get("sources")
    if not isinstance(found, list):
        return []
    return [s for s in found if isinstance(s, dict) and s.get("file")]


def source_place(source: dict[str, Any]) -> str:
    """ "report.pdf, page 3, Results": where a stored source's passage is."""
    from pathlib import PurePath

    where = [PurePath(str(source.get("file", ""))).name]
    if source.get("page") is not None:
        where.append(f"page {source['page']}")
    if source.get("section"):
        where.append(str(source["section"]))
    return ", ".join(where)


class Grounder:
    """Finds and fits passages for a turn. ``embedder()`` gives the running embedder or None (then the
    search is by keyword alone: a turn never waits for an embedding server to start)."""

    def __init__(
        self,
        store: DocumentStore,
        meter: ContextMeter,
        embedder: Callable[[], Embedder | None] = lambda: None,
        *,
        candidates: int = CANDIDATES,
    ) -> None:
        self.store = store
        self.meter = meter
        self.embedder = embedder
        self.candidates = candidates
        self._retrievers: dict[str | None, Retriever] = {}

    def collections(self, settings: GenerationSettings) -> list[str]:
        """The attached collections that still exist (a removed one is passed over)."""
        return [name for name in settings.documents if self.store.has_collection(name)]

    async def search(self, question: str, collections: Sequence[str]) -> list[Hit]:
        embedder = self.embedder()
        retriever = self._retriever(embedder)
        try:
            return await retriever.search_async(question, collections, top_k=self.candidates)
        except (EmbeddingFailed, EmbedderMismatch) as exc:
            # The vector side cannot answer (server gone, other model): the keyword side still can.
            log.warning("documents: searching by keyword only: %s", exc)
            return await self._retriever(None).search_async(
                question, collections, top_k=self.candidates, mode="keyword"
            )

    def _retriever(self, embedder: Embedder | None) -> Retriever:
        key = embedder.name if embedder is not None else None
        found = self._retrievers.get(key)
        if found is None or found.embedder is not embedder:
            found = self._retrievers[key] = Retriever(self.store, embedder)
        return found

    async def ground(
        self, endpoint: Endpoint, settings: GenerationSettings, messages: list[tuple[str, str]]
    ) -> Grounded | None:
        """The newest user message with the passages that fit; None when nothing is attached or found."""
        collections = self.collections(settings)
        if not collections or not messages or messages[-1][0] != "user":
            return None
        question = messages[-1][1]
        hits = await self.search(question, collections)
        if not hits:
            return Grounded(question, [])
        usage = await self.meter.measure(endpoint, messages)
        limit = usage.limit or endpoint.max_model_len or FALLBACK_CONTEXT
        reply = settings.max_tokens or min(DEFAULT_REPLY_TOKENS, limit // 4)
        budget = passage_budget(limit, usage.used + WRAP_TOKENS, reply)
        chosen = fit_passages(hits, budget)
        return Grounded(grounded_text(question, chosen), chosen)

    async def augment(
        self, endpoint: Endpoint, settings: GenerationSettings, messages: list[tuple[str, str]]
    ) -> RequestAugment | None:
        """``ChatEngine.augment``: the request with the passages, and the reply's ``sources``."""
        grounded = await self.ground(endpoint, settings, messages)
        if grounded is None:
            return None
        sources = [source_record(n, hit) for n, hit in enumerate(grounded.sources, start=1)]
        return RequestAugment(
            [*messages[:-1], ("user", grounded.text)],
            {"sources": sources},
            finish_meta=finish_sources(sources, messages[-1][1]) if sources else None,
        )


async def attach(store: AsyncHistoryStore, conversation_id: int, names: Sequence[str]) -> Conversation:
    """Attach collections to a conversation (kept in its settings, in the order attached)."""
    conversation = await store.conversation(conversation_id)
    current = list(conversation.settings.get("documents") or [])
    wanted = current + [n for n in names if n not in current]
    return await _store_documents(store, conversation, wanted)


async def detach(store: AsyncHistoryStore, conversation_id: int, name: str) -> Conversation:
    conversation = await store.conversation(conversation_id)
    current = [n for n in conversation.settings.get("documents") or [] if n != name]
    return await _store_documents(store, conversation, current)


async def _store_documents(
    store: AsyncHistoryStore, conversation: Conversation, names: list[str]
) -> Conversation:
    settings = {k: v for k, v in conversation.settings.items() if k != "documents"}
    if names:
        settings["documents"] = names
    GenerationSettings.parse(settings)  # still valid as a whole
    return await store.update_conversation(conversation.id, settings=settings)


def attached(conversation: Conversation) -> list[str]:
    """The collections a conversation has attached."""
    return [str(n) for n in conversation.settings.get("documents") or []]
