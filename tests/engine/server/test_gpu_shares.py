"""The launch-time check that a server's GPU memory share fits beside what the card holds and what our other
server (chat model or embedder) takes. This machine has no GPU: the cards are NVML readings written here (NVML
is the boundary); the processes holding memory on them are real ones, so sessions and names are the real
lookups."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from engine.hardware import GpuInfo, GpuProcess
from engine.server.fit import CONTEXT_BYTES
from engine.server.gpu_shares import Reservation, SharesDoNotFit, reserve, reserved, shares_problem
from engine.server.profiles import ServerProfile

GIB = 2**30


def card(free_gib: float, *processes: GpuProcess, index: int = 0, total_gib: float = 24) -> GpuInfo:
    return GpuInfo(
        index=index,
        name="RTX 4090",
        total_bytes=int(total_gib * GIB),
        free_bytes=int(free_gib * GIB),
        processes=processes,
    )


def chat(share: float | None = 0.92, **fields: object) -> ServerProfile:
    return ServerProfile(
        name="Llama 7B",
        source="hf_repo",
        model="meta-llama/Llama-2-7b-hf",
        gpu_memory_utilization=share,
        **fields,  # type: ignore[arg-type]
    )


def embedder(share: float = 0.03) -> ServerProfile:
    return ServerProfile(
        name="Built-in embeddings",
        source="hf_repo",
        model="org/embed",
        extra_args="--runner pooling",
        gpu_memory_utilization=share,
    )


@pytest.fixture
def server() -> Iterator[subprocess.Popen[bytes]]:
    """A real process in a session of its own, standing for one of our running vLLM servers."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(autouse=True)
def nothing_reserved() -> Iterator[None]:
    assert reserved() == []
    yield
    for left in reserved():
        left.release()


def test_the_chat_model_is_refused_beside_an_embedder_that_is_still_starting() -> None:
    # 23.5 of 24 GiB free. At 0.92 (22.08 GiB) the chat model fits alone: 23.5 − 0.5 (its CUDA context).
    card24 = card(23.5)
    assert shares_problem(chat(), [card24]) is None
    # The embedder is starting: NVML shows nothing of it yet, so its whole share (ceil(0.03 × 24 GiB)) and
    # its own context count: 23.0 − 0.72 − 0.5 = 21.78 GiB are left, less than 22.08.
    starting = Reservation("Built-in embeddings", embeddings=True, share=0.03, gpus=(0,))
    problem = shares_problem(chat(), [card24], [starting])
    assert isinstance(problem, SharesDoNotFit)
    assert problem.title == "The chat model and the embedding model do not fit on the GPU together"
    assert problem.message.startswith(
        "The chat model “Llama 7B” asks vLLM for 0.92 of GPU 0 (RTX 4090): 22.1 GiB, but only 21.8 GiB are "
        "free for it (after its CUDA context), beside the embedding model for documents “Built-in "
        "embeddings” (gpu_memory_utilization 0.03), 1.2 GiB."
    )
    assert problem.message.endswith("Nothing was started.")
    # 21.78 / 24 = 0.9075: the chat model's share lowered to 0.9 fits, and the fix is for its profile.
    assert problem.fix is not None
    assert problem.fix.action == "lower_gpu_memory_utilization"
    assert problem.fix.params == {"gpu_memory_utilization": 0.9}
    assert "“Llama 7B”" in problem.fix.hint
    assert problem.fix_profile == "Llama 7B"
    assert shares_problem(chat(0.9), [card24], [starting]) is None
    # An embedder on another GPU takes nothing from this one.
    elsewhere = Reservation("Built-in embeddings", embeddings=True, share=0.03, gpus=(1,))
    assert shares_problem(chat(), [card24], [elsewhere]) is None


