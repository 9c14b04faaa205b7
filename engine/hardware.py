"""What accelerators this machine has, through NVIDIA's NVML (``nvidia-ml-py``).

NVML is optional: without the library, without a driver, or without a GPU, :func:`detect_gpus` returns an
empty list and :func:`gpu_status` says why, so a CPU-only workstation is a normal case, not an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import ModuleType

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML sees it now."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class GpuStatus:
    """The GPUs found, or the reason none could be listed (``reason`` is empty when NVML answered)."""

    gpus: tuple[GpuInfo, ...]
    reason: str = ""


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
        gpus = []
        for index in range(int(module.nvmlDeviceGetCount())):
            handle = module.nvmlDeviceGetHandleByIndex(index)
            name = module.nvmlDeviceGetName(handle)
            memory = module.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                GpuInfo(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    total_bytes=int(memory.total),
                    free_bytes=int(memory.free),
                )
            )
        return GpuStatus(tuple(gpus), "" if gpus else "NVML found no GPU")
    except Exception as exc:  # noqa: BLE001 - a GPU that fails mid-query is reported, not fatal
        log.warning("NVML query failed: %s", exc)
        return GpuStatus((), f"NVML query failed ({exc})")
    finally:
        try:
            module.nvmlShutdown()
        except Exception:  # shutting down a half-initialised NVML has nothing to report
            log.debug("nvmlShutdown failed", exc_info=True)


def detect_gpus() -> list[GpuInfo]:
    """The NVIDIA GPUs present (empty on a CPU-only machine)."""
    return list(gpu_status().gpus)


def has_nvidia_gpu() -> bool:
    return bool(gpu_status().gpus)
