"""`vllm-desk chat --mode chat|completion` as a real process against the stand-in, which refuses chat requests
when started with ``--no-chat-template`` (like vLLM for a base model) and serves /v1/completions."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli, saved_conversation
from tests.support.standin.launch import running_standin


def test_completion_mode_is_used_and_kept_in_the_conversation(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    with running_standin("--no-chat-template", "--reply", "continued text") as server:
        refused = run_cli(home, "chat", "--base-url", server.base_url, "Once upon a time")
        assert refused.returncode == 1  # chat mode: the server has no template for it
        assert "chat template" in refused.stderr
        done = run_cli(
            home, "chat", "--base-url", server.base_url, "--mode", "completion", "Once upon a time"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "continued text"
        # The conversation remembers the mode: continuing it without --mode completes again.
        again = run_cli(home, "chat", "--base-url", server.base_url, "--conversation", "2", "And then")
        assert again.returncode == 0, again.stderr
        # --mode chat on a completion conversation switches it back (and this server refuses chat).
        back = run_cli(
            home, "chat", "--base-url", server.base_url, "--conversation", "2", "--mode", "chat", "End"
        )
        assert back.returncode == 1
    first, second = saved_conversation(home, 1), saved_conversation(home, 2)
    assert first.conversation.settings.get("mode", "chat") == "chat"
    assert second.conversation.settings.get("mode", "chat") == "chat"  # switched back by the last command
    states = [(m.role, m.state) for m in second.branch()]
    assert states == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "complete"),
        ("user", "complete"),
        ("assistant", "failed"),
    ]


def test_completion_mode_is_stored_for_a_new_conversation(tmp_path: Path) -> None:
    home = tmp_path / "desk"
    with running_standin("--no-chat-template", "--reply", "more text") as server:
        done = run_cli(home, "chat", "--base-url", server.base_url, "--mode", "completion", "--json", "Begin")
        assert done.returncode == 0, done.stderr
    assert saved_conversation(home).conversation.settings["mode"] == "completion"


def test_an_unknown_mode_is_refused_in_words(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "desk", "chat", "--base-url", "http://127.0.0.1:9/v1", "--mode", "poem", "hi")
    assert result.returncode == 2
    assert "invalid choice: 'poem'" in result.stderr
    assert "chat" in result.stderr
    assert "completion" in result.stderr
