"""Test connection against the stand-in server process (the real vLLM is checked in test_preferences)."""

from __future__ import annotations

import socket

import pytest

from engine.connection_check import EndpointKeyRejected, EndpointUnreachable, check_connection
from tests.support.standin.launch import running_standin


@pytest.mark.asyncio
async def test_reports_health_version_and_models() -> None:
    with running_standin("--version-string", "0.33.1", model="lab-model", api_key="sk-lab") as server:
        report = await check_connection(server.base_url, "sk-lab")
    assert report.healthy
    assert report.version == "0.33.1"
    assert [m.id for m in report.models] == ["lab-model"]
    assert report.models[0].max_model_len == 2048
    assert "vLLM 0.33.1" in report.summary()


@pytest.mark.asyncio
async def test_wrong_key_is_named() -> None:
    with (
        running_standin(model="lab-model", api_key="sk-right") as server,
        pytest.raises(EndpointKeyRejected, match="401"),
    ):
        await check_connection(server.root_url, "sk-wrong")


@pytest.mark.asyncio
async def test_nothing_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EndpointUnreachable, match="Nothing answered"):
        await check_connection(f"http://127.0.0.1:{port}/v1", None, wait_s=2)


@pytest.mark.asyncio
async def test_not_a_url() -> None:
    with pytest.raises(EndpointUnreachable, match="http://"):
        await check_connection("localhost:8000", None)
