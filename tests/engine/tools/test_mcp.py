"""MCP servers through MCPToolset: a real server process written with the mcp SDK, over stdio and over
streamable HTTP on the loopback, with secrets from the keychain, failures in words and no orphans."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.server.readiness import free_port
from engine.tools.approval import ApprovalPolicy
from engine.tools.config import McpServer, ToolsSettings, env_key
from engine.tools.loop import LoopLimits, ToolLoop
from engine.tools.mcp import McpManager, ServerState, mcp_text
from tests.engine.tools.test_loop import Recorder, generator_for
from tests.support.mcp import MCP_SERVER, stdio_test_server
from tests.support.standin.launch import running_standin


@pytest.fixture
def settings(tmp_path: Path) -> ToolsSettings:
    return ToolsSettings(tmp_path / "config", SecretStore())


@asynccontextmanager
async def started(
    settings: ToolsSettings, app_paths: AppPaths, name: str = "desk", *, call_timeout_s: float = 10
) -> AsyncIterator[tuple[McpManager, ServerState]]:
    """A manager of ``settings``' servers, its log under ``app_paths``, with ``name`` started and ready (30 s
    to connect: a busy machine); it and its state, every server stopped after."""
    manager = McpManager(settings, logs=app_paths.logs, connect_timeout_s=30, call_timeout_s=call_timeout_s)
    try:
        state = await manager.start(name)
        assert state.status == "ready", state.reason
        yield manager, state
    finally:
        await manager.aclose()


@pytest.fixture
def http_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, MCP_SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.asyncio
async def test_a_stdio_server_runs_in_its_own_group_gets_its_secret_and_leaves_no_orphan(
    settings: ToolsSettings, app_paths
) -> None:  # type: ignore[no-untyped-def]
    settings.add(stdio_test_server(), secret_env={"DESK_API_KEY": "s3cret"})
    assert "s3cret" not in settings.path.read_text()  # only the name is in the file
    assert SecretStore().get(env_key("desk", "DESK_API_KEY")) == "s3cret"
    async with started(settings, app_paths) as (manager, state):
        assert {"add", "echo", "env_value", "process"} <= set(state.tools)
        assert state.describe() == f"ready with {len(state.tools)} tool(s)"
        tools, owners = manager.tools(["desk"])
        by_name = {t.name: t for t in tools}
        assert owners["add"] == "desk"
        assert await by_name["add"].invoke_async(a=2, b=40) == "42"
        assert await by_name["env_value"].invoke_async(name="DESK_API_KEY") == "s3cret"
        pid, pgid = (int(x) for x in (await by_name["process"].invoke_async()).split())
        assert pid == pgid  # the leader of its own process group
        assert pgid != os.getpgid(0)
        assert manager.connections["desk"].pgid == pgid
    assert not _alive(pid)


@pytest.mark.asyncio
async def test_a_streamable_http_server_on_the_loopback(settings: ToolsSettings, http_server: str) -> None:
    settings.add(McpServer(name="web", transport="http", url=http_server), headers={"X-Desk-Key": "k"})
    manager = McpManager(settings, connect_timeout_s=20, call_timeout_s=10)
    try:
        state = await manager.start("web")
        assert state.status == "ready", state.reason
        tools, _owners = manager.tools(["web"])
        echo = next(t for t in tools if t.name == "echo")
        assert await echo.invoke_async(text="über <b>") == "über <b>"
    finally:
        await manager.aclose()


@pytest.mark.asyncio
async def test_an_mcp_tool_in_a_turn_with_approval(settings: ToolsSettings, app_paths) -> None:  # type: ignore[no-untyped-def]
    settings.add(stdio_test_server())
    async with started(settings, app_paths) as (manager, _state):
        tools, owners = manager.tools(["desk"])
        rec = Recorder("allow_once")
        with running_standin(
            "--tool-calls", "well-formed", "--tool-name", "add", "--tool-arguments", '{"a": 20, "b": 22}'
        ) as server:
            async with generator_for(server) as generator:
                loop = ToolLoop(generator, tools, approval=rec.policy(), servers=owners, on_message=rec.save)
                from haystack.dataclasses import ChatMessage

                outcome = await loop.run([ChatMessage.from_user("20 + 22?")])
        assert rec.asked[0].server == "desk"
        assert rec.asked[0].tool == "add"
        result = outcome.messages[1].tool_call_result
        assert result is not None
        assert result.result == "42"


@pytest.mark.asyncio
async def test_a_tool_that_fails_crashes_or_hangs_on_the_server(settings: ToolsSettings, app_paths) -> None:  # type: ignore[no-untyped-def]
    settings.add(stdio_test_server())
    # The server prints a failed tool's traceback with rich, which takes a while on a busy machine.
    async with started(settings, app_paths, call_timeout_s=6) as (manager, _state):
        tools, _owners = manager.tools(["desk"])
        by_name = {t.name: t for t in tools}
        with pytest.raises(Exception, match="Error executing tool boom"):
            await by_name["boom"].invoke_async()
        with pytest.raises(Exception, match="timed out"):
            await by_name["nap"].invoke_async(seconds=20)
        loop = ToolLoop(
            object(), tools, approval=ApprovalPolicy.allow_all(), limits=LoopLimits(call_timeout_s=10)
        )
        from haystack.dataclasses import ToolCall

        text, error, decision = await loop._result_of(
            ToolCall(tool_name="crash", arguments={}, id="c1"),
            __import__("engine.tools.approval", fromlist=["CallRequest"]).CallRequest("c1", "crash", "desk"),
        )
        assert error is True
        assert decision == "allow_once"  # allowed, run, and failed
        assert text.startswith("The tool crash failed")
        crashed = manager.connections["desk"].state
        assert crashed.status == "failed"
        assert crashed.reason.startswith("the server stopped during a call of crash")
        assert manager.tools(["desk"]) == ([], {})  # its tools are no longer offered


@pytest.mark.asyncio
async def test_servers_that_cannot_start_say_why(settings: ToolsSettings, app_paths) -> None:  # type: ignore[no-untyped-def]
    settings.add(McpServer(name="missing", transport="stdio", command="/nonexistent/mcp-server"))
    settings.add(stdio_test_server("garbage", "garbage"))
    settings.add(McpServer(name="nobody", transport="http", url=f"http://127.0.0.1:{free_port()}/mcp"))
    manager = McpManager(settings, logs=app_paths.logs, connect_timeout_s=5, call_timeout_s=5)
    try:
        missing = await manager.start("missing")
        assert missing.status == "failed"
        assert "/nonexistent/mcp-server" in missing.reason
        garbage = await manager.start("garbage")
        assert garbage.status == "failed"
        assert "no MCP handshake within 5 s" in garbage.reason
        nobody = await manager.start("nobody")
        assert nobody.status == "failed"
        assert "127.0.0.1" in nobody.reason
        assert manager.tools(["missing", "garbage", "nobody"]) == ([], {})
    finally:
        await manager.aclose()


def test_mcp_results_reach_the_model_as_text() -> None:
    raw = '{"content":[{"type":"text","text":"a"},{"type":"image","data":"..."}],"isError":false}'
    assert mcp_text(raw) == "a\n[image content left out]"
    assert mcp_text('{"content":[],"structuredContent":{"n":1}}') == '{"n": 1}'
    assert mcp_text("plain") == "plain"


KEEPER = """
import asyncio, sys, time
from pathlib import Path
from engine.tools.config import McpServer, ToolsSettings
from engine.tools.mcp import McpManager

