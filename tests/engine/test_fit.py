"""Will-it-fit arithmetic against numbers computed by hand for known configs."""

from __future__ import annotations

from engine.catalog import ModelInfo
from engine.fit import (
    GIB,
    OVERHEAD_BYTES,
    estimate_fit,
    estimate_for_profile,
    estimate_params,
    kv_bytes_per_token,
    weight_bytes,
)
from engine.hardware import GpuInfo
from engine.profiles import ServerProfile
from tests.support.hf_cache import SMOLLM2_CONFIG

# Llama-2-7B: 32 layers, 32 heads (no GQA), hidden 4096, MLP 11008, vocab 32000, untied, float16.
LLAMA2_7B = ModelInfo(
    architecture="LlamaForCausalLM",
    max_context=4096,
    dtype="float16",
    num_layers=32,
    hidden_size=4096,
    num_attention_heads=32,
    num_kv_heads=32,
    head_dim=128,
    vocab_size=32000,
    intermediate_size=11008,
)


def gpu(total_gib: float, free_gib: float, index: int = 0) -> GpuInfo:
    return GpuInfo(
        index=index, name="Test GPU", total_bytes=int(total_gib * GIB), free_bytes=int(free_gib * GIB)
    )


def test_param_counts_match_published_numbers() -> None:
    # 6,738,415,616 is Llama-2-7B's published count; 134,515,008 is SmolLM2-135M's.
    assert estimate_params(LLAMA2_7B) == 6_738_415_616
    assert estimate_params(ModelInfo.from_config(SMOLLM2_CONFIG)) == 134_515_008


def test_kv_cache_per_token() -> None:
    # 32 layers × 32 kv heads × 128 × 2 (K and V) × 2 bytes
    assert kv_bytes_per_token(LLAMA2_7B) == 524_288
    assert kv_bytes_per_token(LLAMA2_7B, kv_cache_dtype="fp8") == 262_144
    # SmolLM2: 30 × 3 × 64 × 2 × 2
    assert kv_bytes_per_token(ModelInfo.from_config(SMOLLM2_CONFIG)) == 23_040


def test_weights_by_dtype_and_quantization() -> None:
    assert weight_bytes(LLAMA2_7B) == 13_476_831_232
    assert weight_bytes(LLAMA2_7B, dtype="float32") == 26_953_662_464
    assert weight_bytes(LLAMA2_7B, quantization="fp8") == 6_738_415_616
    exact = ModelInfo(**{**LLAMA2_7B.__dict__, "weight_bytes": 13_500_000_000, "param_count": 6_750_000_000})
    assert weight_bytes(exact) == 13_500_000_000  # the safetensors headers win when the dtype is unchanged


def test_fits_on_24_gib() -> None:
    est = estimate_fit(LLAMA2_7B, [gpu(24, 23.5)], max_model_len=4096)
    budget = int(24 * GIB * 0.92)
    assert est.verdict == "fits"
    assert est.budget_per_gpu == budget
    assert est.need_per_gpu == 13_476_831_232 + OVERHEAD_BYTES + 4096 * 524_288
    # (budget - weights - overhead) / per-token bytes, down to a multiple of 16
    assert est.max_len_that_fits == (budget - 13_476_831_232 - OVERHEAD_BYTES) // 524_288 // 16 * 16 == 17456


def test_tight_band() -> None:
    est = estimate_fit(LLAMA2_7B, [gpu(24, 23.5)], max_model_len=16384)
    assert est.verdict == "tight"


def test_too_long_context_suggests_max_model_len() -> None:
    est = estimate_fit(LLAMA2_7B, [gpu(24, 23.5)], max_model_len=32768)
    assert est.verdict == "wont_fit"
    assert est.fix is not None
    assert est.fix.params == {"max_model_len": 17456}
    assert "17456" in est.message


def test_weights_too_big_suggests_more_gpus_then_quantization() -> None:
    two = estimate_fit(LLAMA2_7B, [gpu(12, 12, 0), gpu(12, 12, 1)], max_model_len=4096)
    assert two.verdict == "wont_fit"
    assert two.fix is not None
    assert two.fix.params == {"tensor_parallel_size": 2}
    ok = estimate_fit(LLAMA2_7B, [gpu(12, 12, 0), gpu(12, 12, 1)], max_model_len=4096, tensor_parallel_size=2)
    assert ok.verdict == "fits"
    assert ok.need_per_gpu == 13_476_831_232 // 2 + OVERHEAD_BYTES + 4096 * 524_288 // 2
    one = estimate_fit(LLAMA2_7B, [gpu(12, 12)], max_model_len=4096)
    assert one.verdict == "wont_fit"
    assert one.fix is not None
    assert one.fix.action == "choose_model"


