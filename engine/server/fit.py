"""Will it fit? An estimate of a model's GPU memory against the GPUs present, in vLLM's own accounting.

vLLM (0.32, ``vllm/v1/worker/gpu_worker.py`` and ``utils.py``) first checks that the memory free once its
worker holds a CUDA context is at least ``total × gpu_memory_utilization`` (``total`` as CUDA counts it,
which is NVML's minus what the driver reserves). From that budget it takes the weights (split by the
tensor-parallel size), the peak of a profiling forward pass (``max_num_batched_tokens`` tokens, then the
sampler over ``max_num_seqs`` sequences), memory outside PyTorch that grew meanwhile (cuBLAS, NCCL) and,
unless ``enforce_eager``, its estimate of CUDA-graph memory; the rest is KV cache, which must hold at least
one sequence of ``max_model_len`` tokens. This module does the same arithmetic before the launch, so the
panel can say "fits / tight / won't fit" and which setting would make it fit.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from engine.errors import Fix
from engine.hardware import GpuInfo, detect_gpus, visible_gpus
from engine.models.catalog import DTYPE_BYTES, ModelInfo, NotAModelFolder, read_model_info

if TYPE_CHECKING:  # the estimate itself needs only the standard library (scripts/gpu-check.py)
    from engine.paths import AppPaths
    from engine.server.profiles import ServerProfile

Verdict = Literal["fits", "tight", "wont_fit", "cpu", "unknown"]
GIB = 2**30
MIB = 2**20
# What a vLLM worker's CUDA context (with cuBLAS workspaces) takes before vLLM measures free memory: the
# card must have this much free beyond the budget. scripts/gpu-check.py measures it on a real card.
CONTEXT_BYTES = 512 * MIB
# Memory outside PyTorch that grows while vLLM profiles (cuBLAS/cuDNN handles); NCCL adds buffers with
# tensor parallelism.
NON_TORCH_BYTES = 256 * MIB
NCCL_BYTES = 256 * MIB
# vLLM's serve defaults on cards below 70 GiB (``EngineArgs._set_default_max_num_seqs_and_batched_tokens``);
# 8192 tokens and 1024 sequences on 70 GiB and larger cards (except A100).
DEFAULT_BATCHED_TOKENS = 2048
DEFAULT_MAX_NUM_SEQS = 256
LARGE_CARD_BYTES = 70 * GIB
# CUDA graphs: a pool for the largest captured batch plus per-graph buffers; vLLM's own estimate is of this
# size for 1-70B models (its log: "Estimated CUDA graph memory: 0.3-0.9 GiB").
GRAPH_BASE_BYTES = 256 * MIB
GRAPH_PER_LAYER_BYTES = 4 * MIB
# Above this share of the budget the model starts, but with room for few concurrent full-length sequences.
TIGHT_SHARE = 0.85
# The suggested max_model_len keeps this share of what the arithmetic says fits: the activation and graph
# terms are estimates, and a suggestion that fails a second time is worse than one a little short.
SUGGESTION_MARGIN = 0.9
# vLLM's KV cache block size: a max_model_len we suggest is a multiple of it.
BLOCK_TOKENS = 16
# Bits per weight of ``--quantization`` methods vLLM applies at load time to a 16-bit checkpoint (the
# embeddings and the output head stay in 16 bit). Methods that need a quantized checkpoint take the
# checkpoint's own numbers instead.
ONLINE_BITS: dict[str, int] = {
    "fp8": 8,
    "fp8_per_tensor": 8,
    "fp8_per_block": 8,
    "fp8_per_channel": 8,
    "mxfp8": 8,
    "modelopt_mxfp8": 8,
    "int8": 8,
    "int8_per_channel_weight_only": 8,
    "experts_int8": 8,
    "bitsandbytes": 4,
    "nvfp4_per_token": 4,
}
# Methods that only read an already quantized checkpoint (``--quantization awq_marlin`` on an AWQ model).
CHECKPOINT_METHODS = (
    "awq",
    "auto_awq",
    "awq_marlin",
    "gptq",
    "auto_gptq",
    "gptq_marlin",
    "compressed-tensors",
    "moe_wna16",
    "modelopt",
    "modelopt_fp4",
    "mxfp4",
    "gpt_oss_mxfp4",
    "fbgemm_fp8",
    "quark",
    "humming",
    "gguf",
    "deepseek_v4_fp8",
    "modelopt_mixed",
    "fp_quant",
    "inc",
)
# Methods whose size depends on a configuration of their own: the estimate says it cannot tell.
UNSIZED_METHODS = ("online", "torchao")


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
    _vocab, hidden, layers, heads, inter = (int(v) for v in needed if v is not None)
    head_dim = info.head_dim or hidden // heads
    kv_heads = info.num_kv_heads or heads
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim  # q, o + k, v
    mlp = 3 * hidden * inter  # gate, up, down
    per_layer = attention + mlp + 2 * hidden  # two norms
    return _embedding_params(info) + layers * per_layer + hidden  # + final norm


def _embedding_params(info: ModelInfo) -> int:
    """Input embeddings and output head (one matrix when tied); the headers' count when read."""
    if info.embedding_params:
        return info.embedding_params
    if info.vocab_size is None or info.hidden_size is None:
        return 0
    return info.vocab_size * info.hidden_size * (1 if info.tie_word_embeddings else 2)


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
    return info.dtype != "float32"


