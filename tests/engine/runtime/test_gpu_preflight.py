"""The GPU build's pre-install check: NVML (the boundary) stands in for the card; Pythons are real
processes (this machine's own, and small scripts that answer like an older or newer one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from engine.errors import DeskError
from engine.hardware import GpuInfo, GpuStatus
from engine.runtime.gpu_preflight import (
    CPU_INSTALL_COMMAND,
    GPU_NEEDED_BYTES,
    GpuBuildUnsupported,
    check_capability,
    check_compiler,
    check_disk,
    check_driver,
    check_headers,
    check_python,
    gpu_preflight,
    probe_python,
)

RTX4090 = GpuInfo(0, "NVIDIA GeForce RTX 4090", 24 * 2**30, 23 * 2**30, compute_capability=(8, 9))
T4 = GpuInfo(1, "Tesla T4", 15 * 2**30, 15 * 2**30, compute_capability=(7, 5))
P100 = GpuInfo(2, "Tesla P100-PCIE-16GB", 16 * 2**30, 16 * 2**30, compute_capability=(6, 0))


def status(*gpus: GpuInfo, cuda: int | None = 13000, driver: str = "580.95.05") -> GpuStatus:
    return GpuStatus(tuple(gpus), "", driver, cuda)


def fake_python(tmp_path: Path, version: list[int], include: Path) -> Path:
    """An executable that answers the probe like a Python of ``version`` with headers in ``include``."""
    script = tmp_path / f"python{version[0]}.{version[1]}"
    answer = json.dumps({"version": version, "include": str(include)})
    script.write_text(f"#!/bin/sh\necho '{answer}'\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def test_a_driver_before_cuda_13_is_refused_with_the_branch_to_install() -> None:
    old = check_driver(status(RTX4090, cuda=12080, driver="570.133.07"))
    assert not old.ok
    assert "CUDA up to 12.8" in old.message
    assert "580" in old.message
    assert check_driver(status(RTX4090, cuda=13000)).ok
    assert not check_driver(GpuStatus((), "no NVIDIA driver or GPU: NVML Shared Library Not Found")).ok


def test_cards_below_compute_capability_7_5_are_named() -> None:
    assert check_capability(status(RTX4090, T4)).ok
    old = check_capability(status(RTX4090, P100))
    assert not old.ok
    assert "Tesla P100-PCIE-16GB (6.0)" in old.message


def test_this_machines_python_is_probed_for_real() -> None:
    probe = probe_python(Path(sys.executable))
    assert probe["version"] == list(sys.version_info[:3])
    assert Path(str(probe["include"])).is_dir()
    assert check_python(Path(sys.executable), probe).ok == ((3, 11) <= sys.version_info[:2] <= (3, 13))


def test_python_outside_the_gpu_range_and_missing_headers(tmp_path: Path) -> None:
    empty = tmp_path / "include"
    empty.mkdir()
    new = fake_python(tmp_path, [3, 14, 0], empty)
    probe = probe_python(new)
    python = check_python(new, probe)
    assert not python.ok
    assert "3.11 to 3.13" in python.message
    headers = check_headers(probe)
    assert not headers.ok
    assert not headers.blocking
    assert "Python.h" in headers.message
    (empty / "Python.h").write_text("/* */\n", encoding="utf-8")
    assert check_headers(probe).ok
    assert not check_python(tmp_path / "missing-python", probe_python(tmp_path / "missing-python")).ok


def test_the_compiler_is_found_as_triton_finds_it() -> None:
    found = {"gcc": "/usr/bin/gcc", "clang": "/usr/bin/clang", "cc-14": "/opt/cc-14"}
    assert check_compiler({}, found.get).message == "C compiler: /usr/bin/gcc."
    assert check_compiler({"CC": "cc-14"}, found.get).message == "C compiler: /opt/cc-14."
    assert check_compiler({}, {"clang": "/usr/bin/clang"}.get).ok
    missing = check_compiler({}, {}.get)
    assert not missing.ok
    assert not missing.blocking


def test_disk() -> None:
    assert check_disk(Path("/"), GPU_NEEDED_BYTES).ok
    low = check_disk(Path("/"), 5 * 2**30)
    assert not low.ok
    assert "5.0 GiB free" in low.message


def test_a_failing_machine_gets_one_problem_with_every_reason_and_the_cpu_build(tmp_path: Path) -> None:
    include = tmp_path / "include"
    include.mkdir()
    python = fake_python(tmp_path, [3, 12, 3], include)
    report = gpu_preflight(status(RTX4090, cuda=12020), python, tmp_path / "data", env={}, which={}.get)
    assert not report.ok
    assert [c.name for c in report.failed] == ["driver", "compiler", "headers"]
    problem = report.problem()
    assert isinstance(problem, GpuBuildUnsupported)
    assert isinstance(problem, DeskError)
    assert "CUDA up to 12.2" in problem.message
    assert "No C compiler" in problem.message
    assert problem.fix is not None
    assert problem.fix.hint.endswith(f"Run: {CPU_INSTALL_COMMAND}")


def test_only_build_tools_missing_offers_their_install_command(tmp_path: Path) -> None:
    include = tmp_path / "include"
    include.mkdir()
    python = fake_python(tmp_path, [3, 12, 3], include)
    report = gpu_preflight(status(RTX4090), python, tmp_path, env={}, which={"gcc": "/usr/bin/gcc"}.get)
    assert [c.name for c in report.failed] == ["headers"]
    problem = report.problem()
    assert problem is not None
    assert problem.fix is not None
    assert "python3-dev" in problem.fix.hint


@pytest.mark.parametrize("cuda", [13000, 13010])
def test_a_good_machine_passes(tmp_path: Path, cuda: int) -> None:
    include = tmp_path / "include"
    include.mkdir()
    (include / "Python.h").write_text("", encoding="utf-8")
    python = fake_python(tmp_path, [3, 12, 3], include)
    report = gpu_preflight(
        status(RTX4090, T4, cuda=cuda),
        python,
        tmp_path,
        env={},
        which={"gcc": "/usr/bin/gcc"}.get,
        free_bytes=GPU_NEEDED_BYTES,
    )
    assert report.ok, report.failed
    assert report.problem() is None
