"""Capabilities only the Qt side can provide to the engine's command line (e.g. PDF rendering)."""

from __future__ import annotations


def available() -> dict[str, object]:
    """Map capability name -> callable; looked up by engine CLI commands that need them."""
    caps: dict[str, object] = {}
    return caps
