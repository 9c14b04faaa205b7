"""Embeddings through Haystack's OpenAI embedders, pointed at vLLM's ``/v1/embeddings`` (or a compatible one).

:class:`Embedder` pairs a Haystack document embedder (passages, in batches) with a text embedder (the
question) and names the model, so the store can refuse to mix vectors of two models. :func:`endpoint_embedder`
builds one for an :class:`~engine.endpoint.Endpoint`: no retries against a local server (a dead one is
reported at once), the same httpx settings as the chat client (a proxy from the environment never sees a
local server's key).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from engine.endpoint import Endpoint
from engine.errors import DeskError, Fix

BATCH_SIZE = 32


class EmbeddingFailed(DeskError):
    title = "The embedding model did not answer"

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(
            f"The embedding model {model} could not embed the text ({reason}).",
            fix=Fix(
                action="open_server_log",
                label="Where is its log?",
                hint="Its log is in the logs folder that doctor names. Run: vllm-desk doctor",
            ),
        )
        self.reason = reason


@dataclass
class Embedder:
    """Haystack embedders for passages (``document``) and questions (``text``), and the model's name."""

    name: str
    document: Any
    text: Any
    dims: int = 0
    _warm: bool = field(default=False, repr=False)

    def warm_up(self) -> None:
        if not self._warm:
            for part in (self.document, self.text):
                warm = getattr(part, "warm_up", None)
                if warm is not None:
                    warm()
            self._warm = True

    def embed_documents(self, documents: list[Any]) -> list[Any]:
        """The documents with ``embedding`` set (blocking; run it in a thread)."""
        if not documents:
            return []
        self.warm_up()
        try:
            out: list[Any] = self.document.run(documents=documents)["documents"]
        except Exception as exc:  # openai's and httpx's errors alike: the server's problem, in words
            raise EmbeddingFailed(self.name, _reason(exc)) from exc
        missing = [d for d in out if d.embedding is None]
        if missing:
            raise EmbeddingFailed(self.name, f"{len(missing)} passages came back without a vector")
        self.dims = len(out[0].embedding)
        return out

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        """Vectors for ``texts`` (blocking). A text over the model's input limit (all-MiniLM-L6-v2 reads 256
        word pieces) is embedded from its beginning, as sentence-transformers truncates it: the batch is
        halved until the long one is alone, which is then shortened until the server takes it."""
        from haystack import Document

        try:
            done = self.embed_documents([Document(id=str(i), content=t) for i, t in enumerate(texts)])
            return [list(d.embedding) for d in done]
        except EmbeddingFailed as exc:
            if not any(words in exc.reason for words in _TOO_LONG):
                raise
            if len(texts) > 1:
                half = len(texts) // 2
                return self.embed_texts(texts[:half]) + self.embed_texts(texts[half:])
            if len(texts[0]) <= _SHORTEST:
                raise
            return self.embed_texts([texts[0][: len(texts[0]) * 3 // 4]])

    def embed_query(self, text: str) -> list[float]:
        self.warm_up()
        try:
            vector: list[float] = self.text.run(text=text)["embedding"]
        except Exception as exc:
            raise EmbeddingFailed(self.name, _reason(exc)) from exc
        self.dims = len(vector)
        return vector

    async def embed_documents_async(self, documents: list[Any]) -> list[Any]:
        return await asyncio.to_thread(self.embed_documents, documents)

    async def embed_query_async(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


# vLLM's words for an input over --max-model-len: "This model's maximum context length is 256 tokens. ..."
_TOO_LONG = ("maximum context length", "input tokens, which exceeds")
_SHORTEST = 64


def _reason(exc: Exception) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message.splitlines()[0][:300]


def endpoint_embedder(
    endpoint: Endpoint, *, batch_size: int = BATCH_SIZE, timeout_s: float = 120.0
) -> Embedder:
    """An :class:`Embedder` on ``endpoint``'s ``/v1/embeddings`` (Haystack's OpenAI embedders)."""
    import httpx
    from haystack.components.embedders import OpenAIDocumentEmbedder, OpenAITextEmbedder
    from haystack.utils import Secret

    from engine.chat.generator import client_kwargs

    common: dict[str, Any] = {
        "api_key": Secret.from_token(endpoint.api_key or "none"),
        "model": endpoint.model,
        "api_base_url": endpoint.base_url,
        "timeout": timeout_s,
        "max_retries": 0 if endpoint.kind == "local" else 2,
        "http_client_kwargs": client_kwargs(endpoint),
    }
    if endpoint.kind == "local":
        # Haystack's embedders hold their own clients and have no close: a connection kept to a server the
        # app launched would outlive them. A local connect costs well under a millisecond of an embedding.
        common["http_client_kwargs"]["limits"] = httpx.Limits(max_keepalive_connections=0)
    # It logs every failed batch with a traceback; we report failures ourselves, in words.
    logging.getLogger("haystack.components.embedders.openai_document_embedder").setLevel(logging.CRITICAL)
    document = OpenAIDocumentEmbedder(
        **common, batch_size=batch_size, progress_bar=False, raise_on_failure=True
    )
    return Embedder(endpoint.model, document, OpenAITextEmbedder(**common))


def hashing_embedder(dims: int = 64) -> Embedder:
    """Haystack's deterministic mock embedders (a hash of the text): for indexing without a model server
    (tests, benchmarks of the keyword side). The vectors carry no meaning."""
    from haystack.components.embedders import MockDocumentEmbedder, MockTextEmbedder

    return Embedder(f"hash-{dims}", MockDocumentEmbedder(dimension=dims), MockTextEmbedder(dimension=dims))
