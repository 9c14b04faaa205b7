"""When a launched vLLM is ready: ``GET /health`` answers 200 and ``/v1/models`` lists the served model.

Also where a local server listens: a free port to give it, and the address a client on this machine uses.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx

from engine.endpoint import Endpoint

log = logging.getLogger(__name__)
# How long a launched vLLM keeps an idle connection (its VLLM_HTTP_TIMEOUT_KEEP_ALIVE, 5 s by default): the
# chat's connection then outlives the user's reading and typing, and a turn does not open a new one
# (~1.5 ms of its first token here). The app's clients give theirs up a while before (engine.chat.generator).
SERVER_KEEP_ALIVE_S = 600


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on ``host`` (vLLM binds it a moment later)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def client_host(host: str) -> str:
    """Where a client on this machine connects for a server bound to ``host`` (URL-ready)."""
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def poll_ready(
    host: str, port: int, api_key: str, served_model: str, profile_name: str, interval_s: float = 0.2
) -> Endpoint:
    """Poll until the server on ``host:port`` is healthy and serves ``served_model``; its :class:`Endpoint`.

    Never gives up by itself: the caller bounds it (a timeout, the process's exit) and cancels it.
    """
    root = f"http://{client_host(host)}:{port}"
    headers = {"Authorization": f"Bearer {api_key}"}
    # trust_env=False: a proxy from the environment must never see a local server or its key.
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while True:
            try:
                health = await client.get(f"{root}/health")
                if health.status_code == 200:
                    models = await client.get(f"{root}/v1/models", headers=headers)
                    models.raise_for_status()
                    return endpoint_from(models.json(), root, api_key, served_model, profile_name)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.debug("not ready yet: %s", exc)
            await asyncio.sleep(interval_s)


def endpoint_from(
    models: dict[str, list[dict[str, object]]], root: str, api_key: str, served_model: str, profile_name: str
) -> Endpoint:
    """The endpoint for ``served_model`` from a ``/v1/models`` answer; ``ValueError`` if it is not listed."""
    entries = models["data"]
    entry = next((m for m in entries if m.get("id") == served_model), None)
    if entry is None:
        served = [m.get("id") for m in entries]
        raise ValueError(f"{served_model!r} is not among the served models {served}")
    return Endpoint.from_models_entry(
        root,
        entry,
        api_key=api_key,
        kind="local",
        profile_name=profile_name,
        keep_alive_s=SERVER_KEEP_ALIVE_S,
    )
