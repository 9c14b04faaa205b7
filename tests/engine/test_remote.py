"""Remote endpoints, checked against the stand-in server process (a real HTTP server in another process)."""

from __future__ import annotations

import pytest

from engine.profiles import ServerProfile
from engine.remote import (
    RemoteKeyRefused,
    RemoteModelMissing,
    RemoteUnreachable,
    check_remote,
    connect_profile,
)
from engine.secrets import SecretStore, profile_key
from engine.supervisor import free_port
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
