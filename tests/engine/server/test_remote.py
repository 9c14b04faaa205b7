"""Remote endpoints, checked against the stand-in server process (a real HTTP server in another process)."""

from __future__ import annotations

import pytest

from engine.secrets import SecretStore, profile_key
from engine.server.profiles import ServerProfile
from engine.server.remote import (
    RemoteKeyRefused,
    RemoteModelMissing,
    RemoteUnreachable,
    check_remote,
    connect_profile,
)
from engine.server.supervisor import free_port
from tests.support.standin.launch import running_standin

pytestmark = pytest.mark.asyncio


async def test_a_remote_server_becomes_an_endpoint() -> None:
    with running_standin(
        "--max-model-len", "8192", "--version-string", "0.33.1", model="team/llm", api_key="k"
    ) as srv:
        info = await check_remote(srv.base_url + "/", "k", name="team")
    assert info.endpoint.base_url == srv.base_url
    assert info.endpoint.model == "team/llm"
    assert info.endpoint.max_model_len == 8192
    assert info.endpoint.kind == "remote"
    assert info.endpoint.api_key == "k"
    assert info.version == "0.33.1"
    assert info.models == ["team/llm"]
    assert info.has_health


async def test_wrong_key_missing_model_and_no_server() -> None:
    with running_standin(model="m", api_key="right") as srv:
        with pytest.raises(RemoteKeyRefused):
            await check_remote(srv.base_url, "wrong")
        with pytest.raises(RemoteModelMissing) as caught:
            await check_remote(srv.base_url, "right", model="other")
    assert caught.value.fix is not None
    assert caught.value.fix.params == {"models": ["m"]}
    with pytest.raises(RemoteUnreachable, match="No answer"):
        await check_remote(f"http://127.0.0.1:{free_port()}/v1", None, timeout_s=2)


async def test_a_remote_profile_uses_its_key_from_the_keychain() -> None:
    store = SecretStore()
    store.set(profile_key("cluster"), "ray-key")
    with running_standin(model="big", api_key="ray-key") as srv:
        remote = ServerProfile(name="cluster", kind="remote", base_url=srv.base_url)
        info = await connect_profile(remote, store)
    assert info.endpoint.api_key == "ray-key"
    assert info.endpoint.profile_name == "cluster"


def _server(health_status: int):  # type: ignore[no-untyped-def]
    """An OpenAI-compatible server answering /health with ``health_status`` (an httpx transport: the far
    end of a remote endpoint is not ours)."""
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(health_status)
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m", "max_model_len": 4096}]})
        return httpx.Response(404)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_a_server_that_reports_itself_unhealthy_is_not_connected_to() -> None:
    async with _server(503) as client:
        with pytest.raises(RemoteUnreachable, match="unhealthy: /health answered HTTP 503"):
            await check_remote("http://team:8000/v1", None, client=client)


async def test_a_server_without_health_is_judged_by_its_models() -> None:
    async with _server(404) as client:
        info = await check_remote("http://team:8000/v1", None, client=client)
    assert info.endpoint.model == "m"
    assert not info.has_health
