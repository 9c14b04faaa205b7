"""GPU detection through NVML; this machine has none, so NVML itself is the boundary we stand in for."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from engine.hardware import GpuInfo, GpuProcess, detect_gpus, gpu_status, has_nvidia_gpu, visible_gpus


class FakeNvml:
    """The handful of pynvml calls the engine makes, answering for the given (name, total, free) GPUs."""

    def __init__(
        self, gpus: list[tuple[Any, int, int]], *, fail_init: bool = False, fail_at: int = -1
    ) -> None:
        self.gpus, self.fail_init, self.fail_at = gpus, fail_init, fail_at
        self.shutdown_calls = 0

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index == self.fail_at:
            raise RuntimeError("GPU is lost")
        return index

    def nvmlDeviceGetName(self, handle: int) -> Any:
        return self.gpus[handle][0]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        _, total, free = self.gpus[handle]
        return SimpleNamespace(total=total, free=free, used=total - free)


def test_this_cpu_machine_reports_no_gpu_with_a_reason() -> None:
    # The real pynvml here: installed, but there is no NVIDIA driver library.
    status = gpu_status()
    assert status.gpus == ()
    assert status.reason
    assert detect_gpus() == []
    assert has_nvidia_gpu() is False


def test_without_the_nvml_package_there_is_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    status = gpu_status()
    assert status.gpus == ()
    assert "nvidia-ml-py" in status.reason


def test_gpus_with_memory_are_listed() -> None:
    nvml = FakeNvml([(b"NVIDIA H100", 80 * 2**30, 70 * 2**30), ("NVIDIA L4", 24 * 2**30, 1 * 2**30)])
    status = gpu_status(nvml)  # type: ignore[arg-type]
    assert status.reason == ""
    assert status.gpus == (
        GpuInfo(0, "NVIDIA H100", 80 * 2**30, 70 * 2**30),
        GpuInfo(1, "NVIDIA L4", 24 * 2**30, 1 * 2**30),
    )
    assert nvml.shutdown_calls == 1


def test_driver_without_gpus() -> None:
    status = gpu_status(FakeNvml([]))  # type: ignore[arg-type]
    assert status.gpus == ()
    assert status.reason == "NVML found no GPU"


def test_init_failure_means_no_gpu() -> None:
    status = gpu_status(FakeNvml([], fail_init=True))  # type: ignore[arg-type]
    assert status.gpus == ()
    assert "NVML Shared Library Not Found" in status.reason


def test_a_gpu_failing_mid_query_is_reported_not_raised() -> None:
    nvml = FakeNvml([("A", 1, 1), ("B", 1, 1)], fail_at=1)
    status = gpu_status(nvml)  # type: ignore[arg-type]
    assert status.gpus == ()
    assert "GPU is lost" in status.reason
    assert nvml.shutdown_calls == 1


class DetailedNvml(FakeNvml):
    """A newer driver: memory v2 (with what it reserves), compute capability, UUIDs, running processes."""

    nvmlMemory_v2 = 0x02000028

    def __init__(self, gpus: list[tuple[Any, int, int]], processes: dict[int, list[Any]]) -> None:
        super().__init__(gpus)
        self.processes = processes

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> SimpleNamespace:
        _, total, free = self.gpus[handle]
        if version is None:
            return SimpleNamespace(total=total, free=free, used=total - free)
        assert version == self.nvmlMemory_v2
        return SimpleNamespace(total=total, free=free, used=total - free, reserved=470 * 2**20)

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        return (9, 0) if handle == 0 else (7, 5)

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return f"GPU-{handle}a2b3c4d-0000-1111-2222-333344445555"

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return self.processes.get(handle, [])

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"570.133.07"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12080


def test_newer_drivers_say_more() -> None:
    other_users = 2**64 - 1  # NVML's "not available" for memory of processes we may not inspect
    nvml = DetailedNvml(
        [("NVIDIA H100", 80 * 2**30, 70 * 2**30), ("Tesla T4", 15 * 2**30, 15 * 2**30)],
        {
            0: [
                SimpleNamespace(pid=4242, usedGpuMemory=9 * 2**30),
                SimpleNamespace(pid=7, usedGpuMemory=other_users),
            ]
        },
    )
    status = gpu_status(nvml)  # type: ignore[arg-type]
    assert (status.driver_version, status.cuda_driver_version) == ("570.133.07", 12080)
    h100, t4 = status.gpus
    assert h100.compute_capability == (9, 0)
    assert t4.compute_capability == (7, 5)
    assert h100.uuid.startswith("GPU-0a2b")
    assert h100.cuda_total_bytes == 80 * 2**30 - 470 * 2**20
    assert h100.processes == (GpuProcess(4242, 9 * 2**30), GpuProcess(7, None))
    assert h100.held_by({4242}) == 9 * 2**30
    assert h100.held_by({7}) == 0


def _three() -> list[GpuInfo]:
    return [
        GpuInfo(0, "RTX 4090", 24, 24, uuid="GPU-aaaa1111"),
        GpuInfo(1, "RTX 4090", 24, 24, uuid="GPU-bbbb2222"),
        GpuInfo(2, "RTX 4090", 24, 24, uuid="GPU-cccc3333"),
    ]


def test_cuda_visible_devices_picks_and_orders() -> None:
    gpus = _three()
    assert visible_gpus(gpus, {}) == (gpus, "")
    assert visible_gpus(gpus, {"CUDA_VISIBLE_DEVICES": "2,0"})[0] == [gpus[2], gpus[0]]
    assert visible_gpus(gpus, {"CUDA_VISIBLE_DEVICES": "GPU-bbbb"})[0] == [gpus[1]]
    assert visible_gpus(gpus, {"CUDA_VISIBLE_DEVICES": ""})[0] == []
    # As in CUDA, an invalid entry hides itself and every later one.
    assert visible_gpus(gpus, {"CUDA_VISIBLE_DEVICES": "1,7,0"})[0] == [gpus[1]]
    assert visible_gpus(gpus, {"CUDA_VISIBLE_DEVICES": "-1"})[0] == []


def test_mixed_cards_without_pci_order_are_warned_about() -> None:
    mixed = [GpuInfo(0, "RTX 3060", 12, 12), GpuInfo(1, "RTX 4090", 24, 24)]
    _, warning = visible_gpus(mixed, {})
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in warning
    assert visible_gpus(mixed, {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}) == (mixed, "")


def test_gpu_memory_holders_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.hardware
    from engine.hardware import GpuInfo, GpuProcess, GpuStatus, gpu_holders

    status = GpuStatus(
        (
            GpuInfo(0, "RTX", 24 * 2**30, 2 * 2**30, processes=(GpuProcess(os.getpid(), 3 * 2**30),)),
            GpuInfo(
                1,
                "RTX",
                24 * 2**30,
                2 * 2**30,
                processes=(GpuProcess(os.getpid(), 1 * 2**30), GpuProcess(999_999_999, 5 * 2**30)),
            ),
        )
    )
    monkeypatch.setattr(engine.hardware, "gpu_status", lambda: status)  # NVML: the boundary
    holders = gpu_holders()
    assert [(h.pid, h.gpu_bytes) for h in holders] == [(999_999_999, 5 * 2**30), (os.getpid(), 4 * 2**30)]
    assert holders[0].name == "?"  # gone, or another user's: NVML still says what it holds
    assert holders[1].name == psutil.Process().name()
