"""Build a Hugging Face cache folder with the real layout (blobs, snapshots/<rev> links, refs/main)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

# SmolLM2-135M-Instruct's config.json (the numbers that matter for sizes and context).
SMOLLM2_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], int]]) -> bytes:
    """A valid safetensors file: name -> (dtype, shape, bytes per element); data is zeros."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape, size) in tensors.items():
        n = size
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


def add_cached_model(
    cache: Path,
    repo_id: str,
    files: dict[str, bytes],
    revision: str = "0123456789abcdef0123456789abcdef01234567",
) -> Path:
    """Put ``files`` into ``cache`` as the snapshot ``revision`` of ``repo_id`` (what refs/main names)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("../../blobs") / blob.name)
    return snapshot