def _method(quantization: str | None) -> str | None:
    return quantization.strip().lower() if quantization and quantization.strip() else None


def weight_bytes(info: ModelInfo, *, dtype: str | None = None, quantization: str | None = None) -> int | None:
    """Memory of the weights as served; ``None`` when it cannot be known (an unknown quantization method).

    A quantized checkpoint is served as stored: its safetensors size is exact (packed int32 ``qweight``
    elements, scales and zero points, 16-bit embeddings), else bits per weight from its config plus a
    scale per group. Online quantization of a 16-bit checkpoint converts the linear layers only.
    """
    if info.quant_method is not None or info.quantization is not None:
        if info.weight_bytes is not None:
            return info.weight_bytes
        return _packed_from_config(info)
    method = _method(quantization)
    half = dtype_bytes(dtype, info)
    if method is not None:
        bits = ONLINE_BITS.get(method)
        params = info.param_count or estimate_params(info)
        if bits is None or params is None:
            return None
        embeddings = _embedding_params(info)
        return int((params - embeddings) * bits / 8 + embeddings * half)
    if info.weight_bytes is not None and _served_as_stored(dtype, info):
        return info.weight_bytes
    params = info.param_count or estimate_params(info)
    return None if params is None else int(params * half)


def _packed_from_config(info: ModelInfo) -> int | None:
    params = estimate_params(info)
    if params is None or info.quant_bits is None:
        return None
    embeddings = _embedding_params(info)
    bits = info.quant_bits
    # A 16-bit scale (and, under 8 bits, a packed zero point) per group of weights; per output channel
    # when there are no groups.
    group = info.quant_group_size or info.hidden_size or 128
    per_weight = bits / 8 + (2 + (bits / 8 if bits < 8 else 0)) / group
    return int((params - embeddings) * per_weight + embeddings * 2)


def kv_heads_per_gpu(info: ModelInfo, tensor_parallel_size: int = 1) -> int | None:
    """KV heads each GPU holds: split over tensor parallelism, replicated when there are fewer than GPUs."""
    if info.num_kv_heads is None:
        return None
    return max(1, math.ceil(info.num_kv_heads / max(1, tensor_parallel_size)))


def kv_bytes_per_token(
    info: ModelInfo,
    *,
    dtype: str | None = None,
    kv_cache_dtype: str | None = None,
    tensor_parallel_size: int = 1,
) -> int | None:
    """Keys and values of every layer for one token on one GPU: layers × kv heads × head dim × 2 × bytes.

    The same as vLLM's ``FullAttentionSpec.page_size_bytes / block_size``.
    """
    heads = kv_heads_per_gpu(info, tensor_parallel_size)
    if info.num_layers is None or heads is None or info.head_dim is None:
        return None
    per = 1.0 if kv_cache_dtype and kv_cache_dtype.startswith("fp8") else dtype_bytes(dtype, info)
    return int(info.num_layers * heads * info.head_dim * 2 * per)


