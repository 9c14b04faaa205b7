"""GPU start failures (texts from tests/engine/gpu_failure_logs.py) → typed problems with a fix that fits."""

from __future__ import annotations

import pytest

from engine.diagnosis.gpu import (
    CPU_REINSTALL,
    Bf16Unsupported,
    CompilerMissing,
    GpuDriverTooOld,
    GpuNotSupported,
    KernelsUnavailable,
    MemoryProfilingUpset,
    NcclFailed,
    OutOfMemoryAfterLoad,
)
from engine.diagnosis.problems import GpuMemoryBusy, ServerFailed, ServerProblem, WeightsDoNotFit
from engine.diagnosis.rules import diagnose
from tests.engine import gpu_failure_logs as f


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f.FREE_MEMORY, GpuMemoryBusy),
        (f.FREE_MEMORY_EXTERNAL, GpuMemoryBusy),
        (f.BF16, Bf16Unsupported),
        (f.MEMORY_PROFILING, MemoryProfilingUpset),
        (f.NCCL, NcclFailed),
        (f.NCCL_TORCH, NcclFailed),
        (f.NO_COMPILER, CompilerMissing),
        (f.NO_HEADERS, CompilerMissing),
        (f.SM_UNSUPPORTED, GpuNotSupported),
        (f.NO_KERNEL, GpuNotSupported),
        (f.DRIVER_TOO_OLD, GpuDriverTooOld),
        (f.DRIVER_INSUFFICIENT, GpuDriverTooOld),
        (f.FLASHINFER_OFFLINE, KernelsUnavailable),
        (f.FLASHINFER_NO_DOWNLOAD, KernelsUnavailable),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_gpu_failure_is_named(line: f.Sourced, kind: type[ServerProblem]) -> None:
    problem = diagnose(f.log(line), exit_code=1)
    assert type(problem) is kind
    assert problem.fix is not None
    assert line.text in problem.details
    assert "vLLM stopped" not in str(problem)


def test_free_memory_names_the_device_now() -> None:
    problem = diagnose(f.log(f.FREE_MEMORY))
    assert isinstance(problem, GpuMemoryBusy)
    assert (problem.free_gib, problem.total_gib, problem.requested) == (10.5, 79.19, 0.92)
    assert problem.fix is not None
    assert problem.fix.params == {"gpu_memory_utilization": 0.11}


def test_bf16_on_an_old_card_offers_float16() -> None:
    problem = diagnose(f.log(f.BF16))
    assert isinstance(problem, Bf16Unsupported)
    assert (problem.card, problem.capability) == ("Tesla T4", "7.5")
    assert problem.fix is not None
    assert (problem.fix.action, problem.fix.params) == ("set_option", {"dtype": "float16"})


def test_driver_too_old_says_which_cuda_and_offers_the_cpu_build() -> None:
    problem = diagnose(f.log(f.DRIVER_TOO_OLD))
    assert isinstance(problem, GpuDriverTooOld)
    assert "CUDA 12.8" in str(problem)
    assert "580" in str(problem)
    assert problem.fix is not None
    assert problem.fix.hint.endswith(f"Run: {CPU_REINSTALL}")


def test_card_below_the_builds_architectures_is_named() -> None:
    problem = diagnose(f.log(f.SM_UNSUPPORTED))
    assert isinstance(problem, GpuNotSupported)
    assert problem.card == "NVIDIA GeForce GTX 1080"


def test_missing_headers_and_compiler_say_which() -> None:
    headers = diagnose(f.log(f.NO_HEADERS))
    compiler = diagnose(f.log(f.NO_COMPILER))
    assert isinstance(headers, CompilerMissing)
    assert isinstance(compiler, CompilerMissing)
    assert "Python.h" in headers.what
    assert compiler.what == "C compiler"
    assert headers.fix is not None
    assert "python3-dev" in headers.fix.hint


def test_out_of_memory_before_the_weights_loaded_is_the_weights() -> None:
    assert type(diagnose(f.log(f.TORCH_OOM))) is WeightsDoNotFit
    assert type(diagnose(f.log(f.WEIGHTS, f.TORCH_OOM))) is WeightsDoNotFit


def test_out_of_memory_after_the_weights_loaded_is_not_the_weights() -> None:
    problem = diagnose(f.log(f.SHARE_ARG, f.LOADED, f.TORCH_OOM))
    assert isinstance(problem, OutOfMemoryAfterLoad)
    assert not problem.cuda_graphs
    assert problem.fix is not None
    # The share the profile asked for (0.9 in the argument log), a little lower; fewer sequences.
    assert problem.fix.params == {"gpu_memory_utilization": 0.85, "max_num_seqs": 64}


def test_out_of_memory_while_capturing_cuda_graphs_offers_eager_mode() -> None:
    problem = diagnose(f.log(f.LOADED, f.CAPTURING, f.TORCH_OOM))
    assert isinstance(problem, OutOfMemoryAfterLoad)
    assert problem.cuda_graphs
    assert problem.fix is not None
    assert problem.fix.params == {"enforce_eager": True}
    # Without the argument log, vLLM's default share is the one lowered.
    assert diagnose(f.log(f.LOADED, f.TORCH_OOM)).fix.params["gpu_memory_utilization"] == 0.87  # type: ignore[union-attr]


def test_nccl_noise_after_another_failure_does_not_hide_it() -> None:
    assert type(diagnose(f.log(f.FREE_MEMORY, f.NCCL))) is GpuMemoryBusy


def test_unknown_gpu_text_still_quotes_the_root_cause() -> None:
    problem = diagnose(["RuntimeError: CUDA error: an illegal memory access was encountered"], exit_code=1)
    assert isinstance(problem, ServerFailed)
    assert "illegal memory access" in str(problem)
