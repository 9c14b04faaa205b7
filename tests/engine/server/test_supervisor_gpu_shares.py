"""Two servers of ours on one GPU, through real supervisors and real (stand-in) processes: the second launch
whose share does not fit beside the first is refused before anything is spawned, whichever of the chat model
and the embedder comes second. NVML is the boundary: its reading is written here (a 24 GiB card); the
stand-ins hold no GPU memory, so NVML shows nothing of them, as of a server that is still loading."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import engine.hardware
from engine.diagnosis.problems import ServerProblem
from engine.documents.service import EmbedderService
from engine.hardware import GpuInfo, GpuStatus
from engine.paths import AppPaths
from engine.server.gpu_shares import SharesDoNotFit, reserved
from engine.server.profiles import ServerProfile
from engine.server.supervisor import ServerState, Supervisor
from tests.support.standin.launch import StandinRuntime

pytestmark = pytest.mark.asyncio
GIB = 2**30


@dataclass
class GpuStandinRuntime(StandinRuntime):
    """The stand-in, launched as the GPU build of vLLM would be."""

    is_cpu: bool = False
    is_gpu: bool = True


@pytest.fixture
def card24(monkeypatch: pytest.MonkeyPatch) -> Iterator[GpuInfo]:
    card = GpuInfo(0, "RTX 4090", 24 * GIB, int(23.5 * GIB))
    monkeypatch.setattr(engine.hardware, "gpu_status", lambda: GpuStatus((card,)))  # NVML: the boundary
    yield card
    assert reserved() == []  # every share was given back when its server ended


def chat_profile(share: float = 0.92) -> ServerProfile:
    return ServerProfile(name="chat", source="hf_cache", model="org/chat", gpu_memory_utilization=share)


def embedder_profile() -> ServerProfile:
    return ServerProfile(
        name="embeddings",
        source="hf_cache",
        model="org/embed",
        extra_args="--runner pooling",
        gpu_memory_utilization=0.03,
    )


async def test_the_chat_model_is_refused_beside_the_embedder_before_anything_starts(
    app_paths: AppPaths, card24: GpuInfo
) -> None:
    embedder = Supervisor(app_paths, GpuStandinRuntime())
    chat = Supervisor(app_paths, GpuStandinRuntime())
    states: list[ServerState] = []
    chat.state_changed.connect(lambda change: states.append(change.state))
    await embedder.start(embedder_profile())
    try:
        with pytest.raises(SharesDoNotFit) as refused:
            await chat.start(chat_profile())
        assert isinstance(refused.value, ServerProblem)  # the window's server banner shows it as one
        assert "beside the embedding model for documents “embeddings”" in str(refused.value)
        assert refused.value.fix is not None
        assert refused.value.fix.params == {"gpu_memory_utilization": 0.9}
        # Refused while preparing: no vLLM was spawned, and the failure is published like any other.
        assert chat.log_path is None
        assert chat.processes() == []
        assert states[-1] is ServerState.FAILED
        assert chat.problem is refused.value
        # The chat model's share lowered as the fix says fits beside the embedder.
        await chat.start(chat_profile(0.9))
        assert chat.state is ServerState.READY
        await chat.stop()
    finally:
        await embedder.stop()
    # With the embedder stopped, its share is free again: the chat model's own 0.92 fits.
    await chat.start(chat_profile())
    await chat.stop()


async def test_the_embedder_is_refused_beside_the_chat_model_with_the_fix_for_the_chat_models_profile(
    app_paths: AppPaths, card24: GpuInfo
) -> None:
    chat = Supervisor(app_paths, GpuStandinRuntime())
    await chat.start(chat_profile())
    service = EmbedderService(app_paths, GpuStandinRuntime(), profile=embedder_profile())
    try:
        with pytest.raises(SharesDoNotFit) as refused:
            await service.start()
        assert "The embedding model for documents “embeddings” asks vLLM for 0.03" in str(refused.value)
        assert "beside the chat model “chat” (gpu_memory_utilization 0.92)" in str(refused.value)
        assert refused.value.fix is not None
        assert refused.value.fix.action == "lower_gpu_memory_utilization"
        assert refused.value.fix_profile == "chat"
        assert service.endpoint is None
    finally:
        await service.shutdown()
        await chat.stop()


async def test_a_cpu_launch_is_not_checked_against_the_gpu(app_paths: AppPaths, card24: GpuInfo) -> None:
    embedder = Supervisor(app_paths, GpuStandinRuntime())
    await embedder.start(embedder_profile())
    cpu = Supervisor(app_paths, StandinRuntime())  # the CPU build: the card is none of its business
    try:
        await cpu.start(chat_profile())
        assert cpu.state is ServerState.READY
    finally:
        await cpu.stop()
        await embedder.stop()
