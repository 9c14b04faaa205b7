"""The app's settings: a typed model (pydantic) saved as TOML in the config dir.

Sections: ``general``, ``appearance``, ``models`` (folders the user added), ``documents`` (the embedding
model), ``profiles`` (server profiles,
local or remote: the remote ones are the endpoints), ``presets`` (named generation settings) with
``model_presets`` (default preset per model).
The file carries a ``schema_version``; older layouts are migrated on load. A broken file never stops the
app: :class:`SettingsStore` keeps what is valid, uses defaults for the rest, backs the bad file up beside
it and lists the problems once (by section and key). ``VLLM_DESK_<SECTION>__<KEY>`` environment variables
override ``general``/``appearance``/``models`` keys for scripting without being written to the file.
Secrets never live here (see :mod:`engine.secrets`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import tomli_w
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.chat.generation import PRESETS, GenerationSettings
from engine.errors import DeskError, Fix
from engine.events import Event
from engine.models.builtin import BUILTIN_MODEL
from engine.server.profiles import ServerProfile, builtin_profile
from engine.settings.repair import SettingsProblem, parse_leniently, repair

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# A settings file is a few KiB; a larger one is damaged (or not ours) and not worth parsing.
MAX_FILE_BYTES = 1 << 20
ENV_PREFIX = "VLLM_DESK_"
# The preset the built-in (tiny) model starts with: at the server's default temperature 1.0 it rambles.
BUILTIN_PRESET = "Small model"


class _Section(BaseModel):
    # Unknown keys are reported (and dropped) rather than silently kept.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GeneralSettings(_Section):
    """Behaviour of the app as a whole."""

    start_server_with_app: bool = Field(
        default=True, description="Start the default profile's server at launch."
    )
    default_profile: str = Field(
        default="", description="Name of the profile to start; empty: the first one."
    )
    close_to_tray: bool = Field(default=False, description="Closing the window keeps the app in the tray.")
    notifications: bool = Field(
        default=True, description="Desktop notifications (server ready, answer done)."
    )
    autostart: bool = Field(default=False, description="Start vLLM Desk when you log in.")
    send_key: Literal["enter", "ctrl+enter"] = Field(default="enter", description="Key that sends a message.")
    vllm_path: Path | None = Field(
        default=None, description="A vllm executable to use instead of the managed one."
    )


class AppearanceSettings(_Section):
    theme: Literal["system", "light", "dark"] = "system"
    font_size: int = Field(default=11, ge=6, le=32, description="Font size of the chat, in points.")


class ModelSettings(_Section):
    """Where models come from besides the built-in one and the Hugging Face cache."""

    folders: list[Path] = Field(default_factory=list, description="Local model folders the user added.")
    repo_ids: list[str] = Field(default_factory=list, description="Hugging Face repo ids the user typed.")


BUILTIN_EMBEDDER_CHOICE = "builtin"


class DocumentsSettings(_Section):
    """Chat with your documents: which embedding model indexes and searches them."""

    embedder: str = Field(
        default=BUILTIN_EMBEDDER_CHOICE,
        min_length=1,
        description="“builtin” (all-MiniLM-L6-v2 served by vLLM), or the name of a server profile: a local "
        "one serving a Hugging Face embedding model with --runner pooling, or a remote /v1/embeddings.",
    )


def default_presets() -> dict[str, GenerationSettings]:
    presets = {p.name: p.settings for p in PRESETS}
    presets[BUILTIN_PRESET] = GenerationSettings(
        temperature=BUILTIN_MODEL.default_temperature, max_tokens=512
    )
    return presets


def default_model_presets() -> dict[str, str]:
    return {BUILTIN_MODEL.served_name: BUILTIN_PRESET}


class Settings(BaseModel):
    """Everything the app remembers between runs except history, window geometry and secrets."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: int = SCHEMA_VERSION
    general: GeneralSettings = Field(default_factory=GeneralSettings)
    appearance: AppearanceSettings = Field(default_factory=AppearanceSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    documents: DocumentsSettings = Field(default_factory=DocumentsSettings)
    # Remote endpoints are profiles of kind "remote" (their key: ``profile:<name>`` in the keychain).
    profiles: list[ServerProfile] = Field(default_factory=lambda: [builtin_profile()])
    presets: dict[str, GenerationSettings] = Field(default_factory=default_presets)
    model_presets: dict[str, str] = Field(default_factory=default_model_presets)

    def profile(self, name: str) -> ServerProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def default_profile(self) -> ServerProfile | None:
        """The profile named in ``general.default_profile``, else the first one."""
        return self.profile(self.general.default_profile) or (self.profiles[0] if self.profiles else None)

    @property
    def endpoints(self) -> list[ServerProfile]:
        """The remote servers (profiles of kind ``remote``)."""
        return [p for p in self.profiles if p.kind == "remote"]

    def preset_for(self, model: str) -> GenerationSettings:
        """The default generation settings for ``model`` (its preset, else the server's defaults)."""
        name = self.model_presets.get(model)
        if name and name in self.presets:
            return self.presets[name]
        return GenerationSettings()

    def to_toml_dict(self) -> dict[str, Any]:
        # TOML has no null: a missing key means "default".
        return self.model_dump(mode="json", exclude_none=True)


# --- migrations -------------------------------------------------------------------------------------


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Schema 1 kept one unnamed [generation] table; schema 2 has named presets and a default per model.
    generation = data.pop("generation", None)
    if isinstance(generation, dict):
        data.setdefault("presets", {})["Default"] = generation
    return data


def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    # Schema 2 wrote the built-in profile with dtype "bfloat16", which answers wrongly on some CPUs; the
    # app's default is now "auto" (float32 on the CPU build). A dtype the user set on another profile stays.
    for profile in data.get("profiles") or []:
        if (
            isinstance(profile, dict)
            and profile.get("source", "builtin") == "builtin"
            and profile.get("kind", "local") == "local"
            and profile.get("dtype") == "bfloat16"
        ):
            profile["dtype"] = "auto"
    return data


# MIGRATIONS[n] turns a schema-n dict into a schema-(n+1) dict.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a loaded dict up to :data:`SCHEMA_VERSION` (a file without a version counts as schema 1)."""
    version = data.get("schema_version", 1)
    while isinstance(version, int) and version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version += 1
    data["schema_version"] = SCHEMA_VERSION
    return data


# --- problems -------------------------------------------------------------------------------------------


class SettingsRepaired(DeskError):
    title = "Some settings could not be used"

    def __init__(self, problems: list[SettingsProblem], backup: Path | None) -> None:
        lines = "\n".join(f"• {p}" for p in problems)
        kept = f" The original file was saved as {backup}." if backup else ""
        super().__init__(
            f"vLLM Desk started with default values for these settings:\n{lines}\n{kept}".rstrip(),
            fix=Fix(action="open_preferences", label="Open Preferences", hint="Check the settings named."),
        )
        self.problems = problems
        self.backup = backup


class SettingsNotSaved(DeskError):
    title = "The settings could not be saved"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"vLLM Desk could not write {path} ({reason}). Your changes are in effect until you quit.",
            fix=Fix(
                action="choose_data_dir", label="Choose another folder", hint="Free space or fix permissions."
            ),
        )


