"""Where state lives: XDG by default, moved whole by --data-dir or VLLM_DESK_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import DataDirUnusable
from engine.paths import HOME_ENV, AppPaths


def test_default_follows_xdg(isolated_dirs: Path) -> None:
    paths = AppPaths.resolve()
    assert paths.config == isolated_dirs / "config" / "vllm-desk"
    assert paths.data == isolated_dirs / "data" / "vllm-desk"
    assert paths.cache == isolated_dirs / "cache" / "vllm-desk"
    assert paths.state == isolated_dirs / "state" / "vllm-desk"
    assert paths.runtime == paths.data / "runtime"
    assert paths.models == paths.data / "models"
    assert paths.logs == paths.state / "logs"


def test_the_hugging_face_cache_and_keychain_of_the_user_are_never_used(isolated_dirs: Path) -> None:
    import keyring

    from engine.models.catalog import hf_cache_dir

    assert hf_cache_dir().is_relative_to(isolated_dirs)
    assert type(keyring.get_keyring()).__name__ == "MemoryKeyring"


def test_env_moves_everything_under_one_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "desk"))
    paths = AppPaths.resolve()
    for folder in (*paths.all_dirs(), paths.runtime, paths.history_db, paths.settings_file):
        assert folder.is_relative_to(tmp_path / "desk")


def test_data_dir_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    paths = AppPaths.resolve(tmp_path / "from-flag")
    assert paths.data == tmp_path / "from-flag" / "data"


def test_relative_data_dir_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = AppPaths.resolve("rel")
    assert paths.config == tmp_path / "rel" / "config"
    assert paths.config.is_absolute()


def test_ensure_creates_every_dir(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path / "desk").ensure()
    assert all(folder.is_dir() for folder in paths.all_dirs())


def test_ensure_names_the_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "desk").mkdir()
    (tmp_path / "desk" / "data").write_text("a file where the data folder should be")
    with pytest.raises(DataDirUnusable) as caught:
        AppPaths.under(tmp_path / "desk").ensure()
    assert caught.value.path == tmp_path / "desk" / "data"
    assert str(tmp_path / "desk" / "data") in str(caught.value)
    assert caught.value.fix is not None
    assert "--data-dir" in caught.value.fix.hint
