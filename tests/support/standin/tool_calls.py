"""Streamed tool calls for the stand-in (``--tool-calls MODE``), shaped as vLLM streams them.

A request that offers ``tools`` (and does not say ``tool_choice: none``) is answered with tool calls while the
conversation's last message is not a tool result; after a result it answers with text, like a model that read
it. Modes:

``well-formed``  one call, its JSON arguments streamed in pieces
``malformed``    one call whose arguments are not JSON (``{"a": 1,``)
``string-args``  one call whose arguments are a JSON string (``"lookup_coder_code"``, what SmolLM2 returns)
``parallel``     two calls of the same tool in one reply (indexes 0 and 1)
``unknown``      one call of a tool that was not offered (``no_such_tool``)
``loop``         calls again after every result (a model that never stops calling tools)
``truncated``    one call cut off by the token limit (``{"a": 1``, finish_reason ``length``)
``strict-only``  the arguments (``--tool-arguments``) only when the called tool says ``strict: true``, else a
                 JSON string as ``string-args``: vLLM 0.32 with the hermes parser pins the arguments of a
                 forced call to the schema only for strict tools (measured with SmolLM2, issue 19)
"""

from __future__ import annotations

import json
import uuid
from typing import Any

MODES = ("well-formed", "malformed", "string-args", "parallel", "unknown", "loop", "truncated", "strict-only")


def finish_reason(mode: str) -> str:
    return "length" if mode == "truncated" else "tool_calls"


def wanted(mode: str | None, body: dict[str, Any]) -> bool:
    """Whether this request gets tool calls instead of text."""
    if not mode or not body.get("tools") or body.get("tool_choice") == "none":
        return False
    messages = body.get("messages") or []
    after_result = bool(messages) and messages[-1].get("role") == "tool"
    return mode == "loop" or not after_result


def _tool_name(body: dict[str, Any], chosen: str | None) -> str:
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return str(choice.get("function", {}).get("name", ""))
    if chosen:
        return chosen
    return str(body["tools"][0]["function"]["name"])


def strict(body: dict[str, Any], tool: str) -> bool:
    """Whether the request marks ``tool`` ``strict: true``."""
    return any(
        t.get("function", {}).get("name") == tool and t.get("function", {}).get("strict") is True
        for t in body.get("tools") or []
    )


def deltas(mode: str, body: dict[str, Any], name: str | None, arguments: str) -> list[dict[str, Any]]:
    """The ``delta`` of each chunk, in order (the caller adds ``finish_reason: tool_calls`` at the end)."""
    tool = "no_such_tool" if mode == "unknown" else _tool_name(body, name)
    if mode == "strict-only":
        mode = "well-formed" if strict(body, tool) else "string-args"
    raw = {
        "malformed": '{"a": 1,',
        "string-args": json.dumps("lookup_coder_code"),
        "truncated": '{"a": 1',
    }.get(mode, arguments)
    out: list[dict[str, Any]] = []
    for index in range(2 if mode == "parallel" else 1):
        head = {
            "index": index,
            "id": f"chatcmpl-tool-{uuid.uuid4().hex[:16]}",
            "type": "function",
            "function": {"name": tool, "arguments": ""},
        }
        out.append({"tool_calls": [head]})
        half = len(raw) // 2
        for piece in (raw[:half], raw[half:]):
            if piece:
                out.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return out
