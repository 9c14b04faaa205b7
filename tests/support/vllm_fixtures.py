"""Session-scoped fixtures around the real vLLM on the CPU (runtime, built-in model, one shared server).

The runtime and the model are built by the app's own code into $VLLM_DESK_TEST_CACHE (default
~/.cache/vllm-desk-tests) so that later runs on the same machine reuse them; a fresh machine builds them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def test_cache_dir() -> Path:
    path = Path(os.environ.get("VLLM_DESK_TEST_CACHE", Path.home() / ".cache" / "vllm-desk-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path
