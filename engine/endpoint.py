"""The one thing every client of a server needs: where it is, what it serves, and the key."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlparse


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    host = (urlparse(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uses_env_proxy(url: str, kind: Literal["local", "remote"]) -> bool:
    """Whether an HTTP client of the server at ``url`` may use the environment's proxy (``HTTP_PROXY``, ...).

    The one place this is decided; it is httpx's ``trust_env``. A server the app launched, or any on this
    machine, is never reached through a proxy: the proxy cannot reach this machine's loopback, and it would
    see the API key. A remote server keeps honouring it (a team server may only be reachable through one).
    """
    return kind == "remote" and not is_loopback(url)


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server, local (launched by the supervisor) or remote; treated alike downstream.

    ``base_url`` ends in ``/v1`` (what OpenAI clients and Haystack's ``api_base_url`` expect);
    ``root_url`` is the server root for ``/health``, ``/metrics``, ``/tokenize``, ``/version``.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # never printed, never serialised
    max_model_len: int | None = None
    kind: Literal["local", "remote"] = "local"
    profile_name: str = ""
    # How long the server keeps an idle connection open, where the app knows it (a server it launched and
    # told: engine.server.readiness.SERVER_KEEP_ALIVE_S); None: unknown.
    keep_alive_s: float | None = None

    @property
    def root_url(self) -> str:
        url = self.base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    @property
    def uses_env_proxy(self) -> bool:
        """See :func:`uses_env_proxy`: httpx's ``trust_env`` for this endpoint's clients."""
        return uses_env_proxy(self.base_url, self.kind)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @classmethod
    def from_models_entry(
        cls,
        root: str,
        entry: Mapping[str, object],
        *,
        api_key: str | None,
        kind: Literal["local", "remote"],
        profile_name: str,
        keep_alive_s: float | None = None,
    ) -> Endpoint:
        """The endpoint for one entry of a server's ``/v1/models`` answer, served under ``root``.

        vLLM adds ``max_model_len`` to each entry; other servers leave it out (or put something else there).
        """
        max_len = entry.get("max_model_len")
        return cls(
            base_url=f"{root}/v1",
            model=str(entry["id"]),
            api_key=api_key,
            max_model_len=max_len if isinstance(max_len, int) else None,
            kind=kind,
            profile_name=profile_name,
            keep_alive_s=keep_alive_s,
        )
