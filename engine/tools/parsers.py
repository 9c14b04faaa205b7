"""Which ``--tool-call-parser`` a model needs, and whether its chat template tells it about tools.

vLLM parses a model's tool calls only when started with ``--enable-auto-tool-choice --tool-call-parser P``;
without a parser it refuses ``tool_choice`` required or named with HTTP 400. The parser depends on the model
family (the format the family was trained to write calls in). A model whose chat template never renders
``tools`` (the built-in SmolLM2) does not see the tool definitions at all: it calls a tool only when the tool
choice forces it, because vLLM then constrains the output to the tool's schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

# (pattern on the model id or architecture, parser): the first match wins, so specific families come first.
PARSER_BY_FAMILY: tuple[tuple[str, str], ...] = (
    (r"gpt-oss", "openai"),
    (r"qwen3-coder", "qwen3_coder"),
    (r"qwen2\.5|qwen3|qwq|qwen2|hermes", "hermes"),
    (r"llama-?4", "llama4_pythonic"),
    (r"llama-?3\.[123]|llama-?3\b|llama3", "llama3_json"),
    (r"mistral|mixtral|ministral|codestral|devstral", "mistral"),
    (r"granite-?3|granite", "granite"),
    (r"deepseek-?v3|deepseek-?r1", "deepseek_v3"),
    (r"internlm", "internlm"),
    (r"phi-?4-?mini", "phi4_mini_json"),
    (r"functionary", "functionary"),
    (r"jamba", "jamba"),
    (r"glm-?4", "glm45"),
    (r"kimi-?k2", "kimi_k2"),
    (r"smollm", "hermes"),
)
# The parsers a profile may name (vLLM's built-in ones we know of; the profile field stays free text).
KNOWN_PARSERS = frozenset(parser for _pattern, parser in PARSER_BY_FAMILY) | {"pythonic", "xlam", "minimax"}

_TOOLS_IN_TEMPLATE = re.compile(r"(\{%|\{\{)[^%}]*\btools\b")


def suggest_parser(model: str, architecture: str = "") -> str:
    """The parser for a model id (``Qwen/Qwen2.5-7B-Instruct``) or architecture; ``""`` when unknown."""
    name = f"{model} {architecture}".lower()
    for pattern, parser in PARSER_BY_FAMILY:
        if re.search(pattern, name):
            return parser
    return ""


def template_describes_tools(template: str) -> bool:
    """Whether a Jinja chat template renders the ``tools`` it is given (in a tag or an expression)."""
    return bool(_TOOLS_IN_TEMPLATE.search(template))


def read_chat_template(model_dir: Path) -> str:
    """The chat template of a model folder (``chat_template.jinja``, else ``tokenizer_config.json``'s; a
    list of named templates is joined), or ``""`` when it has none or the files cannot be read."""
    jinja = model_dir / "chat_template.jinja"
    try:
        if jinja.is_file():
            return jinja.read_text(encoding="utf-8")
        config = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    value = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(t.get("template", "")) for t in value if isinstance(t, dict))
    return ""


@dataclass(frozen=True)
class ToolSupport:
    """What a model can do with tools: the parser to start it with and a warning to show (``""``: none)."""

    parser: str
    template_has_tools: bool | None  # None: the template could not be read
    warning: str = ""
    # The running server's profile starts vLLM without a tool-call parser (its name; "": it has one, or it
    # is not known, as for a server started elsewhere): every tool choice but none is refused.
    profile_without_parser: str = ""


FORCED_ONLY_WARNING = (
    "This model's chat template does not describe tools, so the model never sees the tool definitions: it "
    "calls a tool only when the tool choice forces it (required or a named tool), and then vLLM shapes its "
    "output into the call. With the tool choice on auto it answers in text."
)
NO_PARSER_WARNING = (
    "No tool-call parser is known for this model family; set one in the profile (hermes, llama3_json, "
    "mistral, ...) or vLLM will refuse tool calls."
)


def choice_warning(support: ToolSupport, choice: str) -> str:
    """What to say before a turn with tools: the server has no tool-call parser (any choice but none), or
    the model will not see them and the choice does not force a call (``""``: nothing to say)."""
    if support.profile_without_parser and choice != "none":
        return _no_parser_words(support.profile_without_parser, support.parser, choice)
    return support.warning if support.template_has_tools is False and choice == "auto" else ""


def no_parser_warning(profile_name: str, model: str, choice: str) -> str:
    """What to say before a turn with tools on a server its profile starts without a tool-call parser (tool
    calling off): vLLM refuses every tool choice but none (HTTP 400), so say it first, with the parser to set
    (``""``: the choice is none, nothing to say)."""
    return _no_parser_words(profile_name, suggest_parser(model), choice) if choice != "none" else ""


def _no_parser_words(profile_name: str, parser: str, choice: str) -> str:
    what = (
        f"set its tool-call parser to {parser} (this model family's)"
        if parser
        else "set its tool-call parser to the one of the model's family (hermes, llama3_json, mistral, ...)"
    )
    refused = "tool choice auto" if choice == "auto" else f"the tool choice {choice}"
    return (
        f"The profile {profile_name!r} starts the model without a tool-call parser (tool calling is off), so "
        f"vLLM will refuse {refused}. Turn tool calling on in the profile (Preferences > Profiles): {what}, "
        "then restart the server. Or set the tool choice to none."
    )


def tool_support(model: str, *, model_dir: Path | None = None, architecture: str = "") -> ToolSupport:
    """The parser for ``model`` and whether its template (read from ``model_dir``) describes tools."""
    parser = suggest_parser(model, architecture)
    template = read_chat_template(model_dir) if model_dir is not None else ""
    has_tools: bool | None = template_describes_tools(template) if template else None
    if not parser:
        return ToolSupport("", has_tools, NO_PARSER_WARNING)
    if has_tools is False:
        return ToolSupport(parser, has_tools, FORCED_ONLY_WARNING)
    return ToolSupport(parser, has_tools)
