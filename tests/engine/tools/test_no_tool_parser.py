"""A server without a tool-call parser (tool calling off): said before the turn, in words, with the parser to
set; and vLLM's HTTP 400 for it (a server started elsewhere) worded the same way, not passed on raw."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from engine.settings.store import Settings, SettingsStore
from engine.tools.parsers import no_parser_warning
from tests.support.cli import run_cli
from tests.support.standin.launch import running_standin


def test_the_warning_names_the_profile_the_refused_choice_and_the_familys_parser() -> None:
    qwen = no_parser_warning("qwen", "Qwen/Qwen2.5-7B-Instruct", "required")
    assert "'qwen'" in qwen
    assert "without a tool-call parser" in qwen
    assert "refuse the tool choice required" in qwen
    assert "set its tool-call parser to hermes" in qwen
    assert "tool choice auto" in no_parser_warning("qwen", "Qwen/Qwen2.5-7B-Instruct", "auto")
    unknown = no_parser_warning("mine", "org/unknown-model", "add")
    assert "the tool choice add" in unknown
    assert "hermes, llama3_json, mistral" in unknown
    assert no_parser_warning("qwen", "Qwen/Qwen2.5-7B-Instruct", "none") == ""


@pytest.mark.parametrize("choice", ["auto", "required", "current_time"])
def test_a_server_started_without_a_parser_refuses_in_words_not_a_raw_400(
    tmp_path: Path, choice: str
) -> None:
    home = tmp_path / "desk"
    tools = ("--tools", "current_time", "--approve", "all", "--tool-choice", choice)
    with running_standin("--tool-calls", "well-formed", "--check-tool-parser") as server:
        refused = run_cli(home, "chat", "--base-url", server.root_url, *tools, "Time?")
        # The stand-in refuses as vLLM does only without the flags: with them the same turn goes through.
    with running_standin(
        "--tool-calls",
        "well-formed",
        "--check-tool-parser",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
    ) as server:
        served = run_cli(home, "chat", "--base-url", server.root_url, *tools, "Time?")
    assert refused.returncode == 1
    assert "error: The model server was started without a tool-call parser" in refused.stderr
    assert "hermes for Qwen2.5/Qwen3" in refused.stderr
    assert "refused the request (HTTP 400)" not in refused.stderr
    assert served.returncode == 0, served.stderr
    assert "current_time" in served.stderr


def test_chat_with_tools_on_a_profile_without_a_parser_is_refused_before_the_server_starts(
    tmp_path: Path,
) -> None:
    home = tmp_path / "desk"
    paths = AppPaths.resolve(str(home)).ensure()
    # A model that is nowhere here: had the server been started, the command would fail on that instead.
    profile = ServerProfile(name="qwen here", source="hf_cache", model="Qwen/Qwen2.5-0.5B-Instruct-absent")
    SettingsStore.open(paths.settings_file).update(Settings(profiles=[profile]))
    tools = ("--tools", "current_time", "--approve", "all")
    refused = run_cli(home, "chat", "--profile", "qwen here", *tools, "Time?")
    assert refused.returncode != 0
    assert "The profile 'qwen here' starts the model without a tool-call parser" in refused.stderr
    assert "set its tool-call parser to hermes" in refused.stderr
    assert "--tool-choice none" in refused.stderr
    assert "Starting qwen here" not in refused.stderr
