"""``vllm-desk chat --tools`` prints what the model and an MCP server said (the reply, a call's tool name,
arguments and result) with the terminal's control characters escaped: a clear-screen, a retitle (OSC), a
carriage return that overwrites the line and a bidi override reach the terminal as readable escapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.standin.launch import REPO_ROOT, running_standin

SERVER = str(Path(__file__).with_name("mcp_server.py"))
HOSTILE = "wipe\x1b[2J retitle\x1b]0;title\x07 back\rover \u202eevil"
RAW = ("\x1b", "\x07", "\r", "\u202e")


def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    # Bytes, not text=True: universal newlines would turn a raw "\r" into "\n" and hide it.
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--data-dir", str(home), *args],
        capture_output=True,
        cwd=REPO_ROOT,
        env=dict(os.environ),
        input=b"",
        timeout=180,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def _assert_none_raw(*outputs: str) -> None:
    for output in outputs:
        assert [c for c in RAW if c in output] == [], output


def test_a_tools_arguments_result_and_the_reply_are_printed_escaped(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    assert _cli(home, "tools", "add-mcp", "desk", "--", sys.executable, SERVER, "stdio")[0] == 0
    # The call's raw arguments carry a bidi override as they came (valid JSON); the echo tool says it back.
    arguments = '{"text": ' + json.dumps(HOSTILE)[:-1] + '\u202e"}'
    options = ("--tool-calls", "well-formed", "--tool-arguments", arguments, "--reply", f"Done {HOSTILE}")
    with running_standin(*options) as server:
        chat = ("chat", "--base-url", server.root_url, "--tools", "desk", "--tool-choice", "echo")
        code, out, err = _cli(home, *chat, "--approve", "all", "Echo it")
        json_code, json_out, json_err = _cli(home, *chat, "--approve", "all", "--json", "Echo it")
    assert code == 0, err
    _assert_none_raw(out, err)
    assert "→ echo (desk) " in err
    assert "\\u202e" in err  # the override in the arguments, readable
    assert "← wipe\\x1b[2J retitle\\x1b]0;title\\x07 back\\x0dover \\u202eevil" in err
    assert "Done wipe\\x1b[2J" in out  # the reply
    assert "retitle\\x1b]0;title\\x07" in out
    assert json_code == 0, json_err
    _assert_none_raw(json_out, json_err)
    events = [json.loads(line) for line in json_out.splitlines() if line.strip()]
    (result,) = [e for e in events if e["event"] == "tool_result"]
    assert result["text"] == HOSTILE + "\u202e"  # the same JSON: only the way it is written changed
    (call,) = [e for e in events if e["event"] == "tool_call"]
    assert call["arguments"] == {"text": HOSTILE + "\u202e"}


def test_a_tool_name_from_the_model_is_printed_escaped(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    assert _cli(home, "tools", "add-mcp", "desk", "--", sys.executable, SERVER, "stdio")[0] == 0
    with running_standin("--tool-calls", "well-formed", "--tool-name", HOSTILE) as server:
        code, out, err = _cli(
            home, "chat", "--base-url", server.root_url, "--tools", "desk", "--approve", "all", "Go"
        )
    assert code == 0, err
    _assert_none_raw(out, err)
    shown = "wipe\\x1b[2J retitle\\x1b]0;title\\x07 back\\x0dover \\u202eevil"
    assert f"→ {shown} (" in err  # the call line
    assert f"✗ There is no tool named “{shown}”" in err  # the loop's answer quotes it
