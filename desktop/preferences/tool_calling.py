"""Tool calling for a profile made or changed in Preferences: the model family's tool-call parser
(:func:`engine.tools.parsers.tool_support`), as ``vllm-desk serve --model`` picks it, and a line that says
what the profile does with tools (on with which parser, or off and the parser to set; the warning when
the template does not describe tools or no parser is known). The parser stays editable on the Profiles
page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from desktop.preferences.form import tr
from engine.server.profiles import ServerProfile, builtin_profile
from engine.tools.parsers import FORCED_ONLY_WARNING, NO_PARSER_WARNING, ToolSupport, tool_support

if TYPE_CHECKING:
    from engine.models.catalog import ModelEntry


def entry_support(entry: ModelEntry) -> ToolSupport:
    """What a model of the Models page's list can do with tools (its folder's template, when it has one)."""
    if entry.source == "builtin":
        return _builtin(entry.path)
    architecture = entry.info.architecture if entry.info is not None else None
    return tool_support(entry.name, model_dir=entry.path, architecture=architecture or "")


def profile_support(profile: ServerProfile) -> ToolSupport:
    """What the model a local profile names can do with tools (a folder's template is read)."""
    if profile.source == "builtin":
        return _builtin(None)
    folder = Path(profile.model).expanduser() if profile.source == "folder" else None
    return tool_support(profile.model, model_dir=folder if folder is not None and folder.is_dir() else None)


def with_family_parser(old: ServerProfile, new: ServerProfile) -> ServerProfile:
    """``new`` (``old`` edited) with the parser of its model's family, when its model changed and the parser
    was not the user's own choice (empty, or the one ``old``'s model had): tool calling follows the model."""
    if new.kind != "local" or (new.source, new.model) == (old.source, old.model):
        return new
    if new.tool_call_parser != old.tool_call_parser:
        return new  # edited together with the model: the user's choice
    if old.tool_call_parser and old.tool_call_parser != profile_support(old).parser:
        return new  # a parser the user set for this profile
    return new.model_copy(update={"tool_call_parser": profile_support(new).parser})


def profile_note(profile: ServerProfile, support: ToolSupport | None = None) -> str:
    """One line on what a local profile does with tools: on (which parser) or off (and the parser to set),
    with the model's warning; ``support``: what its model can do, when known better than from the profile."""
    support = support if support is not None else profile_support(profile)
    if profile.tool_call_parser:
        text = tr("Tool calling: on, with the {0} parser.").format(profile.tool_call_parser)
        return f"{text} {tr(FORCED_ONLY_WARNING)}" if support.template_has_tools is False else text
    text = tr("Tool calling: off, so vLLM will refuse a tool choice.")
    if support.parser:
        return (
            text
            + " "
            + tr("Set the tool-call parser to {0} (this model family's) to turn it on.").format(
                support.parser
            )
        )
    return f"{text} {tr(NO_PARSER_WARNING)}"


def _builtin(folder: Path | None) -> ToolSupport:
    # The built-in profile keeps tool calling on (a forced choice works); SmolLM2's template does not
    # describe tools, which is known even before the model is prepared.
    parser = builtin_profile().tool_call_parser
    support = tool_support("smollm2", model_dir=folder)
    if support.template_has_tools is None:
        return ToolSupport(parser, False, FORCED_ONLY_WARNING)
    return ToolSupport(parser, support.template_has_tools, support.warning)
