"""Running a command without root's powers over files and low ports, so that "permission denied" cases are
tested for real on machines where the suite runs as root (this one and CI do)."""

from __future__ import annotations

import os
import shutil

import pytest

# Reading any file, searching any folder, binding ports below 1024: what a normal user cannot do.
DROPPED = "-dac_override,-dac_read_search,-net_bind_service"


def unprivileged(argv: list[str]) -> list[str]:
    """``argv`` as it is for a normal user; as root, under ``setpriv`` with those powers out of the bounding
    set (the process stays root, so it can still use the test's root-owned folders)."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # util-linux is essential on Debian: missing means a broken machine
        pytest.fail("setpriv (util-linux) is needed to test permission problems as root")
    return [setpriv, "--bounding-set", DROPPED, "--", *argv]
