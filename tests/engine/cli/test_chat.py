"""`vllm-desk chat` as a real process against the stand-in (and, marked vllm, the built-in model)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import cli_command, run_cli, saved_conversation
from tests.support.standin.launch import REPO_ROOT, running_standin


def test_chat_streams_saves_and_continues_a_conversation(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    with running_standin("--reasoning", "Thinking it over.") as server:
        first = run_cli(
            home, "chat", "--base-url", server.root_url, "--system", "Be brief.", "Capital of France?"
        )
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == "The capital of France is Paris."
        assert "Thinking it over." in first.stderr  # reasoning goes to stderr, apart from the answer
        assert "conversation 1" in first.stderr
        second = run_cli(
            home,
            "chat",
            "--base-url",
            server.base_url,
            "--conversation",
            "1",
            "--system",
            "Be terse.",
            "--json",
            "And Köln?",
        )
        assert second.returncode == 0, second.stderr
    events = [json.loads(line) for line in second.stdout.splitlines()]
    assert events[0]["event"] == "started"
    assert events[-1]["event"] == "finished"
    assert events[-1]["state"] == "complete"
    assert (
        "".join(e.get("text", "") for e in events if e["event"] == "token")
        == "The capital of France is Paris."
    )
    assert events[-1]["numbers"]["completion_tokens"] == 6
    tree = saved_conversation(home)
    assert tree.conversation.system_prompt == "Be terse."  # --system replaced it
    assert [m.role for m in tree.branch()] == ["user", "assistant", "user", "assistant"]
    assert tree.branch()[1].reasoning == "Thinking it over."


def test_api_key_from_an_environment_variable(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    with running_standin(api_key="s3cret") as server:
        ask = ("chat", "--base-url", server.base_url, "--model", "standin", "--api-key-env", "DESK_KEY", "hi")
        missing = run_cli(home, *ask)
        assert missing.returncode == 1
        assert "DESK_KEY is empty or not set" in missing.stderr
        wrong = run_cli(home, *ask, env={"DESK_KEY": "nope"})
        assert wrong.returncode == 1
        assert "refused the API key" in wrong.stderr
        right = run_cli(
            home,
            "chat",
            "--base-url",
            server.base_url,
            "--api-key-env",
            "DESK_KEY",
            "hi",
            env={"DESK_KEY": "s3cret"},
        )
        assert right.returncode == 0, right.stderr
        assert right.stdout.strip() == "The capital of France is Paris."
        assert "s3cret" not in right.stdout + right.stderr


def test_unreachable_server_exits_1_with_words_and_keeps_the_message(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    result = run_cli(home, "chat", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "Hello?")
    assert result.returncode == 1
    assert "Nothing answers at http://127.0.0.1:9/v1" in result.stderr
    shown = saved_conversation(home).branch()
    assert [(m.text, m.state) for m in shown] == [("Hello?", "complete"), ("", "failed")]


def test_ctrl_c_stops_the_reply_and_saves_it_as_stopped(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    with running_standin("--reply-tokens", "5000", "--tokens-per-second", "100") as server:
        proc = subprocess.Popen(
            cli_command(home, "chat", "--base-url", server.base_url, "go"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        assert proc.stdout is not None
        got = proc.stdout.read(30)  # the reply is streaming
        assert got.startswith("alpha beta")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in err
    reply = saved_conversation(home).branch()[-1]
    assert reply.state == "stopped"
    assert (got + out).strip().startswith(reply.text.strip()[:30])
    assert 5 <= len(reply.text.split()) < 5000


@pytest.mark.vllm
@pytest.mark.slow
def test_chat_answers_through_the_builtin_model(
    tmp_path: Path,
    vllm_paths,  # type: ignore[no-untyped-def]
    vllm_runtime,  # type: ignore[no-untyped-def]
    builtin_model_dir,  # type: ignore[no-untyped-def]
) -> None:
    # A fresh home whose runtime and models are the test cache's (links), so the history is this test's own;
    # the supervisor starts the built-in model's server for this one command and stops it afterwards.
    home = tmp_path / "desk"
    (home / "data").mkdir(parents=True)
    (home / "data" / "runtime").symlink_to(vllm_paths.runtime)
    (home / "data" / "models").symlink_to(vllm_paths.models)
    started = time.monotonic()
    result = run_cli(
        home,
        "chat",
        "--temperature",
        "0",
        "--max-tokens",
        "20",
        "What is the capital of France?",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    reply = saved_conversation(home).branch()[-1]
    assert reply.state == "complete"
    assert "Paris" in reply.text
    assert reply.numbers.completion_tokens is not None
    print(
        f"\nvllm-desk chat through the built-in model: {time.monotonic() - started:.1f} s including the start"
    )
