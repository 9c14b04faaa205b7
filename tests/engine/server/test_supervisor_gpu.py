"""The supervisor's GPU-path pieces through a real process: the profile's environment reaches vLLM, a
start's silence is reported with a hint, and downloading does not count against the start's time limit."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

import engine.server.watchdog
from engine.diagnosis.problems import StartTimedOut
from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from engine.server.supervisor import StartProgress, Supervisor
from tests.support.standin.launch import StandinRuntime, standin_command

pytestmark = pytest.mark.asyncio

# Runs argv[1] (Python: prints lines, waits), then becomes the stand-in (the rest of argv): a vLLM whose
# first seconds we script.
WRAPPER = "import os, sys; exec(sys.argv[1]); os.execv(sys.argv[2], sys.argv[2:])"
DOWNLOAD = (
    "import time\n"
    "for pct in range(0, 101, 10):\n"
    "    print(f'model-00001-of-00002.safetensors: {pct:3d}%|##        | {pct * 40}M/4.00G [00:01<00:03, "
    "40.0MB/s]', file=sys.stderr, flush=True)\n"
    "    time.sleep(0.3)\n"
)


@dataclass
class ScriptedRuntime(StandinRuntime):
    prelude: str = ""

    def serve_command(self, args: Sequence[str]) -> list[str]:
        return [sys.executable, "-c", WRAPPER, self.prelude, *standin_command(*self.options, "serve", *args)]


def profile(**fields: object) -> ServerProfile:
    return ServerProfile(name="gpu", source="hf_cache", model="org/standin", **fields)  # type: ignore[arg-type]


async def test_the_profiles_environment_reaches_vllm(app_paths: AppPaths) -> None:
    prelude = (
        "print('ENV', os.environ.get('NCCL_P2P_DISABLE'), os.environ.get('CUDA_VISIBLE_DEVICES'), flush=True)"
    )
    sup = Supervisor(app_paths, ScriptedRuntime(prelude=prelude))
    await sup.start(profile(env={"NCCL_P2P_DISABLE": "1", "CUDA_VISIBLE_DEVICES": "1,0"}))
    try:
        assert "ENV 1 1,0" in [line.text for line in sup.log_tail()]
    finally:
        await sup.stop()


async def test_downloading_is_left_out_of_the_start_timeout(app_paths: AppPaths) -> None:
    # 3.3 s of download, a limit of 2.5 s: the start succeeds, because downloading is not starting.
    sup = Supervisor(app_paths, ScriptedRuntime(prelude=DOWNLOAD), ready_timeout_s=2.5)
    await sup.start(profile())
    await sup.stop()
    # The same time spent silent is a timeout.
    silent = Supervisor(
        app_paths, ScriptedRuntime(prelude="import time; time.sleep(3.3)"), ready_timeout_s=2.5
    )
    with pytest.raises(StartTimedOut):
        await silent.start(profile())


async def test_a_silent_start_with_tensor_parallelism_is_reported_with_the_nccl_hint(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.server.watchdog, "SILENCE_S", 0.5)
    prelude = (
        "import time\n"
        "print('(Worker_TP0 pid=9) INFO 12-06 02:31:07 [pynccl.py:111] vLLM is using nccl==2.27.5',\n"
        "      flush=True)\n"
        "time.sleep(2.5)\n"
    )
    sup = Supervisor(app_paths, ScriptedRuntime(prelude=prelude))
    progress: list[StartProgress] = []
    sup.progress.connect(progress.append)
    await sup.start(profile(tensor_parallel_size=2))
    await sup.stop()
    quiet = [p for p in progress if "printed nothing" in p.label]
    assert len(quiet) == 1  # once per silence, not every poll
    assert "NCCL_P2P_DISABLE=1" in quiet[0].label


async def test_a_start_that_times_out_in_silence_says_what_it_was_probably_doing(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.server.watchdog, "SILENCE_S", 0.5)
    prelude = (
        "import time\n"
        "print('(Worker_TP0 pid=9) INFO 12-06 02:31:07 [pynccl.py:111] vLLM is using nccl==2.27.5',\n"
        "      flush=True)\n"
        "time.sleep(30)\n"
    )
    sup = Supervisor(app_paths, ScriptedRuntime(prelude=prelude), ready_timeout_s=2.0)
    with pytest.raises(StartTimedOut) as caught:
        await sup.start(profile(tensor_parallel_size=2))
    assert "downloads not counted" in str(caught.value)
    assert "NCCL_P2P_DISABLE=1" in str(caught.value)
    assert sup.processes() == []
