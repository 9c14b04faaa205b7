"""Every tool call is approved by the user before it runs: allow once, always allow this tool, or deny.

Nothing is approved by default: an :class:`ApprovalPolicy` without a way to ask denies every call. "Always
allow" is remembered per tool (server and name) for the policy's lifetime — one conversation's session in
the window, one command in the CLI. A denied call is not run; the model is told so in the tool's result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Decision = Literal["allow_once", "allow_always", "deny"]
DECISIONS: tuple[Decision, ...] = ("allow_once", "allow_always", "deny")


@dataclass(frozen=True)
class CallRequest:
    """What the user is asked about: which tool of which server, with which arguments."""

    call_id: str
    tool: str
    server: str  # "built-in" or the MCP server's name
    arguments: Mapping[str, Any] = field(default_factory=dict)
    raw_arguments: str = ""  # what the model sent when it was not a JSON object (the call is not run)

    @property
    def key(self) -> str:
        return f"{self.server}/{self.tool}"


Ask = Callable[[CallRequest], Awaitable[Decision]]


def denied_result(request: CallRequest) -> str:
    """The tool result the model gets for a denied call."""
    return (
        f"The user denied this call of the tool {request.tool}; it was not run. Do not call it again unless "
        "the user asks you to; answer with what you have."
    )


class ApprovalPolicy:
    """Decides each call: tools the user always allows run at once, every other call is asked about."""

    def __init__(self, ask: Ask | None = None, *, always: set[str] | None = None) -> None:
        self._ask = ask
        self.always: set[str] = set(always or ())

    @classmethod
    def allow_all(cls) -> ApprovalPolicy:
        """Every call runs (the CLI's ``--approve all``: the user said so on the command line)."""

        async def yes(_request: CallRequest) -> Decision:
            return "allow_once"

        return cls(yes)

    @classmethod
    def deny_all(cls) -> ApprovalPolicy:
        return cls(None)

    async def decide(self, request: CallRequest) -> Decision:
        if request.key in self.always:
            return "allow_always"
        if self._ask is None:
            return "deny"
        decision = await self._ask(request)
        if decision not in DECISIONS:
            return "deny"
        if decision == "allow_always":
            self.always.add(request.key)
        return decision
