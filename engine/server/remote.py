"""Remote endpoints: an existing OpenAI-compatible server (a team's vLLM on Ray, another workstation).

:func:`check_remote` asks ``/health`` (a 5xx there means the server is up but broken; a server without it is
judged by ``/v1/models``) and ``/version`` and returns an
:class:`~engine.endpoint.Endpoint` that everything downstream treats like a local one. The key comes from the
keychain (``profile:<name>`` or ``endpoint:<name>``), never from a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from engine.endpoint import Endpoint, uses_env_proxy
from engine.errors import DeskError, Fix
from engine.secrets import SecretStore, profile_key
from engine.server.profiles import ServerProfile


class RemoteUnreachable(DeskError):
    title = "The server cannot be reached"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"No answer from {url} ({reason}).",
            fix=Fix(
                "edit_endpoint", "Check the address", "Check the URL, the network and that the server runs."
            ),
        )
        self.url = url


class RemoteKeyRefused(DeskError):
    title = "The server refused the key"

    def __init__(self, url: str) -> None:
        super().__init__(
            f"{url} refused the API key (HTTP 401).",
            fix=Fix("set_api_key", "Enter the key", "Store the server's API key for this endpoint."),
        )
        self.url = url


class RemoteModelMissing(DeskError):
    title = "The server does not serve that model"

    def __init__(self, url: str, model: str, served: list[str]) -> None:
        super().__init__(
            f"{url} does not serve “{model}” (it serves: {', '.join(served) or 'nothing'}).",
            fix=Fix(
                "choose_model", "Choose a served model", "Pick one of the served models.", {"models": served}
            ),
        )


@dataclass(frozen=True)
class RemoteInfo:
    """What a check found out, besides the endpoint."""

    endpoint: Endpoint
    version: str | None
    models: list[str]
    has_health: bool


def _root(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


async def check_remote(
    base_url: str,
    api_key: str | None = None,
    *,
    model: str = "",
    name: str = "",
    timeout_s: float = 10.0,
    client: httpx.AsyncClient | None = None,
) -> RemoteInfo:
    """Check a remote server and describe it. ``model`` empty: the first model it serves."""
    root = _root(base_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    own = client is None
    # A "remote" at a loopback address (an SSH tunnel) must not go through the environment's proxy either.
    http = client or httpx.AsyncClient(timeout=timeout_s, trust_env=uses_env_proxy(root, "remote"))
    try:
        try:
            health = await http.get(f"{root}/health")
            models_resp = await http.get(f"{root}/v1/models", headers=headers)
        except httpx.HTTPError as exc:
            raise RemoteUnreachable(root, str(exc) or type(exc).__name__) from exc
        if health.status_code >= 500:
            # vLLM answers 503 once its engine has died: the server is up but cannot answer anything.
            raise RemoteUnreachable(
                root, f"it reports itself unhealthy: /health answered HTTP {health.status_code}"
            )
        if models_resp.status_code == 401:
            raise RemoteKeyRefused(root)
        if models_resp.status_code != 200:
            raise RemoteUnreachable(root, f"/v1/models answered HTTP {models_resp.status_code}")
        try:
            entries = models_resp.json()["data"]
            served = [str(m["id"]) for m in entries]
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteUnreachable(
                root, "/v1/models did not answer like an OpenAI-compatible server"
            ) from exc
        version: str | None = None
        try:
            version_resp = await http.get(f"{root}/version")
            if version_resp.status_code == 200:
                version = str(version_resp.json().get("version"))
        except (httpx.HTTPError, ValueError, AttributeError):
            version = None  # not every OpenAI-compatible server has /version
    finally:
        if own:
            await http.aclose()
    chosen = model or (served[0] if served else "")
    if chosen not in served:
        raise RemoteModelMissing(root, chosen, served)
    entry = entries[served.index(chosen)]
    endpoint = Endpoint.from_models_entry(root, entry, api_key=api_key, kind="remote", profile_name=name)
    return RemoteInfo(endpoint, version, served, health.status_code == 200)


async def connect_profile(profile: ServerProfile, store: SecretStore | None = None) -> RemoteInfo:
    """Check a ``kind="remote"`` profile, with its key from the keychain (``profile:<name>``)."""
    key = (store or SecretStore()).get(profile_key(profile.name))
    return await check_remote(profile.base_url, key, model=profile.served_name, name=profile.name)
