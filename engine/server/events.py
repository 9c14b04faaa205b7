"""What the supervisor publishes and needs: its states, state changes, start progress, log lines, runtime.

Kept apart from :mod:`engine.server.supervisor` so listeners (the GUI, the CLI) can name these types without
the
process machinery; :mod:`engine.server.supervisor` re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from engine.endpoint import Endpoint
from engine.errors import DeskError
from engine.server.log_phases import Phase
from engine.server.processes import OutputLine


class ServerState(StrEnum):
    STOPPED = "stopped"
    PREPARING = "preparing"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    FAILED = "failed"


class ServeRuntime(Protocol):
    """What the supervisor needs of a runtime (``engine.runtime.install.VllmRuntime``; tests pass a
    stand-in)."""

    @property
    def is_cpu(self) -> bool: ...

    def serve_command(self, args: Sequence[str]) -> list[str]: ...

    def env(
        self, *, offline: bool = True, kv_cache_gib: float = 1, base: Mapping[str, str] | None = None
    ) -> dict[str, str]: ...


@dataclass(frozen=True)
class StateChange:
    state: ServerState
    previous: ServerState
    profile_name: str
    endpoint: Endpoint | None = None
    problem: DeskError | None = None


@dataclass(frozen=True)
class StartProgress:
    """One step of a start, with how long it has taken and (after a first start) how long it should take."""

    phase: Phase
    label: str
    elapsed_s: float
    expected_s: float | None = None
    fraction: float | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    kv_cache_gib: float | None = None
    kv_cache_tokens: int | None = None


LogLine = OutputLine  # what the GUI's log view and the CLI receive (re-exported)
