"""The context meter: how much of the model's context the conversation and the draft will use.

Counts with the server's ``/tokenize`` (vLLM has it; the chat template is applied, so the count is what the
model will see) and falls back to an estimate (~4 characters a token) where the endpoint has none. The limit
is the endpoint's ``max_model_len``, else what ``/v1/models`` reports for the model.

One ``httpx.AsyncClient`` serves every request of a meter (building one costs 40–110 ms here: the CA bundle is
loaded even for ``http://``), and all clients share one TLS context (:func:`tls_context`).
:meth:`ContextMeter.plan` (the check before a turn) asks the server only when a safe upper bound says the turn
might not fit, so a turn that clearly fits starts without a round trip.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import ssl
from dataclasses import dataclass

import httpx

from engine.endpoint import Endpoint

Messages = list[tuple[str, str]]  # (role, text), system first
CHARS_PER_TOKEN = 4.0
PER_MESSAGE_TOKENS = 4  # role markers and separators of a chat template
# Upper bound for the fast check: a byte-level BPE or byte-fallback tokenizer never makes more tokens than
# UTF-8 bytes; chat templates add role markers per message and may add a default system text
# (Llama 3's dates and Qwen's identity are ~30 tokens), so both allowances are generous.
BOUND_PER_MESSAGE_TOKENS = 16
BOUND_TEMPLATE_TOKENS = 256


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The default TLS context (CA bundle loaded once, ~70 ms); every client of the app shares it."""
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class ContextUsage:
    """``used`` tokens of ``limit`` (``None``: unknown), keeping ``reserve`` free for the reply."""

    used: int
    limit: int | None
    reserve: int = 0
    exact: bool = True

    @property
    def fits(self) -> bool:
        return self.limit is None or self.used + self.reserve <= self.limit

    @property
    def fraction(self) -> float | None:
        return None if not self.limit else min(1.0, self.used / self.limit)


@dataclass(frozen=True)
class ContextPlan:
    """Whether the turn fits, and if not how many of the oldest turns to leave out (``None``: no number
    of dropped turns helps — the draft alone is too long)."""

    usage: ContextUsage
    drop_oldest_turns: int | None = 0

    @property
    def fits(self) -> bool:
        return self.usage.fits


def drop_oldest(messages: Messages, turns: int) -> Messages:
    """``messages`` without its ``turns`` oldest turns (a user message and what answered it); the system
    prompt and the newest user message always stay."""
    system = [m for m in messages if m[0] == "system"]
    rest = [m for m in messages if m[0] != "system"]
    users = [i for i, (role, _) in enumerate(rest) if role == "user"]
    n = min(turns, max(len(users) - 1, 0))
    return system + (rest[users[n] :] if n else rest)


def estimate_tokens(messages: Messages) -> int:
    return sum(math.ceil(len(text) / CHARS_PER_TOKEN) + PER_MESSAGE_TOKENS for _, text in messages) + 2


def most_tokens(messages: Messages) -> int:
    """A count no tokenizer and chat template will exceed (see ``BOUND_TEMPLATE_TOKENS``)."""
    return (
        sum(len(text.encode("utf-8")) + BOUND_PER_MESSAGE_TOKENS for _, text in messages)
        + BOUND_TEMPLATE_TOKENS
    )


