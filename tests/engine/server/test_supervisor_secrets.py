"""Secrets reach the server only through its environment: never argv, the log file or log events."""

from __future__ import annotations

import psutil
import pytest

from engine.paths import AppPaths
from engine.secrets import HF_TOKEN, SecretStore
from engine.server.profiles import ServerProfile
from engine.server.supervisor import LogLine, Supervisor
from tests.support.memory_keyring import MemoryKeyring
from tests.support.standin.launch import StandinRuntime

pytestmark = pytest.mark.asyncio

TOKEN = "hf_TestTokenThatMustNeverBeLogged0123456789"


def secret_store(name: str) -> SecretStore:
    # MemoryKeyring's store is shared by class: a service of this test's own keeps tests apart.
    return SecretStore(service=f"vllm-desk-test-{name}", backend=MemoryKeyring())


async def launch_environment(
    app_paths: AppPaths, secrets: SecretStore
) -> tuple[dict[str, str], str, str, list[LogLine]]:
    """Start the stand-in (it prints vLLM's start lines), read its environment and argv, stop it."""
    sup = Supervisor(app_paths, StandinRuntime([]), secrets=secrets)
    lines: list[LogLine] = []
    sup.log_line.connect(lines.append)
    endpoint = await sup.start(ServerProfile(name="gated", source="hf_repo", model="org/gated"))
    leader = psutil.Process(sup.pid)
    environ, cmdline = leader.environ(), " ".join(leader.cmdline())
    await sup.stop()
    assert endpoint.api_key == environ["VLLM_API_KEY"]
    log_text = "".join(p.read_text() for p in app_paths.logs.glob("gated-*.log"))
    assert "Starting vLLM server on" in log_text  # the log is the launch's real log, not an empty file
    return environ, cmdline, log_text, lines


async def test_the_stored_hf_token_reaches_the_server_only_through_its_environment(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    secrets = secret_store("hf-stored")
    secrets.set(HF_TOKEN, TOKEN)
    try:
        environ, cmdline, log_text, lines = await launch_environment(app_paths, secrets)
    finally:
        secrets.delete(HF_TOKEN)
    assert environ["HF_TOKEN"] == TOKEN
    assert TOKEN not in cmdline
    assert TOKEN not in log_text
    assert lines
    assert all(TOKEN not in line.text for line in lines)


async def test_no_hf_token_is_passed_when_none_is_stored(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    environ, _cmdline, _log, _lines = await launch_environment(app_paths, secret_store("hf-none"))
    assert "HF_TOKEN" not in environ
