"""Will-it-fit arithmetic against numbers computed by hand for known configs and cards.

The three GPU cases of issue 20 are worked out in the comments, term by term, from the models' published
config.json and checkpoint sizes and from vLLM 0.32's accounting (engine/server/fit.py's docstring).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

from engine.hardware import GpuInfo, GpuProcess
from engine.models.catalog import ModelInfo, read_model_info
from engine.server.fit import (
    GIB,
    MIB,
    estimate_fit,
    estimate_for_profile,
    estimate_params,
    kv_bytes_per_token,
    weight_bytes,
)
from engine.server.profiles import ServerProfile
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

# Qwen2.5-7B-Instruct's config.json; its four shards hold 7,615,616,512 bf16 parameters (15,231,233,024 B).
QWEN25_7B_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
QWEN25_7B = ModelInfo(
    **{
        **ModelInfo.from_config(QWEN25_7B_CONFIG).__dict__,
        "weight_bytes": 15_231_233_024,
        "param_count": 7_615_616_512,
    }
)
# Llama-3.1-8B-Instruct: 8,030,261,248 bf16 parameters (16,060,522,496 B), of which the embeddings and the
# untied lm_head are 2 × 128256 × 4096 = 1,050,673,152.
LLAMA31_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
LLAMA31_8B = ModelInfo(
    **{
        **ModelInfo.from_config(LLAMA31_8B_CONFIG).__dict__,
        "weight_bytes": 16_060_522_496,
        "param_count": 8_030_261_248,
        "embedding_params": 1_050_673_152,
    }
)
LLAMA33_70B_AWQ_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True},
}


def card(total_mib: int, reserved_mib: int, used_mib: int, index: int = 0, name: str = "Card") -> GpuInfo:
    """A GPU as NVML reports it: ``total`` includes what the driver reserves; CUDA sees the rest."""
    return GpuInfo(
        index=index,
        name=name,
        total_bytes=total_mib * MIB,
        free_bytes=(total_mib - reserved_mib - used_mib) * MIB,
        reserved_bytes=reserved_mib * MIB,
    )


def gpu(total_gib: float, free_gib: float, index: int = 0) -> GpuInfo:
    return GpuInfo(
        index=index, name="Test GPU", total_bytes=int(total_gib * GIB), free_bytes=int(free_gib * GIB)
    )


def write_awq_70b_headers(folder: Path) -> None:
    """The safetensors headers (no data) of a Llama-3.3-70B AWQ checkpoint: int32 ``qweight`` [in, out/8],
    fp16 ``scales`` [in/128, out], int32 ``qzeros`` [in/128, out/8] per linear layer; fp16 embeddings,
    lm_head and norms."""
    hidden, inter, kv = 8192, 28672, 1024
    linears = {
        "self_attn.q_proj": (hidden, hidden),
        "self_attn.k_proj": (hidden, kv),
        "self_attn.v_proj": (hidden, kv),
        "self_attn.o_proj": (hidden, hidden),
        "mlp.gate_proj": (hidden, inter),
        "mlp.up_proj": (hidden, inter),
        "mlp.down_proj": (inter, hidden),
    }
    tensors: list[tuple[str, str, list[int], int]] = [
        ("model.embed_tokens.weight", "F16", [128256, hidden], 2),
        ("lm_head.weight", "F16", [128256, hidden], 2),
        ("model.norm.weight", "F16", [hidden], 2),
    ]
    for layer in range(80):
        prefix = f"model.layers.{layer}."
        tensors += [
            (prefix + "input_layernorm.weight", "F16", [hidden], 2),
            (prefix + "post_attention_layernorm.weight", "F16", [hidden], 2),
        ]
        for name, (rows, cols) in linears.items():
            tensors += [
                (prefix + name + ".qweight", "I32", [rows, cols // 8], 4),
                (prefix + name + ".scales", "F16", [rows // 128, cols], 2),
                (prefix + name + ".qzeros", "I32", [rows // 128, cols // 8], 4),
            ]
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, size in tensors:
        n = size * shape[0] * (shape[1] if len(shape) > 1 else 1)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)  # headers only
    (folder / "config.json").write_text(json.dumps(LLAMA33_70B_AWQ_CONFIG), encoding="utf-8")


def test_param_counts_match_published_numbers() -> None:
    # 6,738,415,616 is Llama-2-7B's published count; 134,515,008 is SmolLM2-135M's; Llama-3.1-8B's is
    # 8,030,261,248. (Qwen2.5 adds q/k/v biases the estimate leaves out: 129,024 parameters.)
    assert estimate_params(LLAMA2_7B) == 6_738_415_616
    assert estimate_params(ModelInfo.from_config(SMOLLM2_CONFIG)) == 134_515_008
    assert estimate_params(ModelInfo.from_config(LLAMA31_8B_CONFIG)) == 8_030_261_248
    assert estimate_params(ModelInfo.from_config(QWEN25_7B_CONFIG)) == 7_615_616_512 - 129_024


def test_kv_cache_per_token() -> None:
    # 32 layers × 32 kv heads × 128 × 2 (K and V) × 2 bytes
    assert kv_bytes_per_token(LLAMA2_7B) == 524_288
    assert kv_bytes_per_token(LLAMA2_7B, kv_cache_dtype="fp8") == 262_144
    # SmolLM2: 30 × 3 × 64 × 2 × 2
    assert kv_bytes_per_token(ModelInfo.from_config(SMOLLM2_CONFIG)) == 23_040
    # Per GPU with tensor parallelism: 8 KV heads over 2 GPUs = 4 each; over 16 GPUs each keeps one copy.
    assert kv_bytes_per_token(LLAMA31_8B, tensor_parallel_size=2) == 32 * 4 * 128 * 2 * 2
    assert kv_bytes_per_token(LLAMA31_8B, tensor_parallel_size=16) == 32 * 1 * 128 * 2 * 2


def test_weights_by_dtype_and_quantization() -> None:
    assert weight_bytes(LLAMA2_7B) == 13_476_831_232
    assert weight_bytes(LLAMA2_7B, dtype="float32") == 26_953_662_464
    exact = ModelInfo(**{**LLAMA2_7B.__dict__, "weight_bytes": 13_500_000_000, "param_count": 6_750_000_000})
    assert weight_bytes(exact) == 13_500_000_000  # the safetensors headers win when the dtype is unchanged


def test_online_fp8_keeps_embeddings_and_lm_head_in_16_bit() -> None:
    # (8,030,261,248 − 1,050,673,152) linear weights × 1 byte + 1,050,673,152 × 2 bytes = 9,080,934,400
    # (8.46 GiB); "parameters × 1 byte" would say 7.48 GiB.
    assert weight_bytes(LLAMA31_8B, quantization="fp8") == 9_080_934_400
    for shorthand in ("fp8_per_tensor", "fp8_per_channel", "FP8"):
        assert weight_bytes(LLAMA31_8B, quantization=shorthand) == 9_080_934_400
    # Without headers the embeddings come from the config: the same numbers.
    config_only = ModelInfo.from_config(LLAMA31_8B_CONFIG)
    assert weight_bytes(config_only, quantization="fp8") == 9_080_934_400


def test_unknown_or_checkpoint_only_methods_are_not_guessed() -> None:
    est = estimate_fit(LLAMA31_8B, [gpu(24, 24)], quantization="superquant")
    assert est.verdict == "unknown"
    assert "superquant" in est.message
    # awq_marlin reads an AWQ checkpoint; on a 16-bit one it is not a way to shrink it.
    marlin = estimate_fit(LLAMA31_8B, [gpu(24, 24)], quantization="awq_marlin")
    assert marlin.verdict == "unknown"
    assert "checkpoint" in marlin.message


def test_packed_awq_checkpoint_is_counted_by_its_bytes(tmp_path: Path) -> None:
    write_awq_70b_headers(tmp_path / "awq")
    info = read_model_info(tmp_path / "awq")
    assert (info.quant_method, info.quant_bits, info.quant_group_size) == ("awq", 4, 128)
    # qweight 68,451,041,280 × ½ + scales × 2/128 + qzeros × ½/128 + 16-bit embeddings, lm_head and norms:
    # 34,225,520,640 + 1,069,547,520 + 267,386,880 + 4,202,692,608 + 2,637,824 = 39,767,785,472 (37.04 GiB).
    assert info.weight_bytes == 39_767_785_472
    for method in ("awq", "awq_marlin", None):
        assert weight_bytes(info, quantization=method) == 39_767_785_472
    # The packed int32 elements are not parameters: counting them at ½ byte each gave 5.24 GiB.
    assert info.param_count is not None
    assert info.param_count * 0.5 / GIB < 6
    # Without the files (a repo id not downloaded yet) the config's bits and group size give within 0.1 %.
    from_config = weight_bytes(ModelInfo.from_config(LLAMA33_70B_AWQ_CONFIG))
    assert from_config is not None
    assert abs(from_config - 39_767_785_472) / 39_767_785_472 < 0.001


def test_compressed_tensors_bits_are_read_from_config_groups() -> None:
    config = {
        **LLAMA31_8B_CONFIG,
        "quantization_config": {
            "quant_method": "compressed-tensors",
            "format": "pack-quantized",
            "config_groups": {"group_0": {"weights": {"num_bits": 4, "group_size": 128, "type": "int"}}},
        },
    }
    info = ModelInfo.from_config(config)
    assert (info.quant_method, info.quant_bits, info.quant_group_size) == ("compressed-tensors", 4, 128)
    assert info.quantization == "compressed-tensors 4-bit"


def test_qwen25_7b_bf16_on_a_24_gb_card_at_32k() -> None:
    # RTX 4090: NVML total 24,564 MiB, 450 MiB reserved (CUDA sees 23.55 GiB), 1,126 MiB used by the desktop.
    rtx4090 = card(24564, 450, 1126)
    est = estimate_fit(QWEN25_7B, [rtx4090], max_model_len=32768, dtype="auto")
    budget = int(24114 * MIB * 0.92)  # 23,262,532,730
    # Overhead: activations 2048 tokens × (2 × 18944 + 4 × 3584) × 2 B = 213,909,504 + sampler 256 × 152064
    # × 8 B = 311,427,072; CUDA graphs 256 MiB + 28 × 4 MiB; non-torch 256 MiB → 1,179,648,000.
    overhead = 213_909_504 + 311_427_072 + (256 + 28 * 4) * MIB + 256 * MIB
    assert est.overhead_per_gpu == overhead == 1_179_648_000
    kv = 28 * 4 * 128 * 2 * 2 * 32768  # 1,879,048,192 (1.75 GiB)
    assert est.budget_per_gpu == budget
    assert est.need_per_gpu == 15_231_233_024 + overhead + kv  # 18,289,929,216: 78.6 % of the budget
    assert est.verdict == "fits"
    # Room (budget − weights − overhead) / 57,344 B per token = 119,483; 90 % of it, in blocks of 16.
    assert est.max_len_that_fits == 107_520


def test_llama31_8b_fp8_on_a_16_gb_card() -> None:
    # A 16 GB card: NVML 16,376 MiB, 300 MiB reserved, 700 MiB used by the desktop.
    sixteen = card(16376, 300, 700)
    est = estimate_fit(LLAMA31_8B, [sixteen], quantization="fp8")
    budget = int(16076 * MIB * 0.92)  # 15,508,355,153
    # Overhead: 2048 × (2 × 14336 + 4 × 4096) × 2 = 184,549,376 + 256 × 128256 × 8 = 262,668,288 + graphs
    # (256 + 32 × 4) MiB + 256 MiB non-torch = 1,118,306,304. Fixed: 9,080,934,400 + that = 10,199,240,704.
    assert est.overhead_per_gpu == 1_118_306_304
    assert est.weights_bytes == 9_080_934_400
    assert est.budget_per_gpu == budget
    # The model's 131,072 tokens need 16 GiB of KV cache (128 KiB a token): no.
    assert est.verdict == "wont_fit"
    # (15,508,355,153 − 10,199,240,704) / 131,072 = 40,505 tokens; 90 % in blocks of 16 = 36,448.
    assert est.max_len_that_fits == 36_448
    assert est.fix is not None
    assert est.fix.params == {"max_model_len": 36_448}
    # The suggestion itself fits (tight) rather than failing a second time.
    again = estimate_fit(LLAMA31_8B, [sixteen], quantization="fp8", max_model_len=36_448)
    assert again.verdict in ("fits", "tight")
    assert again.need_per_gpu is not None
    assert again.need_per_gpu <= budget


def test_llama33_70b_awq_on_two_48_gb_cards(tmp_path: Path) -> None:
    write_awq_70b_headers(tmp_path / "awq")
    info = read_model_info(tmp_path / "awq")
    # Two 48 GB cards: NVML 49,140 MiB, 500 MiB reserved; the desktop holds 600 MiB on the first.
    cards = [card(49140, 500, 600, 0), card(49140, 500, 40, 1)]
    est = estimate_fit(info, cards, tensor_parallel_size=2)
    budget = int(48640 * MIB * 0.92)  # 46,922,517,708
    # Per GPU: weights 39,767,785,472 / 2 = 19,883,892,736; activations 2048 × (28672 + 32768) × 2 =
    # 251,658,240 + sampler 262,668,288; graphs (256 + 80 × 4) MiB; non-torch + NCCL 512 MiB.
    overhead = 251_658_240 + 262_668_288 + (256 + 80 * 4) * MIB + 512 * MIB
    assert est.overhead_per_gpu == overhead == 1_655_177_216
    kv = 80 * 4 * 128 * 2 * 2 * 131072  # 4 of the 8 KV heads per GPU: 20 GiB for the full context
    assert est.need_per_gpu == 19_883_892_736 + overhead + kv  # 43,013,906,432: 91.7 % of the budget
    assert est.budget_per_gpu == budget
    assert est.verdict == "tight"
    assert est.max_len_that_fits == 139_424
    # On one card the 37 GiB of weights leave room for a short context only: 32k tokens (320 KiB each) do
    # not fit. Fixed: 39,767,785,472 + activations 2048 × 90,112 × 2 + 262,668,288 + graphs 576 MiB +
    # 256 MiB = 41,271,967,744; (46,922,517,708 − that) / 327,680 = 17,244 tokens; 90 % → 15,504.
    one = estimate_fit(info, cards, tensor_parallel_size=1, max_model_len=32768)
    assert one.verdict == "wont_fit"
    assert one.max_len_that_fits == 15_504


def test_free_memory_counts_the_workers_own_cuda_context() -> None:
    # 8 GiB card with 7.4 GiB free: 0.92 × 8 = 7.36 GiB is asked; after vLLM's CUDA context (512 MiB)
    # only 6.9 GiB are free, so vLLM would refuse with "Free memory on device ...".
    est = estimate_fit(LLAMA2_7B, [gpu(8, 7.4)], max_model_len=1024, dtype="auto")
    assert est.verdict == "wont_fit"
    assert est.fix is not None
    assert est.fix.params == {"gpu_memory_utilization": 0.86}  # (7.4 − 0.5) / 8 = 0.8625, rounded down
    assert "CUDA context" in est.message


def test_our_own_server_on_the_card_does_not_make_everything_not_fit() -> None:
    # Our running server (pids 100 and 101) holds 20 GiB of the 24; NVML says 3 GiB free.
    busy = GpuInfo(
        0,
        "RTX 4090",
        24 * GIB,
        3 * GIB,
        processes=(GpuProcess(100, 1 * GIB), GpuProcess(101, 19 * GIB), GpuProcess(555, 1 * GIB)),
    )
    assert estimate_fit(LLAMA2_7B, [busy], max_model_len=4096).verdict == "wont_fit"
    ours = estimate_fit(LLAMA2_7B, [busy], max_model_len=4096, own_pids={100, 101})
    assert ours.verdict in ("fits", "tight")
    profile = ServerProfile(name="7b", source="hf_repo", model="meta-llama/Llama-2-7b-hf", max_model_len=4096)
    assert estimate_for_profile(profile, LLAMA2_7B, [busy], own_pids=[100, 101]).verdict == ours.verdict


def test_eager_mode_and_fewer_sequences_leave_more_for_the_cache() -> None:
    base = estimate_fit(QWEN25_7B, [card(24564, 450, 0)], max_model_len=8192)
    eager = estimate_fit(QWEN25_7B, [card(24564, 450, 0)], max_model_len=8192, enforce_eager=True)
    fewer = estimate_fit(QWEN25_7B, [card(24564, 450, 0)], max_model_len=8192, max_num_seqs=16)
    assert base.overhead_per_gpu is not None
    assert eager.overhead_per_gpu == base.overhead_per_gpu - (256 + 28 * 4) * MIB
    assert fewer.overhead_per_gpu == base.overhead_per_gpu - (256 - 16) * 152064 * 8


def test_large_cards_plan_for_vllms_larger_batches() -> None:
    # On 70 GiB and larger cards vLLM serves with 8192 batched tokens and 1024 sequences.
    h100 = card(81559, 470, 0)
    est = estimate_fit(QWEN25_7B, [h100], max_model_len=32768)
    per_token = (2 * 18944 + 4 * 3584) * 2
    assert est.overhead_per_gpu == 8192 * per_token + 1024 * 152064 * 8 + (256 + 28 * 4) * MIB + 256 * MIB


def test_busy_gpu_suggests_lower_utilization() -> None:
    est = estimate_fit(LLAMA2_7B, [gpu(24, 10)], max_model_len=4096)
    assert est.verdict == "wont_fit"
    assert est.fix is not None
    assert est.fix.params == {"gpu_memory_utilization": 0.39}  # (10 − 0.5) / 24 = 0.396


def test_more_tensor_parallel_than_gpus() -> None:
    est = estimate_fit(LLAMA2_7B, [gpu(80, 80)], tensor_parallel_size=2)
    assert est.verdict == "wont_fit"
    assert est.fix is not None
    assert est.fix.params == {"tensor_parallel_size": 1}


def test_weights_too_big_suggests_more_gpus_then_quantization() -> None:
    two = estimate_fit(LLAMA2_7B, [gpu(12, 12, 0), gpu(12, 12, 1)], max_model_len=4096)
    assert two.verdict == "wont_fit"
    assert two.fix is not None
    assert two.fix.params == {"tensor_parallel_size": 2}
    ok = estimate_fit(LLAMA2_7B, [gpu(12, 12, 0), gpu(12, 12, 1)], max_model_len=4096, tensor_parallel_size=2)
    assert ok.verdict in ("fits", "tight")
    one = estimate_fit(LLAMA2_7B, [gpu(12, 12)], max_model_len=4096)
    assert one.verdict == "wont_fit"
    assert one.fix is not None
    assert one.fix.action == "choose_model"


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
        enforce_eager=True,
        max_num_seqs=32,
    )
    est = estimate_for_profile(profile, LLAMA2_7B, [gpu(24, 23.5)])
    direct = estimate_fit(
        LLAMA2_7B,
        [gpu(24, 23.5)],
        max_model_len=40000,
        kv_cache_dtype="fp8",
        enforce_eager=True,
        max_num_seqs=32,
    )
    assert est == direct
    assert est.kv_bytes == 40000 * 262_144
    assert est.budget_per_gpu == int(24 * GIB * 0.92)
    assert est.verdict == "wont_fit"


def test_auto_context_is_shortened_by_vllm_not_refused() -> None:
    long_context = ModelInfo(**{**LLAMA2_7B.__dict__, "max_context": 32768})
    profile = ServerProfile(
        name="7b", source="hf_repo", model="meta-llama/Llama-2-7b-hf", max_model_len="auto"
    )
    est = estimate_for_profile(profile, long_context, [gpu(24, 23.5)])
    assert est.verdict == "tight"
    assert est.fix is None
    assert f"about {est.max_len_that_fits} tokens" in est.message


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
    # 4 GiB × 0.8 = 3.2 GiB. In 16 bit: 2,000,000,000 + activations 100,663,296 + sampler 65,536,000 +
    # graphs 320 MiB + 256 MiB + 64 MiB of KV cache = 2.64 GiB (fits); in float32 2 GB more (does not).
    est = estimate_fit(FLOAT32_1B, [gpu(4, 4)], max_model_len=2048, gpu_memory_utilization=0.8)
    assert est.weights_bytes == 2_000_000_000
    assert est.need_per_gpu == 2_837_287_936
    assert est.verdict == "fits"
    explicit = estimate_fit(
        FLOAT32_1B, [gpu(4, 4)], max_model_len=2048, dtype="float32", gpu_memory_utilization=0.8
    )
    assert explicit.verdict == "wont_fit"


def test_quantized_checkpoint_keeps_its_packed_size_under_auto() -> None:
    packed = ModelInfo(**{**FLOAT32_1B.__dict__, "quantization": "gptq 4-bit", "weight_bytes": 600_000_000})
    assert weight_bytes(packed) == 600_000_000
    assert weight_bytes(packed, quantization="gptq_marlin") == 600_000_000


@pytest.mark.parametrize("tp", [1, 2])
def test_vllm_takes_the_first_visible_gpus(tp: int) -> None:
    # vLLM uses devices 0..tp-1 of those it sees, even if a later one has more free memory.
    est = estimate_fit(
        LLAMA2_7B, [gpu(24, 2, 0), gpu(24, 24, 1)], max_model_len=2048, tensor_parallel_size=tp
    )
    assert est.verdict == "wont_fit"
    assert est.fix is not None
    assert "gpu_memory_utilization" in est.fix.params


def test_builtin_model_on_a_gpu_asks_for_a_share_sized_to_it(app_paths) -> None:  # type: ignore[no-untyped-def]
    from engine.models.builtin import builtin_model_path
    from engine.server.fit import builtin_gpu_profile, sized_share
    from engine.server.profiles import builtin_profile
    from tests.support.hf_cache import safetensors_bytes

    folder = builtin_model_path(app_paths)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(SMOLLM2_CONFIG), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(
        safetensors_bytes({"lm_head.weight": ("BF16", [1000, 576], 2)})
    )
    info = read_model_info(folder)
    profile = builtin_profile()
    # A desktop's 8 GiB card with 1.5 GiB taken by the compositor and a browser: vLLM's 0.92 would ask for
    # 7.36 GiB and fail. The model needs weights + overhead + 2048 tokens of KV cache, ×1.5, of 8 GiB.
    desk = gpu(8, 6.5)
    share = sized_share(profile, info, [desk])
    assert share is not None
    need = estimate_fit(info, [desk], max_model_len=2048, gpu_memory_utilization=0.5).need_per_gpu
    assert need is not None
    assert share == math.ceil(need * 1.5 / (8 * GIB) * 100) / 100
    assert share < 0.25
    sized = builtin_gpu_profile(profile, app_paths, [desk])
    assert sized.gpu_memory_utilization == share
    assert estimate_for_profile(sized, info, [desk]).verdict == "fits"
    assert estimate_for_profile(profile, info, [desk]).verdict == "wont_fit"
    # The user's own share, other models and machines without a GPU are left alone.
    own = profile.model_copy(update={"gpu_memory_utilization": 0.5})
    assert builtin_gpu_profile(own, app_paths, [desk]) == own
    other = ServerProfile(name="x", source="hf_repo", model="org/m")
    assert builtin_gpu_profile(other, app_paths, [desk]) == other
    assert builtin_gpu_profile(profile, app_paths, []) == profile


def test_by_default_the_servers_this_app_launched_count_as_free() -> None:
    import subprocess
    import sys

    from engine.server.processes import forget_leader, record_leader

    # A "server" this process launched (recorded as ours) holding 20 GiB of a 24 GiB card.
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        busy = GpuInfo(0, "RTX 4090", 24 * GIB, 3 * GIB, processes=(GpuProcess(server.pid, 20 * GIB),))
        profile = ServerProfile(name="7b", source="hf_repo", model="org/m", max_model_len=4096)
        assert estimate_for_profile(profile, LLAMA2_7B, [busy]).verdict == "wont_fit"
        assert record_leader(server.pid, ["vllm", "serve"]) is not None
        assert estimate_for_profile(profile, LLAMA2_7B, [busy]).verdict in ("fits", "tight")
        forget_leader(server.pid)
    finally:
        server.kill()
        server.wait()


def test_bfloat16_on_a_card_below_8_0_is_refused_with_float16_offered() -> None:
    t4 = GpuInfo(0, "Tesla T4", 15 * GIB, 15 * GIB, compute_capability=(7, 5))
    est = estimate_fit(FLOAT32_1B, [t4], max_model_len=1024, dtype="bfloat16", gpu_memory_utilization=0.9)
    assert est.verdict == "wont_fit"
    assert "Tesla T4 cannot compute in bfloat16 (compute capability 7.5" in est.message
    assert est.fix is not None
    assert est.fix.params == {"dtype": "float16"}
    # "auto" (vLLM falls back by itself) and float16 are judged on memory alone.
    assert (
        estimate_fit(FLOAT32_1B, [t4], max_model_len=1024, gpu_memory_utilization=0.9).verdict != "wont_fit"
    )


# all-MiniLM-L6-v2 (the built-in embedder) as read from its folder: a 6-layer BERT, hidden 384, MLP 1536,
# 22,713,728 parameters, served in float32 by --runner pooling.
MINILM = ModelInfo(
    architecture="BertModel",
    model_type="bert",
    max_context=512,
    num_layers=6,
    hidden_size=384,
    num_attention_heads=12,
    num_kv_heads=12,
    head_dim=32,
    vocab_size=30522,
    intermediate_size=1536,
    param_count=22_713_728,
)


def test_the_embedder_asks_for_a_share_sized_to_it_not_vllms_default(app_paths) -> None:  # type: ignore[no-untyped-def]
    from engine.documents.builtin_embedder import embedder_model_info, embedder_profile
    from engine.server.fit import embedder_gpu_profile, is_pooling, pooling_need, pooling_share
    from engine.server.profiles import build_serve_args

    profile = embedder_profile(app_paths)
    assert is_pooling(profile)
    # Before it is prepared, the published sizes stand in for its folder (the same need as read from it).
    published = embedder_model_info(app_paths, profile)
    assert published is not None
    assert pooling_need(published, gpu(24, 24), dtype="float32") == 397_039_104
    card24 = gpu(24, 24)
    # Weights 22,713,728 × 4 = 90,854,912; the profiling batch 2048 tokens × (2 × 1536 + 4 × 384) × 4 bytes
    # = 37,748,736 (a pooler has no sampler, BERT keeps no KV cache); 256 MiB outside PyTorch; no CUDA
    # graphs in eager mode: 397,039,104 bytes. × 1.5 of 24 GiB = 2.31 % → 0.03.
    assert pooling_need(MINILM, card24, dtype="float32") == 397_039_104
    assert pooling_share(profile, MINILM, [card24]) == 0.03
    sized = embedder_gpu_profile(profile, [card24], MINILM)
    assert sized.gpu_memory_utilization == 0.03
    assert sized.enforce_eager is True
    args = build_serve_args(sized, sized.model, 8001)
    assert args[args.index("--gpu-memory-utilization") + 1] == "0.03"
    assert "--enforce-eager" in args
    # An 80 GB card: vLLM's larger batch (8192 tokens: 150,994,944 bytes) → 510,285,312 × 1.5 of 79.6 GiB
    # = 0.9 % → 0.01.
    h100 = card(81559, 470, 0)
    assert pooling_share(profile, MINILM, [h100]) == 0.01
    # The user's own share, a chat profile, a remote embedder and no GPU are left alone.
    own = profile.model_copy(update={"gpu_memory_utilization": 0.1})
    assert embedder_gpu_profile(own, [card24], MINILM) == own
    chat = ServerProfile(name="x", source="hf_repo", model="org/m")
    assert not is_pooling(chat)
    assert embedder_gpu_profile(chat, [card24], MINILM) == chat
    assert embedder_gpu_profile(profile, [], MINILM) == profile
    assert is_pooling(chat.model_copy(update={"extra_args": "--runner=pooling"}))


def test_the_embedder_reads_its_folder_for_the_gpu_launch(tmp_path: Path, app_paths) -> None:  # type: ignore[no-untyped-def]
    from engine.server.fit import gpu_launch_profile
    from tests.support.hf_cache import safetensors_bytes

    folder = tmp_path / "bge"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["BertModel"],
                "model_type": "bert",
                "hidden_size": 384,
                "intermediate_size": 1536,
                "num_hidden_layers": 6,
                "num_attention_heads": 12,
                "vocab_size": 30522,
                "max_position_embeddings": 512,
            }
        ),
        encoding="utf-8",
    )
    (folder / "model.safetensors").write_bytes(safetensors_bytes({"w": ("F32", [22_713_728], 4)}))
    profile = ServerProfile(name="bge", source="folder", model=str(folder), extra_args="--runner pooling")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("engine.server.fit.detect_gpus", lambda: [gpu(24, 24)])
        launched = gpu_launch_profile(profile, app_paths)
    assert launched.gpu_memory_utilization == 0.03
    assert launched.enforce_eager is True


def test_chat_model_and_embedder_must_fit_on_the_card_together() -> None:
    # A 24 GiB card with 23.5 GiB free. Llama-2-7B at vLLM's default share (0.92: 22.08 GiB) fits alone:
    # 23.5 − 0.5 (its CUDA context) = 23.0 GiB free.
    profile = ServerProfile(name="7b", source="hf_repo", model="meta-llama/Llama-2-7b-hf", max_model_len=4096)
    card24 = gpu(24, 23.5)
    alone = estimate_for_profile(profile, LLAMA2_7B, [card24], own_pids=())
    assert alone.verdict in ("fits", "tight")
    # The embedder beside it takes ceil(0.03 × 24 GiB) = 773,094,114 bytes and its own 512 MiB context:
    # 23.5 GiB − 1,309,965,026 − 512 MiB = 23,386,096,926 bytes = 0.9075 of the card, less than 0.92.
    both = estimate_for_profile(profile, LLAMA2_7B, [card24], own_pids=(), beside=0.03)
    assert both.verdict == "wont_fit"
    taken = "the embedding model for documents takes 0.03 of GPU 0 (1.2 GiB with its CUDA context)"
    assert taken in both.message
    assert both.fix is not None
    assert both.fix.params == {"gpu_memory_utilization": 0.9}  # the chat share lowered by the embedder's
    assert "remote embedding server" in (both.fix.hint or "")
    lowered = profile.model_copy(update={"gpu_memory_utilization": 0.9})
    together = estimate_for_profile(lowered, LLAMA2_7B, [card24], own_pids=(), beside=0.03)
    assert together.verdict in ("fits", "tight")
    assert "(The embedding model for documents takes 0.03 of GPU 0" in together.message
    # No GPU: nothing to share.
    assert estimate_for_profile(profile, LLAMA2_7B, [], own_pids=(), beside=0.03).verdict == "cpu"


def test_a_decoder_embedding_model_keeps_a_kv_cache_an_encoder_does_not() -> None:
    from engine.server.fit import pooling_need

    # Qwen3-Embedding-0.6B: a decoder (28 layers, 8 KV heads of 128) pooled: vLLM gives it a KV cache, which
    # must hold one sequence of max_model_len: 28 × 8 × 128 × 2 × 2 bytes = 114,688 B per token.
    qwen3_embedding = ModelInfo(
        architecture="Qwen3ForCausalLM",
        model_type="qwen3",
        max_context=32768,
        dtype="bfloat16",
        num_layers=28,
        hidden_size=1024,
        num_attention_heads=16,
        num_kv_heads=8,
        head_dim=128,
        vocab_size=151669,
        intermediate_size=3072,
        param_count=595_776_512,
    )
    card24 = gpu(24, 24)
    decoder = pooling_need(qwen3_embedding, card24, dtype="auto", max_model_len=8192)
    as_encoder = pooling_need(
        ModelInfo(**{**qwen3_embedding.__dict__, "model_type": "bert"}),
        card24,
        dtype="auto",
        max_model_len=8192,
    )
    assert decoder is not None
    assert as_encoder is not None
    assert decoder - as_encoder == 114_688 * 8192
    # Weights 595,776,512 × 2 + 2048 × (2 × 3072 + 4 × 1024) × 2 + 256 MiB + the KV cache.
    assert decoder == 1_191_553_024 + 41_943_040 + 268_435_456 + 939_524_096
