"""Which embedding model documents use (``documents.embedder`` in the settings), and its GPU share.

``"builtin"`` is all-MiniLM-L6-v2 served by vLLM (:func:`engine.documents.builtin_embedder.embedder_profile`);
any other value names a server profile: a local one serving a Hugging Face embedding model with
``--runner pooling``, or a remote ``/v1/embeddings``. On a GPU the embedder runs beside the chat model, so
the chat model's fit estimate counts the embedder's share (:func:`embedder_share`) while documents are in
use (:func:`documents_in_use`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence

from engine.documents.builtin_embedder import embedder_model_info, embedder_profile
from engine.documents.store import documents_db
from engine.errors import DeskError, Fix
from engine.hardware import GpuInfo
from engine.paths import AppPaths
from engine.server.fit import pooling_share
from engine.server.profiles import ServerProfile
from engine.settings.store import BUILTIN_EMBEDDER_CHOICE, Settings


class EmbedderProfileMissing(DeskError):
    title = "The embedding model's profile is gone"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Documents are set to use the server profile “{name}” for embeddings, and there is no such "
            "profile.",
            fix=Fix(
                action="choose_embedder",
                label="Choose the embedding model",
                hint="Preferences > Documents; or set documents.embedder to “builtin” in the settings file",
            ),
        )
        self.name = name


def embedder_choices(settings: Settings) -> list[str]:
    """What ``documents.embedder`` may name: the built-in model, then the saved profiles that serve
    embeddings (local ones with the pooling runner) or may (remote ones)."""
    from engine.server.fit import is_pooling

    named = [p.name for p in settings.profiles if p.kind == "remote" or is_pooling(p)]
    return [BUILTIN_EMBEDDER_CHOICE, *named]


def chosen_embedder(settings: Settings, paths: AppPaths) -> ServerProfile:
    """The profile the documents' embedder runs (:class:`EmbedderProfileMissing` when it was removed)."""
    choice = settings.documents.embedder
    if choice == BUILTIN_EMBEDDER_CHOICE:
        return embedder_profile(paths)
    profile = settings.profile(choice)
    if profile is None:
        raise EmbedderProfileMissing(choice)
    return profile


def documents_in_use(paths: AppPaths) -> bool:
    """Whether any document collection exists (read without creating the index)."""
    path = documents_db(paths)
    if not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)) as conn:
            return conn.execute("SELECT 1 FROM collections LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return False


def collection_embedders(paths: AppPaths) -> dict[str, str]:
    """Each collection with passages and the embedding model its vectors come from (read only)."""
    path = documents_db(paths)
    if not path.is_file():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)) as conn:
            rows = conn.execute(
                """SELECT c.name, c.embedder FROM collections c WHERE c.embedder != '' AND EXISTS(
                    SELECT 1 FROM chunks k JOIN files f ON k.file_id=f.id WHERE f.collection_id=c.id)"""
            ).fetchall()
    except sqlite3.Error:
        return {}
    return {str(name): str(embedder) for name, embedder in rows}


def embedder_share(settings: Settings, paths: AppPaths, gpus: Sequence[GpuInfo]) -> float | None:
    """The memory share the documents' embedder takes of the first GPU beside the chat model; ``None`` when
    it takes none there (a remote server, no GPU, a model whose sizes are unknown here)."""
    try:
        profile = chosen_embedder(settings, paths)
    except EmbedderProfileMissing:
        return None
    if profile.kind != "local" or not gpus:
        return None
    if profile.gpu_memory_utilization is not None:
        return profile.gpu_memory_utilization
    info = embedder_model_info(paths, profile)
    return None if info is None else pooling_share(profile, info, gpus)
