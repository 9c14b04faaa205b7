"""The failures only an NVIDIA GPU start shows: a driver or card the build cannot use, bfloat16 on an old
card, no C compiler for Triton, NCCL, memory that ran out after the weights loaded, memory profiling upset by
another program.

The texts matched are the ones vLLM, PyTorch and Triton print; ``tests/engine/gpu_failure_logs.py`` holds
them, and a ``vllm``-marked test checks each against the source of the runtime installed here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from engine.diagnosis.problems import ServerProblem
from engine.errors import Fix

# vLLM's PyPI wheel and its torch are built for CUDA 13: drivers from this branch on run it.
MIN_DRIVER = 580
CPU_REINSTALL = "vllm-desk runtime install --cpu --force"
GPU_REINSTALL = "vllm-desk runtime install --gpu --force"


def _cpu_build_fix(label: str, why: str) -> Fix:
    return Fix("reinstall", label, f"{why} Or use the CPU build. Run: {CPU_REINSTALL}")


class GpuDriverTooOld(ServerProblem):
    title = "The NVIDIA driver is too old for this vLLM"

    def __init__(self, found: str | None, *, details: str = "") -> None:
        which = f" (it offers CUDA {_cuda_version(found)})" if found else ""
        super().__init__(
            f"The installed NVIDIA driver{which} is older than the CUDA version this vLLM and its PyTorch "
            f"were built for. vLLM's GPU build needs driver {MIN_DRIVER} or newer.",
            fix=_cpu_build_fix("Use the CPU build", f"Update the NVIDIA driver to {MIN_DRIVER} or newer."),
            details=details,
        )
        self.found = found


def _cuda_version(found: str) -> str:
    """PyTorch prints the driver's CUDA version as one number (12080 = 12.8)."""
    number = int(found)
    return f"{number // 1000}.{number % 1000 // 10}" if number >= 1000 else found


class GpuNotSupported(ServerProblem):
    title = "This GPU is too old for this vLLM"

    def __init__(self, card: str = "", *, details: str = "") -> None:
        which = f"The {card}" if card else "This GPU"
        super().__init__(
            f"{which} is not among the cards this vLLM's CUDA kernels were built for (they need compute "
            "capability 7.5 or newer: RTX 20xx, T4 and later).",
            fix=_cpu_build_fix("Use the CPU build", "A newer card, or"),
            details=details,
        )
        self.card = card


class Bf16Unsupported(ServerProblem):
    title = "This GPU cannot compute in bfloat16"

    def __init__(self, card: str, capability: str, *, details: str = "") -> None:
        has = f"compute capability {capability}" if capability else "no known compute capability"
        super().__init__(
            f"The profile runs the model in bfloat16, which needs compute capability 8.0; the {card} has "
            f"{has}. float16 works on it.",
            fix=Fix("set_option", "Use float16", "Set the profile's dtype to float16.", {"dtype": "float16"}),
            details=details,
        )
        self.card, self.capability = card, capability


class CompilerMissing(ServerProblem):
    title = "vLLM needs a C compiler and Python's headers"

    def __init__(self, what: str, *, details: str = "") -> None:
        super().__init__(
            f"Triton, which vLLM uses on the GPU, builds a small C module at the first start and found "
            f"no {what}.",
            fix=Fix(
                "reinstall",
                "Copy the install command",
                "Install a C compiler and the Python headers (Fedora: sudo dnf install gcc python3-devel). "
                "Run: sudo apt install build-essential python3-dev",
            ),
            details=details,
        )
        self.what = what


class NcclFailed(ServerProblem):
    title = "The GPUs could not talk to each other"

    def __init__(self, *, details: str = "") -> None:
        super().__init__(
            "NCCL, which links the GPUs for tensor parallelism, failed. Over PCIe without peer-to-peer "
            "support this is common.",
            fix=Fix(
                "edit_profile",
                "Edit the profile's environment",
                "Add NCCL_P2P_DISABLE=1 to the profile's environment (or use one GPU: "
                "tensor_parallel_size 1); NCCL_DEBUG=INFO shows more.",
            ),
            details=details,
        )


class KernelsUnavailable(ServerProblem):
    title = "GPU kernels could not be downloaded"

    def __init__(self, *, details: str = "") -> None:
        super().__init__(
            "FlashInfer needs precompiled kernels for this card (compute capability 9.0 and newer) and could "
            "not download them: the network is off or blocked.",
            fix=Fix(
                "retry",
                "Try again with the network on",
                "Start again with the network on (FlashInfer downloads them once), or fetch them ahead with "
                "the runtime's `vllm download-kernels`.",
            ),
            details=details,
        )


class OutOfMemoryAfterLoad(ServerProblem):
    title = "GPU memory ran out after the model loaded"

    def __init__(self, share: float, *, cuda_graphs: bool, details: str = "") -> None:
        lower = max(0.05, round(share - 0.05, 2))
        if cuda_graphs:
            fix = Fix(
                "set_option",
                "Start without CUDA graphs",
                "Set enforce_eager (CUDA graphs need memory of their own).",
                {"enforce_eager": True},
            )
            when = "while capturing CUDA graphs"
        else:
            fix = Fix(
                "set_option",
                f"Use {lower:.0%} of the GPU and fewer sequences",
                f"Lower gpu_memory_utilization to {lower:g} and max_num_seqs to 64, or set enforce_eager.",
                {"gpu_memory_utilization": lower, "max_num_seqs": 64},
            )
            when = "while vLLM measured its working memory"
        super().__init__(
            f"The weights fit, but the GPU ran out of memory {when}. Another program may have taken memory "
            "meanwhile, or the batch vLLM plans for is too large.",
            fix=fix,
            details=details,
        )
        self.share, self.cuda_graphs = share, cuda_graphs


