"""What every benchmark gets: the mode (quick or full), where to cache generated data, a scratch folder."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_ENV = "VLLM_DESK_BENCH_CACHE"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "vllm-desk-bench"))


@dataclass
class BenchContext:
    """``scale`` shrinks data sizes (1.0 full, 0.1 quick, smaller in the smoke test)."""

    quick: bool
    cache_dir: Path
    work_dir: Path
    scale: float = 1.0
    # Repetitions of latency measurements; the smoke test lowers it.
    repeats: int = 0
    python: str = sys.executable
    repo_root: Path = REPO_ROOT
    # Parts that need the real vLLM on the CPU (a 4 GB process, ~20 s to start) can be turned off.
    real_vllm: bool = True
    log: list[str] = field(default_factory=list)
    # Measurements one benchmark hands to a later one (the direct vLLM launch is the lifecycle's baseline).
    shared: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.repeats <= 0:
            self.repeats = 20 if self.quick else 100
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)

    def scaled(self, n: int, minimum: int = 1) -> int:
        return max(minimum, round(n * self.scale))

    def say(self, message: str) -> None:
        """Progress for the person watching; also kept for the JSON results."""
        self.log.append(message)
        print(f"  · {message}", flush=True)

    def child_env(self, **extra: str) -> dict[str, str]:
        """Environment for child processes: headless Qt, no telemetry, the repo importable."""
        env = dict(os.environ)
        env.update(
            QT_QPA_PLATFORM="offscreen",
            HAYSTACK_TELEMETRY_ENABLED="False",
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            HF_HUB_OFFLINE="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(self.repo_root), env.get("PYTHONPATH", "")])),
        )
        env.update(extra)
        return env
