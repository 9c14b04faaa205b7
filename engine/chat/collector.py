"""Keeping the garbage collector's full collections off the way to the first token and out of a stream.

A full collection walks every tracked object: with Haystack and openai imported (and Qt, in the window) that
is ~140,000 objects and 80–130 ms here, and a turn's first allocations (reading a long conversation,
building its request) or a long stream's garbage can trigger one — a pause before the first token, or the
longest stall of a 20,000-token reply (~300 ms once). :func:`freeze_long_lived` moves what lives out of
their reach before a turn's own work.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Move what lives now (modules, Haystack's and pydantic's classes, the widgets, the conversations held)
    out of the collector's reach. Frozen objects are still freed when their last reference goes.

    The young generations are collected first (0.2–1 ms here): ``gc.freeze`` also freezes the cycles that
    are garbage at that moment, and without this every turn kept ~80 objects for good (measured: 30 turns
    against the stand-in left 2,983 unreachable objects frozen, 585 without freezing, 453 with this)."""
    gc.collect(1)
    gc.freeze()
