"""A start's watchdog: says so when vLLM prints nothing for a while (and what it is probably doing), and
keeps the start's time limit from counting the time spent downloading weights.

vLLM can sit silent for minutes at a start on a GPU: FlashInfer downloads or compiles kernels on cards of
compute capability 9.0 and newer (``vllm download-kernels`` fetches them ahead), torch.compile builds the
model, and tensor parallelism over PCIe can hang at NCCL's first all-reduce. A user sees a frozen progress
bar; :class:`StartWatch` turns the silence into words with a hint, and the supervisor shows them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.server.log_phases import Phase, parse_line

# Silence longer than this is reported (vLLM logs every few seconds while it works, except in the cases
# above and during long compiles).
SILENCE_S = 120.0
_NCCL = re.compile(r"nccl|world_size=|distributed_init_method|custom all-?reduce|all_reduce", re.IGNORECASE)
_KERNELS = re.compile(r"flashinfer|torch\.compile|compil|\bjit\b|autotun|cubin", re.IGNORECASE)


@dataclass(frozen=True)
class Silence:
    """vLLM has printed nothing for ``seconds``; ``hint`` says what it is probably doing and what helps."""

    seconds: float
    phase: Phase | None
    hint: str

    @property
    def message(self) -> str:
        return f"vLLM has printed nothing for {self.seconds:.0f} s. {self.hint}"


class StartWatch:
    """Fed every line of one start (:meth:`heard`); asked now and then whether it is silent
    (:meth:`silence`) or out of time (:meth:`timed_out`).

    ``timeout_s`` counts the start's time without the time spent downloading (a first download of a large
    model may take an hour and is not a hang). ``tensor_parallel_size`` > 1 makes a silence after NCCL's
    set-up a likely NCCL hang.
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        silence_s: float | None = None,
        tensor_parallel_size: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_s = timeout_s
        self.silence_s = SILENCE_S if silence_s is None else silence_s  # read at each start
        self.tensor_parallel_size = tensor_parallel_size
        self._clock = clock
        self.started = self._last = clock()
        self._phase: Phase | None = None
        self._download_since: float | None = None
        self._downloading_s = 0.0
        self._recent: list[str] = []
        self._reported = False
        self.last_silence: Silence | None = None  # the latest reported, for a timeout's message

    def heard(self, text: str) -> None:
        now = self._clock()
        self._last = now
        self._reported = False
        self._recent = [*self._recent[-4:], text]
        hit = parse_line(text)
        if hit is None:
            return
        if hit.phase is Phase.DOWNLOADING and self._download_since is None:
            self._download_since = now
        elif hit.phase is not Phase.DOWNLOADING and self._download_since is not None:
            self._downloading_s += now - self._download_since
            self._download_since = None
        self._phase = hit.phase

    @property
    def downloading_s(self) -> float:
        """Time spent downloading so far (a download in progress counts up to now)."""
        open_ = self._clock() - self._download_since if self._download_since is not None else 0.0
        return self._downloading_s + open_

    def elapsed_s(self) -> float:
        """The start's time so far, downloads left out: what :attr:`timeout_s` limits."""
        return self._clock() - self.started - self.downloading_s

    def remaining_s(self) -> float:
        return self.timeout_s - self.elapsed_s()

    def timed_out(self) -> bool:
        return self.remaining_s() <= 0

    def silence(self) -> Silence | None:
        """A :class:`Silence` once per quiet spell longer than ``silence_s``; ``None`` otherwise."""
        quiet = self._clock() - self._last
        if quiet < self.silence_s or self._reported:
            return None
        self._reported = True
        self.last_silence = Silence(quiet, self._phase, self._hint())
        return self.last_silence

    def _hint(self) -> str:
        recent = "\n".join(self._recent)
        if self._phase is Phase.DOWNLOADING:
            return "The download seems stalled: check the network connection (or a proxy)."
        if self.tensor_parallel_size > 1 and _NCCL.search(recent):
            return (
                "With tensor parallelism NCCL may hang at its first all-reduce when the GPUs cannot reach "
                "each other directly (PCIe without peer-to-peer): add NCCL_P2P_DISABLE=1 to the profile's "
                "environment (NCCL_DEBUG=INFO shows where it waits)."
            )
        if self._phase in (Phase.COMPILING, Phase.CAPTURING_GRAPHS) or _KERNELS.search(recent):
            return (
                "At the first start on a card vLLM compiles the model and FlashInfer downloads or builds "
                "kernels (compute capability 9.0 and newer), which takes minutes and needs the network; "
                "`vllm download-kernels` fetches them ahead, and enforce_eager skips the compile."
            )
        return "It may still be working; the server log shows its last lines."
