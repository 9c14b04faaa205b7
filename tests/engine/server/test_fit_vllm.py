"""The fit estimate's accounting checked against the installed vLLM's own code (no GPU needed)."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

from engine.models.catalog import ModelInfo
from engine.server.fit import CHECKPOINT_METHODS, ONLINE_BITS, UNSIZED_METHODS, kv_bytes_per_token
from tests.engine.diagnosis.test_source import site_packages  # noqa: F401 - the shared fixture
from tests.engine.server.test_fit import LLAMA31_8B, QWEN25_7B

pytestmark = pytest.mark.vllm

# What vLLM's FullAttentionSpec says one block of one layer takes, for each (kv heads, head size, dtype).
SPEC_CODE = """
import json, sys, torch
from vllm.v1.kv_cache_interface import FullAttentionSpec
out = []
for heads, size, dtype in json.loads(sys.argv[1]):
    spec = FullAttentionSpec(block_size=16, num_kv_heads=heads, head_size=size, dtype=getattr(torch, dtype))
    out.append(spec.page_size_bytes)
print(json.dumps(out))
"""


def _python(site: Path) -> Path:
    return site.parents[2] / "bin" / "python"


def test_kv_bytes_per_token_is_vllms_page_size(site_packages: Path) -> None:  # noqa: F811
    cases: list[tuple[ModelInfo, int, str, str | None]] = [
        (QWEN25_7B, 1, "bfloat16", None),
        (LLAMA31_8B, 2, "bfloat16", None),
        (LLAMA31_8B, 1, "float8_e4m3fn", "fp8"),
    ]
    asked = []
    for info, tp, dtype, _ in cases:
        heads = info.num_kv_heads
        assert heads is not None
        asked.append([max(1, heads // tp), info.head_dim, dtype])
    result = subprocess.run(
        [str(_python(site_packages)), "-c", SPEC_CODE, json.dumps(asked)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    pages = json.loads(result.stdout.strip().splitlines()[-1])
    for (info, tp, _, kv_dtype), page in zip(cases, pages, strict=True):
        assert info.num_layers is not None
        ours = kv_bytes_per_token(info, kv_cache_dtype=kv_dtype, tensor_parallel_size=tp)
        assert ours == page // 16 * info.num_layers


def test_every_quantization_method_vllm_knows_is_classified(site_packages: Path) -> None:  # noqa: F811
    source = site_packages / "vllm/model_executor/layers/quantization/__init__.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    methods = next(
        [elt.value for elt in node.value.slice.elts]  # type: ignore[attr-defined]
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "QuantizationMethods" for t in node.targets)
    )
    known = set(ONLINE_BITS) | set(CHECKPOINT_METHODS) | set(UNSIZED_METHODS)
    assert sorted(set(methods) - known) == []
