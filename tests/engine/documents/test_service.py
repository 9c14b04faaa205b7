"""The embedding service: a second Supervisor of its own, here with a remote profile (the built-in model's
real start is in test_documents_vllm)."""

from __future__ import annotations

import pytest

from engine.documents.service import EmbedderService
from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from tests.support.embeddings_server import running_embeddings_server


@pytest.mark.asyncio
async def test_a_remote_profile_is_connected_and_embeds(app_paths: AppPaths) -> None:
    with running_embeddings_server(model="team-embedder") as server:
        profile = ServerProfile(name="team", kind="remote", base_url=server.base_url)
        service = EmbedderService(app_paths, profile=profile)
        embedder = await service.start()
        try:
            assert embedder.name == "team-embedder"
            vector = await embedder.embed_query_async("hello world")
            assert len(vector) == 64
            assert service.endpoint is not None
            assert not service.endpoint.uses_env_proxy  # 127.0.0.1: never through a proxy
        finally:
            await service.shutdown()
        assert service.endpoint is None
        assert server.requests == [["hello world"]]


@pytest.mark.asyncio
async def test_an_unreachable_embedding_server_is_a_problem_in_words(app_paths: AppPaths) -> None:
    from engine.errors import DeskError

    profile = ServerProfile(name="gone", kind="remote", base_url="http://127.0.0.1:9/v1")
    service = EmbedderService(app_paths, profile=profile)
    with pytest.raises(DeskError) as problem:
        await service.start()
    assert "127.0.0.1:9" in str(problem.value)
    await service.shutdown()
