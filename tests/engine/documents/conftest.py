"""Fixtures for the document tests: a real store in the test's data folder and Haystack's hashing embedder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.documents.embedder import Embedder, hashing_embedder
from engine.documents.store import DocumentStore, documents_db
from engine.paths import AppPaths


@pytest.fixture
def doc_store(app_paths: AppPaths) -> Iterator[DocumentStore]:
    store = DocumentStore(documents_db(app_paths))
    yield store
    store.close()


@pytest.fixture
def embedder() -> Embedder:
    """Haystack's MockDocumentEmbedder/MockTextEmbedder: deterministic vectors from a hash of the text (no
    meaning; the real model is in the ``vllm`` tests)."""
    return hashing_embedder(32)
