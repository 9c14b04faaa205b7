"""vLLM's log lines → start phases, so a start shows progress instead of a spinner.

Recognised (vLLM 0.32/0.33, CPU and GPU builds): weight downloads (``huggingface_hub``'s tqdm bars,
with bytes), ``Loading safetensors checkpoint shards: 50% Completed | 1/2``,
``torch.compile``/Dynamo lines, CUDA-graph capture, ``Available KV cache memory: X GiB``
/ ``KV cache size: N tokens``, and the readiness lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    RUNTIME_CHECK = "runtime_check"
    STARTING = "starting"
    DOWNLOADING = "downloading"
    LOADING_WEIGHTS = "loading_weights"
    COMPILING = "compiling"
    CAPTURING_GRAPHS = "capturing_graphs"
    ALLOCATING_KV_CACHE = "allocating_kv_cache"
    ANSWER_CHECK = "answer_check"
    READY = "ready"


PHASE_LABELS = {
    Phase.RUNTIME_CHECK: "Checking the vLLM runtime and the model",
    Phase.STARTING: "Starting vLLM",
    Phase.DOWNLOADING: "Downloading weights",
    Phase.LOADING_WEIGHTS: "Loading weights",
    Phase.COMPILING: "Compiling the model",
    Phase.CAPTURING_GRAPHS: "Capturing graphs",
    Phase.ALLOCATING_KV_CACHE: "Allocating the KV cache",
    Phase.ANSWER_CHECK: "Checking the model's answers (first start on this machine)",
    Phase.READY: "Ready",
}


@dataclass(frozen=True)
class LogHit:
    """What one log line says about the start."""

    phase: Phase
    fraction: float | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    kv_cache_gib: float | None = None
    kv_cache_tokens: int | None = None


_UNITS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_DOWNLOAD = re.compile(
    r"^(?P<file>[\w.\-/]+\.(?:safetensors|bin|pt|gguf|json|model|txt|jinja)):\s*(?P<pct>\d+)%\|.*?\|\s*"
    r"(?P<done>[\d.]+)(?P<du>[kKMGT]?)B?/(?P<total>[\d.]+)(?P<tu>[kKMGT]?)B?"
)
_FETCHING = re.compile(r"^Fetching \d+ files:\s*(?P<pct>\d+)%")
_SHARDS = re.compile(r"Loading (?:safetensors|pt|gguf)? ?checkpoint shards:\s*(?P<pct>\d+)% Completed")
# GPU: "Available KV cache memory: 1.00 GiB"; CPU: "Explicitly set (1.0/14.21) GiB for KV cache on node 0."
_KV_MEMORY = re.compile(
    r"Available KV cache memory: (?P<gib>[\d.]+) GiB|set \((?P<cpu>[\d.]+)/[\d.]+\) GiB for KV cache"
)
_KV_TOKENS = re.compile(r"(?:GPU|CPU) KV cache size: (?P<tokens>[\d,]+) tokens")
_COMPILING = ("torch.compile", "Dynamo bytecode transform", "Compiling a graph", "compiled graph")
_GRAPHS = ("Capturing CUDA graphs", "Graph capturing finished", "Capturing cudagraphs")
_READY = ("Starting vLLM server on", "Application startup complete.", "Starting vLLM API server")


def _bytes(number: str, unit: str) -> int:
    return int(float(number) * _UNITS[unit])


def parse_line(line: str) -> LogHit | None:
    """The phase a line belongs to, with whatever numbers it carries; ``None`` for other lines."""
    text = line.strip()
    if m := _DOWNLOAD.match(text):
        return LogHit(
            Phase.DOWNLOADING,
            fraction=int(m["pct"]) / 100,
            bytes_done=_bytes(m["done"], m["du"]),
            bytes_total=_bytes(m["total"], m["tu"]),
        )
    if m := _FETCHING.match(text):
        return LogHit(Phase.DOWNLOADING, fraction=int(m["pct"]) / 100)
    if m := _SHARDS.search(text):
        return LogHit(Phase.LOADING_WEIGHTS, fraction=int(m["pct"]) / 100)
    if "Starting to load model" in text:
        return LogHit(Phase.LOADING_WEIGHTS, fraction=0.0)
    if m := _KV_MEMORY.search(text):
        return LogHit(Phase.ALLOCATING_KV_CACHE, kv_cache_gib=float(m["gib"] or m["cpu"]))
    if m := _KV_TOKENS.search(text):
        return LogHit(Phase.ALLOCATING_KV_CACHE, kv_cache_tokens=int(m["tokens"].replace(",", "")))
    if any(marker in text for marker in _GRAPHS):
        return LogHit(Phase.CAPTURING_GRAPHS)
    # "Enforce eager set, disabling torch.compile" and "compilation was disabled" mean the opposite.
    if any(marker in text for marker in _COMPILING) and "disabl" not in text:
        return LogHit(Phase.COMPILING)
    if any(marker in text for marker in _READY):
        return LogHit(Phase.READY)
    if "vLLM API server version" in text or "Initializing a V1 LLM engine" in text:
        return LogHit(Phase.STARTING)
    return None