def test_busy_gpu_suggests_lower_utilization() -> None:
    est = estimate_fit(LLAMA2_7B, [gpu(24, 10)], max_model_len=4096)
    assert est.verdict == "wont_fit"
    assert est.fix is not None
    assert est.fix.params == {"gpu_memory_utilization": 0.41}


def test_more_tensor_parallel_than_gpus() -> None:
    est = estimate_fit(LLAMA2_7B, [gpu(80, 80)], tensor_parallel_size=2)
    assert est.verdict == "wont_fit"
    assert est.fix is not None
    assert est.fix.params == {"tensor_parallel_size": 1}


def test_no_gpu_means_cpu_build() -> None:
    est = estimate_fit(ModelInfo.from_config(SMOLLM2_CONFIG), [], max_model_len=2048)
    assert est.verdict == "cpu"
    assert "CPU build" in est.message
    assert est.kv_bytes == 2048 * 23_040


def test_unknown_shape() -> None:
    est = estimate_fit(ModelInfo(architecture="Mystery"), [gpu(24, 24)])
    assert est.verdict == "unknown"


def test_profile_options_are_used() -> None:
    profile = ServerProfile(
        name="7b",
        source="hf_repo",
        model="meta-llama/Llama-2-7b-hf",
        max_model_len=40000,
        kv_cache_dtype="fp8",
    )
    est = estimate_for_profile(profile, LLAMA2_7B, [gpu(24, 23.5)])
    assert est.kv_bytes == 40000 * 262_144
    assert est.budget_per_gpu == int(24 * GIB * 0.92)
    assert est.verdict == "wont_fit"
    assert est.fix is not None
    assert est.fix.params == {"max_model_len": 34928}


def test_auto_context_is_shortened_by_vllm_not_refused() -> None:
    long_context = ModelInfo(**{**LLAMA2_7B.__dict__, "max_context": 32768})
    profile = ServerProfile(
        name="7b", source="hf_repo", model="meta-llama/Llama-2-7b-hf", max_model_len="auto"
    )
    est = estimate_for_profile(profile, long_context, [gpu(24, 23.5)])
    assert est.verdict == "tight"
    assert est.fix is None
    assert "about 17456 tokens" in est.message


# A 1B float32 checkpoint as read from disk: 4 bytes per weight in the safetensors files.
FLOAT32_1B = ModelInfo(
    architecture="LlamaForCausalLM",
    max_context=2048,
    dtype="float32",
    num_layers=16,
    hidden_size=2048,
    num_attention_heads=32,
    num_kv_heads=8,
    head_dim=64,
    vocab_size=32000,
    intermediate_size=8192,
    weight_bytes=4_000_000_000,
    param_count=1_000_000_000,
)


def test_float32_checkpoint_is_served_in_16_bit_with_auto() -> None:
    assert weight_bytes(FLOAT32_1B) == 2_000_000_000
    assert weight_bytes(FLOAT32_1B, dtype="auto") == 2_000_000_000
    assert weight_bytes(FLOAT32_1B, dtype="bfloat16") == 2_000_000_000
    # Asked for explicitly, float32 is what vLLM loads: the files' size is exact.
    assert weight_bytes(FLOAT32_1B, dtype="float32") == 4_000_000_000


def test_float32_checkpoint_that_fits_in_16_bit_is_not_refused() -> None:
    # 5 GiB × 0.92 = 4.6 GiB: 2 GB of weights + 1 GiB overhead + 64 MiB of KV cache fit; 4 GB would not.
    est = estimate_fit(FLOAT32_1B, [gpu(5, 5)], max_model_len=2048)
    assert est.weights_bytes == 2_000_000_000
    assert est.verdict == "fits"
    explicit = estimate_fit(FLOAT32_1B, [gpu(5, 5)], max_model_len=2048, dtype="float32")
    assert explicit.verdict == "wont_fit"


def test_quantized_checkpoint_keeps_its_packed_size_under_auto() -> None:
    packed = ModelInfo(**{**FLOAT32_1B.__dict__, "quantization": "gptq 4-bit", "weight_bytes": 600_000_000})
    assert weight_bytes(packed) == 600_000_000
