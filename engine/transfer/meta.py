"""Human-readable summaries shared by the Markdown and HTML renderers (times, models, settings, numbers)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from engine import APP_NAME, __version__
from engine.transfer.model import ExportedConversation, ExportedMessage

ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
DECISION_NAMES = {"allow_once": "allowed once", "allow_always": "always allowed", "deny": "denied"}

# Order and wording of the numbers a reply carries; unknown keys follow in name order.
_NUMBERS = (
    ("prompt_tokens", "{:,} prompt tokens"),
    ("completion_tokens", "{:,} tokens"),
    ("tokens_per_s", "{:.1f} tok/s"),
    ("ttft_s", "TTFT {:.2f} s"),
    ("wall_s", "{:.1f} s"),
)


def exported_by() -> str:
    return f"{APP_NAME} {__version__}"


def when(moment: datetime) -> str:
    """Times are shown in UTC so that an export reads the same on every machine."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def models(conv: ExportedConversation) -> list[str]:
    """The models that answered, in order of first appearance."""
    seen: dict[str, None] = {}
    for message in conv.messages:
        if message.model:
            seen.setdefault(message.model, None)
    return list(seen)


def system_prompt(conv: ExportedConversation) -> str:
    """The system prompt the conversation was answered with: its own, else its generation settings' one (a
    preset's), the same choice the chat makes for every request."""
    if conv.system_prompt:
        return conv.system_prompt
    value = conv.settings.get("system_prompt")
    return value if isinstance(value, str) else ""


def header_rows(conv: ExportedConversation) -> list[tuple[str, str]]:
    """The metadata every format shows under the title, as (label, value) pairs."""
    rows = []
    names = models(conv)
    if names:
        rows.append(("Model" if len(names) == 1 else "Models", ", ".join(names)))
    rows.append(("Created", when(conv.created)))
    rows.append(("Updated", when(conv.updated)))
    if conv.tags:
        rows.append(("Tags", ", ".join(conv.tags)))
    if conv.folder:
        rows.append(("Folder", conv.folder))
    settings = settings_line(conv)
    if settings:
        rows.append(("Settings", settings))
    return rows


def settings_line(conv: ExportedConversation) -> str:
    parts = []
    for key in sorted(conv.settings):
        value = conv.settings[key]
        if key == "system_prompt" or value is None or value in ((), [], ""):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key} {shown}")
    return ", ".join(parts)


def numbers_line(message: ExportedMessage) -> str:
    parts: list[str] = []
    known = {key for key, _ in _NUMBERS}
    for key, pattern in _NUMBERS:
        value = message.numbers.get(key)
        if value is not None:
            parts.append(pattern.format(value))
    for key in sorted(set(message.numbers) - known):
        parts.append(f"{key} {message.numbers[key]}")
    return " · ".join(parts)


def message_heading(message: ExportedMessage) -> str:
    """``Assistant · model · stopped`` — the role, then whatever distinguishes this reply."""
    parts = [ROLE_NAMES.get(message.role, message.role.title())]
    if message.model:
        parts.append(message.model)
    if message.state != "complete":
        parts.append(message.state)
    return " · ".join(parts)


def body_markdown(message: ExportedMessage) -> str:
    """The message's body as Markdown: its text, each tool call (name and JSON arguments, or what the model
    sent when that was not a JSON object) and a tool's result.

    Tool output is untrusted: it goes in a fenced code block (never rendered as Markdown or HTML), with a
    fence longer than any run of backticks inside it."""
    result = message.tool_result
    if result is not None:
        found = result.get("origin")
        origin: dict[str, Any] = found if isinstance(found, dict) else {}
        name = _code_name(str(origin.get("tool_name", "tool")))
        label = f"Result of {name}" + (" (error)" if result.get("error") else "")
        decision = DECISION_NAMES.get(str(message.tool_meta.get("decision")), "")
        label += f" · {decision}" if decision else ""
        return f"**{label}**\n\n" + fenced(str(result.get("result", "")))
    parts = [message.text] if message.text else []
    servers = message.tool_meta.get("servers")
    for call in message.tool_calls:
        extra = call.get("extra")
        raw = extra.get("raw_arguments") if isinstance(extra, dict) else None
        if isinstance(raw, str) and raw:  # not a JSON object (the call was not run): as the model sent it
            arguments = fenced(raw)
        else:
            arguments = fenced(json.dumps(call.get("arguments", {}), ensure_ascii=False, indent=2), "json")
        server = servers.get(call.get("id")) if isinstance(servers, dict) else None
        where = f" · {_escape(server)}" if isinstance(server, str) and server else ""
        parts.append(f"**Tool call:** {_code_name(str(call.get('tool_name', '')))}{where}\n\n" + arguments)
    if message.sources:
        parts.append(sources_markdown(message.sources))
    return "\n\n".join(parts)


SOURCE_EXCERPT = 600


# A source's ``use`` (engine.documents.attribution): whether the reply used it, and how that is known.
SOURCE_USE_NOTES = {
    "cited": "cited by the reply",
    "matched": "matched by the app to the reply's wording",
    "unused": "given to the model, not used",
}


def sources_markdown(sources: Sequence[Mapping[str, Any]]) -> str:
    """A reply's sources: number, file, page/section, whether the reply used it (the used ones first), and the
    quoted passage (escaped: a file's text is quoted, never rendered as Markdown)."""
    lines = ["**Sources**", ""]
    for source in sorted(sources, key=lambda s: s.get("use") == "unused"):
        note = SOURCE_USE_NOTES.get(str(source.get("use")))
        file = str(source.get("file", ""))
        where = [_code_name(PurePath(file).name)]
        if source.get("page") is not None:
            where.append(f"page {source['page']}")
        if source.get("section"):
            where.append(_escape(str(source["section"])))
        passage = " ".join(str(source.get("passage", "")).split())
        if len(passage) > SOURCE_EXCERPT:
            passage = passage[:SOURCE_EXCERPT] + "…"
        used = f" · *{note}*" if note else ""
        lines.append(f"[{source.get('number', '?')}] {', '.join(where)} — {_escape(file)}{used}  ")
        lines.append(f"> {_escape(passage)}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", text)


def fenced(text: str, language: str = "text") -> str:
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip(chr(10))}\n{fence}"


def _code_name(name: str) -> str:
    return "`" + name.replace("`", "'") + "`"


def shared_note(count: int, with_branch: int) -> str:
    """Where an alternative branch departs: its first ``count`` messages are those of ``with_branch``."""
    if count == 1:
        return f"The first message is that of branch {with_branch}."
    return f"The first {count} messages are those of branch {with_branch}."
