"""How long each profile's last start took, so the next start can show "~40 s" (``start-durations.json``)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DURATIONS_FILE = "start-durations.json"


class StartTimes:
    """Seconds per profile name in ``state_dir/start-durations.json``; a damaged file counts as empty."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / DURATIONS_FILE

    def _load(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def expected(self, profile_name: str) -> float | None:
        """The last start's seconds for ``profile_name``, or ``None`` before its first start."""
        value = self._load().get(profile_name)
        return float(value) if isinstance(value, int | float) else None

    def record(self, profile_name: str, seconds: float) -> None:
        """Remember ``seconds`` (atomic replace; a failed write is only logged: it is a nicety)."""
        data = self._load()
        data[profile_name] = round(seconds, 2)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not save the start duration: %s", exc)
