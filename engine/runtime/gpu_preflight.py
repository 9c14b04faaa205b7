"""Before installing vLLM's GPU build: will it run on this machine? Checked without installing anything.

vLLM 0.32's PyPI wheel and the torch it pins are built for CUDA 13: the NVIDIA driver must offer CUDA 13.0
(driver 580 or newer) and every card must have compute capability 7.5 or more (CUDA 13 dropped Maxwell,
Pascal and Volta). Triton, which vLLM uses on the GPU, compiles a small C module at the first start, so a C
compiler and Python's headers must be present. The Python the runtime is made from must be one vLLM's GPU
wheels exist for, and the disk must hold about 11 GB. An install that would fail any of these is refused
with the reason and the CPU build offered, instead of "succeeding" and failing at the first start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DeskError, Fix
from engine.hardware import GpuStatus

# NVML's encoding of the newest CUDA a driver runs: 13000 = CUDA 13.0, which driver 580 brought.
MIN_CUDA_DRIVER = 13000
MIN_DRIVER_BRANCH = 580
MIN_CAPABILITY = (7, 5)
# The Pythons vLLM 0.32's GPU wheel and its pinned dependencies install on (see resources/runtime-pins).
GPU_PYTHON_MIN = (3, 11)
GPU_PYTHON_MAX = (3, 13)
# vLLM + CUDA 13 torch + the NVIDIA libraries take about 11 GB installed; pip needs room for its downloads.
GPU_INSTALL_BYTES = 11 * 10**9
GPU_NEEDED_BYTES = 16 * 2**30
CPU_INSTALL_COMMAND = "vllm-desk runtime install --cpu"
BUILD_TOOLS_HINT = (
    "Install a C compiler and Python's headers (Fedora: sudo dnf install gcc python3-devel). "
    "Run: sudo apt install build-essential python3-dev"
)
# Run by the Python the runtime will be made from: its version and where its headers are.
_PYTHON_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'version': list(sys.version_info[:3]), "
    "'include': sysconfig.get_paths()['include']}))"
)


@dataclass(frozen=True)
class Check:
    """One condition: ``ok``, what was found, and whether failing it rules out the GPU build
    (``blocking``) or only needs something installed (the compiler)."""

    name: str
    ok: bool
    message: str
    blocking: bool = True


@dataclass(frozen=True)
class PreflightReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def problem(self) -> GpuBuildUnsupported | None:
        return GpuBuildUnsupported(self) if not self.ok else None


class GpuBuildUnsupported(DeskError):
    title = "vLLM's GPU build cannot run on this machine yet"

    def __init__(self, report: PreflightReport) -> None:
        failed = report.failed
        reasons = " ".join(c.message for c in failed)
        if any(c.blocking for c in failed):
            fix = Fix(
                "reinstall",
                "Use the CPU build",
                f"Fix the above, or install the CPU build (slower, no GPU). Run: {CPU_INSTALL_COMMAND}",
            )
        else:
            fix = Fix("reinstall", "Copy the install command", BUILD_TOOLS_HINT)
        super().__init__(
            f"{reasons}", fix=fix, details="\n".join(f"{c.name}: {c.message}" for c in report.checks)
        )
        self.report = report


def _version_text(version: Sequence[int]) -> str:
    return ".".join(str(v) for v in version)


def check_driver(status: GpuStatus) -> Check:
    found = status.cuda_driver_version
    if not status.gpus:
        return Check("driver", False, f"No NVIDIA GPU is usable ({status.reason or 'NVML found none'}).")
    if found is None:
        return Check("driver", False, "The NVIDIA driver does not say which CUDA version it runs.")
    cuda = f"{found // 1000}.{found % 1000 // 10}"
    driver = f" (driver {status.driver_version})" if status.driver_version else ""
    if found < MIN_CUDA_DRIVER:
        return Check(
            "driver",
            False,
            f"The NVIDIA driver{driver} runs CUDA up to {cuda}; vLLM's GPU build needs CUDA 13.0: update the "
            f"driver to {MIN_DRIVER_BRANCH} or newer.",
        )
    return Check("driver", True, f"The NVIDIA driver{driver} runs CUDA {cuda}.")


def check_capability(status: GpuStatus) -> Check:
    old = [
        f"{g.name} ({_version_text(g.compute_capability)})"
        for g in status.gpus
        if g.compute_capability is not None and g.compute_capability < MIN_CAPABILITY
    ]
    if old:
        return Check(
            "gpu",
            False,
            f"{', '.join(old)}: compute capability below 7.5, which CUDA 13 builds no longer support.",
        )
    known = [g for g in status.gpus if g.compute_capability is not None]
    found = ", ".join(f"{g.name} ({_version_text(g.compute_capability or ())})" for g in known)
    return Check("gpu", True, f"GPUs: {found or 'compute capability not reported'}.")


def probe_python(
    python: Path, run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
) -> dict[str, object]:
    """The version and include folder of ``python`` (empty when it does not answer)."""
    try:
        done = run(
            [str(python), "-c", _PYTHON_PROBE], capture_output=True, text=True, timeout=30, check=False
        )
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return {}
    return answer if isinstance(answer, dict) else {}


def check_python(python: Path, probe: Mapping[str, object]) -> Check:
    version = probe.get("version")
    if not isinstance(version, list) or len(version) < 2:
        return Check("python", False, f"{python} does not run.")
    low, high = _version_text(GPU_PYTHON_MIN), _version_text(GPU_PYTHON_MAX)
    if not GPU_PYTHON_MIN <= (int(version[0]), int(version[1])) <= GPU_PYTHON_MAX:
        return Check(
            "python",
            False,
            f"The runtime would be made from Python {_version_text(version)} ({python}); vLLM's GPU build "
            f"installs on Python {low} to {high}: install one of those (e.g. python3.12 and "
            "python3.12-venv).",
        )
    return Check("python", True, f"Python {_version_text(version)} ({python}).")


def find_compiler(env: Mapping[str, str], which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The C compiler Triton would use: ``$CC``, else gcc, else clang (triton/runtime/build.py's order)."""
    if env.get("CC"):
        return which(env["CC"]) or None
    return which("gcc") or which("clang")