@dataclass(frozen=True)
class RunShape:
    """How vLLM will run: batch limits and whether CUDA graphs are captured."""

    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    tensor_parallel_size: int = 1


def activation_bytes(info: ModelInfo, gpu: GpuInfo, shape: RunShape, element_bytes: float = 2) -> int:
    """Peak of vLLM's profiling run on one GPU: the largest layer's activations for the batched tokens
    (gate and up projections of the MLP, a few hidden-size buffers) and the sampler's float32 logits and
    probabilities over the vocabulary for every sequence."""
    large = gpu.cuda_total_bytes >= LARGE_CARD_BYTES
    tokens = shape.max_num_batched_tokens or (8192 if large else DEFAULT_BATCHED_TOKENS)
    seqs = shape.max_num_seqs or (1024 if large else DEFAULT_MAX_NUM_SEQS)
    tp = max(1, shape.tensor_parallel_size)
    hidden = info.hidden_size or 0
    inter = info.intermediate_size or 4 * hidden
    per_token = (2 * inter / tp + 4 * hidden) * element_bytes
    sampler = seqs * (info.vocab_size or 0) * 4 * 2
    return int(tokens * per_token + sampler)


def graph_bytes(info: ModelInfo, shape: RunShape) -> int:
    """vLLM's CUDA-graph memory estimate (nothing with ``enforce_eager``)."""
    if shape.enforce_eager:
        return 0
    return GRAPH_BASE_BYTES + GRAPH_PER_LAYER_BYTES * (info.num_layers or 0)


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
    # What vLLM sets aside besides weights and KV cache, per GPU: activations, CUDA graphs, non-torch.
    overhead_per_gpu: int | None = None


def _gib(n: float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size / 10:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def usable_free(gpu: GpuInfo, own_pids: Collection[int] = ()) -> int:
    """What a new vLLM worker would find free: NVML's free memory, plus what our own server (``own_pids``)
    holds and gives back when it is restarted with the new settings, minus the worker's CUDA context."""
    return gpu.free_bytes + gpu.held_by(own_pids) - CONTEXT_BYTES


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
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    enforce_eager: bool = False,
    own_pids: Collection[int] = (),
) -> FitEstimate:
    """Estimate whether ``info`` served with these options fits on ``gpus`` (empty: the CPU build).

    ``gpus`` are the ones the server will see, in CUDA's order (:func:`engine.hardware.visible_gpus`);
    ``own_pids`` are the processes of our own running server, whose memory counts as free.
    """
    tp = max(1, tensor_parallel_size)
    weights = weight_bytes(info, dtype=dtype, quantization=quantization)
    per_token = kv_bytes_per_token(info, dtype=dtype, kv_cache_dtype=kv_cache_dtype, tensor_parallel_size=tp)
    tokens = max_model_len or info.max_context
    kv = per_token * tokens if per_token is not None and tokens else None
    if not gpus:
        sizes = f" (weights about {_gib(weights)})" if weights else ""
        return FitEstimate(
            "cpu", f"No NVIDIA GPU found: the CPU build of vLLM will be used{sizes}.", weights, kv
        )
    method = _method(quantization)
    if weights is None and method and method not in ONLINE_BITS and method not in CHECKPOINT_METHODS:
        return FitEstimate("unknown", f"The quantization method “{method}” is unknown to this estimate.")
    if weights is None and method in CHECKPOINT_METHODS and info.quant_method is None:
        return FitEstimate(
            "unknown",
            f"“{method}” needs a checkpoint quantized with it, and this model's config.json has none.",
        )
    if weights is None or kv is None or per_token is None or tokens is None:
        return FitEstimate(
            "unknown", "The model's config.json lacks the sizes needed for an estimate.", weights, kv
        )
    if tp > len(gpus):
        return FitEstimate(
            "wont_fit",
            f"Tensor-parallel size {tp} needs {tp} GPUs; this machine has {len(gpus)}.",
            weights,
            kv,
            fix=Fix("set_option", f"Use {len(gpus)} GPU(s)", params={"tensor_parallel_size": len(gpus)}),
        )
    used = list(gpus[:tp])  # vLLM takes the first visible devices
    old = [g for g in used if g.compute_capability is not None and g.compute_capability < (8, 0)]
    if dtype == "bfloat16" and old:
        # vLLM refuses bfloat16 below compute capability 8.0 ("auto" falls back to float16 by itself).
        return FitEstimate(
            "wont_fit",
            f"{old[0].name} cannot compute in bfloat16 (compute capability "
            f"{'.'.join(map(str, old[0].compute_capability or ()))}; 8.0 is needed).",
            weights,
            kv,
            fix=Fix("set_option", "Use float16", params={"dtype": "float16"}),
        )
    smallest = min(used, key=lambda g: g.cuda_total_bytes)
    budget = int(smallest.cuda_total_bytes * gpu_memory_utilization)
    low_free = min(used, key=lambda g: usable_free(g, own_pids) - g.cuda_total_bytes * gpu_memory_utilization)
    free = usable_free(low_free, own_pids)
    if free < low_free.cuda_total_bytes * gpu_memory_utilization:
        util = max(0.0, math.floor(free / low_free.cuda_total_bytes * 100) / 100)
        return FitEstimate(
            "wont_fit",
            f"GPU {low_free.index} has only {_gib(max(0, free))} free for vLLM (after its CUDA context), "
            f"less than the {_gib(budget)} that gpu_memory_utilization {gpu_memory_utilization} asks for.",
            weights,
            kv,
            budget_per_gpu=budget,
            fix=Fix(
                "set_option", f"Use gpu_memory_utilization {util}", params={"gpu_memory_utilization": util}
            ),
        )
    shape = RunShape(max_num_seqs, max_num_batched_tokens, enforce_eager, tp)
    return _verdict(info, weights, per_token, tokens, budget, smallest, shape, len(gpus))