def test_the_embedder_is_refused_beside_a_running_chat_model_and_what_it_holds_counts_once(
    server: subprocess.Popen[bytes],
) -> None:
    # Our chat model runs at 0.95 and holds its budget and context (23.3 GiB of 24): 0.7 GiB are free.
    holding = math.ceil(0.95 * 24 * GIB) + CONTEXT_BYTES
    card24 = card(0.7, GpuProcess(server.pid, holding))
    running = Reservation("Llama 7B", embeddings=False, share=0.95, gpus=(0,), sid=server.pid)
    assert running.still_to_take(card24) == 0  # NVML's free memory already lacks all of it
    problem = shares_problem(embedder(0.03), [card24], [running])
    assert isinstance(problem, SharesDoNotFit)
    assert "The embedding model for documents “Built-in embeddings” asks vLLM for 0.03 of GPU 0" in (
        problem.message
    )
    assert "beside the chat model “Llama 7B” (gpu_memory_utilization 0.95)" in problem.message
    assert "Also holding memory" not in problem.message  # the chat model's processes are ours, named above
    # 0.72 GiB wanted, 0.2 free after the context: the chat model gives up the missing 0.52 GiB → 0.92.
    assert problem.fix is not None
    assert problem.fix.action == "lower_gpu_memory_utilization"
    assert problem.fix.params == {"gpu_memory_utilization": 0.92}
    assert problem.fix_profile == "Llama 7B"  # the fix changes the chat model's profile, not the embedder's
    # A smaller share fits in what is left: the running server is not counted a second time.
    assert shares_problem(embedder(0.005), [card24], [running]) is None


def test_other_programs_are_named_and_the_fix_says_what_can_be_done() -> None:
    me = psutil.Process(os.getpid()).name()
    busy = card(3.5, GpuProcess(os.getpid(), 20 * GIB))
    problem = shares_problem(chat(), [busy])
    assert isinstance(problem, SharesDoNotFit)
    assert problem.title == "Not enough free GPU memory for this server"
    assert f"Also holding memory on it: {me} (pid {os.getpid()}, 20.0 GiB)." in problem.message
    assert problem.fix is not None
    assert problem.fix.params == {"gpu_memory_utilization": 0.12}  # (3.5 − 0.5) / 24
    # A full card leaves no share worth suggesting: try again once the other programs are closed; for the
    # embedder, a remote one is the way out.
    full = card(0.6, GpuProcess(os.getpid(), 23 * GIB))
    refused = shares_problem(chat(), [full])
    assert refused is not None
    assert refused.fix is not None
    assert refused.fix.action == "retry"
    assert refused.fix_profile == ""
    embedding = shares_problem(embedder(), [full])
    assert embedding is not None
    assert embedding.fix is not None
    assert embedding.fix.action == "choose_embedder"
    assert "--embedder-url" in embedding.fix.hint


def test_vllms_default_share_is_checked_when_the_profile_sets_none() -> None:
    problem = shares_problem(chat(None), [card(22.0)])  # 0.92 of 24 GiB = 22.08 GiB > 21.5 GiB
    assert problem is not None
    assert "asks vLLM for 0.92 of GPU 0" in problem.message


def test_a_reservation_holds_the_share_until_it_is_released() -> None:
    card24 = card(23.5)
    first = reserve(embedder(), [card24])
    assert first is not None
    assert (first.embeddings, first.share, first.gpus) == (True, 0.03, (0,))
    with pytest.raises(SharesDoNotFit) as refused:
        reserve(chat(), [card24])
    assert refused.value.fix_profile == "Llama 7B"
    assert reserved() == [first]  # the refused one holds nothing
    first.release()
    first.release()  # twice: harmless
    assert reserved() == []
    second = reserve(chat(), [card24])
    assert second is not None
    second.release()
    # No GPU (or none visible to the profile): nothing to share, nothing reserved.
    assert reserve(chat(), []) is None
    assert reserve(chat(env={"CUDA_VISIBLE_DEVICES": ""}), [card24]) is None
    assert reserved() == []


def test_the_profiles_visible_devices_decide_which_card_is_checked() -> None:
    cards = [card(23.5, index=0), card(23.5, index=1)]
    on_first = reserve(embedder(), cards)
    assert on_first is not None
    on_second = reserve(chat(env={"CUDA_VISIBLE_DEVICES": "1"}), cards)
    assert on_second is not None
    assert on_second.gpus == (1,)
    with pytest.raises(SharesDoNotFit):
        reserve(chat(tensor_parallel_size=2), cards)  # needs both cards, and both are taken
