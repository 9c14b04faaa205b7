"""A streaming reply's progress and the numbers shown under it (time to first token, tokens/s, usage)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from engine.history.records import ReplyNumbers


@dataclass
class ReplyProgress:
    """A reply as it streams in: its pieces, when the request left and the first token came, usage."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    dirty: bool = False
    sent_at: float | None = None  # the request left (after lazy imports and client setup)
    first_token_at: float | None = None
    last_content_at: float | None = None  # the last piece of text (keep-alives and empty chunks do not count)
    chunks: int = 0  # stream chunks received, empty ones included
    finish_reason: str = ""
    model: str = ""
    usage: dict[str, Any] | None = None

    def joined(self) -> tuple[str, str]:
        return "".join(self.text), "".join(self.reasoning)


def reply_numbers(progress: ReplyProgress, started: float) -> ReplyNumbers:
    """The reply's numbers so far: tokens (from usage when the server sent it), time to first token, rate."""
    ended = time.monotonic()
    started = progress.sent_at or started
    usage = progress.usage or {}
    completion = usage.get("completion_tokens")
    ttft = None if progress.first_token_at is None else progress.first_token_at - started
    rate = None
    if progress.first_token_at is not None:
        generating = ended - progress.first_token_at
        count = completion if isinstance(completion, int) else len(progress.text) + len(progress.reasoning)
        rate = count / generating if generating > 0 and count > 1 else None
    return ReplyNumbers(
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=completion,
        ttft_s=ttft,
        tokens_per_s=rate,
        wall_s=ended - started,
    )