def check_compiler(env: Mapping[str, str], which: Callable[[str], str | None] = shutil.which) -> Check:
    found = find_compiler(env, which)
    if found is None:
        return Check(
            "compiler",
            False,
            "No C compiler (gcc or clang) was found; Triton needs one at vLLM's first start on the GPU.",
            blocking=False,
        )
    return Check("compiler", True, f"C compiler: {found}.", blocking=False)


def check_headers(probe: Mapping[str, object]) -> Check:
    include = probe.get("include")
    header = Path(str(include)) / "Python.h" if include else None
    if header is None or not header.is_file():
        return Check(
            "headers",
            False,
            f"Python's development headers (Python.h, in {include or 'its include folder'}) are missing; "
            "Triton needs them at vLLM's first start on the GPU.",
            blocking=False,
        )
    return Check("headers", True, f"Python headers: {header}.", blocking=False)


def check_disk(folder: Path, free_bytes: int | None = None) -> Check:
    free = shutil.disk_usage(folder).free if free_bytes is None else free_bytes
    need = GPU_NEEDED_BYTES / 2**30
    if free < GPU_NEEDED_BYTES:
        return Check(
            "disk",
            False,
            f"{folder} has {free / 2**30:.1f} GiB free; the GPU build needs about {need:.0f} GiB while "
            "installing.",
        )
    return Check("disk", True, f"{free / 2**30:.0f} GiB free in {folder}.")


def gpu_preflight(
    status: GpuStatus,
    base_python: Path,
    data_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    free_bytes: int | None = None,
) -> PreflightReport:
    """Every check, for a GPU install from ``base_python`` into ``data_dir`` (nothing is installed)."""
    probe = probe_python(base_python, run)
    existing = data_dir if data_dir.exists() else next(p for p in data_dir.parents if p.exists())
    return PreflightReport(
        (
            check_driver(status),
            check_capability(status),
            check_python(base_python, probe),
            check_compiler(os.environ if env is None else env, which),
            check_headers(probe),
            check_disk(existing, free_bytes),
        )
    )
