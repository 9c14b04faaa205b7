"""Times in the history: seconds since 1970, kept inside the range every platform's ``datetime`` can show.

A time outside it (year 10000 once a zone is applied, year 1, NaN) made ``datetime.fromtimestamp`` raise
and, with it, every listing, view and export of the whole history. So imports refuse such times
(:func:`check_instant`), and every reader goes through :func:`clamp_seconds`, so one bad row already in a
database still reads (at the nearest valid time) and never makes the others unreadable.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

# One day inside the years 1970..9999 on both ends: any time zone (UTC-12..UTC+14) keeps a local time valid,
# and Windows' fromtimestamp() refuses negative seconds.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
EARLIEST_S = EARLIEST.timestamp()
LATEST_S = LATEST.timestamp()
RANGE_TEXT = "between 1970-01-02 and 9999-12-30 (UTC)"


def clamp_seconds(value: object) -> float:
    """``value`` as seconds within :data:`EARLIEST_S`..:data:`LATEST_S`; anything unreadable becomes the
    earliest time rather than an exception."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return EARLIEST_S
    if not math.isfinite(seconds):
        return LATEST_S if seconds > 0 else EARLIEST_S
    return min(max(seconds, EARLIEST_S), LATEST_S)


def instant(seconds: object) -> datetime:
    """A UTC ``datetime`` for stored seconds; never raises (see :func:`clamp_seconds`)."""
    return datetime.fromtimestamp(clamp_seconds(seconds), UTC)


def local_text(seconds: object, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """Stored seconds in the machine's time zone, formatted; never raises."""
    return datetime.fromtimestamp(clamp_seconds(seconds)).strftime(pattern)


def check_instant(when: datetime) -> datetime:
    """``when`` (a naive time counts as UTC) if it lies in the supported range; else ``ValueError``."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"the time {when.isoformat()} is outside the supported range, {RANGE_TEXT}")
    return aware
