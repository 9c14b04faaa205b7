"""Log lines of GPU start failures, each with where its wording comes from.

A line whose ``source`` names a Python file is checked against that file of the runtime installed here
(``test_diagnosis_source.py``, marked ``vllm``): the installed vLLM 0.32 (and its torch and Triton) must be
able to print it, word for word around the placeholders. Lines printed by compiled code (PyTorch's C++, the
CUDA runtime, gcc, NCCL) name their origin instead; the CPU runtime cannot print them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.standin import logs


@dataclass(frozen=True)
class Sourced:
    """One printed line; ``source`` is ``package/relative/file.py`` for Python, else ``origin`` says where."""

    text: str
    source: str = ""
    origin: str = ""


ENGINE_FAILED = Sourced(
    "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
    "vllm/v1/engine/utils.py",
)
LOADED = Sourced(
    "(EngineCore_DP0 pid=812) INFO 12-06 02:31:07 [gpu_model_runner.py:5150] Model loading took 14.99 GiB "
    "memory and 4.812291 seconds",
    "vllm/v1/worker/gpu_model_runner.py",
)
SHARE_ARG = Sourced(
    "(APIServer pid=800) INFO 12-06 02:30:51 [utils.py:233] non-default args: "
    "{'model_tag': 'Qwen/Qwen2.5-7B', 'gpu_memory_utilization': 0.9}",
    origin="vLLM's argument log (a dict's repr)",
)
CAPTURING = Sourced(
    "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):  43%|████▎     | 22/51 [00:01<00:01, 17.3it/s]",
    origin="tqdm bar; vllm/v1/worker/gpu_model_runner.py sets its description",
)
TORCH_OOM = Sourced(
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total capacity of "
    "23.55 GiB of which 1.03 GiB is free. Including non-PyTorch memory, this process has 22.50 GiB memory "
    "in use.",
    origin="PyTorch c10/cuda/CUDACachingAllocator.cpp",
)

FREE_MEMORY = Sourced(
    "ValueError: Free memory on device cuda:0 (10.5/79.19 GiB) on startup is less than desired GPU memory "
    "utilization (0.92, 72.85 GiB). Decrease GPU memory utilization or reduce GPU memory used by other "
    "processes.",
    "vllm/v1/worker/utils.py",
)
FREE_MEMORY_EXTERNAL = Sourced(
    "ValueError: Free memory on device cuda:1 (10.5/79.19 GiB) on startup is less than the engine's budget "
    "after excluding external process's weights (0.92, 60.1 GiB). Decrease GPU memory utilization or reduce "
    "GPU memory used by other processes.",
    "vllm/v1/worker/utils.py",
)
BF16 = Sourced(
    "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 "
    "GPU has compute capability 7.5. You can use float16 instead by explicitly setting the `dtype` flag in "
    "CLI, for example: --dtype=half.",
    "vllm/platforms/cuda.py",
)
MEMORY_PROFILING = Sourced(
    "AssertionError: Error in memory profiling. Initial free memory 20.5 GiB, current free memory 21.3 GiB. "
    "This happens when other processes sharing the same container release GPU memory while vLLM is profiling "
    "during initialization. To fix this, ensure consistent GPU memory allocation or isolate vLLM in its own "
    "container.",
    "vllm/v1/worker/gpu_worker.py",
)
NCCL = Sourced(
    "RuntimeError: NCCL error: unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
    "vllm/distributed/device_communicators/pynccl_wrapper.py",
)
NCCL_TORCH = Sourced(
    "torch.distributed.DistBackendError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/"
    "ProcessGroupNCCL.cpp:3356, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL "
    "version 2.27.5",
    origin="PyTorch torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp",
)
WEIGHTS = Sourced(
    "(EngineCore_DP0 pid=812) ERROR 12-06 02:31:07 [gpu_model_runner.py:5147] Failed to load model - not "
    "enough GPU memory. Try lowering --gpu-memory-utilization to free memory for weights, increasing "
    "--tensor-parallel-size, or using --quantization. See "
    "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more tips. (original error: CUDA "
    "out of memory. Tried to allocate 1.96 GiB.)",
    "vllm/v1/worker/gpu_model_runner.py",
)
NO_COMPILER = Sourced(
    "RuntimeError: Failed to find C compiler. Please specify via CC environment variable or set "
    "triton.knobs.build.impl.",
    "triton/runtime/build.py",
)
NO_HEADERS = Sourced(
    "/tmp/tmpq3v9xk2f/cuda_utils.c:6:10: fatal error: Python.h: No such file or directory",
    origin="gcc compiling Triton's triton/backends/nvidia/driver.c launcher",
)
SM_UNSUPPORTED = Sourced(
    "UserWarning: \nNVIDIA GeForce GTX 1080 with CUDA capability sm_61 is not compatible with the current "
    "PyTorch installation.\nThe current PyTorch install supports CUDA capabilities sm_75 sm_80 sm_86 sm_90 "
    "sm_100 sm_120.\nIf you want to use the NVIDIA GeForce GTX 1080 GPU with PyTorch, please check the "
    "instructions at https://pytorch.org/get-started/locally/\n",
    "torch/cuda/__init__.py",
)
NO_KERNEL = Sourced(
    "torch.AcceleratorError: CUDA error: no kernel image is available for execution on the device",
    origin="the CUDA runtime's cudaErrorNoKernelImageForDevice text, raised by PyTorch",
)
DRIVER_TOO_OLD = Sourced(
    "RuntimeError: The NVIDIA driver on your system is too old (found version 12080). Please update your "
    "GPU driver by downloading and installing a new version from the URL: "
    "http://www.nvidia.com/Download/index.aspx Alternatively, go to: https://pytorch.org to install a "
    "PyTorch version that has been compiled with your version of the CUDA driver.",
    origin="PyTorch c10/cuda/CUDAFunctions.cpp",
)
FLASHINFER_OFFLINE = Sourced(
    "2026-12-06 02:31:40,112 - WARNING - flashinfer.jit: Downloading https://edge.urm.nvidia.com/artifactory/"
    "sw-kernelinferencelibrary-public-generic-local/4c9e1a/batched_gemm-0d28130-2fa9e7a/"
    "Bmm_Bfloat16_E4m3E4m3_Fp32_t128x8x512u2_s6_et64x8_m64x8x32_cga1x1x1_16dp256b_TN_transOut_schedS_sm100a_cubin"
    ".cubin: attempt 1 failed: HTTPSConnectionPool(host='edge.urm.nvidia.com', port=443): Max retries "
    "exceeded with url: (Caused by NameResolutionError(\"Failed to resolve 'edge.urm.nvidia.com'\"))",
    origin="FlashInfer 0.7.0.post1 flashinfer/jit/cubin_loader.py (FlashInfer is not in the CPU runtime)",
)
FLASHINFER_NO_DOWNLOAD = Sourced(
    "RuntimeError: Artifact not found locally: 4c9e1a/fmha/trtllm-gen/fmha.cubin (looked at "
    "/home/u/.cache/flashinfer/cubins/4c9e1a/fmha/trtllm-gen/fmha.cubin). FLASHINFER_NO_DOWNLOAD is set — "
    "refusing to download. This means flashinfer-cubin is missing this file.",
    origin="FlashInfer 0.7.0.post1 flashinfer/jit/cubin_loader.py (FlashInfer is not in the CPU runtime)",
)
DRIVER_INSUFFICIENT = Sourced(
    "RuntimeError: CUDA error: CUDA driver version is insufficient for CUDA runtime version",
    origin="the CUDA runtime's cudaErrorInsufficientDriver text",
)

# Every line above, for the source check.
ALL = [value for name, value in list(globals().items()) if isinstance(value, Sourced)]


def log(*lines: Sourced) -> list[str]:
    """A failed start's lines: the given ones, then vLLM's wrapper."""
    return [line.text for line in lines] + [ENGINE_FAILED.text]


# The stand-in process prints these for its failure kinds (tests/support/standin/logs.py): the line of each
# kind that vLLM writes, and the file that writes it.
STANDIN_SOURCES = {
    "kv-cache-too-small": "vllm/v1/core/kv_cache_utils.py",
    "no-cache-memory": "vllm/v1/core/kv_cache_utils.py",
    "max-model-len-too-long": "vllm/config/model.py",
    "free-memory-below-utilization": "vllm/v1/worker/utils.py",
    "weights-do-not-fit": "vllm/v1/worker/gpu_model_runner.py",
    "invalid-repo": "vllm/transformers_utils/config.py",
    "unsupported-architecture": "vllm/model_executor/models/registry.py",
}


def standin_line(kind: str) -> str:
    """The stand-in's line for ``kind`` that comes from vLLM (the one our diagnosis rule reads)."""
    lines = logs.failure_lines(kind, "org/m", 4096)
    keys = {
        "kv-cache-too-small": "KV cache is needed",
        "no-cache-memory": "No available memory for the cache blocks",
        "max-model-len-too-long": "User-specified max_model_len",
        "free-memory-below-utilization": "Free memory on device",
        "weights-do-not-fit": "Failed to load model",
        "invalid-repo": "Invalid repository ID",
        "unsupported-architecture": "are not supported for now",
    }
    if kind == "invalid-repo":  # one message over several lines
        return "\n".join(line for line in lines if line.strip())
    return next(line for line in lines if keys[kind] in line)
