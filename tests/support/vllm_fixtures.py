"""Session-scoped fixtures around the real vLLM on the CPU (runtime, built-in model, one shared server).

The runtime and the model are built by the app's own code into $VLLM_DESK_TEST_CACHE/key-<what built
them> (default cache: ~/.cache/vllm-desk-tests) so that later runs on the same machine reuse them, and a
change to the pins, the launcher or the model recipe builds them anew, as a fresh machine would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest


def cache_root() -> Path:
    path = Path(os.environ.get("VLLM_DESK_TEST_CACHE", Path.home() / ".cache" / "vllm-desk-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key() -> str:
    """What built the cached runtime and model: the pinned versions, the packages asked for, the launcher,
    the model recipe (converter code, source wheel, golden prompt) and the Python. A change to any of them
    gives a new key, so a cache can never hide what a fresh machine would build."""
    from engine.models.builtin import CONVERTER_PACKAGES, recipe_id
    from engine.runtime.install import CPU_PACKAGE, IOMP_PACKAGE
    from engine.runtime.locate import LAUNCHER_CODE
    from engine.runtime.pins import pins_digest, runtime_pins

    pins = runtime_pins("cpu")
    assert pins is not None  # the CPU build always ships its pins
    parts = {
        "pins": pins_digest(pins),
        "packages": [CPU_PACKAGE, IOMP_PACKAGE, *CONVERTER_PACKAGES],
        "launcher": hashlib.sha256(LAUNCHER_CODE.encode()).hexdigest(),
        "recipe": recipe_id(),
        "python": list(sys.version_info[:2]),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def cache_dir() -> Path:
    """This key's folder in the test cache (older keys' folders are removed by :func:`prepare_cache`)."""
    path = cache_root() / f"key-{cache_key()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def prune_other_keys() -> list[Path]:
    """Remove what other keys (or the unkeyed layout before keys) left: gigabytes each."""
    current = cache_dir()
    removed = []
    for stale in cache_root().iterdir():
        if stale != current and stale.is_dir() and (stale.name.startswith("key-") or stale.name == "home"):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


@pytest.fixture(scope="session")
def test_cache_dir() -> Path:
    return cache_dir()


def prepare_cache() -> None:
    """Build (or check) the runtime and the built-in model ahead of the suite: ``python -m
    tests.support.vllm_fixtures``. On a fresh machine this takes minutes, which no single test should pay."""
    from engine.models.builtin import prepare_builtin_model
    from engine.paths import AppPaths
    from engine.runtime.install import RuntimeInstaller

    for stale in prune_other_keys():
        print(f"removed a test cache built by other pins or recipe: {stale}", flush=True)
    print(f"test cache: {cache_dir()}", flush=True)
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
    from engine.runtime.install import RuntimeInstaller

    # The CPU build, always: these tests serve on the CPU, and a GPU machine would otherwise get GPU vLLM.
    return RuntimeInstaller(vllm_paths, gpu=False).install(_print_progress("runtime"))


@pytest.fixture(scope="session")
def builtin_model_dir(vllm_paths, vllm_runtime) -> Path:  # type: ignore[no-untyped-def]
    """The built-in model converted by the app's own code (under its file lock)."""
    from engine.models.builtin import prepare_builtin_model

    return prepare_builtin_model(vllm_paths, vllm_runtime, _print_progress("model"))


@pytest.fixture(scope="session")
def vllm_server(vllm_paths, vllm_runtime, builtin_model_dir):  # type: ignore[no-untyped-def]
    """One real vLLM serving the built-in model for the whole session; yields its Endpoint (with the key).

    Started and stopped by the app's own Supervisor, on an asyncio loop in a background thread.
    """
    import asyncio
    import threading

    from engine.server.profiles import builtin_profile
    from engine.server.supervisor import Supervisor

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