async def main():
    settings = ToolsSettings(Path(sys.argv[1]))
    server = McpServer(name="desk", transport="stdio", command=sys.executable, args=[sys.argv[2], "stdio"])
    settings.add(server)
    manager = McpManager(settings, logs=Path(sys.argv[1]))
    state = await manager.start("desk")
    print(state.status, manager.connections["desk"].pgid, flush=True)
    await asyncio.sleep(300)

asyncio.run(main())
"""


def test_a_stdio_server_goes_when_the_app_is_killed(tmp_path: Path) -> None:
    import signal

    app = subprocess.Popen(
        [sys.executable, "-c", KEEPER, str(tmp_path), MCP_SERVER],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[3],
        start_new_session=True,
    )
    try:
        assert app.stdout is not None
        status, pgid = app.stdout.readline().split()
        assert status == "ready"
        assert _alive(int(pgid))
        os.killpg(app.pid, signal.SIGKILL)  # the app dies at once: no cleanup of its own runs
        app.wait(10)
        deadline = time.monotonic() + 20
        while _alive(int(pgid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        # Its stdin closed, the server ends by itself (the MCP stdio transport's rule): no orphan.
        assert not _alive(int(pgid))
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait(10)
        if app.stdout is not None:
            app.stdout.close()


@pytest.mark.asyncio
async def test_a_servers_tool_named_as_a_built_in_tool_is_offered_under_the_servers_name(
    settings: ToolsSettings, app_paths
) -> None:  # type: ignore[no-untyped-def]
    settings.add(stdio_test_server("desk", "stdio-builtin-names"))
    async with started(settings, app_paths) as (manager, state):
        assert "current_time" in state.tools  # as the server names it
        tools, owners = manager.tools(["desk"])
        by_name = {t.name: t for t in tools}
        assert "current_time" not in by_name  # that name stays the built-in tool's
        assert owners["desk_current_time"] == "desk"
        assert await by_name["desk_current_time"].invoke_async() == "the server's clock"
        assert owners["add"] == "desk"  # the others keep their names


async def _turn_with(tools: list, owners: dict[str, str], name: str, arguments: str, limits: LoopLimits):  # type: ignore[no-untyped-def,type-arg]
    """One turn against the stand-in, which calls ``name`` with ``arguments``; every call allowed."""
    from haystack.dataclasses import ChatMessage

    rec = Recorder("allow_once")
    options = ("--tool-calls", "well-formed", "--tool-name", name, "--tool-arguments", arguments)
    with running_standin(*options) as server:
        async with generator_for(server) as generator:
            loop = ToolLoop(
                generator,
                tools,
                approval=rec.policy(),
                servers=owners,
                limits=limits,
                on_event=rec.events.append,
            )
            outcome = await loop.run([ChatMessage.from_user("Go.")])
    return outcome, rec


@pytest.mark.asyncio
async def test_an_mcp_tool_that_returns_megabytes_is_cut_with_a_notice_before_the_model(
    settings: ToolsSettings, app_paths
) -> None:  # type: ignore[no-untyped-def]
    settings.add(stdio_test_server())
    async with started(settings, app_paths, call_timeout_s=30) as (manager, _state):
        tools, owners = manager.tools(["desk"])
        outcome, rec = await _turn_with(
            tools, owners, "big", '{"size": 3000000}', LoopLimits(max_result_chars=2000)
        )
    result = outcome.messages[1].tool_call_result
    assert result is not None
    assert result.error is False
    assert result.result.startswith("x" * 2000 + "\n[Truncated: the tool returned 3,000,000 characters")
    assert len(result.result) < 2200
    assert [e.text for e in rec.events if e.kind == "result"] == [result.result]  # what the card shows
    assert outcome.messages[-1].text == "The capital of France is Paris."  # the turn went on


@pytest.mark.asyncio
async def test_a_server_that_breaks_json_rpc_mid_call_gives_a_clear_error_and_the_turn_goes_on(
    settings: ToolsSettings, app_paths
) -> None:  # type: ignore[no-untyped-def]
    # It shakes hands and lists its tool as MCP says, then answers the call with a line that is not JSON-RPC
    # and a response to a request it was never sent: the call's own answer never comes.
    settings.add(stdio_test_server("broken", "broken-rpc"))
    async with started(settings, app_paths, "broken", call_timeout_s=3) as (manager, _state):
        tools, owners = manager.tools(["broken"])
        outcome, rec = await _turn_with(
            tools, owners, "add", '{"a": 1, "b": 2}', LoopLimits(call_timeout_s=30)
        )
        pgid = manager.connections["broken"].pgid
        after = manager.connections["broken"].state
    result = outcome.messages[1].tool_call_result
    assert result is not None
    assert result.error is True
    # Haystack's "Failed to invoke Tool ... Error:" wrappings (two for an MCP tool) are taken off; what went
    # wrong is said, not only that the answer did not come in time.
    assert str(result.result).startswith(
        "The tool add failed: The MCP server broken failed: it sent something that is not JSON-RPC during a "
        "call of add (ValidationError: "
    )
    assert "timed out" not in str(result.result)
    # The server is no longer "ready": its state says why.
    assert after.status == "failed"
    assert after.reason.startswith("it sent something that is not JSON-RPC during a call of add")
    assert rec.asked[0].server == "broken"
    assert [m.role.value for m in outcome.messages] == ["assistant", "tool", "assistant"]
    assert outcome.messages[-1].text == "The capital of France is Paris."
    assert pgid is not None
    assert not _alive(pgid)  # stopped with the app
