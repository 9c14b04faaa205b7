"""The tool-call parser by model family, and whether a chat template describes tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.tools.parsers import (
    FORCED_ONLY_WARNING,
    NO_PARSER_WARNING,
    read_chat_template,
    suggest_parser,
    template_describes_tools,
    tool_support,
)

# SmolLM2-135M-Instruct's template as the built-in model ships it: no tools anywhere.
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN_LIKE = (
    "{%- if tools %}{{- '<tools>' }}{%- for tool in tools %}{{ tool | tojson }}{%- endfor %}{%- endif %}"
)


@pytest.mark.parametrize(
    ("model", "parser"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", "hermes"),
        ("Qwen/Qwen3-0.6B", "hermes"),
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "qwen3_coder"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3_json"),
        ("meta-llama/Llama-3.2-3B-Instruct", "llama3_json"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral"),
        ("ibm-granite/granite-3.1-8b-instruct", "granite"),
        ("openai/gpt-oss-20b", "openai"),
        ("smollm2-135m-instruct", "hermes"),
        ("EleutherAI/pythia-70m", ""),
    ],
)
def test_the_parser_follows_the_model_family(model: str, parser: str) -> None:
    assert suggest_parser(model) == parser


def test_a_template_that_renders_tools_is_told_from_one_that_does_not() -> None:
    assert template_describes_tools(QWEN_LIKE)
    assert not template_describes_tools(SMOLLM2)
    assert not template_describes_tools("tools are nice: {{ messages }}")  # the word outside Jinja


def test_the_builtin_model_gets_hermes_and_a_clear_warning(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text(SMOLLM2)
    support = tool_support("smollm2-135m-instruct", model_dir=tmp_path)
    assert support.parser == "hermes"
    assert support.template_has_tools is False
    assert support.warning == FORCED_ONLY_WARNING
    assert "only when the tool choice forces it" in support.warning


def test_a_template_in_tokenizer_config_is_read_and_an_unknown_family_says_so(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": QWEN_LIKE}))
    assert read_chat_template(tmp_path) == QWEN_LIKE
    assert tool_support("Qwen/Qwen2.5-7B-Instruct", model_dir=tmp_path).warning == ""
    assert tool_support("my-own-model", model_dir=tmp_path).warning == NO_PARSER_WARNING
    assert read_chat_template(tmp_path / "missing") == ""


def test_the_warning_is_for_a_choice_that_does_not_force_a_call(tmp_path: Path) -> None:
    from engine.tools.parsers import choice_warning

    (tmp_path / "chat_template.jinja").write_text(SMOLLM2)
    support = tool_support("smollm2-135m-instruct", model_dir=tmp_path)
    assert choice_warning(support, "auto") == FORCED_ONLY_WARNING
    assert choice_warning(support, "required") == ""
    assert choice_warning(support, "lookup_code") == ""
    (tmp_path / "chat_template.jinja").write_text(QWEN_LIKE)
    assert choice_warning(tool_support("Qwen/Qwen3-0.6B", model_dir=tmp_path), "auto") == ""
