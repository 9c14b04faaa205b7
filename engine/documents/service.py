"""The embedding server beside the chat model: a second :class:`~engine.server.supervisor.Supervisor` of its
own.

:class:`EmbedderService` starts the built-in embedding model (prepared on first use, like the built-in
chat model) or any local profile (a Hugging Face embedding model served with ``--runner pooling``), or
connects to a remote ``/v1/embeddings``; it hands out an :class:`~engine.documents.embedder.Embedder`
and stops the server with :meth:`shutdown`. The chat model's supervisor is untouched: the two servers
run side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.documents.builtin_embedder import (
    BUILTIN_EMBEDDER,
    builtin_embedder_path,
    builtin_embedder_state,
    embedder_profile,
    prepare_builtin_embedder,
)
from engine.documents.embedder import Embedder, endpoint_embedder
from engine.endpoint import Endpoint
from engine.events import on_loop
from engine.models.builtin import ModelState
from engine.paths import AppPaths
from engine.runtime.install import Progress
from engine.runtime.locate import VllmRuntime, locate_runtime
from engine.server.events import ServeRuntime
from engine.server.profiles import ServerProfile

if TYPE_CHECKING:
    from engine.server.supervisor import Supervisor


class EmbedderService:
    """Owns the embedding server for as long as documents are indexed or searched."""

    def __init__(
        self,
        paths: AppPaths,
        runtime: ServeRuntime | None = None,
        *,
        runtime_path: str | None = None,
        profile: ServerProfile | None = None,
        progress: Callable[[Progress], object] | None = None,
    ) -> None:
        self.paths = paths
        self._runtime = runtime
        self._runtime_path = runtime_path
        self.profile = profile
        self._progress = progress or (lambda _p: None)
        self._supervisor: Supervisor | None = None
        self.endpoint: Endpoint | None = None

    async def start(self) -> Embedder:
        """Start (or connect to) the embedding server and return an embedder on it."""
        from engine.server.supervisor import Supervisor

        profile = self.profile or embedder_profile(self.paths)
        if profile.kind == "local" and profile.model == str(builtin_embedder_path(self.paths)):
            await self._prepare_builtin()
        supervisor = Supervisor(self.paths, self._runtime, runtime_path=self._runtime_path)
        self._supervisor = supervisor
        self.endpoint = await supervisor.start(profile)
        return endpoint_embedder(self.endpoint)

    async def _prepare_builtin(self) -> None:
        if builtin_embedder_state(self.paths) is ModelState.READY:
            return
        runtime = self._runtime
        if not isinstance(runtime, VllmRuntime):
            runtime = await asyncio.to_thread(locate_runtime, self.paths, self._runtime_path)
            self._runtime = runtime
        self._progress(Progress("prepare", f"Preparing {BUILTIN_EMBEDDER.display_name}", None))
        await asyncio.to_thread(prepare_builtin_embedder, self.paths, runtime.python, on_loop(self._progress))

    async def shutdown(self) -> None:
        if self._supervisor is not None:
            await self._supervisor.shutdown()
        self._supervisor = None
        self.endpoint = None