class ContextMeter:
    """Counts tokens against the model's context; remembers which servers have no ``/tokenize``.

    Its HTTP client (one with the environment's proxy, one without: see
    :attr:`~engine.endpoint.Endpoint.uses_env_proxy`) is made on first use and kept; :meth:`aclose` releases
    them (the meter stays usable).
    """

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._no_tokenize: set[str] = set()
        self._limits: dict[tuple[str, str], int | None] = {}
        # Keyed by Endpoint.uses_env_proxy: a local server's requests bypass the environment's proxy.
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def _http(self, endpoint: Endpoint) -> httpx.AsyncClient:
        trust_env = endpoint.uses_env_proxy
        client = self._clients.get(trust_env)
        if client is None or client.is_closed:
            # No idle connections kept: the meter asks rarely, and a socket left open would outlive a meter
            # that is dropped without aclose().
            client = self._clients[trust_env] = httpx.AsyncClient(
                timeout=self.timeout,
                verify=tls_context(),
                limits=httpx.Limits(max_keepalive_connections=0),
                trust_env=trust_env,
            )
        return client

    async def aclose(self) -> None:
        """Close the kept HTTP clients and their connections."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def max_model_len(self, endpoint: Endpoint) -> int | None:
        if endpoint.max_model_len:
            return endpoint.max_model_len
        key = (endpoint.base_url, endpoint.model)
        if key not in self._limits:
            limit: int | None = None
            try:
                response = await self._http(endpoint).get(
                    f"{endpoint.base_url}/models", headers=endpoint.auth_headers()
                )
                if response.status_code == 200:
                    for model in response.json().get("data", []):
                        if model.get("id") == endpoint.model and isinstance(model.get("max_model_len"), int):
                            limit = int(model["max_model_len"])
            except (httpx.HTTPError, ValueError):
                limit = None
            self._limits[key] = limit
        return self._limits[key]

    async def count(self, endpoint: Endpoint, messages: Messages) -> tuple[int, bool]:
        """(tokens, exact): with ``/tokenize`` when the server has it, else an estimate."""
        root = endpoint.root_url
        if root not in self._no_tokenize:
            body = {
                "model": endpoint.model,
                "messages": [{"role": role, "content": text} for role, text in messages],
                "add_generation_prompt": True,
            }
            # A long conversation's body (~5 ms for 2,000 messages) and the answer (every token's id: ~9 ms
            # for 120,000) are encoded and parsed on a worker thread: the caller's loop may be a GUI's.
            content = await asyncio.to_thread(json.dumps, body, ensure_ascii=False, separators=(",", ":"))
            try:
                response = await self._http(endpoint).post(
                    f"{root}/tokenize",
                    content=content,
                    headers={**endpoint.auth_headers(), "Content-Type": "application/json"},
                )
                if response.status_code == 200:
                    answer = await asyncio.to_thread(response.json)
                    return int(answer["count"]), True
                if response.status_code in (404, 405):
                    self._no_tokenize.add(root)
            except (httpx.HTTPError, ValueError, KeyError):
                pass
        return estimate_tokens(messages), False

    async def measure(
        self, endpoint: Endpoint, messages: Messages, draft: str = "", reserve: int = 0
    ) -> ContextUsage:
        """Usage of ``messages`` plus the ``draft`` as the next user message."""
        full = [*messages, ("user", draft)] if draft else list(messages)
        used, exact = await self.count(endpoint, full)
        return ContextUsage(used, await self.max_model_len(endpoint), reserve, exact)

    async def plan(
        self, endpoint: Endpoint, messages: Messages, draft: str = "", reserve: int = 0
    ) -> ContextPlan:
        """Does the turn fit? If not, the fewest oldest turns to leave out so that it does.

        Counts only when it matters: with no known limit everything fits, and when even the upper bound
        (:func:`most_tokens`) fits, the plan says so with that bound as ``used`` (``exact`` False).
        """
        limit = await self.max_model_len(endpoint)
        full = [*messages, ("user", draft)] if draft else list(messages)
        if limit is None:
            return ContextPlan(ContextUsage(estimate_tokens(full), None, reserve, exact=False), 0)
        bound = ContextUsage(most_tokens(full), limit, reserve, exact=False)
        if bound.fits:
            return ContextPlan(bound, 0)
        usage = await self.measure(endpoint, messages, draft, reserve)
        if usage.fits:
            return ContextPlan(usage, 0)
        turns = sum(1 for role, _ in messages if role == "user")
        low, high, best = 1, turns, None
        while low <= high:  # fewer turns never use more tokens: binary search
            mid = (low + high) // 2
            trial = await self.measure(
                endpoint, drop_oldest([*messages, ("user", draft)], mid)[:-1], draft, reserve
            )
            if trial.fits:
                best, high = mid, mid - 1
            else:
                low = mid + 1
        return ContextPlan(usage, best)
