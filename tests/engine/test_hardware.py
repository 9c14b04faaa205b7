"""GPU detection through NVML; this machine has none, so NVML itself is the boundary we stand in for."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest

from engine.hardware import GpuInfo, detect_gpus, gpu_status, has_nvidia_gpu


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