def _overhead(info: ModelInfo, gpu: GpuInfo, shape: RunShape) -> int:
    nccl = NCCL_BYTES if shape.tensor_parallel_size > 1 else 0
    return activation_bytes(info, gpu, shape) + graph_bytes(info, shape) + NON_TORCH_BYTES + nccl


def _verdict(
    info: ModelInfo,
    weights: int,
    per_token: int,
    tokens: int,
    budget: int,
    gpu: GpuInfo,
    shape: RunShape,
    gpu_count: int,
) -> FitEstimate:
    tp = shape.tensor_parallel_size
    overhead = _overhead(info, gpu, shape)
    fixed = weights // tp + overhead
    kv = per_token * tokens
    need = fixed + kv
    room = budget - fixed
    max_len = int(room / per_token * SUGGESTION_MARGIN) // BLOCK_TOKENS * BLOCK_TOKENS if room > 0 else 0
    numbers = f"needs about {_gib(need)} per GPU of {_gib(budget)} available"
    total_kv = kv * tp
    result = FitEstimate("fits", "", weights, total_kv, need, budget, max_len, None, overhead)
    if need <= budget * TIGHT_SHARE:
        return replace(result, message=f"Fits: {numbers}.")
    if need <= budget:
        return replace(
            result, verdict="tight", message=f"Tight: {numbers}; few long conversations fit at once."
        )
    if max_len >= BLOCK_TOKENS:
        fix = Fix(
            "set_option",
            f"Use max_model_len {max_len}",
            hint=f"--max-model-len {max_len}",
            params={"max_model_len": max_len},
        )
        message = f"Won't fit: {numbers}. A context of {max_len} tokens would fit."
        return replace(result, verdict="wont_fit", message=message, fix=fix)
    # The weights alone do not fit: more GPUs, or fewer bytes per weight.
    for more in (2, 4, 8):
        wider = replace(shape, tensor_parallel_size=more)
        if tp < more <= gpu_count:
            wider_kv = kv_bytes_per_token(info, tensor_parallel_size=more) or per_token
            if weights // more + _overhead(info, gpu, wider) + wider_kv * tokens <= budget:
                fix = Fix("set_option", f"Use {more} GPUs", params={"tensor_parallel_size": more})
                return replace(
                    result, verdict="wont_fit", message=f"Won't fit on {tp} GPU(s): {numbers}.", fix=fix
                )
    fix = Fix(
        "choose_model",
        "Choose a quantized model",
        hint="Pick a 4-bit (AWQ/GPTQ) or FP8 version of this model, or a smaller model.",
    )
    return replace(
        result,
        verdict="wont_fit",
        message=f"Won't fit: the weights alone exceed the GPU ({numbers}).",
        max_len_that_fits=0,
        fix=fix,
    )


