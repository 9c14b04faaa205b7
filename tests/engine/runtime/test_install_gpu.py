"""The GPU build's install path on a machine without a GPU: the pre-install check refuses before anything is
written, the CUDA smoke test names what a real card would say, kernels are fetched but never fatal.

The runtimes here are fake venvs (tests/support/fake_runtime.py) whose ``torch`` is a small module that
prints what PyTorch prints: real processes, real output, no CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.diagnosis.gpu import GpuDriverTooOld, GpuNotSupported
from engine.paths import AppPaths
from engine.runtime.gpu_preflight import GPU_PYTHON_MAX, GpuBuildUnsupported
from engine.runtime.install import (
    GPU_PACKAGE,
    RuntimeInstaller,
    RuntimeInstallFailed,
    cuda_smoke_test,
    download_kernels,
)
from engine.runtime.locate import VllmRuntime, runtime_at
from engine.runtime.pins import runtime_pins
from engine.runtime.python import find_base_python
from tests.engine import gpu_failure_logs as logs
from tests.support.fake_runtime import make_fake_runtime


def gpu_runtime(tmp_path: Path, torch_code: str, vllm_main: str = "sys.exit(1)") -> VllmRuntime:
    """A fake GPU venv whose ``import torch`` runs ``torch_code`` and whose vLLM command line (what the
    launcher calls: ``vllm.entrypoints.cli.main.main``) runs ``vllm_main``."""
    python = make_fake_runtime(tmp_path / "venv", dist="vllm", version="0.32.0")
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "torch").mkdir()
    (site / "torch" / "__init__.py").write_text(torch_code, encoding="utf-8")
    cli = site / "vllm" / "entrypoints" / "cli"
    cli.mkdir(parents=True)
    (site / "vllm" / "entrypoints" / "__init__.py").write_text("", encoding="utf-8")
    (cli / "__init__.py").write_text("", encoding="utf-8")
    (cli / "main.py").write_text(f"import sys\n\ndef main():\n    {vllm_main}\n", encoding="utf-8")
    runtime = runtime_at(tmp_path / "venv", "settings", tmp_path)
    assert runtime.python == python
    assert runtime.is_gpu
    return runtime


WORKING_TORCH = """
class _Version:
    cuda = "13.0"
version = _Version()
class _Cuda:
    def init(self): pass
    def get_device_name(self, i): return "NVIDIA GeForce RTX 4090"
    def get_device_capability(self, i): return (8, 9)
cuda = _Cuda()
class _T:
    def __mul__(self, k): return self
    def sum(self): return 8.0
def ones(n, device=None): return _T()
"""


def failing_torch(message: str) -> str:
    return WORKING_TORCH.replace("def init(self): pass", f"def init(self): raise RuntimeError({message!r})")


def test_smoke_test_passes_when_torch_computes_on_the_card(tmp_path: Path) -> None:
    line = cuda_smoke_test(gpu_runtime(tmp_path, WORKING_TORCH))
    assert line == "cuda 13.0 NVIDIA GeForce RTX 4090 8.9 8.0"


def test_smoke_test_names_a_driver_too_old(tmp_path: Path) -> None:
    text = logs.DRIVER_TOO_OLD.text.removeprefix("RuntimeError: ")
    with pytest.raises(GpuDriverTooOld) as caught:
        cuda_smoke_test(gpu_runtime(tmp_path, failing_torch(text)))
    assert "CUDA 12.8" in str(caught.value)


def test_smoke_test_names_a_card_without_kernels(tmp_path: Path) -> None:
    text = "CUDA error: no kernel image is available for execution on the device"
    with pytest.raises(GpuNotSupported):
        cuda_smoke_test(gpu_runtime(tmp_path, failing_torch(text)))


def test_smoke_test_quotes_anything_else(tmp_path: Path) -> None:
    with pytest.raises(RuntimeInstallFailed) as caught:
        cuda_smoke_test(gpu_runtime(tmp_path, failing_torch("CUDA error: unknown error")))
    assert "CUDA error: unknown error" in caught.value.details


def test_kernel_download_runs_vllms_command_and_is_never_fatal(tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    ok = gpu_runtime(tmp_path / "ok", WORKING_TORCH, f"open({str(ran)!r}, 'w').write(' '.join(sys.argv[1:]))")
    assert download_kernels(ok) is True
    assert ran.read_text().strip() == "download-kernels"
    offline = gpu_runtime(tmp_path / "offline", WORKING_TORCH, "sys.exit('no network')")
    assert download_kernels(offline) is False


def test_a_gpu_install_on_this_machine_is_refused_before_anything_is_written(app_paths: AppPaths) -> None:
    # This machine has no NVIDIA driver: the GPU build would "install" and never start.
    with pytest.raises(GpuBuildUnsupported) as caught:
        RuntimeInstaller(app_paths, gpu=True).install()
    assert not app_paths.runtime.exists()
    assert "No NVIDIA GPU is usable" in str(caught.value)
    assert caught.value.fix is not None
    assert "vllm-desk runtime install --cpu" in caught.value.fix.hint


def test_the_gpu_build_is_pinned() -> None:
    pins = runtime_pins("gpu")
    assert pins is not None
    lines = {
        line.split("==")[0].lower(): line.split("==")[1]
        for line in pins.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert f"vllm=={lines['vllm']}" == GPU_PACKAGE
    assert "torch" in lines
    assert "+cpu" not in lines["torch"]


def test_the_runtime_python_for_the_gpu_build_is_within_its_range() -> None:
    python = find_base_python(GPU_PYTHON_MAX)
    assert python.exists()


@pytest.mark.slow
def test_in_auto_mode_a_gpu_the_build_cannot_use_gets_the_cpu_build(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.hardware
    from tests.engine.test_hardware import DetailedNvml

    # NVML (the boundary) reports an H100 whose driver runs CUDA 12.8 only.
    nvml = DetailedNvml([("NVIDIA H100", 80 * 2**30, 79 * 2**30)], {})
    monkeypatch.setattr(engine.hardware, "_load_nvml", lambda: nvml)
    seen: list[str] = []
    installer = RuntimeInstaller(app_paths, package="vllm-desk-no-such-package-4f2a9c")
    with pytest.raises(RuntimeInstallFailed):  # pip cannot find the package: the CPU path was taken
        installer.install(lambda p: seen.append(p.message))
    said = " ".join(seen)
    assert "The GPU build cannot run here" in said
    assert "CUDA up to 12.8" in said
    assert "Installing the CPU build" in said
    assert "3.4 GB" in said  # the CPU build's words, not the GPU's
