"""Settings: round trip, migrations, damaged files (truncated, wrong types, unknown keys, future schema),
environment overrides, and secrets never reaching the disk."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.chat.generation import GenerationSettings
from engine.models.builtin import BUILTIN_MODEL
from engine.paths import AppPaths
from engine.secrets import HF_TOKEN, SecretStore, profile_key
from engine.server.profiles import ServerProfile
from engine.server.supervisor import Supervisor
from engine.settings.store import (
    SCHEMA_VERSION,
    Settings,
    SettingsNotSaved,
    SettingsStore,
)
from tests.support.memory_keyring import MemoryKeyring
from tests.support.standin.launch import StandinRuntime, running_standin


def _store(app_paths: AppPaths) -> SettingsStore:
    return SettingsStore.open(app_paths.settings_file)


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".broken-*"))


def test_defaults_without_a_file(app_paths: AppPaths) -> None:
    store = _store(app_paths)
    assert store.settings == Settings()
    assert store.take_problems() is None
    assert not app_paths.settings_file.exists()
    assert store.settings.preset_for(BUILTIN_MODEL.served_name).temperature == 0.2
    assert store.settings.preset_for("some/other-model") == GenerationSettings()


def test_round_trip_and_atomic_write(app_paths: AppPaths) -> None:
    store = _store(app_paths)
    seen: list[Settings] = []
    store.changed.connect(seen.append)
    new = store.settings.model_copy(deep=True)
    new.general.close_to_tray = True
    new.general.vllm_path = Path("/opt/vllm/bin/vllm")
    new.appearance.theme = "dark"
    new.models.folders.append(Path("/models/mine"))
    new.presets["Mine"] = GenerationSettings(temperature=0.5, stop=("###",), seed=7)
    new.model_presets["org/model"] = "Mine"
    new.profiles.append(
        ServerProfile(name="lab", kind="remote", base_url="http://lab:8000/v1/", key_mode="fixed")
    )
    new.profiles.append(
        ServerProfile(name="Qwen", source="hf_repo", model="Qwen/Qwen3-0.6B", max_model_len=4096)
    )
    store.update(new)
    assert len(seen) == 1
    store.update(new.model_copy(deep=True))  # nothing changed: no write, no event
    assert len(seen) == 1
    on_disk = tomllib.loads(app_paths.settings_file.read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["general"]["close_to_tray"] is True
    assert "max_tokens" not in on_disk["presets"]["Mine"]  # None is left out, not written
    assert not list(app_paths.config.glob(".settings-*"))  # no temp file left behind
    again = _store(app_paths)
    assert again.settings == store.settings
    assert again.settings.endpoints[0].base_url == "http://lab:8000/v1"
    assert [p.name for p in again.settings.profiles] == ["Built-in model", "lab", "Qwen"]
    assert again.settings.profile("Qwen") == ServerProfile(
        name="Qwen", source="hf_repo", model="Qwen/Qwen3-0.6B", max_model_len=4096
    )
    assert again.settings.preset_for("org/model").stop == ("###",)
    assert again.take_problems() is None


def test_migrates_schema_1(app_paths: AppPaths) -> None:
    app_paths.settings_file.write_text(
        "schema_version = 1\n[general]\nclose_to_tray = true\n[generation]\ntemperature = 0.3\nseed = 4\n"
    )
    store = _store(app_paths)
    assert store.take_problems() is None
    assert store.settings.presets["Default"] == GenerationSettings(temperature=0.3, seed=4)
    assert store.settings.general.close_to_tray is True
    on_disk = tomllib.loads(app_paths.settings_file.read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert "generation" not in on_disk
    assert not _backups(app_paths.settings_file)


def test_migrates_schema_2_builtin_bfloat16_to_auto_and_keeps_other_dtypes(app_paths: AppPaths) -> None:
    app_paths.settings_file.write_text(
        "schema_version = 2\n"
        '[[profiles]]\nname = "Built-in model"\nsource = "builtin"\ndtype = "bfloat16"\n'
        '[[profiles]]\nname = "Mine"\nsource = "folder"\nmodel = "/m"\ndtype = "bfloat16"\n'
    )
    store = _store(app_paths)
    assert store.take_problems() is None
    assert store.settings.profile("Built-in model").dtype == "auto"
    assert store.settings.profile("Mine").dtype == "bfloat16"  # the user's own choice
    on_disk = tomllib.loads(app_paths.settings_file.read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION == 3
    assert [p["dtype"] for p in on_disk["profiles"]] == ["auto", "bfloat16"]


def test_file_without_version_counts_as_schema_1(app_paths: AppPaths) -> None:
    app_paths.settings_file.write_text("[generation]\ntop_k = 40\n")
    assert _store(app_paths).settings.presets["Default"].top_k == 40


def test_truncated_file_keeps_the_readable_tables(app_paths: AppPaths) -> None:
    good = 'schema_version = 2\n[general]\nclose_to_tray = true\nsend_key = "ctrl+enter"\n'
    original = good + '[appearance]\ntheme = "dark"\nfont_size = '
    app_paths.settings_file.write_text(original)
    store = _store(app_paths)
    assert store.settings.general.close_to_tray is True
    assert store.settings.general.send_key == "ctrl+enter"
    assert store.settings.appearance.theme == "system"  # the broken table falls back to defaults
    report = store.take_problems()
    assert report is not None
    assert [p.section for p in report.problems] == ["appearance"]
    assert "unreadable" in report.problems[0].message
    assert report.backup is not None
    assert report.backup.read_text() == original
    assert str(report.backup) in str(report)
    assert store.take_problems() is None  # told once
    # The file was rewritten clean: the next start has nothing to report.
    assert _store(app_paths).take_problems() is None


def test_wrong_types_default_only_those_keys(app_paths: AppPaths) -> None:
    app_paths.settings_file.write_text(
        'schema_version = 2\n[general]\nclose_to_tray = "maybe"\nnotifications = false\n'
        '[appearance]\nfont_size = 99\ntheme = "pink"\n'
        "[presets.Mine]\ntemperature = 7.5\ntop_p = 0.5\n"
        '[[profiles]]\nname = "lab"\nkind = "remote"\nbase_url = "ftp://lab"\n'
        '[[profiles]]\nname = "big"\nport = 70000\nmax_model_len = 4096\n'
        "[[profiles]]\nport = 8000\n"
    )
    store = _store(app_paths)
    s = store.settings
    assert s.general.close_to_tray is False
    assert s.general.notifications is False
    assert s.appearance.font_size == 11
    assert s.appearance.theme == "system"
    assert s.presets["Mine"] == GenerationSettings(top_p=0.5)
    # A remote profile without a usable URL cannot stand; a bad port only loses the port.
    assert [p.name for p in s.profiles] == ["big"]
    assert s.profiles[0].port == 0
    assert s.profiles[0].max_model_len == 4096
    report = store.take_problems()
    assert report is not None
    where = {(p.section, p.key) for p in report.problems}
    assert where == {
        ("general", "close_to_tray"),
        ("appearance", "font_size"),
        ("appearance", "theme"),
        ("presets", "Mine.temperature"),
        ("profiles", "['lab'].base_url"),
        ("profiles", "['lab']"),
        ("profiles", "['big'].port"),
        ("profiles", "[2]"),
    }
    font = next(p for p in report.problems if p.key == "font_size")
    assert "less than or equal to 32" in font.message
    assert "99" in font.message
    assert len(_backups(app_paths.settings_file)) == 1


def test_unknown_keys_are_reported_and_dropped(app_paths: AppPaths) -> None:
    app_paths.settings_file.write_text(
        'schema_version = 2\n[general]\ncolour = "blue"\nautostart = true\n[mystery]\na = 1\n'
    )
    store = _store(app_paths)
    assert store.settings.general.autostart is True
    report = store.take_problems()
    assert report is not None
    assert {(p.section, p.key, p.message) for p in report.problems} == {
        ("general", "colour", "unknown setting, ignored"),
        ("mystery", "", "unknown setting, ignored"),
    }


def test_future_schema_keeps_what_it_knows(app_paths: AppPaths) -> None:
    app_paths.settings_file.write_text(
        "schema_version = 99\n[general]\nclose_to_tray = true\n[hologram]\nenabled = true\n"
    )
    store = _store(app_paths)
    assert store.settings.general.close_to_tray is True
    assert store.settings.schema_version == SCHEMA_VERSION
    report = store.take_problems()
    assert report is not None
    assert "newer vLLM Desk (schema 99" in str(report)
    assert ("hologram", "") in {(p.section, p.key) for p in report.problems}
    assert _backups(app_paths.settings_file)[0].read_text().startswith("schema_version = 99")


def test_environment_overrides_are_not_saved(app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_DESK_APPEARANCE__FONT_SIZE", "20")
    monkeypatch.setenv("VLLM_DESK_GENERAL__SEND_KEY", "sideways")
    store = _store(app_paths)
    assert store.settings.appearance.font_size == 20
    assert store.stored.appearance.font_size == 11
    assert store.overridden_keys == {("appearance", "font_size")}
    report = store.take_problems()
    assert report is not None
    assert "VLLM_DESK_GENERAL__SEND_KEY ignored" in str(report)
    new = store.settings.model_copy(deep=True)
    new.appearance.theme = "light"
    store.update(new)
    on_disk = tomllib.loads(app_paths.settings_file.read_text())
    assert on_disk["appearance"] == {"theme": "light", "font_size": 11}
    assert store.settings.appearance.font_size == 20
    new = store.settings.model_copy(deep=True)
    new.appearance.font_size = 14  # the user changed it on purpose: that is saved
    store.update(new)
    assert tomllib.loads(app_paths.settings_file.read_text())["appearance"]["font_size"] == 14


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = SettingsStore.open(blocker / "settings.toml")
    with pytest.raises(SettingsNotSaved, match="could not write"):
        store.update(Settings(general={"autostart": True}))


REMOTE_KEY = "sk-never-on-disk-1234"
HF_SECRET = "hf_never_on_disk_5678"


@pytest.fixture
def app_keychain() -> Iterator[SecretStore]:
    """The app's own SecretStore (its service name, the keyring the app gets: the in-memory one in tests);
    whatever a test puts there is gone afterwards (MemoryKeyring's store is shared by the class)."""
    secrets = SecretStore()
    assert isinstance(secrets.backend, MemoryKeyring)
    before = dict(MemoryKeyring._store)
    yield secrets
    MemoryKeyring._store.clear()
    MemoryKeyring._store.update(before)


def _every_file(root: Path) -> dict[Path, bytes]:
    return {f: f.read_bytes() for f in root.rglob("*") if f.is_file()}


@pytest.mark.asyncio
async def test_secrets_never_reach_the_disk(
    app_paths: AppPaths, app_keychain: SecretStore, isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    store = _store(app_paths)
    with running_standin(api_key=REMOTE_KEY) as team:
        # What Preferences' Apply does: the keys into the keychain, then the profiles into the settings.
        app_keychain.set(profile_key("lab"), REMOTE_KEY)
        app_keychain.set(HF_TOKEN, HF_SECRET)
        new = store.settings.model_copy(deep=True)
        new.profiles += [
            ServerProfile(name="lab", kind="remote", base_url=team.base_url),
            ServerProfile(name="fixed", source="hf_repo", model="org/model", key_mode="fixed"),
        ]
        new.general.default_profile = "lab"
        store.update(new)

        # The app, started again, reads the profiles from the file and uses them: the remote one with its
        # key from the keychain; the local one with a fixed key, made and kept in the keychain at its launch
        # (which also writes the launch's log and start time under the app's folders).
        saved = _store(app_paths).settings
        lab, fixed = saved.profile("lab"), saved.profile("fixed")
        assert lab is not None
        assert fixed is not None
        supervisor = Supervisor(app_paths, StandinRuntime([]))
        try:
            assert (await supervisor.start(lab)).api_key == REMOTE_KEY
            local = await supervisor.start(fixed)
        finally:
            await supervisor.stop()
        fixed_key = app_keychain.get(profile_key("fixed"))
        assert fixed_key
        assert local.api_key == fixed_key
        store.update(store.settings.model_copy(update={"model_presets": {"x": "Precise"}}))

    written = _every_file(isolated_dirs)  # the app's folders (under it) and every XDG folder
    # The scan reads what the app wrote: the settings with the profiles, the launch's log.
    settings_text = written[app_paths.settings_file].decode()
    assert team.base_url in settings_text
    assert "org/model" in settings_text
    assert any(f.suffix == ".log" and f.is_relative_to(app_paths.logs) for f in written)
    secrets = {"the remote key": REMOTE_KEY, "the HF token": HF_SECRET, "the fixed launch key": fixed_key}
    leaks = [
        (str(f), what)
        for f, data in written.items()
        for what, text in secrets.items()
        if text.encode() in data
    ]
    assert leaks == []
    assert app_keychain.get(profile_key("lab")) == REMOTE_KEY