# vLLM's default --gpu-memory-utilization (0.33).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92


def estimate_for_profile(
    profile: ServerProfile,
    info: ModelInfo,
    gpus: Sequence[GpuInfo],
    *,
    own_pids: Collection[int] | None = None,
    beside: float | None = None,
) -> FitEstimate:
    """:func:`estimate_fit` with a server profile's options (its unset ones take vLLM's defaults).

    ``own_pids``: the processes of our own server while it runs, so that memory it holds counts as free
    (it is restarted with the new settings) instead of making every model "won't fit"; by default the
    servers this process launched (:func:`engine.server.processes.own_server_pids`).
    ``beside``: the memory share of our embedding server for documents, which runs on the first visible GPU
    next to the chat model (:func:`pooling_share`): its share and its own CUDA context are taken from that
    card's free memory before the chat model's share is checked.
    """
    if own_pids is None:
        from engine.server.processes import own_server_pids

        own_pids = own_server_pids()
    length = profile.max_model_len
    gpus, order_warning = visible_gpus(gpus, launch_environment(profile))
    if beside:
        gpus = reserve_beside(gpus, beside)
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
        max_num_seqs=profile.max_num_seqs,
        enforce_eager=bool(profile.enforce_eager),
        own_pids=own_pids,
    )
    fits_shorter = estimate.fix is not None and "max_model_len" in estimate.fix.params
    if length == "auto" and fits_shorter and estimate.max_len_that_fits:
        # With "auto" vLLM itself shortens the context to what fits: that is not a failure.
        estimate = replace(
            estimate,
            verdict="tight",
            message=f"Fits with a shorter context: vLLM will choose about {estimate.max_len_that_fits} "
            f"tokens instead of the model's {info.max_context}.",
            fix=None,
        )
    if beside and gpus and estimate.verdict not in ("cpu", "unknown"):
        estimate = _with_embedder(estimate, gpus[0], beside)
    if order_warning and estimate.verdict not in ("cpu", "unknown"):
        estimate = replace(estimate, message=f"{estimate.message} {order_warning}")
    return estimate


def beside_bytes(gpu: GpuInfo, share: float) -> int:
    """What a second server of ours with memory share ``share`` holds on ``gpu``: its budget (vLLM requests
    ``ceil(total × share)``) and its worker's CUDA context."""
    return math.ceil(gpu.cuda_total_bytes * share) + CONTEXT_BYTES


def reserve_beside(gpus: Sequence[GpuInfo], share: float) -> list[GpuInfo]:
    """``gpus`` with the first one's free memory lowered by a second server of ours (the embedder, which
    vLLM puts on the first visible device)."""
    if not gpus:
        return []
    first = gpus[0]
    return [replace(first, free_bytes=first.free_bytes - beside_bytes(first, share)), *gpus[1:]]


