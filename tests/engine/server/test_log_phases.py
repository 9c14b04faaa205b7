"""vLLM's log lines → start phases."""

from __future__ import annotations

import pytest

from engine.server.log_phases import Phase, parse_line


@pytest.mark.parametrize(
    ("line", "phase", "fraction"),
    [
        (
            "(APIServer pid=1) INFO 11-26 10:00:00 [api_server.py:1839] vLLM API server version 0.32.0",
            Phase.STARTING,
            None,
        ),
        (
            "Loading safetensors checkpoint shards:  50% Completed | 1/2 [00:00<00:00,  7.51it/s]",
            Phase.LOADING_WEIGHTS,
            0.5,
        ),
        (
            "(EngineCore_DP0 pid=2) INFO [cpu_model_runner.py:106] Starting to load model /m...",
            Phase.LOADING_WEIGHTS,
            0.0,
        ),
        (
            "(EngineCore_DP0 pid=2) INFO [monitor.py:34] torch.compile takes 13.41 s in total",
            Phase.COMPILING,
            None,
        ),
        (
            "(EngineCore_DP0 pid=2) INFO [backends.py:559] Dynamo bytecode transform time: 3.21 s",
            Phase.COMPILING,
            None,
        ),
        (
            "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|##| 67/67",
            Phase.CAPTURING_GRAPHS,
            None,
        ),
        ("Fetching 10 files:  30%|###       | 3/10 [00:01<00:03,  2.1it/s]", Phase.DOWNLOADING, 0.3),
        (
            "(APIServer pid=1) INFO [entry.py:140] Starting vLLM server on http://127.0.0.1:8000",
            Phase.READY,
            None,
        ),
        ("INFO:     Application startup complete.", Phase.READY, None),
    ],
)
def test_phases(line: str, phase: Phase, fraction: float | None) -> None:
    hit = parse_line(line)
    assert hit is not None
    assert hit.phase is phase
    assert hit.fraction == fraction


def test_download_bytes() -> None:
    hit = parse_line("model.safetensors:  45%|####5     | 121M/269M [00:02<00:03, 45.2MB/s]")
    assert hit is not None
    assert hit.phase is Phase.DOWNLOADING
    assert (hit.bytes_done, hit.bytes_total, hit.fraction) == (121_000_000, 269_000_000, 0.45)


def test_kv_cache_size_and_tokens() -> None:
    memory = parse_line("(EngineCore_DP0 pid=2) INFO [cpu_worker.py:120] Available KV cache memory: 1.50 GiB")
    tokens = parse_line(
        "(EngineCore_DP0 pid=2) INFO [kv_cache_utils.py:1087] GPU KV cache size: 21,840 tokens"
    )
    assert memory is not None
    assert tokens is not None
    assert memory.kv_cache_gib == 1.5
    assert tokens.kv_cache_tokens == 21840
    assert memory.phase is tokens.phase is Phase.ALLOCATING_KV_CACHE


def test_real_cpu_lines() -> None:
    # As vLLM 0.32 (CPU) printed them on this machine.
    memory = parse_line(
        "(Worker pid=8431) INFO [cpu_worker.py:260] Explicitly set (1.0/14.21) GiB for KV cache on node 0."
    )
    tokens = parse_line(
        "(EngineCore pid=7591) INFO [kv_cache_utils.py:2327] CPU KV cache size: 46,592 tokens, Maximum "
        "concurrency for 2,048 tokens per request: 22.75x"
    )
    assert memory is not None
    assert memory.kv_cache_gib == 1.0
    assert tokens is not None
    assert tokens.kv_cache_tokens == 46592
    eager = (
        "(APIServer pid=6760) WARNING [vllm.py:1703] Enforce eager set, disabling torch.compile, CUDAGraphs, "
        "and JIT kernel warmup."
    )
    assert parse_line(eager) is None
    assert parse_line("WARNING [vllm.py:1727] Inductor compilation was disabled by user settings") is None


def test_other_lines_are_not_phases() -> None:
    assert parse_line('INFO:     127.0.0.1:5000 - "GET /health HTTP/1.1" 200 OK') is None
    assert parse_line("") is None
