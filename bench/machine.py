"""A description of the machine the numbers were taken on (they mean little without it)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import psutil

PACKAGES = ("PySide6-Essentials", "haystack-ai", "httpx", "qasync", "markdown-it-py", "matplotlib")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# Flags that select different kernels (and so different speeds and, for vLLM's bfloat16, answers).
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in KERNEL_FLAGS if flag in present]
    except OSError:
        pass
    return []


def describe() -> dict[str, Any]:
    versions: dict[str, str] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    try:
        os_name = platform.freedesktop_os_release().get("PRETTY_NAME", platform.platform())
    except OSError:
        os_name = platform.platform()
    return {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "gpu": "none",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
    }
