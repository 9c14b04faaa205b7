"""Read a streamed chat completion line by line, as a client of a supervised server would."""

from __future__ import annotations

from typing import Any

import httpx

from engine.endpoint import Endpoint


async def stream_chat_lines(
    endpoint: Endpoint, body: dict[str, Any], into: list[str], *, http_timeout_s: float
) -> None:
    """POST ``body`` to the endpoint's ``/chat/completions`` and append each line to ``into`` as it arrives.

    Appending (rather than returning) lets a test act mid-stream, e.g. stop the server after a few chunks.
    ``http_timeout_s`` is httpx's per-operation timeout, not a deadline for the whole stream.
    """
    async with (
        httpx.AsyncClient(trust_env=False, timeout=http_timeout_s) as client,
        client.stream(
            "POST", f"{endpoint.base_url}/chat/completions", json=body, headers=endpoint.auth_headers()
        ) as resp,
    ):
        async for line in resp.aiter_lines():
            into.append(line)
