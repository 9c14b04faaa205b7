"""Before a server of ours starts on a GPU: does its memory share fit beside what the card holds now?

vLLM (0.32, ``vllm/v1/worker/gpu_worker.py``) checks, once its worker holds a CUDA context, that the free
memory is at least ``ceil(total × gpu_memory_utilization)``, and stops otherwise: after a minute of imports.
The chat model and the documents' embedder are two servers of ours (each with its own supervisor) that share
the first GPU. This module does vLLM's check before either is spawned, from NVML's reading now, and counts a
server of ours that is still starting at its whole share (NVML does not show yet what it is about to take).

Every GPU launch of :class:`~engine.server.supervisor.Supervisor` goes through :func:`reserve`, and its
:class:`Reservation` is released when that server ends: the chat model started beside a running (or
starting) embedder and the embedder started beside the chat model are refused alike, with
:class:`SharesDoNotFit`, before anything is spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil

from engine.diagnosis.problems import ServerProblem
from engine.errors import Fix
from engine.hardware import GpuInfo, detect_gpus, visible_gpus
from engine.server.fit import (
    CONTEXT_BYTES,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    MIN_SHARE,
    beside_bytes,
    is_pooling,
    launch_environment,
)
from engine.server.profiles import ServerProfile

GIB = 2**30


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:  # gone meanwhile, or not ours to ask
        return None


@dataclass(eq=False)
class Reservation:
    """A server of ours on GPUs ``gpus`` (NVML indices) with memory share ``share``; ``sid`` is its session
    once spawned (whose processes' memory NVML already shows)."""

    profile: str
    embeddings: bool
    share: float
    gpus: tuple[int, ...]
    sid: int | None = None
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        """The server ended (or never started): its share is free again. Releasing twice is harmless."""
        with _LOCK:
            if not self._released:
                self._released = True
                _RESERVED.remove(self)

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is one of this server's processes."""
        return self.sid is not None and _session_of(pid) == self.sid

    def still_to_take(self, gpu: GpuInfo) -> int:
        """What this server will take of ``gpu`` beyond what NVML shows it holding now: its budget and its
        CUDA context, less what its processes hold already."""
        held = sum(p.used_bytes or 0 for p in gpu.processes if self.owns(p.pid))
        return max(0, beside_bytes(gpu, self.share) - held)

    def words(self) -> str:
        role = "the embedding model for documents" if self.embeddings else "the chat model"
        return f"{role} “{self.profile}” (gpu_memory_utilization {self.share:g})"


_LOCK = threading.Lock()
_RESERVED: list[Reservation] = []


def reserved() -> list[Reservation]:
    """The servers of this process that hold (or are about to take) a GPU share."""
    with _LOCK:
        return list(_RESERVED)


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def _other_holders(gpu: GpuInfo, ours: Sequence[Reservation], limit: int = 3) -> str:
    """ "firefox (pid 812, 1.2 GiB), ..." for the processes holding memory on ``gpu`` that are none of the
    servers in ``ours``; "" when NVML names none."""
    found = []
    for process in gpu.processes:
        if not process.used_bytes or any(r.owns(process.pid) for r in ours):
            continue
        name = "?"
        with contextlib.suppress(psutil.Error):
            name = psutil.Process(process.pid).name()
        found.append((process.used_bytes, f"{name} (pid {process.pid}, {_gib(process.used_bytes)})"))
    found.sort(key=lambda f: -f[0])
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return ", ".join(text for _, text in found[:limit]) + more


class SharesDoNotFit(ServerProblem):
    """A server's memory share does not fit in what the GPU has free (beside our other server, if one runs).

    ``fix_profile``: the server profile the fix changes (the chat model's, also when the embedder was
    refused: the embedder's share is already sized to it); "" when the fix changes no profile.
    """

    title = "Not enough free GPU memory for this server"

    def __init__(
        self,
        profile: ServerProfile,
        gpu: GpuInfo,
        share: float,
        room: int,
        beside: Sequence[Reservation],
        holders: str,
    ) -> None:
        embeddings = is_pooling(profile)
        total = gpu.cuda_total_bytes
        requested = math.ceil(total * share)
        what = "The embedding model for documents" if embeddings else "The chat model"
        message = (
            f"{what} “{profile.name}” asks vLLM for {share:g} of GPU {gpu.index} ({gpu.name}): "
            f"{_gib(requested)}, but only {_gib(max(0, room))} are free for it (after its CUDA context)"
        )
        if beside:
            taken = "; ".join(f"{r.words()}, {_gib(beside_bytes(gpu, r.share))}" for r in beside)
            message += f", beside {taken}"
            self.title = "The chat model and the embedding model do not fit on the GPU together"
        message += "."
        if holders:
            message += f" Also holding memory on it: {holders}."
        message += " Nothing was started."
        chat = next((r for r in beside if not r.embeddings), None)
        self.fix_profile = ""
        if not embeddings:  # the chat model itself: a share that fits in the room left
            lowered = math.floor(room / total * 100) / 100
            target = profile.name
        elif chat is not None:  # the embedder beside our chat model: the chat model gives up what is missing
            lowered = math.floor((chat.share * total - (requested - room)) / total * 100) / 100
            target = chat.profile
        else:
            lowered, target = 0.0, ""
        if lowered >= MIN_SHARE:
            self.fix_profile = target
            fix = Fix(
                "lower_gpu_memory_utilization",
                f"Use {lowered:.0%} of the GPU for “{target}”",
                f"Set gpu_memory_utilization {lowered:g} in the server profile “{target}” (Preferences > "
                "Server profiles) and start it again, or close what else holds the GPU's memory.",
                {"gpu_memory_utilization": lowered},
            )
        elif embeddings or any(r.embeddings for r in beside):
            fix = Fix(
                "choose_embedder",
                "Choose the embedding model",
                "Close what holds the GPU's memory, or use a remote embedding server (Preferences > "
                "Documents; on the command line: --embedder-url URL).",
            )
        else:
            fix = Fix("retry", "Try again", "Close the programs holding the GPU's memory, then start again.")
        super().__init__(message, fix=fix)
        self.profile, self.gpu, self.share, self.room = profile.name, gpu, share, room
        self.beside = list(beside)


def shares_problem(
    profile: ServerProfile, gpus: Sequence[GpuInfo], beside: Sequence[Reservation] = ()
) -> SharesDoNotFit | None:
    """:class:`SharesDoNotFit` when ``profile``'s share does not fit in what its GPUs have free now (NVML's
    ``gpus``) less what the servers ``beside`` will still take; ``None`` when it fits (or there is no GPU)."""
    visible, _ = visible_gpus(gpus, launch_environment(profile))
    share = profile.gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION
    for gpu in visible[: max(1, profile.tensor_parallel_size)]:  # vLLM takes the first visible devices
        near = [r for r in beside if gpu.index in r.gpus]
        room = gpu.free_bytes - CONTEXT_BYTES - sum(r.still_to_take(gpu) for r in near)
        if room < math.ceil(gpu.cuda_total_bytes * share):
            return SharesDoNotFit(profile, gpu, share, room, near, _other_holders(gpu, near))
    return None


def reserve(profile: ServerProfile, gpus: Sequence[GpuInfo]) -> Reservation | None:
    """Check ``profile``'s share against ``gpus`` (NVML's reading) and this process's other servers, and
    hold it until :meth:`Reservation.release`; raises :class:`SharesDoNotFit`. ``None``: no GPU to share.

    The check and the reservation are one step, so two starts at once cannot both take the same room.
    """
    visible, _ = visible_gpus(gpus, launch_environment(profile))
    used = visible[: max(1, profile.tensor_parallel_size)]
    if not used:
        return None
    with _LOCK:
        problem = shares_problem(profile, gpus, _RESERVED)
        if problem is not None:
            raise problem
        share = profile.gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION
        reservation = Reservation(profile.name, is_pooling(profile), share, tuple(g.index for g in used))
        _RESERVED.append(reservation)
        return reservation


async def reserve_async(profile: ServerProfile) -> Reservation | None:
    """:func:`reserve` against NVML's reading now (read in a worker thread)."""
    gpus = await asyncio.to_thread(detect_gpus)
    return reserve(profile, gpus)
