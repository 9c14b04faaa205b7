"""What accelerators this machine has, through NVIDIA's NVML (``nvidia-ml-py``).

NVML is optional: without the library, without a driver, or without a GPU, :func:`detect_gpus` returns an
empty list and :func:`gpu_status` says why, so a CPU-only workstation is a normal case, not an error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import psutil

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuProcess:
    """A process with a CUDA context on a GPU and the memory it holds there (``None``: NVML cannot say)."""

    pid: int
    used_bytes: int | None


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML sees it now.

    ``index`` is NVML's (PCI bus order). ``reserved_bytes`` is what the driver keeps for itself: CUDA (and so
    vLLM) sees ``total_bytes - reserved_bytes`` as the card's total. ``processes`` hold CUDA contexts on it.
    """

    index: int
    name: str
    total_bytes: int
    free_bytes: int
    uuid: str = ""
    compute_capability: tuple[int, int] | None = None
    reserved_bytes: int = 0
    processes: tuple[GpuProcess, ...] = ()

    @property
    def cuda_total_bytes(self) -> int:
        """The total that ``torch.cuda.mem_get_info`` reports, which vLLM multiplies by its memory share."""
        return self.total_bytes - self.reserved_bytes

    def held_by(self, pids: Collection[int]) -> int:
        """Bytes that processes among ``pids`` hold on this GPU (e.g. our own running server's)."""
        return sum(p.used_bytes or 0 for p in self.processes if p.pid in pids)


@dataclass(frozen=True)
class GpuStatus:
    """The GPUs found, or the reason none could be listed (``reason`` is empty when NVML answered).

    ``driver_version`` is the driver's (``"570.133.07"``); ``cuda_driver_version`` the newest CUDA it runs,
    as NVML encodes it (12080 = CUDA 12.8).
    """

    gpus: tuple[GpuInfo, ...]
    reason: str = ""
    driver_version: str = ""
    cuda_driver_version: int | None = None


def _load_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    module: ModuleType = pynvml
    return module


def gpu_status(nvml: ModuleType | None = None) -> GpuStatus:
    """Ask NVML for every GPU's name and memory; never raises.

    ``nvml`` is the ``pynvml`` module by default; passing another module is how a machine without the
    library (``None`` from the import) is represented.
    """
    module = nvml if nvml is not None else _load_nvml()
    if module is None:
        return GpuStatus((), "NVML is not available (the nvidia-ml-py package is not installed)")
    try:
        module.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError subclasses vary by driver; all mean "no NVIDIA GPU here"
        return GpuStatus((), f"no NVIDIA driver or GPU: {exc}")
    try:
        gpus = [_gpu(module, index) for index in range(int(module.nvmlDeviceGetCount()))]
        return GpuStatus(
            tuple(gpus),
            "" if gpus else "NVML found no GPU",
            _text(_optional(module, "nvmlSystemGetDriverVersion") or ""),
            _optional(module, "nvmlSystemGetCudaDriverVersion"),
        )
    except Exception as exc:  # noqa: BLE001 - a GPU that fails mid-query is reported, not fatal
        log.warning("NVML query failed: %s", exc)
        return GpuStatus((), f"NVML query failed ({exc})")
    finally:
        try:
            module.nvmlShutdown()
        except Exception:  # shutting down a half-initialised NVML has nothing to report
            log.debug("nvmlShutdown failed", exc_info=True)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(module: ModuleType, function: str, *args: object) -> Any:
    """An NVML query older drivers or bindings may lack (or refuse): ``None`` then."""
    call = getattr(module, function, None)
    if call is None:
        return None
    try:
        return call(*args)
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and kin: the detail is simply unknown
        return None


def _gpu(module: ModuleType, index: int) -> GpuInfo:
    handle = module.nvmlDeviceGetHandleByIndex(index)
    memory = module.nvmlDeviceGetMemoryInfo(handle)
    # The v2 structure also says what the driver reserves (not visible to CUDA); v1 has no such field.
    v2 = _optional(module, "nvmlDeviceGetMemoryInfo", handle, getattr(module, "nvmlMemory_v2", None))
    reserved = int(getattr(v2, "reserved", 0) or 0) if v2 is not None else 0
    capability = _optional(module, "nvmlDeviceGetCudaComputeCapability", handle)
    running = _optional(module, "nvmlDeviceGetComputeRunningProcesses", handle) or []
    return GpuInfo(
        index=index,
        name=_text(module.nvmlDeviceGetName(handle)),
        total_bytes=int(memory.total),
        free_bytes=int(memory.free),
        uuid=_text(_optional(module, "nvmlDeviceGetUUID", handle) or ""),
        compute_capability=(int(capability[0]), int(capability[1])) if capability else None,
        reserved_bytes=reserved,
        processes=tuple(GpuProcess(int(p.pid), _used(p)) for p in running),
    )


