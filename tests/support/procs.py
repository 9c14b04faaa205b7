"""Whether a process is still there, as the tests that watch for leftovers need to ask it."""

from __future__ import annotations

import psutil


def is_alive(proc: psutil.Process | int) -> bool:
    """Running and not a zombie (an orphan's zombie may wait for a PID 1 that does not reap)."""
    try:
        process = proc if isinstance(proc, psutil.Process) else psutil.Process(proc)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
