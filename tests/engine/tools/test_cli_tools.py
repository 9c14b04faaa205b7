"""`vllm-desk tools list | add-mcp | edit-mcp | remove` and `vllm-desk chat --tools` (a real process against
the stand-in, with the test MCP server over stdio)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.cli import main
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.tools.config import env_key, header_key
from tests.support.cli import cli_command, run_cli
from tests.support.mcp import MCP_SERVER
from tests.support.standin.launch import REPO_ROOT, running_standin


def test_add_list_check_and_remove_an_mcp_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path / "desk")
    argv = ["--data-dir", home, "tools", "add-mcp", "desk", "--env", "PLAIN=1", "--env", "MY_TOKEN=t0k"]
    assert main([*argv, "--", sys.executable, MCP_SERVER, "stdio"]) == 0
    out = capsys.readouterr()
    assert "runs on this machine" in out.err  # the stdio warning
    assert "MY_TOKEN in the keychain" in out.out
    text = (tmp_path / "desk" / "config" / "tools.toml").read_text()
    assert "PLAIN" in text
    assert "t0k" not in text
    assert SecretStore().get(env_key("desk", "MY_TOKEN")) == "t0k"
    assert main(["--data-dir", home, "tools", "list", "--json", "--check"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed["builtin"]] == ["current_time", "search_history", "search_documents"]
    (server,) = listed["servers"]
    assert server["name"] == "desk"
    assert server["state"] == "ready"
    assert "add" in server["tools"]
    assert server["keychain"] == ["MY_TOKEN"]
    assert main(["--data-dir", home, "tools", "list"]) == 0
    assert "desk" in capsys.readouterr().out
    assert main(["--data-dir", home, "tools", "remove", "desk"]) == 0
    assert SecretStore().get(env_key("desk", "MY_TOKEN")) is None
    assert main(["--data-dir", home, "tools", "remove", "desk"]) == 1
    assert "no MCP server named “desk”" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["x"], "either a command (after --) or --url"),
        (["x", "--url", "http://127.0.0.1:9/mcp", "--", "cmd"], "either a command"),
        (["x", "--header", "A=b", "--", "cmd"], "--header is for HTTP servers"),
        (["x", "--url", "ftp://nowhere"], "http:// or https://"),
        (["x", "--env", "NOVALUE", "--", "cmd"], "is not KEY=VALUE"),
    ],
)
def test_add_mcp_refuses_what_cannot_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["--data-dir", str(tmp_path), "tools", "add-mcp", *args]) == 1
    assert says in capsys.readouterr().err
    assert not (tmp_path / "config" / "tools.toml").exists()


def _servers(home: Path) -> dict[str, dict[str, object]]:
    text = (home / "config" / "tools.toml").read_text(encoding="utf-8")
    return {s["name"]: s for s in tomllib.loads(text)["servers"]}


def test_add_mcp_refuses_a_name_in_use_and_says_how_to_change_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "desk"
    base = ["--data-dir", str(home), "tools"]
    assert (
        main([*base, "add-mcp", "desk", "--env", "MY_TOKEN=t0k", "--", sys.executable, MCP_SERVER, "stdio"])
        == 0
    )
    capsys.readouterr()
    before = (home / "config" / "tools.toml").read_text(encoding="utf-8")
    for again in (["--url", "http://127.0.0.1:9/mcp"], ["--env", "MY_TOKEN=other", "--", "python3", "x.py"]):
        assert main([*base, "add-mcp", "desk", *again]) == 1
        err = capsys.readouterr().err
        assert "error: There is already an MCP server named “desk”; it was left as it is." in err
        assert "fix: Pick another name, change it with vllm-desk tools edit-mcp desk" in err
        assert "runs on this machine" not in err  # refused before the stdio warning
        assert (home / "config" / "tools.toml").read_text(encoding="utf-8") == before
        assert SecretStore().get(env_key("desk", "MY_TOKEN")) == "t0k"


def test_edit_mcp_changes_only_what_is_given_and_a_rename_carries_over_to_the_chats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "desk"
    base = ["--data-dir", str(home), "tools"]
    argv = [*base, "add-mcp", "desk", "--env", "PLAIN=1", "--env", "MY_TOKEN=t0k"]
    assert main([*argv, "--", sys.executable, MCP_SERVER, "stdio"]) == 0
    assert main([*base, "add-mcp", "web", "--url", "http://127.0.0.1:9/mcp", "--header", "X-Key=h"]) == 0
    history = HistoryStore(AppPaths.under(home).history_db)
    try:
        uses = history.create_conversation(title="uses", settings={"tools": ["desk", "current_time"]})
    finally:
        history.close()
    capsys.readouterr()

    # One plain variable more: the command, the other variable and the secret stay; no warning.
    assert main([*base, "edit-mcp", "desk", "--env", "OTHER=2"]) == 0
    out = capsys.readouterr()
    assert (
        out.out
        == f"Changed MCP server desk: {sys.executable} {MCP_SERVER} stdio (MY_TOKEN in the keychain)\n"
    )
    assert "runs on this machine" not in out.err
    desk = _servers(home)["desk"]
    assert (desk["command"], desk["args"]) == (sys.executable, [MCP_SERVER, "stdio"])
    assert desk["env"] == {"PLAIN": "1", "OTHER": "2"}
    assert SecretStore().get(env_key("desk", "MY_TOKEN")) == "t0k"

    # Renamed, a variable dropped, another command: warned, the secret moved, the chat follows.
    rename = [*base, "edit-mcp", "desk", "--name", "notes", "--unset", "PLAIN"]
    assert main([*rename, "--", sys.executable, MCP_SERVER, "stdio", "--again"]) == 0
    out = capsys.readouterr()
    assert "runs on this machine" in out.err
    assert "Renamed “desk” to “notes”: 1 chat that used “desk” now uses “notes”." in out.out
    servers = _servers(home)
    assert list(servers) == ["notes", "web"]  # in its place
    assert servers["notes"]["env"] == {"OTHER": "2"}
    assert servers["notes"]["args"] == [MCP_SERVER, "stdio", "--again"]
    assert SecretStore().get(env_key("notes", "MY_TOKEN")) == "t0k"
    assert SecretStore().get(env_key("desk", "MY_TOKEN")) is None
    history = HistoryStore(AppPaths.under(home).history_db)
    try:
        assert history.conversation(uses.id).settings == {"tools": ["notes", "current_time"]}
    finally:
        history.close()
    # The HTTP one: a new URL, its header kept.
    assert main([*base, "edit-mcp", "web", "--url", "http://127.0.0.1:10/mcp"]) == 0
    assert _servers(home)["web"]["url"] == "http://127.0.0.1:10/mcp"
    assert SecretStore().get(header_key("web", "X-Key")) == "h"
    # The renamed server starts as it is now.
    capsys.readouterr()
    assert main([*base, "list", "--json", "--check"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)["servers"]}
    assert listed["notes"]["state"] == "ready"


@pytest.mark.parametrize(
    ("args", "says", "hint"),
    [
        (["nope", "--env", "A=1"], "no MCP server named “nope”", ""),
        (["desk"], "Nothing to change for desk.", "--name NEW, --url URL"),
        (["desk", "--name", "web"], "already an MCP server named “web”", "edit that one"),
        (["desk", "--name", "a b"], "a server name is letters", ""),
        (
            ["desk", "--url", "http://127.0.0.1:9/mcp"],
            "desk is a stdio server",
            "vllm-desk tools remove desk",
        ),
        (["desk", "--header", "A=b"], "--url and --header are for HTTP servers", ""),
        (["web", "--", "python3", "x.py"], "web is an HTTP server", "-- COMMAND"),
        (["web", "--env", "A=1"], "--env/--secret-env are for stdio servers", ""),
        (
            ["desk", "--unset", "NOPE"],
            "desk has no environment variable or header named NOPE",
            "It has: PLAIN",
        ),
        (["desk", "--env", "NOVALUE"], "is not KEY=VALUE", ""),
        (["desk", "--bogus"], "Unexpected '--bogus'", "--help lists the options"),
        # A byte that is not UTF-8 on the command line (argv gives it as a surrogate): no chat is renamed.
        (["desk", "--name", "notes", "--", "cat", "\udcff"], "an argument “\\xff” is not UTF-8", "Fix the"),
    ],
)
def test_edit_mcp_refuses_what_cannot_work_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str, hint: str
) -> None:
    base = ["--data-dir", str(tmp_path), "tools"]
    assert main([*base, "add-mcp", "desk", "--env", "PLAIN=1", "--", "python3", "server.py"]) == 0
    assert main([*base, "add-mcp", "web", "--url", "http://127.0.0.1:9/mcp"]) == 0
    before = (tmp_path / "config" / "tools.toml").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main([*base, "edit-mcp", *args]) == 1
    err = capsys.readouterr().err
    assert says in err
    assert hint in err
    assert (tmp_path / "config" / "tools.toml").read_text(encoding="utf-8") == before


def test_chat_with_an_mcp_tool_and_a_builtin_tool_saved_and_shown(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    added = run_cli(home, "tools", "add-mcp", "desk", "--", sys.executable, MCP_SERVER, "stdio")
    assert added.returncode == 0, added.stderr
    options = ("--tool-calls", "well-formed", "--tool-arguments", '{"a": 20, "b": 22}')
    with running_standin(*options) as server:
        done = run_cli(
            home,
            "chat",
            "--base-url",
            server.root_url,
            "--tools",
            "desk,current_time",
            "--tool-choice",
            "add",
            "--approve",
            "all",
            "What is 20 + 22?",
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The capital of France is Paris."
    assert '→ add (desk) {"a": 20, "b": 22}' in done.stderr
    assert "← 42" in done.stderr
    shown = run_cli(home, "show", "1", "--json")
    assert shown.returncode == 0, shown.stderr
    messages = json.loads(shown.stdout)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    (call,) = [part["tool_call"] for part in messages[1]["content"]["content"] if "tool_call" in part]
    assert call["tool_name"] == "add"
    assert call["arguments"] == {"a": 20, "b": 22}
    result = messages[2]["content"]["content"][0]["tool_call_result"]
    assert result["result"] == "42"
    assert result["origin"]["id"] == call["id"]
    assert result["error"] is False


def test_ask_refuses_without_a_terminal_and_deny_tells_the_model(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    with running_standin("--tool-calls", "well-formed") as server:
        asked = run_cli(home, "chat", "--base-url", server.root_url, "--tools", "current_time", "Time?")
        assert asked.returncode == 1
        assert "there is no terminal to ask on" in asked.stderr
        assert not (home / "data" / "history.sqlite3").exists()  # refused before anything was stored
        denied = run_cli(
            home,
            "chat",
            "--base-url",
            server.root_url,
            "--tools",
            "current_time",
            "--approve",
            "deny",
            "Time?",
        )
    assert denied.returncode == 0, denied.stderr
    assert "✗ The user denied this call of the tool current_time" in denied.stderr
    unknown = run_cli(
        home, "chat", "--base-url", "http://127.0.0.1:9", "--tools", "nope", "--approve", "all", "x"
    )
    assert unknown.returncode == 1
    assert "No built-in tool or MCP server is named nope" in unknown.stderr


def test_ask_prompts_on_a_terminal_and_runs_the_call_once_allowed(tmp_path: Path) -> None:
    import pty
    import select
    import time

    home = tmp_path / "desk"
    with running_standin("--tool-calls", "well-formed") as server:
        master, slave = pty.openpty()
        cli = cli_command(home, "chat")
        question = ["--tools", "current_time", "--tool-choice", "current_time", "What time is it?"]
        proc = subprocess.Popen(
            [*cli, "--base-url", server.root_url, *question],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=slave,
            cwd=REPO_ROOT,
            text=True,
        )
        os.close(slave)
        seen = ""
        try:
            deadline = time.monotonic() + 120
            while "[o]nce / [a]lways this tool / [d]eny" not in seen and time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 1)
                if ready:
                    seen += os.read(master, 4096).decode(errors="replace")
            assert "Run current_time (built-in) with {}?" in seen
            os.write(master, b"o\n")
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
    assert proc.returncode == 0
    assert out.strip() == "The capital of France is Paris."


def test_the_builtin_model_with_tool_choice_auto_gets_a_clear_warning(tmp_path: Path) -> None:
    from engine.models.builtin import BUILTIN_MODEL

    home = tmp_path / "desk"
    tools = ("--tools", "current_time", "--approve", "all")
    with running_standin(model=BUILTIN_MODEL.served_name) as server:
        auto = run_cli(home, "chat", "--base-url", server.root_url, *tools, "Hi")
        forced = run_cli(
            home, "chat", "--base-url", server.root_url, *tools, "--tool-choice", "required", "Hi"
        )
    assert auto.returncode == 0, auto.stderr
    assert "warning: This model's chat template does not describe tools" in auto.stderr
    assert "only when the tool choice forces it" in auto.stderr
    assert forced.returncode == 0, forced.stderr
    assert "warning:" not in forced.stderr


def test_chat_with_tools_as_json_events(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    with running_standin("--tool-calls", "well-formed", "--tool-arguments", '{"timezone": "UTC"}') as server:
        done = run_cli(
            home,
            "chat",
            "--base-url",
            server.root_url,
            "--json",
            "--tools",
            "current_time",
            "--approve",
            "all",
            "Time?",
        )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["tool_call", "tool_decision", "tool_result"]
    assert events[0]["tool"] == "current_time"
    assert events[0]["arguments"] == {"timezone": "UTC"}
    assert events[1]["decision"] == "allow_once"
    assert "time zone UTC" in events[2]["text"]
    assert events[2]["error"] is False
    assert "token" in kinds
    assert events[-1]["event"] == "finished"
    assert events[-1]["state"] == "complete"


def test_a_built_in_tools_name_is_refused_by_add_mcp_and_edit_mcp_and_nothing_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.tools.builtin import BUILTIN_NAMES

    base = ["--data-dir", str(tmp_path), "tools"]
    for name in BUILTIN_NAMES:
        assert main([*base, "add-mcp", name, "--", "python3", "server.py"]) == 1
        err = capsys.readouterr().err
        assert f"error: “{name}” is the name of a built-in tool" in err
        assert "fix: Pick another name for the MCP server (the built-in tools are current_time," in err
        assert "runs on this machine" not in err  # refused before the stdio warning
    assert not (tmp_path / "config" / "tools.toml").exists()
    assert main([*base, "add-mcp", "desk", "--", "python3", "server.py"]) == 0
    before = (tmp_path / "config" / "tools.toml").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main([*base, "edit-mcp", "desk", "--name", "search_history", "--", "python3", "other.py"]) == 1
    err = capsys.readouterr().err
    assert "error: “search_history” is the name of a built-in tool" in err
    assert "fix: Pick another name" in err
    assert "runs on this machine" not in err
    assert (tmp_path / "config" / "tools.toml").read_text(encoding="utf-8") == before


def test_a_server_with_a_built_in_tools_name_from_an_older_file_is_listed_as_not_used_and_renamed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    from contextlib import AsyncExitStack

    from engine.cli.tools import _tools_for
    from engine.tools.config import McpServer, ToolsConfig, ToolsSettings, save_tools_config

    paths = AppPaths.resolve(str(tmp_path)).ensure()
    settings = ToolsSettings(paths.config)
    # As an older version wrote it (a command that would fail loudly if it were ever run).
    clashing = McpServer(name="current_time", transport="stdio", command=sys.executable, args=["-c", "x("])
    save_tools_config(settings.path, ToolsConfig(servers=[clashing]))
    base = ["--data-dir", str(tmp_path), "tools"]
    assert main([*base, "list", "--json"]) == 0
    (server,) = json.loads(capsys.readouterr().out)["servers"]
    assert (server["name"], server["state"], server["tools"]) == ("current_time", "failed", [])
    assert "built-in tool's name, so this MCP server is not used (the built-in tool is)" in server["reason"]
    assert main([*base, "list"]) == 0
    assert "failed: “current_time” is a built-in tool's name" in capsys.readouterr().out

    async def tools_for_a_chat() -> tuple[list[str], dict[str, str]]:
        async with AsyncExitStack() as stack:
            tools, owners = await _tools_for(["current_time"], paths, stack, None)  # type: ignore[arg-type]
            return [t.name for t in tools], owners

    assert asyncio.run(tools_for_a_chat()) == (["current_time"], {})  # the built-in alone
    assert "note: “current_time” is a built-in tool's name, so this MCP server is not used" in (
        capsys.readouterr().err
    )
    # An edit keeps the name only by a rename: refused without one (with the hint), saved with one.
    assert main([*base, "edit-mcp", "current_time", "--env", "A=1"]) == 1
    err = capsys.readouterr().err
    assert "error: “current_time” is the name of a built-in tool" in err
    assert "fix: Rename it as you change it: vllm-desk tools edit-mcp current_time --name NEW" in err
    assert main([*base, "edit-mcp", "current_time", "--name", "clock"]) == 0
    assert list(_servers(tmp_path)) == ["clock"]
