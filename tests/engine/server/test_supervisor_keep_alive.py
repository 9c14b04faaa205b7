"""A launched server is told how long to keep idle connections, and its endpoint tells the chat's client."""

from __future__ import annotations

import psutil
import pytest

from engine.chat.generator import client_kwargs
from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from engine.server.readiness import SERVER_KEEP_ALIVE_S
from engine.server.supervisor import Supervisor
from tests.support.standin.launch import StandinRuntime

pytestmark = pytest.mark.asyncio


async def test_a_launched_server_keeps_connections_as_its_endpoint_says(app_paths: AppPaths) -> None:
    sup = Supervisor(app_paths, StandinRuntime([]))
    try:
        endpoint = await sup.start(ServerProfile(name="test", source="hf_cache", model="org/standin"))
        assert sup.pid is not None
        told = psutil.Process(sup.pid).environ()["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"]
        assert int(told) == SERVER_KEEP_ALIVE_S == endpoint.keep_alive_s  # vLLM reads it with int()
        assert 0 < client_kwargs(endpoint)["limits"].keepalive_expiry < SERVER_KEEP_ALIVE_S
    finally:
        await sup.shutdown()
