"""The model catalog: config.json numbers, safetensors headers, the HF cache layout, folders, repo ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.models.builtin import BUILTIN_MODEL
from engine.models.catalog import (
    InvalidRepoId,
    ModelInfo,
    NotAModelFolder,
    app_catalog,
    build_catalog,
    inspect_folder,
    parse_repo_id,
    read_safetensors_totals,
    scan_hf_cache,
)
from engine.paths import AppPaths
from engine.server.fit import estimate_params
from tests.support.hf_cache import SMOLLM2_CONFIG, add_cached_model, safetensors_bytes


def _config_bytes(**changes: object) -> bytes:
    return json.dumps({**SMOLLM2_CONFIG, **changes}).encode()


def test_config_numbers_are_read() -> None:
    info = ModelInfo.from_config(SMOLLM2_CONFIG)
    assert info.architecture == "LlamaForCausalLM"
    assert info.max_context == 8192
    assert (info.num_layers, info.num_kv_heads, info.head_dim) == (30, 3, 64)
    assert info.quantization is None
    assert info.dtype == "bfloat16"


def test_head_dim_derived_and_quantization_named() -> None:
    config = {k: v for k, v in SMOLLM2_CONFIG.items() if k != "head_dim"}
    config["quantization_config"] = {"quant_method": "awq", "bits": 4}
    info = ModelInfo.from_config(config)
    assert info.head_dim == 576 // 9
    assert info.quantization == "awq 4-bit"


def test_multimodal_text_config_is_used() -> None:
    config = {"architectures": ["LlavaForConditionalGeneration"], "text_config": {**SMOLLM2_CONFIG, "n": 1}}
    del config["text_config"]["architectures"]
    info = ModelInfo.from_config(config)
    assert info.architecture == "LlavaForConditionalGeneration"
    assert info.num_layers == 30
    assert info.max_context == 8192


def test_safetensors_header_totals(tmp_path: Path) -> None:
    (tmp_path / "model-00001.safetensors").write_bytes(
        safetensors_bytes({"a": ("BF16", [2, 3], 2), "b": ("F32", [4], 4)})
    )
    (tmp_path / "model-00002.safetensors").write_bytes(safetensors_bytes({"c": ("BF16", [10, 10], 2)}))
    assert read_safetensors_totals(tmp_path) == (6 + 4 + 100, 12 + 16 + 200)


def test_truncated_safetensors_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"\x05\x00")
    assert read_safetensors_totals(tmp_path) is None


def test_hf_cache_scan_lists_model_with_size_and_revision(tmp_path: Path) -> None:
    weights = safetensors_bytes({"w": ("BF16", [8, 8], 2)})
    add_cached_model(
        tmp_path,
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        {"config.json": _config_bytes(), "model.safetensors": weights},
    )
    add_cached_model(tmp_path, "org/broken", {"README.md": b"no config"}, revision="f" * 40)
    entries = scan_hf_cache(tmp_path)
    by_name = {e.name: e for e in entries}
    smol = by_name["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert smol.source == "hf_cache"
    assert smol.revision == "0123456789abcdef0123456789abcdef01234567"
    assert smol.size_bytes == len(weights) + len(_config_bytes())
    assert smol.info is not None
    assert smol.info.param_count == 64
    assert smol.info.max_context == 8192
    assert smol.model_arg == str(smol.path)
    assert by_name["org/broken"].info is None
    assert "no config.json" in by_name["org/broken"].problem


def test_missing_cache_gives_empty_list(tmp_path: Path) -> None:
    assert scan_hf_cache(tmp_path / "nowhere") == []


def test_folder_without_config_is_refused_with_reason(tmp_path: Path) -> None:
    with pytest.raises(NotAModelFolder, match=r"has no config\.json"):
        inspect_folder(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(NotAModelFolder, match="cannot be read"):
        inspect_folder(tmp_path)


def test_repo_ids_checked() -> None:
    assert parse_repo_id("  Qwen/Qwen3-0.6B ") == "Qwen/Qwen3-0.6B"
    with pytest.raises(InvalidRepoId, match="owner, a slash"):
        parse_repo_id("justaname")
    with pytest.raises(InvalidRepoId):
        parse_repo_id("bad//name--")


def test_build_catalog_has_every_kind(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    add_cached_model(cache, "org/cached", {"config.json": _config_bytes()})
    builtin = tmp_path / "builtin"
    builtin.mkdir()
    (builtin / "config.json").write_bytes(_config_bytes())
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_bytes(_config_bytes(max_position_embeddings=4096))
    gone = tmp_path / "deleted-model"
    entries = build_catalog(
        builtin=builtin, folders=[folder, gone], repo_ids=["org/cached", "org/remote"], hf_cache=cache
    )
    kinds = [(e.source, e.name) for e in entries]
    assert kinds == [
        ("builtin", "Built-in: builtin"),
        ("hf_cache", "org/cached"),
        ("folder", "mine"),
        ("folder", "deleted-model"),
        ("repo", "org/remote"),
    ]
    assert entries[2].info is not None
    assert entries[2].info.max_context == 4096
    assert "does not exist" in entries[3].problem
    assert entries[4].model_arg == "org/remote"


def test_app_catalog_lists_builtin_first_even_before_it_is_prepared(
    app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    add_cached_model(cache, "org/cached", {"config.json": _config_bytes()})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    entries = app_catalog(app_paths, repo_ids=["org/new"])
    assert [(e.source, e.name) for e in entries] == [
        ("builtin", BUILTIN_MODEL.display_name),
        ("hf_cache", "org/cached"),
        ("repo", "org/new"),
    ]
    assert "first start" in entries[0].problem
    assert [e.profile_fields() for e in entries] == [
        {"source": "builtin", "model": "", "revision": ""},
        {"source": "hf_cache", "model": "org/cached", "revision": "0123456789abcdef0123456789abcdef01234567"},
        {"source": "hf_repo", "model": "org/new", "revision": ""},
    ]


@pytest.mark.vllm
def test_builtin_model_sizes_from_its_safetensors(builtin_model_dir: Path) -> None:
    entry = inspect_folder(builtin_model_dir, source="builtin")
    assert entry.info is not None
    # The converted SmolLM2-135M: the header count agrees with the count from config.json (tied embeddings).
    assert entry.info.param_count == estimate_params(entry.info) == 134_515_008
    assert entry.info.weight_bytes == 134_515_008 * 2  # bfloat16
    assert entry.info.architecture == "LlamaForCausalLM"