class MemoryProfilingUpset(ServerProblem):
    title = "GPU memory changed while vLLM measured it"

    def __init__(self, *, details: str = "") -> None:
        super().__init__(
            "Another program released GPU memory while vLLM was measuring what it may use, so the start "
            "failed.",
            fix=Fix(
                "retry", "Try again", "Start again once the other GPU programs have settled (or close them)."
            ),
            details=details,
        )


def name_gpu_holders(problem: ServerProblem) -> ServerProblem:
    """A "GPU memory busy" problem naming the processes that hold the memory (NVML); others unchanged."""
    from engine.diagnosis.problems import GpuMemoryBusy
    from engine.hardware import describe_gpu_holders

    if isinstance(problem, GpuMemoryBusy) and (holders := describe_gpu_holders()):
        problem.message = f"{problem.message} {holders}"
        problem.args = (problem.message,)
    return problem


_NUM = r"([\d.]+)"
MakeProblem = Callable[[re.Match[str], str], ServerProblem]
# Share vLLM uses when the profile sets none; the one printed in "non-default args" wins.
_DEFAULT_SHARE = 0.92
_SHARE_ARG = re.compile(r"'gpu_memory_utilization': " + _NUM)
_LOADED = "Model loading took"
_GRAPHS = re.compile(r"Capturing CUDA graphs|CUDA graph capturing|Profiling CUDA graph memory")
_CUDA_OOM = re.compile(r"CUDA out of memory|CUDA error: out of memory|torch\.OutOfMemoryError")


def out_of_memory(text: str, details: str) -> ServerProblem | None:
    """``OutOfMemoryAfterLoad`` when a CUDA OOM comes after vLLM reported the weights loaded; else ``None``
    (the weights themselves did not fit)."""
    oom = _CUDA_OOM.search(text)
    loaded = text.find(_LOADED)
    if oom is None or loaded < 0 or loaded > oom.start() or "Failed to load model" in text:
        return None
    share_arg = _SHARE_ARG.search(text)
    share = float(share_arg[1]) if share_arg else _DEFAULT_SHARE
    graphs = _GRAPHS.search(text, loaded)
    return OutOfMemoryAfterLoad(
        share, cuda_graphs=graphs is not None and graphs.start() < oom.start(), details=details
    )


# Before the generic memory rules; NCCL_RULES last (its errors also follow other failures at teardown).
GPU_RULES: list[tuple[re.Pattern[str], MakeProblem]] = [
    (
        re.compile(r"NVIDIA driver on your system is too old \(found version (\d+)\)"),
        lambda m, d: GpuDriverTooOld(m[1], details=d),
    ),
    (
        re.compile(r"CUDA driver version is insufficient for CUDA runtime version"),
        lambda m, d: GpuDriverTooOld(None, details=d),
    ),
    (
        re.compile(
            r"Bfloat16 is only supported on GPUs with compute capability of at least 8\.0\. Your (.+?) GPU "
            r"(?:has compute capability (\d+(?:\.\d+)?)|does not have a compute capability)"
        ),
        lambda m, d: Bf16Unsupported(m[1], m[2] or "", details=d),
    ),
    (
        re.compile(
            r"(?:^|\n)\s*(.+?) with CUDA capability sm_\d+ is not compatible with the current PyTorch"
        ),
        lambda m, d: GpuNotSupported(m[1].strip(), details=d),
    ),
    (
        re.compile(r"no kernel image is available for execution on the device"),
        lambda m, d: GpuNotSupported(details=d),
    ),
    (re.compile(r"Failed to find C compiler"), lambda m, d: CompilerMissing("C compiler", details=d)),
    (
        re.compile(r"fatal error: Python\.h: No such file or directory"),
        lambda m, d: CompilerMissing("Python.h (the Python development headers)", details=d),
    ),
    (re.compile(r"Error in memory profiling\."), lambda m, d: MemoryProfilingUpset(details=d)),
    (
        # FlashInfer's cubin loader: its download retries (from its default NVIDIA artifact store), or the
        # refusal when FLASHINFER_NO_DOWNLOAD is set and flashinfer-cubin lacks the file.
        re.compile(
            r"Downloading https://\S*kernelinferencelibrary\S*: attempt \d+ failed|"
            r"FLASHINFER_NO_DOWNLOAD is set . refusing to download"
        ),
        lambda m, d: KernelsUnavailable(details=d),
    ),
]
NCCL_RULES: list[tuple[re.Pattern[str], MakeProblem]] = [
    (
        re.compile(r"NCCL error|nccl\w*Error\b|ncclUnhandledCudaError|ncclSystemError|ncclInternalError"),
        lambda m, d: NcclFailed(details=d),
    ),
]