# --- environment overrides ------------------------------------------------------------------------------


class _EnvLayer(BaseSettings):
    """Collects ``VLLM_DESK_GENERAL__SEND_KEY=...``-style variables; validated with the real model later."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    general: dict[str, Any] = Field(default_factory=dict)
    appearance: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, Any] = Field(default_factory=dict)


def env_overrides() -> dict[str, dict[str, Any]]:
    """The overrides present in the environment, by section."""
    return {k: v for k, v in _EnvLayer().model_dump().items() if v}


# --- the store --------------------------------------------------------------------------------------------


class SettingsStore:
    """Loads, repairs, overrides and saves the settings file; emits :attr:`changed` after each update.

    ``settings`` is what the app uses (file + environment overrides); ``stored`` is what the file holds.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed: Event[Settings] = Event("settings.changed")
        self._stored = Settings()
        self._overrides: dict[str, dict[str, Any]] = {}
        self._effective = Settings()
        self._problems: list[SettingsProblem] = []
        self.backup: Path | None = None

    @classmethod
    def open(cls, path: Path) -> SettingsStore:
        """A store with the file at ``path`` loaded (a missing file means defaults)."""
        store = cls(path)
        store.load()
        return store

    @property
    def settings(self) -> Settings:
        return self._effective

    @property
    def stored(self) -> Settings:
        return self._stored

    @property
    def overridden_keys(self) -> set[tuple[str, str]]:
        """``(section, key)`` pairs set by environment variables (the GUI shows them as such)."""
        return {(section, key) for section, values in self._overrides.items() for key in values}

    def load(self) -> Settings:
        """Read the file, migrate and repair it; a damaged file is backed up and rewritten."""
        self._problems = []
        self.backup = None
        data: dict[str, Any] = {}
        text, replaceable = self._read()
        if text is not None:
            data, parse_problems = parse_leniently(text)
            self._problems += parse_problems
        version = data.get("schema_version", 1)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            self._problems.append(
                SettingsProblem(
                    "settings",
                    "schema_version",
                    f"written by a newer vLLM Desk (schema {version}, this one knows {SCHEMA_VERSION}); "
                    "settings this version does not know are ignored",
                )
            )
        elif not isinstance(version, int):
            self._problems.append(
                SettingsProblem("settings", "schema_version", f"not a number ({version!r})")
            )
            data["schema_version"] = 1
        migrated = version != SCHEMA_VERSION
        stored, repair_problems = repair(migrate(data), Settings)
        self._problems += repair_problems
        self._stored = stored
        if self._problems and replaceable:
            self.backup = self._back_up()
        if replaceable and (self._problems or migrated):
            try:
                self._write(stored)
            except SettingsNotSaved as exc:
                # Loading never fails: the app starts with these settings and says the file was not fixed.
                self._problems.append(SettingsProblem("settings", "", f"not repaired on disk: {exc}"))
        self._problems += self._apply_overrides()
        return self._effective

    def _read(self) -> tuple[str | None, bool]:
        """The file's text (``None``: none to use) and whether the file may be replaced by a repaired one.

        Never raises and never blocks: only a regular file of at most :data:`MAX_FILE_BYTES` is read (a FIFO
        would wait forever, a directory or device is not ours to replace); anything else is a problem noted
        and defaults are used."""
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return None, False
        except OSError as exc:
            self._problems.append(SettingsProblem("settings", "", f"unreadable ({exc}); all defaults used"))
            return None, False
        if not stat.S_ISREG(found.st_mode):
            kind = "a folder" if stat.S_ISDIR(found.st_mode) else "not a regular file"
            self._problems.append(
                SettingsProblem(
                    "settings", "", f"{self.path} is {kind}; all defaults used, it was left alone"
                )
            )
            return None, False
        if found.st_size > MAX_FILE_BYTES:
            self._problems.append(
                SettingsProblem(
                    "settings",
                    "",
                    f"the file is {found.st_size / 2**20:,.1f} MiB, far larger than settings can be; "
                    "all defaults used",
                )
            )
            return "", True
        try:
            with open(self.path, "rb") as handle:
                return handle.read(MAX_FILE_BYTES + 1).decode("utf-8"), True
        except (OSError, UnicodeDecodeError) as exc:
            self._problems.append(SettingsProblem("settings", "", f"unreadable ({exc}); all defaults used"))
            # Not UTF-8: backed up and replaced. Not readable at all (permissions): left alone.
            return None, isinstance(exc, UnicodeDecodeError)

    def take_problems(self) -> SettingsRepaired | None:
        """The load problems as one report, returned once (the GUI shows it once)."""
        if not self._problems:
            return None
        report = SettingsRepaired(self._problems, self.backup)
        self._problems = []
        return report

    def update(self, new: Settings) -> None:
        """Make ``new`` the settings, save them if they changed, and emit :attr:`changed`.

        Keys set by environment overrides keep their stored value unless ``new`` changes them.
        """
        validated = Settings.model_validate(new.model_dump())
        stored_dict = validated.model_dump()
        for section, values in self._overrides.items():
            effective_section = getattr(self._effective, section)
            for key in values:
                if getattr(getattr(validated, section), key) == getattr(effective_section, key):
                    stored_dict[section][key] = getattr(getattr(self._stored, section), key)
        stored = Settings.model_validate(stored_dict)
        if stored == self._stored and self.path.exists():
            self._apply_overrides()
            return
        self._write(stored)
        self._stored = stored
        self._apply_overrides()
        self.changed.emit(self._effective)

    def _apply_overrides(self) -> list[SettingsProblem]:
        self._overrides = {}
        problems: list[SettingsProblem] = []
        raw = env_overrides()
        data = self._stored.model_dump()
        for section, values in raw.items():
            for key, value in values.items():
                candidate = copy.deepcopy(data)
                candidate[section][key] = value
                try:
                    Settings.model_validate(candidate)
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"]
                    var = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
                    problems.append(
                        SettingsProblem(section, key, f"environment variable {var} ignored: {msg}")
                    )
                    continue
                data = candidate
                self._overrides.setdefault(section, {})[key] = value
        self._effective = Settings.model_validate(data)
        return problems

    def _back_up(self) -> Path | None:
        """Keep the damaged file beside the new one (a hard link: no copy of a large file); ``None`` when
        that is not possible (the problem is noted, the app starts anyway)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.broken-{stamp}")
        n = 1
        while backup.exists():
            n += 1
            backup = self.path.with_name(f"{self.path.name}.broken-{stamp}-{n}")
        try:
            os.link(self.path, backup)
        except OSError:
            try:
                shutil.copyfile(self.path, backup)
            except OSError as exc:
                self._problems.append(SettingsProblem("settings", "", f"no backup could be made ({exc})"))
                return None
        return backup

    def _write(self, settings: Settings) -> None:
        """Temp file + fsync + rename, so a crash leaves the old file or the new one, never half."""
        text = tomli_w.dumps(settings.to_toml_dict())
        # A settings file linked from elsewhere (a dotfiles folder) is written where it lives; the link stays.
        target = Path(os.path.realpath(self.path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock", timeout=10):
                fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=target.parent)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as handle:
                        handle.write(text)
                        handle.flush()
                        os.fsync(handle.fileno())
                    os.replace(tmp, target)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                dir_fd = os.open(target.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            raise SettingsNotSaved(self.path, exc.strerror or str(exc)) from exc
