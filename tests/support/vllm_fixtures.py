"""Session-scoped fixtures around the real vLLM on the CPU (runtime, built-in model, one shared server).

The runtime and the model are built by the app's own code into $VLLM_DESK_TEST_CACHE (default
~/.cache/vllm-desk-tests) so that later runs on the same machine reuse them; a fresh machine builds them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def cache_dir() -> Path:
    path = Path(os.environ.get("VLLM_DESK_TEST_CACHE", Path.home() / ".cache" / "vllm-desk-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def test_cache_dir() -> Path:
    return cache_dir()


def prepare_cache() -> None:
    """Build (or check) the runtime and the built-in model ahead of the suite: ``python -m
    tests.support.vllm_fixtures``. On a fresh machine this takes minutes, which no single test should pay."""
    from engine.builtin_model import prepare_builtin_model
    from engine.paths import AppPaths
    from engine.runtime import RuntimeInstaller

    paths = AppPaths.under(cache_dir() / "home").ensure()
    runtime = RuntimeInstaller(paths, gpu=False).install(_print_progress("runtime"))
    print(f"runtime ready: {runtime.root}", flush=True)
    model = prepare_builtin_model(paths, runtime, _print_progress("model"))
    print(f"built-in model ready: {model}", flush=True)


def _print_progress(label: str):  # type: ignore[no-untyped-def]
    # Shown with `pytest -s`; a fresh machine spends minutes here, and silence looks like a hang.
    def show(p) -> None:  # type: ignore[no-untyped-def]
        frac = f"{p.fraction:4.0%}" if p.fraction is not None else "  … "
        print(f"[{label}] {frac} {p.phase}: {p.message}", flush=True)

    return show


@pytest.fixture(scope="session")
def vllm_paths(test_cache_dir: Path):  # type: ignore[no-untyped-def]
    """AppPaths whose runtime and models live in the test cache (shared by runs and pytest processes)."""
    from engine.paths import AppPaths

    return AppPaths.under(test_cache_dir / "home").ensure()


@pytest.fixture(scope="session")
def vllm_runtime(vllm_paths):  # type: ignore[no-untyped-def]
    """A ready managed VllmRuntime, installed by the app's own RuntimeInstaller (under its file lock)."""
    from engine.runtime import RuntimeInstaller

    # The CPU build, always: these tests serve on the CPU, and a GPU machine would otherwise get GPU vLLM.
    return RuntimeInstaller(vllm_paths, gpu=False).install(_print_progress("runtime"))


@pytest.fixture(scope="session")
def builtin_model_dir(vllm_paths, vllm_runtime) -> Path:  # type: ignore[no-untyped-def]
    """The built-in model converted by the app's own code (under its file lock)."""
    from engine.builtin_model import prepare_builtin_model

    return prepare_builtin_model(vllm_paths, vllm_runtime, _print_progress("model"))


@pytest.fixture(scope="session")
def vllm_server(vllm_paths, vllm_runtime, builtin_model_dir):  # type: ignore[no-untyped-def]
    """One real vLLM serving the built-in model for the whole session; yields its Endpoint (with the key).

    Started and stopped by the app's own Supervisor, on an asyncio loop in a background thread.
    """
    import asyncio
    import threading

    from engine.profiles import builtin_profile
    from engine.supervisor import Supervisor

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vllm-server-loop", daemon=True)
    thread.start()
    supervisor = Supervisor(vllm_paths, vllm_runtime, ready_timeout_s=900)
    try:
        endpoint = asyncio.run_coroutine_threadsafe(supervisor.start(builtin_profile()), loop).result(960)
        yield endpoint
    finally:
        asyncio.run_coroutine_threadsafe(supervisor.shutdown(), loop).result(120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


if __name__ == "__main__":
    prepare_cache()
