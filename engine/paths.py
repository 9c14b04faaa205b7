"""Where vLLM Desk keeps its state.

By default the XDG locations from platformdirs; ``--data-dir DIR`` or ``VLLM_DESK_HOME`` moves all of it
(config, history, logs, runtime, models, cache) under one folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from engine import APP_ID
from engine.errors import DataDirUnusable

HOME_ENV = "VLLM_DESK_HOME"


@dataclass(frozen=True)
class AppPaths:
    """Every directory the app writes to. Create them with :meth:`ensure`."""

    config: Path
    data: Path
    cache: Path
    state: Path

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def runtime(self) -> Path:
        """The managed vLLM virtual environment (never the app's own)."""
        return self.data / "runtime"

    @property
    def models(self) -> Path:
        return self.data / "models"

    @property
    def history_db(self) -> Path:
        return self.data / "history.sqlite3"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.toml"

    @classmethod
    def under(cls, root: Path) -> AppPaths:
        root = root.expanduser().absolute()
        return cls(config=root / "config", data=root / "data", cache=root / "cache", state=root / "state")

    @classmethod
    def default(cls) -> AppPaths:
        return cls(
            config=Path(platformdirs.user_config_dir(APP_ID)),
            data=Path(platformdirs.user_data_dir(APP_ID)),
            cache=Path(platformdirs.user_cache_dir(APP_ID)),
            state=Path(platformdirs.user_state_dir(APP_ID)),
        )

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike[str] | None = None) -> AppPaths:
        """``--data-dir`` wins over ``VLLM_DESK_HOME``, which wins over the XDG defaults."""
        if data_dir:
            return cls.under(Path(data_dir))
        env = os.environ.get(HOME_ENV)
        if env:
            return cls.under(Path(env))
        return cls.default()

    def all_dirs(self) -> tuple[Path, ...]:
        return (self.config, self.data, self.cache, self.state, self.logs, self.models)

    def ensure(self) -> AppPaths:
        """Create every directory; raise :class:`DataDirUnusable` naming the one that cannot be written."""
        for folder in self.all_dirs():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DataDirUnusable(folder, exc.strerror or str(exc)) from exc
            if not os.access(folder, os.W_OK | os.X_OK):
                raise DataDirUnusable(folder, "not writable")
        return self
