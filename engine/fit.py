"""Will it fit? An estimate of a model's GPU memory (weights + KV cache) against the GPUs present.

vLLM takes ``total × gpu_memory_utilization`` of each GPU; from that it loads the weights (split by the
tensor-parallel size), keeps some for activations, and gives the rest to the KV cache, which must hold at
least one sequence of ``max_model_len`` tokens. This module does the same arithmetic ahead of the launch so
the panel can say "fits / tight / won't fit" and which setting would make it fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from engine.catalog import DTYPE_BYTES, ModelInfo
from engine.errors import Fix
from engine.hardware import GpuInfo
from engine.profiles import ServerProfile

Verdict = Literal["fits", "tight", "wont_fit", "cpu", "unknown"]
GIB = 2**30
# Activations, CUDA context and sampler buffers vLLM keeps outside weights and KV cache (per GPU). A round
# figure from vLLM's profiling of small and mid-size models; the verdict's "tight" band absorbs the error.
OVERHEAD_BYTES = 1 * GIB
# Above this share of the budget the model starts, but with room for few concurrent full-length sequences.
TIGHT_SHARE = 0.85
# vLLM's KV cache block size: a max_model_len we suggest is a multiple of it.
BLOCK_TOKENS = 16
# Bytes per weight of quantization methods chosen at launch (``--quantization``) or found in config.json.
QUANT_BYTES: dict[str, float] = {"fp8": 1, "awq": 0.5, "gptq": 0.5, "bitsandbytes": 0.5, "int8": 1}


def estimate_params(info: ModelInfo) -> int | None:
    """Parameter count from the config: embeddings, attention (with grouped KV heads), gated MLP, norms."""
    needed = (
        info.vocab_size,
        info.hidden_size,
        info.num_layers,
        info.num_attention_heads,
        info.intermediate_size,
    )
    if any(v is None for v in needed):
        return None
    vocab, hidden, layers, heads, inter = (int(v) for v in needed if v is not None)
    head_dim = info.head_dim or hidden // heads
    kv_heads = info.num_kv_heads or heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim  # q, o + k, v
    mlp = 3 * hidden * inter  # gate, up, down
    per_layer = attention + mlp + 2 * hidden  # two norms
    embeddings = vocab * hidden * (1 if info.tie_word_embeddings else 2)
    return embeddings + layers * per_layer + hidden  # + final norm


def dtype_bytes(dtype: str | None, info: ModelInfo) -> float:
    """Bytes per element for ``--dtype`` (``auto``/``None``: the model's own; float32 ones run as 16-bit)."""
    name = dtype if dtype and dtype != "auto" else info.dtype
    if not name or name in ("float32", "auto"):
        # vLLM's "auto" serves float32 checkpoints in 16-bit on GPUs.
        return 2 if (not dtype or dtype == "auto") else 4
    return DTYPE_BYTES.get(name, 2)


def _served_as_stored(dtype: str | None, info: ModelInfo) -> bool:
    """Whether vLLM keeps the checkpoint's own dtype (so the safetensors size is the served size)."""
    if dtype and dtype != "auto":
        return dtype == info.dtype
    # "auto" serves a float32 checkpoint in 16-bit; a quantized one's headers already hold packed sizes.
    return info.dtype != "float32" or info.quantization is not None


def weight_bytes(info: ModelInfo, *, dtype: str | None = None, quantization: str | None = None) -> int | None:
    """Memory of the weights as served; exact from safetensors headers when the dtype is unchanged."""
    params = info.param_count or estimate_params(info)
    if quantization and quantization in QUANT_BYTES and params:
        return int(params * QUANT_BYTES[quantization])
    if info.weight_bytes is not None and _served_as_stored(dtype, info):
        return info.weight_bytes
    if params is None:
        return None
    return int(params * dtype_bytes(dtype, info))


def kv_bytes_per_token(
    info: ModelInfo, *, dtype: str | None = None, kv_cache_dtype: str | None = None
) -> int | None:
    """Keys and values of every layer for one token: layers × kv heads × head dim × 2 × bytes."""
    if info.num_layers is None or info.num_kv_heads is None or info.head_dim is None:
        return None
    per = 1.0 if kv_cache_dtype and kv_cache_dtype.startswith("fp8") else dtype_bytes(dtype, info)
    return int(info.num_layers * info.num_kv_heads * info.head_dim * 2 * per)


@dataclass(frozen=True)
class FitEstimate:
    """The verdict, the numbers behind it (bytes, per GPU) and the change that would make it fit."""

    verdict: Verdict
    message: str
    weights_bytes: int | None = None
    kv_bytes: int | None = None
    need_per_gpu: int | None = None
    budget_per_gpu: int | None = None
    max_len_that_fits: int | None = None
    fix: Fix | None = None


def _gib(n: float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size / 10:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def estimate_fit(
    info: ModelInfo,
    gpus: Sequence[GpuInfo],
    *,
    max_model_len: int | None = None,
    dtype: str | None = "auto",
    kv_cache_dtype: str | None = "auto",
    quantization: str | None = None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.92,
) -> FitEstimate:
    """Estimate whether ``info`` served with these options fits on ``gpus`` (empty: the CPU build)."""
    weights = weight_bytes(info, dtype=dtype, quantization=quantization)
    per_token = kv_bytes_per_token(info, dtype=dtype, kv_cache_dtype=kv_cache_dtype)
    tokens = max_model_len or info.max_context
    kv = per_token * tokens if per_token is not None and tokens else None
    if not gpus:
        sizes = f" (weights about {_gib(weights)})" if weights else ""
        return FitEstimate(
            "cpu", f"No NVIDIA GPU found: the CPU build of vLLM will be used{sizes}.", weights, kv
        )
    if weights is None or kv is None or per_token is None or tokens is None:
        return FitEstimate(
            "unknown", "The model's config.json lacks the sizes needed for an estimate.", weights, kv
        )
    tp = max(1, tensor_parallel_size)
    if tp > len(gpus):
        return FitEstimate(
            "wont_fit",
            f"Tensor-parallel size {tp} needs {tp} GPUs; this machine has {len(gpus)}.",
            weights,
            kv,
            fix=Fix("set_option", f"Use {len(gpus)} GPU(s)", params={"tensor_parallel_size": len(gpus)}),
        )
    used = sorted(gpus, key=lambda g: g.free_bytes)[:tp]  # the tightest ones decide
    smallest = min(used, key=lambda g: g.total_bytes * gpu_memory_utilization)
    budget = int(smallest.total_bytes * gpu_memory_utilization)
    low_free = min(used, key=lambda g: g.free_bytes)
    if low_free.free_bytes < budget:
        util = math.floor(low_free.free_bytes / low_free.total_bytes * 100) / 100
        return FitEstimate(
            "wont_fit",
            f"GPU {low_free.index} has only {_gib(low_free.free_bytes)} free, less than the "
            f"{_gib(budget)} that gpu_memory_utilization {gpu_memory_utilization} asks for.",
            weights,
            kv,
            budget_per_gpu=budget,
            fix=Fix(
                "set_option", f"Use gpu_memory_utilization {util}", params={"gpu_memory_utilization": util}
            ),
        )
    fixed = weights // tp + OVERHEAD_BYTES
    need = fixed + kv // tp
    room = budget - fixed
    max_len = (room * tp // per_token) // BLOCK_TOKENS * BLOCK_TOKENS if room > 0 else 0
    numbers = f"needs about {_gib(need)} per GPU of {_gib(budget)} available"
    if need <= budget * TIGHT_SHARE:
        return FitEstimate("fits", f"Fits: {numbers}.", weights, kv, need, budget, max_len)
    if need <= budget:
        return FitEstimate(
            "tight",
            f"Tight: {numbers}; few long conversations fit at once.",
            weights,
            kv,
            need,
            budget,
            max_len,
        )
    if max_len >= BLOCK_TOKENS:
        fix = Fix(
            "set_option",
            f"Use max_model_len {max_len}",
            hint=f"--max-model-len {max_len}",
            params={"max_model_len": max_len},
        )
        message = f"Won't fit: {numbers}. A context of {max_len} tokens would fit."
        return FitEstimate("wont_fit", message, weights, kv, need, budget, max_len, fix)
    # The weights alone do not fit: more GPUs, or fewer bytes per weight.
    for more in (2, 4, 8):
        if tp < more <= len(gpus) and weights // more + OVERHEAD_BYTES + kv // more <= budget:
            fix = Fix("set_option", f"Use {more} GPUs", params={"tensor_parallel_size": more})
            return FitEstimate(
                "wont_fit", f"Won't fit on {tp} GPU(s): {numbers}.", weights, kv, need, budget, 0, fix
            )
    fix = Fix(
        "choose_model",
        "Choose a quantized model",
        hint="Pick a 4-bit (AWQ/GPTQ) or FP8 version of this model, or a smaller model.",
    )
    return FitEstimate(
        "wont_fit",
        f"Won't fit: the weights alone exceed the GPU ({numbers}).",
        weights,
        kv,
        need,
        budget,
        0,
        fix,
    )


# vLLM's default --gpu-memory-utilization (0.33).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92


def estimate_for_profile(profile: ServerProfile, info: ModelInfo, gpus: Sequence[GpuInfo]) -> FitEstimate:
    """:func:`estimate_fit` with a server profile's options (its unset ones take vLLM's defaults)."""
    length = profile.max_model_len
    estimate = estimate_fit(
        info,
        gpus,
        # "auto" lets vLLM choose the longest context that fits; estimate the model's full context.
        max_model_len=length if isinstance(length, int) else None,
        dtype=profile.dtype,
        kv_cache_dtype=profile.kv_cache_dtype or "auto",
        quantization=profile.quantization or None,
        tensor_parallel_size=profile.tensor_parallel_size,
        gpu_memory_utilization=profile.gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION,
    )
    fits_shorter = estimate.fix is not None and "max_model_len" in estimate.fix.params
    if length == "auto" and fits_shorter and estimate.max_len_that_fits:
        # With "auto" vLLM itself shortens the context to what fits: that is not a failure.
        return replace(
            estimate,
            verdict="tight",
            message=f"Fits with a shorter context: vLLM will choose about {estimate.max_len_that_fits} "
            f"tokens instead of the model's {info.max_context}.",
            fix=None,
        )
    return estimate
