"""A conversation as Markdown: readable anywhere, the shown branch by default, every branch on request."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from engine.transfer import meta
from engine.transfer.model import ExportedConversation, ExportedMessage

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$", re.MULTILINE)


def render_markdown(
    conv: ExportedConversation, *, all_branches: bool = False, exported_at: datetime | None = None
) -> str:
    """Title, a metadata header, then the messages with roles as headings; code blocks are kept verbatim."""
    lines = [f"# {_one_line(conv.title) or 'Untitled conversation'}", ""]
    lines += [f"- **{label}:** {value}" for label, value in _header(conv, exported_at)]
    lines.append("")
    system = meta.system_prompt(conv)
    if system:
        lines += ["## System prompt", "", _closed(system), ""]
    if all_branches:
        forks = conv.forks()
        for number, (branch, shared, with_branch) in enumerate(forks, 1):
            shown = " (shown)" if number == 1 else ""
            lines += ["---", "", f"## Branch {number} of {len(forks)}{shown}", ""]
            if shared:
                lines += [f"*{meta.shared_note(shared, with_branch)}*", ""]
            for message in branch[shared:]:
                lines += _message(message, level=3)
    else:
        lines += ["---", ""]
        for message in conv.shown_branch():
            lines += _message(message, level=2)
    return "\n".join(lines).rstrip("\n") + "\n"


def _header(conv: ExportedConversation, exported_at: datetime | None) -> list[tuple[str, str]]:
    rows = meta.header_rows(conv)
    rows.append(("Exported", f"{meta.when(exported_at or datetime.now(UTC))} by {meta.exported_by()}"))
    return rows


def _message(message: ExportedMessage, level: int) -> list[str]:
    out = [f"{'#' * level} {meta.message_heading(message)}", ""]
    if message.reasoning:
        # A blank line after <summary> lets Markdown renderers format the reasoning inside the block.
        out += [
            "<details>",
            "<summary>Reasoning</summary>",
            "",
            _closed(message.reasoning).replace("</details>", "&lt;/details>"),
            "",
            "</details>",
            "",
        ]
    out += [_closed(meta.body_markdown(message)), ""]
    numbers = meta.numbers_line(message)
    if numbers:
        out += [f"*{numbers}*", ""]
    return out


def _closed(text: str) -> str:
    """The text as written, plus a closing fence if a code block was left open (a stopped reply)."""
    text = text.rstrip("\n")
    opener: str | None = None
    for match in _FENCE.finditer(text):
        fence = match.group(1)
        if opener is None:
            opener = fence
        elif fence[0] == opener[0] and len(fence) >= len(opener) and not match.group(2).strip():
            opener = None
    return text + "\n" + opener if opener else text


def _one_line(text: str) -> str:
    return " ".join(text.split())