def _used(process: Any) -> int | None:
    used = getattr(process, "usedGpuMemory", None)
    # NVML says "not available" with a huge sentinel (e.g. without permission on other users' processes).
    return int(used) if isinstance(used, int) and used < 2**62 else None


def visible_gpus(gpus: Sequence[GpuInfo], env: Mapping[str, str]) -> tuple[list[GpuInfo], str]:
    """The GPUs a CUDA program started with ``env`` uses, in CUDA's order, and a warning (or "").

    ``CUDA_VISIBLE_DEVICES`` picks and orders devices by index, UUID or UUID prefix (an empty value hides
    them all; an unknown entry hides it and every later one, as CUDA does). Indices count in CUDA's order,
    which is NVML's PCI bus order only with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; CUDA's default puts the fastest
    card first, so on a machine with different cards the mapping is only certain with that setting.
    """
    ordered = list(gpus)
    pci_order = env.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST") == "PCI_BUS_ID"
    warning = ""
    if len({g.name for g in gpus}) > 1 and not pci_order:
        warning = (
            "These GPUs differ and CUDA_DEVICE_ORDER is not PCI_BUS_ID, so CUDA may number them "
            "differently from nvidia-smi; set CUDA_DEVICE_ORDER=PCI_BUS_ID in the profile's environment."
        )
    chosen = env.get("CUDA_VISIBLE_DEVICES")
    if chosen is None:
        return ordered, warning
    picked: list[GpuInfo] = []
    for entry in (e.strip() for e in chosen.split(",")):
        match = _pick(ordered, entry)
        if match is None or match in picked:
            break
        picked.append(match)
    return picked, warning


def _pick(gpus: Sequence[GpuInfo], entry: str) -> GpuInfo | None:
    """The GPU an entry of ``CUDA_VISIBLE_DEVICES`` names: a position, or a unique ``GPU-`` UUID prefix."""
    if entry.isdigit():
        position = int(entry)
        return gpus[position] if position < len(gpus) else None
    if entry.startswith("GPU-"):
        found = [g for g in gpus if g.uuid.startswith(entry)]
        return found[0] if len(found) == 1 else None
    return None  # MIG instances and anything else: not a whole GPU this estimate knows


def detect_gpus() -> list[GpuInfo]:
    """The NVIDIA GPUs present (empty on a CPU-only machine)."""
    return list(gpu_status().gpus)


def has_nvidia_gpu() -> bool:
    return bool(gpu_status().gpus)


def gpu_memory_by_pid() -> dict[int, int]:
    """Bytes each process holds on the NVIDIA GPUs (summed over cards); empty without NVML."""
    held: dict[int, int] = {}
    for gpu in gpu_status().gpus:
        for process in gpu.processes:
            held[process.pid] = held.get(process.pid, 0) + (process.used_bytes or 0)
    return held


@dataclass(frozen=True)
class GpuHolder:
    """A process NVML lists with a CUDA context: who holds GPU memory (``user`` empty: not ours to see)."""

    pid: int
    name: str
    user: str
    gpu_bytes: int


def describe_gpu_holders(limit: int = 4) -> str:
    """ "Holding GPU memory: firefox (pid 812, 1.2 GiB), ..." for a "GPU busy" message; "" when NVML says
    nothing."""
    holders = gpu_holders()
    if not holders:
        return ""
    named = [f"{h.name} (pid {h.pid}, {h.gpu_bytes / 2**30:.1f} GiB)" for h in holders[:limit]]
    more = f" and {len(holders) - limit} more" if len(holders) > limit else ""
    return f"Holding GPU memory now: {', '.join(named)}{more}."


def gpu_holders() -> list[GpuHolder]:
    """Every process holding memory on the NVIDIA GPUs, by name, largest first (what "GPU busy" means)."""
    holders = []
    for pid, used in gpu_memory_by_pid().items():
        name, user = "?", ""
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            name = proc.name()
            user = proc.username()
        holders.append(GpuHolder(pid, name, user, used))
    return sorted(holders, key=lambda h: -h.gpu_bytes)
