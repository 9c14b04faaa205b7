"""The preferences panel's "Test connection": ask a server for ``/health``, ``/version`` and its models."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from engine.endpoint import Endpoint
from engine.errors import DeskError, Fix


class EndpointUnreachable(DeskError):
    title = "The server does not answer"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Nothing answered at {url} ({reason}).",
            fix=Fix(
                "edit_endpoint", "Edit the address", hint="Check the URL, the port and that the server runs."
            ),
        )


class EndpointKeyRejected(DeskError):
    title = "The server refused the key"

    def __init__(self, url: str) -> None:
        super().__init__(
            f"{url} answered 401 Unauthorized: the API key is missing or wrong.",
            fix=Fix(
                "edit_endpoint", "Enter the key", hint="Use the key the server was started with (--api-key)."
            ),
        )


@dataclass(frozen=True)
class ModelServed:
    id: str
    max_model_len: int | None = None


@dataclass(frozen=True)
class ConnectionReport:
    """What the server said; ``healthy`` is ``/health`` answering 200."""

    root_url: str
    healthy: bool
    version: str | None = None
    models: tuple[ModelServed, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        health = "healthy" if self.healthy else "not healthy"
        version = f"vLLM {self.version}" if self.version else "version unknown"
        names = ", ".join(
            f"{m.id} (context {m.max_model_len})" if m.max_model_len else m.id for m in self.models
        )
        return f"{health}, {version}; models: {names or 'none'}"


def _root(url: str) -> str:
    return Endpoint(base_url=url.strip(), model="").root_url


async def check_connection(url: str, api_key: str | None = None, *, wait_s: float = 10.0) -> ConnectionReport:
    """GET ``/health``, ``/version`` and ``/v1/models``; raise :class:`EndpointUnreachable` or
    :class:`EndpointKeyRejected` (``/health`` and ``/version`` need no key on vLLM, ``/v1`` does)."""
    root = _root(url)
    if not root.startswith(("http://", "https://")):
        raise EndpointUnreachable(url, "the address must start with http:// or https://")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(timeout=wait_s, headers=headers) as client:
        try:
            health = await client.get(f"{root}/health")
            version_reply = await client.get(f"{root}/version")
            models_reply = await client.get(f"{root}/v1/models")
        except httpx.HTTPError as exc:
            raise EndpointUnreachable(root, str(exc) or type(exc).__name__) from exc
    if models_reply.status_code == 401:
        raise EndpointKeyRejected(root)
    if models_reply.status_code != 200:
        raise EndpointUnreachable(root, f"/v1/models answered HTTP {models_reply.status_code}")
    try:
        version = str(version_reply.json().get("version")) if version_reply.status_code == 200 else None
        models = tuple(
            ModelServed(str(m.get("id")), m.get("max_model_len"))
            for m in models_reply.json().get("data", [])
            if isinstance(m, dict)
        )
    except (ValueError, AttributeError) as exc:
        raise EndpointUnreachable(root, "it answered, but not like an OpenAI-compatible server") from exc
    return ConnectionReport(root, health.status_code == 200, version, models)
