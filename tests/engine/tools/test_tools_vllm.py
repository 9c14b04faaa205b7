"""Tools against the REAL vLLM on the CPU: the built-in SmolLM2 with a forced (named) tool choice.

SmolLM2's chat template does not describe tools, so the model calls one only when the choice forces it. vLLM
0.32 pins a forced call's arguments to the schema only for a ``strict`` tool (the hermes parser's structural
tags); the loop sends the forced tool strict, so the arguments come back as an object (measured, issue 19:
``{"a": 2, "b": 3}``; without strict they came back as a JSON string such as ``"2"``). Free-text string
arguments are still beyond this 135M model (it repeats a word until the token limit), so these tests use
tools whose arguments are numbers or none. The malformed path is the stand-in's (test_loop.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from haystack.tools import Tool

from engine.chat.generation import GenerationSettings
from engine.chat.generator import GeneratorPool
from engine.chat.request import ChatTimeouts
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.tools.approval import ApprovalPolicy, CallRequest, Decision
from engine.tools.session import run_tool_turn

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ADD = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}


@pytest_asyncio.fixture
async def store(app_paths) -> AsyncIterator[AsyncHistoryStore]:  # type: ignore[no-untyped-def]
    s = await AsyncHistoryStore.open(app_paths.history_db)
    yield s
    await s.close()


@pytest.mark.asyncio
async def test_a_forced_named_tool_call_with_the_builtin_model_runs_after_approval(
    vllm_server, store: AsyncHistoryStore
) -> None:  # type: ignore[no-untyped-def]
    ran: list[tuple[int, int]] = []

    def add(a: int, b: int) -> str:
        ran.append((a, b))
        return str(a + b)

    asked: list[CallRequest] = []

    async def approve(request: CallRequest) -> Decision:
        asked.append(request)
        return "allow_once"

    tool = Tool(name="add", description="Add two whole numbers.", parameters=ADD, function=add)
    settings = GenerationSettings(temperature=0.0, max_tokens=96)
    conv = await store.create_conversation(title="", settings=settings.to_json_dict())
    pool = GeneratorPool(ChatTimeouts().for_endpoint)
    try:
        async with pool.lease(vllm_server) as generator:
            turn = await run_tool_turn(
                store,
                generator,
                vllm_server,
                conv.id,
                "What is 2 plus 3?",
                tools=[tool],
                approval=ApprovalPolicy(approve),
                choice="add",
            )
    finally:
        await pool.aclose()
    assert turn.error is None, turn.error
    branch = (await store.load(conv.id)).branch()
    roles = [m.role for m in branch]
    assert roles[:3] == ["user", "assistant", "tool"]
    call = branch[1].to_chat_message().tool_calls[0]
    assert call.tool_name == "add"  # vLLM forced the named function
    assert call.id  # vLLM's call id, which the result answers
    assert call.extra is None, call.extra  # well-formed: an object that matches the schema
    assert set(call.arguments) == {"a", "b"}
    assert [r.tool for r in asked] == ["add"]  # the user was asked, then it ran with the model's numbers
    assert ran == [(call.arguments["a"], call.arguments["b"])]
    result = branch[2].to_chat_message().tool_call_result
    assert result.origin.id == call.id
    assert result.error is False
    assert result.result == str(call.arguments["a"] + call.arguments["b"])
    # The model answered after the result, and everything reads back from the history.
    assert roles[-1] == "assistant"
    assert branch[-1].state == "complete"
    print(f"\nSmolLM2's call: {call.to_dict()}\nresult: {result.result}\nanswer: {branch[-1].text!r}")
    reread = HistoryStore(store.path)
    try:
        assert [m.id for m in reread.load(conv.id).branch()] == [m.id for m in branch]
    finally:
        reread.close()


def test_the_command_line_with_an_mcp_tool_against_the_builtin_model(vllm_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    server_script = str(Path(__file__).with_name("mcp_server.py"))
    home = tmp_path / "desk"
    env = {**os.environ, "DESK_TEST_KEY": vllm_server.api_key or ""}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine.cli", "--data-dir", str(home), *args],
            capture_output=True,
            text=True,
            env=env,
            input="",
            timeout=600,
            cwd=Path(__file__).parents[3],
        )

    assert cli("tools", "add-mcp", "desk", "--", sys.executable, server_script, "stdio").returncode == 0
    base = (
        "chat",
        "--base-url",
        vllm_server.base_url,
        "--api-key-env",
        "DESK_TEST_KEY",
        "--max-tokens",
        "64",
    )
    done = cli(
        *base,
        "--tools",
        "desk,current_time",
        "--tool-choice",
        "process",
        "--approve",
        "all",
        "Which process?",
    )
    print("\n" + done.stderr)
    assert done.returncode == 0, done.stderr
    assert "→ process (desk)" in done.stderr  # the forced MCP tool was called
    shown = json.loads(cli("show", "1", "--json").stdout)["messages"]
    assert [m["role"] for m in shown][:3] == ["user", "assistant", "tool"]
    result = shown[2]["content"]["content"][0]["tool_call_result"]
    assert not result["error"], result["result"]  # the strict forced call's arguments: {}
    pid, pgid = (int(x) for x in result["result"].split())
    assert pid == pgid  # the stdio server ran in its own process group
    assert shown[-1]["role"] == "assistant"
    assert shown[-1]["state"] == "complete"
