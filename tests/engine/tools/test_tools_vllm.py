"""Tools against the REAL vLLM on the CPU: the built-in SmolLM2 with a forced (named) tool choice.

SmolLM2's chat template does not describe tools, so the model calls one only when the choice forces it. vLLM
0.32 pins a forced call's arguments to the schema only for a ``strict`` tool (the hermes parser's structural
tags); the loop sends the forced tool strict, so the arguments come back as an object (measured, issue 19:
``{"a": 2, "b": 3}``; without strict they came back as a JSON string such as ``"2"``). A free-text string is
held to its bound: this 135M model can run a string on until the token limit (measured: a documents query of
digits, the JSON never closed), and the built-in tools' queries carry a ``maxLength`` that vLLM's grammar
closes the string at, so the command line's forced ``search_history`` call is well-formed; an MCP tool's
unbounded string gets such a cap in the strict request for this model (the session's). The model's words
change with the processor: the checks are on structure, never on its text. The malformed path is the
stand-in's (test_loop.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from haystack.tools import Tool

from engine.chat.generation import GenerationSettings
from engine.chat.generator import GeneratorPool
from engine.chat.request import ChatTimeouts
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.tools.approval import ApprovalPolicy, CallRequest, Decision
from engine.tools.builtin import QUERY_MAX_CHARS
from engine.tools.session import BUILTIN_MODEL_STRING_CHARS, ToolTurnOptions, run_tool_turn

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
                ToolTurnOptions(tools=[tool], approval=ApprovalPolicy(approve), choice="add"),
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


def desk_cli(home: Path, api_key: str | None) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``vllm-desk`` run as a process with its data in ``home``; the server's key in $DESK_TEST_KEY."""
    env = {**os.environ, "DESK_TEST_KEY": api_key or ""}

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

    return cli


def test_the_command_line_with_an_mcp_tool_against_the_builtin_model(vllm_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server_script = str(Path(__file__).with_name("mcp_server.py"))
    cli = desk_cli(tmp_path / "desk", vllm_server.api_key)
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


def test_the_command_line_with_a_built_in_tool_and_a_free_text_query(vllm_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # search_history, because whatever words the model writes its result is not an error (hits, or "no
    # conversation mentions"); current_time would fail on a zone the model makes up (a clear tool error, but
    # not what this test is for), and search_documents needs a collection first.
    cli = desk_cli(tmp_path / "desk", vllm_server.api_key)
    done = cli(
        *("chat", "--base-url", vllm_server.base_url, "--api-key-env", "DESK_TEST_KEY"),
        # Room for a query at its bound (about a token a character at worst) and the call around it.
        *("--max-tokens", "192", "--temperature", "0"),
        *("--tools", "search_history", "--tool-choice", "search_history", "--approve", "all"),
        "Did we talk about pizza before?",
    )
    print("\n" + done.stderr)
    assert done.returncode == 0, done.stderr
    assert "→ search_history (built-in)" in done.stderr  # the forced built-in tool was called
    shown = json.loads(cli("show", "1", "--json").stdout)["messages"]
    assert [m["role"] for m in shown] == ["user", "assistant", "tool", "assistant"]
    [call] = [c["tool_call"] for c in shown[1]["content"]["content"] if "tool_call" in c]
    assert call["tool_name"] == "search_history"
    assert not call.get("extra"), call  # well-formed: no raw arguments kept, no problem noted
    query = call["arguments"]["query"]
    assert isinstance(query, str)
    assert 1 <= len(query) <= QUERY_MAX_CHARS  # vLLM closed the string at the bound, at the latest
    result = shown[2]["content"]["content"][0]["tool_call_result"]
    assert result["origin"]["id"] == call["id"]
    assert not result["error"], result["result"]  # approved (--approve all) and the search ran
    text = result["result"]
    assert text == f"No conversation mentions “{query}”." or text.startswith("- conversation "), text
    assert shown[-1]["state"] == "complete"


def test_the_command_line_with_an_mcp_tool_s_free_text(vllm_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The test server's echo(text) has an unbounded string: for the built-in model the session caps it in the
    # strict request (vLLM's grammar closes the string there at the latest); the tool's schema is unchanged.
    server_script = str(Path(__file__).with_name("mcp_server.py"))
    cli = desk_cli(tmp_path / "desk", vllm_server.api_key)
    assert cli("tools", "add-mcp", "desk", "--", sys.executable, server_script, "stdio").returncode == 0
    done = cli(
        *("chat", "--base-url", vllm_server.base_url, "--api-key-env", "DESK_TEST_KEY"),
        *("--max-tokens", "192", "--temperature", "0"),
        *("--tools", "desk", "--tool-choice", "echo", "--approve", "all"),
        "Say hello to Ada.",
    )
    print("\n" + done.stderr)
    assert done.returncode == 0, done.stderr
    assert "→ echo (desk)" in done.stderr
    shown = json.loads(cli("show", "1", "--json").stdout)["messages"]
    assert [m["role"] for m in shown] == ["user", "assistant", "tool", "assistant"]
    [call] = [c["tool_call"] for c in shown[1]["content"]["content"] if "tool_call" in c]
    assert call["tool_name"] == "echo"
    assert not call.get("extra"), call  # well-formed
    text = call["arguments"]["text"]
    assert isinstance(text, str)
    assert len(text) <= BUILTIN_MODEL_STRING_CHARS
    result = shown[2]["content"]["content"][0]["tool_call_result"]
    assert not result["error"], result["result"]
    assert result["result"] == text  # the MCP server echoed what the model wrote
    assert shown[-1]["state"] == "complete"
