"""The start watchdog: silences reported with a hint that fits, downloads left out of the time limit."""

from __future__ import annotations

from engine.server.log_phases import Phase
from engine.server.watchdog import StartWatch

DOWNLOAD = "model-00001-of-00004.safetensors:  45%|#####     | 1.79G/3.95G [01:02<01:14, 28.9MB/s]"
LOADING = "Loading safetensors checkpoint shards:   0% Completed | 0/4 [00:00<?, ?it/s]"
NCCL = "(Worker_TP0 pid=9) INFO 12-06 02:31:07 [pynccl.py:111] vLLM is using nccl==2.27.5"
COMPILE = "(EngineCore_DP0 pid=8) INFO 12-06 02:31:40 [backends.py:548] Dynamo bytecode transform time: 7.1 s"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_silence_is_reported_once_per_quiet_spell() -> None:
    clock = Clock()
    watch = StartWatch(timeout_s=900, silence_s=120, clock=clock)
    watch.heard("INFO vLLM API server version 0.32.0")
    clock.now += 119
    assert watch.silence() is None
    clock.now += 2
    silence = watch.silence()
    assert silence is not None
    assert silence.seconds == 121
    assert silence.phase is Phase.STARTING
    assert "printed nothing for 121 s" in silence.message
    clock.now += 60
    assert watch.silence() is None  # already said
    watch.heard("INFO something")
    clock.now += 121
    assert watch.silence() is not None  # a new quiet spell


def test_nccl_hang_with_tensor_parallelism_gets_the_p2p_hint() -> None:
    clock = Clock()
    watch = StartWatch(timeout_s=900, silence_s=60, tensor_parallel_size=2, clock=clock)
    watch.heard(NCCL)
    clock.now += 61
    silence = watch.silence()
    assert silence is not None
    assert "NCCL_P2P_DISABLE=1" in silence.hint
    # One GPU: the same line is no reason to suspect NCCL.
    alone = StartWatch(timeout_s=900, silence_s=60, clock=clock)
    alone.heard(NCCL)
    clock.now += 61
    assert "NCCL_P2P_DISABLE" not in alone.silence().hint  # type: ignore[union-attr]


def test_a_silent_compile_gets_the_kernel_download_hint() -> None:
    clock = Clock()
    watch = StartWatch(timeout_s=900, silence_s=60, clock=clock)
    watch.heard(COMPILE)
    clock.now += 300
    silence = watch.silence()
    assert silence is not None
    assert silence.phase is Phase.COMPILING
    assert "vllm download-kernels" in silence.hint


def test_a_stalled_download_says_so() -> None:
    clock = Clock()
    watch = StartWatch(timeout_s=900, silence_s=60, clock=clock)
    watch.heard(DOWNLOAD)
    clock.now += 90
    assert "download seems stalled" in watch.silence().hint  # type: ignore[union-attr]


def test_downloading_does_not_count_against_the_start_timeout() -> None:
    clock = Clock()
    watch = StartWatch(timeout_s=900, clock=clock)
    clock.now += 100  # starting
    watch.heard(DOWNLOAD)
    clock.now += 3000  # a 50-minute download
    watch.heard(DOWNLOAD)
    assert watch.downloading_s == 3000
    assert not watch.timed_out()
    watch.heard(LOADING)
    clock.now += 700
    assert watch.elapsed_s() == 800
    assert watch.remaining_s() == 100
    clock.now += 101
    assert watch.timed_out()