def _with_embedder(estimate: FitEstimate, gpu: GpuInfo, share: float) -> FitEstimate:
    """The chat model's estimate, saying that the embedding model shares the card (and what to do when the
    two do not fit together)."""
    held = _gib(beside_bytes(gpu, share))
    taken = (
        f"the embedding model for documents takes {share:g} of GPU {gpu.index} ({held} with its CUDA context)"
    )
    fix = estimate.fix
    if fix is not None and "gpu_memory_utilization" in fix.params:
        util = fix.params["gpu_memory_utilization"]
        fix = Fix(
            fix.action,
            f"Use gpu_memory_utilization {util} for the chat model",
            hint=f"--gpu-memory-utilization {util}, the chat model's share lowered by the embedder's; or "
            "choose a remote embedding server (Preferences > Documents), or detach the documents",
            params=fix.params,
        )
        return replace(estimate, message=f"{estimate.message} Beside it {taken}.", fix=fix)
    return replace(estimate, message=f"{estimate.message} ({taken[0].upper()}{taken[1:]}.)")


def launch_environment(profile: ServerProfile) -> dict[str, str]:
    """The CUDA settings a launch of ``profile`` sees: the app's own environment (inherited), then the
    profile's."""
    inherited = {k: v for k, v in os.environ.items() if k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
    return {**inherited, **profile.env}


# The built-in model's memory share on a GPU: what it needs, with this much to spare for the estimate's
# error, instead of vLLM's 0.92 (which a compositor and a browser on the same card already prevent).
BUILTIN_SHARE_MARGIN = 1.5
MIN_SHARE = 0.05


def sized_share(profile: ServerProfile, info: ModelInfo, gpus: Sequence[GpuInfo]) -> float | None:
    """A ``gpu_memory_utilization`` just large enough for ``info`` served by ``profile`` (``None``: no GPU
    or unknown sizes); never above vLLM's default."""
    visible, _ = visible_gpus(gpus, launch_environment(profile))
    tp = max(1, profile.tensor_parallel_size)
    used = visible[:tp]
    weights = weight_bytes(info, dtype=profile.dtype, quantization=profile.quantization or None)
    per_token = kv_bytes_per_token(
        info, dtype=profile.dtype, kv_cache_dtype=profile.kv_cache_dtype, tensor_parallel_size=tp
    )
    length = profile.max_model_len if isinstance(profile.max_model_len, int) else info.max_context
    if len(used) < tp or weights is None or per_token is None or not length:
        return None
    smallest = min(used, key=lambda g: g.cuda_total_bytes)
    shape = RunShape(profile.max_num_seqs, None, bool(profile.enforce_eager), tp)
    need = weights // tp + _overhead(info, smallest, shape) + per_token * length
    share = math.ceil(need * BUILTIN_SHARE_MARGIN / smallest.cuda_total_bytes * 100) / 100
    return min(DEFAULT_GPU_MEMORY_UTILIZATION, max(MIN_SHARE, share))


# vLLM's options that make a server a pooling one (``/v1/embeddings``): ``--runner pooling``, older
# ``--task embed``.
POOLING_ARGS = (("--runner", "pooling"), ("--task", "embed"), ("--convert", "embed"))


def is_pooling(profile: ServerProfile) -> bool:
    """Whether ``profile`` serves an embedding model (its extra arguments ask for vLLM's pooling runner)."""
    import shlex

    try:
        words = shlex.split(profile.extra_args)
    except ValueError:
        return False
    pairs = {(w.split("=", 1)[0], w.split("=", 1)[1]) for w in words if "=" in w}
    pairs |= set(itertools.pairwise(words))
    return any(pair in pairs for pair in POOLING_ARGS)


# Encoder-only families (their attention is bidirectional: vLLM v1 keeps no KV cache for them).
ENCODER_ONLY_TYPES = (
    "bert",
    "roberta",
    "xlm-roberta",
    "distilbert",
    "electra",
    "mpnet",
    "nomic_bert",
    "modernbert",
    "deberta",
    "deberta-v2",
    "new",  # Alibaba's gte "NewModel"
)


def pooling_need(
    info: ModelInfo,
    gpu: GpuInfo,
    *,
    dtype: str | None,
    enforce_eager: bool = True,
    max_model_len: int | None = None,
) -> int | None:
    """What an embedding (pooling) server needs of its budget on ``gpu``: the weights, the profiling peak of
    the default batch (``max_num_batched_tokens`` of activations; a pooler has no sampler), memory outside
    PyTorch, CUDA graphs unless ``enforce_eager``, and a decoder model's KV cache for one sequence of
    ``max_model_len`` (an encoder-only model such as BERT keeps none in vLLM v1). ``None`` when the config
    lacks the sizes."""
    weights = weight_bytes(info, dtype=dtype)
    if weights is None or info.hidden_size is None:
        return None
    element = dtype_bytes(dtype, info)
    shape = RunShape(enforce_eager=enforce_eager)
    activations = activation_bytes(replace(info, vocab_size=0), gpu, shape, element)
    kv = 0
    if (info.model_type or "").lower() not in ENCODER_ONLY_TYPES:
        per_token = kv_bytes_per_token(info, dtype=dtype) or 0
        kv = per_token * (max_model_len or info.max_context or 0)
    return int(weights + activations + graph_bytes(info, shape) + NON_TORCH_BYTES + kv)


def pooling_share(profile: ServerProfile, info: ModelInfo, gpus: Sequence[GpuInfo]) -> float | None:
    """A ``gpu_memory_utilization`` for an embedding server: its need × 1.5 in whole percent of the first
    visible GPU (``None``: no GPU or unknown sizes). all-MiniLM-L6-v2 asks for 0.03 of a 24 GiB card."""
    visible, _ = visible_gpus(gpus, launch_environment(profile))
    if not visible:
        return None
    eager = True if profile.enforce_eager is None else profile.enforce_eager
    length = profile.max_model_len if isinstance(profile.max_model_len, int) else None
    need = pooling_need(info, visible[0], dtype=profile.dtype, enforce_eager=eager, max_model_len=length)
    if need is None:
        return None
    share = math.ceil(need * BUILTIN_SHARE_MARGIN / visible[0].cuda_total_bytes * 100) / 100
    return min(DEFAULT_GPU_MEMORY_UTILIZATION, share)


def embedder_gpu_profile(
    profile: ServerProfile, gpus: Sequence[GpuInfo] | None = None, info: ModelInfo | None = None
) -> ServerProfile:
    """An embedding server's profile for a GPU launch: a memory share sized to the model (not vLLM's 0.92,
    which leaves nothing for the chat model) and eager mode (CUDA graphs would cost more than the model),
    where the profile sets neither. ``info``: the model's sizes (default: read from its folder)."""
    if profile.kind != "local" or not is_pooling(profile) or profile.gpu_memory_utilization is not None:
        return profile
    if info is None:
        if profile.source != "folder":
            return profile
        try:
            info = read_model_info(Path(profile.model).expanduser())
        except NotAModelFolder:
            return profile
    share = pooling_share(profile, info, detect_gpus() if gpus is None else gpus)
    if share is None:
        return profile
    eager = True if profile.enforce_eager is None else profile.enforce_eager
    return profile.model_copy(update={"gpu_memory_utilization": share, "enforce_eager": eager})


def gpu_launch_profile(profile: ServerProfile, paths: AppPaths) -> ServerProfile:
    """The profile a GPU launch uses: the built-in chat model and embedding servers get shares sized to
    them (:func:`builtin_gpu_profile`, :func:`embedder_gpu_profile`)."""
    if is_pooling(profile):
        return embedder_gpu_profile(profile)
    return builtin_gpu_profile(profile, paths)


def builtin_gpu_profile(
    profile: ServerProfile, paths: AppPaths, gpus: Sequence[GpuInfo] | None = None
) -> ServerProfile:
    """The built-in model's profile for a GPU launch: a memory share sized to the model when the profile sets
    none. Other profiles, and a built-in one with its own share, are returned as they are."""
    from engine.models.builtin import builtin_model_path

    if profile.source != "builtin" or profile.kind != "local" or profile.gpu_memory_utilization is not None:
        return profile
    try:
        info = read_model_info(builtin_model_path(paths))
    except NotAModelFolder:
        return profile
    share = sized_share(profile, info, detect_gpus() if gpus is None else gpus)
    return profile if share is None else profile.model_copy(update={"gpu_memory_utilization": share})
