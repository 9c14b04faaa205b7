"""Issue 14.3: no settings file stops the app from starting.

Whatever sits at the settings path (deeply nested values, a folder, a FIFO, a huge file, invalid fields),
loading gives defaults where needed, a backup where one can be made and a report; it never raises, never
hangs, and one bad field never deletes a whole profile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.settings.store import Settings, SettingsStore
from tests.support.standin.launch import REPO_ROOT
from tests.support.unprivileged import unprivileged


def _open(path: Path) -> tuple[SettingsStore, str]:
    store = SettingsStore.open(path)
    report = store.take_problems()
    return store, str(report) if report is not None else ""


def test_a_value_nested_100000_deep_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    store, report = _open(path)
    assert store.settings.profiles  # defaults
    assert "nested too deeply" in report
    assert store.backup is not None
    assert store.backup.read_text().startswith("x = [[[")


def test_a_folder_at_the_settings_path_gives_defaults_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.mkdir()
    (path / "inside").write_text("mine")
    store, report = _open(path)
    assert store.settings == Settings()
    assert "is a folder" in report
    assert (path / "inside").read_text() == "mine"


UNREADABLE_CHECK = """
import json, sys
from pathlib import Path
from engine.settings.store import Settings, SettingsStore
store = SettingsStore.open(Path(sys.argv[1]))
report = store.take_problems()
print(json.dumps({"defaults": store.settings == Settings(), "report": str(report) if report else ""}))
"""


def test_an_unreadable_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("[general]\nsend_key = 'ctrl+enter'\n")
    path.chmod(0)
    argv = [sys.executable, "-c", UNREADABLE_CHECK, str(path)]
    done = subprocess.run(
        unprivileged(argv), capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["defaults"] is True
    assert "unreadable" in result["report"]
    path.chmod(0o600)
    assert path.read_text() == "[general]\nsend_key = 'ctrl+enter'\n"  # left alone


def test_a_fifo_at_the_settings_path_does_not_hang(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    os.mkfifo(path)
    result: list[str] = []
    loader = threading.Thread(target=lambda: result.append(_open(path)[1]), daemon=True)
    loader.start()
    loader.join(timeout=30)
    if loader.is_alive():  # unblock the reader so the thread ends, then fail
        with open(path, "w"):
            pass
        pytest.fail("loading settings from a FIFO hung")
    assert "not a regular file" in result[0]


def test_a_huge_file_is_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(b"[t]\n" * (3 << 20 >> 2))  # 3 MiB of tables
    store, report = _open(path)
    assert store.settings.profiles
    assert "MiB" in report
    assert store.backup is not None
    assert store.backup.stat().st_size == 3 << 20


def test_thousands_of_broken_tables_are_not_salvaged_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("[t]\n" * 200_000)  # under the size limit, every table a duplicate
    store, report = _open(path)
    assert store.settings.profiles
    assert "too large to salvage" in report


def test_one_invalid_field_keeps_the_rest_of_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        '[[profiles]]\nname = "Mine"\nsource = "hf_repo"\nmodel = "Qwen/Qwen2.5-0.5B-Instruct"\n'
        "max_model_len = 1e400\nport = 8123\n"
    )
    store, report = _open(path)
    (profile,) = store.settings.profiles
    assert (profile.name, profile.model, profile.port, profile.max_model_len) == (
        "Mine",
        "Qwen/Qwen2.5-0.5B-Instruct",
        8123,
        None,
    )
    assert "max_model_len" in report


def test_the_report_never_repeats_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        '[[profiles]]\nname = "Mine"\nsource = "hf_repo"\nmodel = "m/m"\n'
        'extra_args = "--api-key=sk-abcdef1234567890"\n'
    )
    store, report = _open(path)
    assert "extra_args" in report
    assert "abcdef1234567890" not in report
    assert [p.name for p in store.settings.profiles] == ["Mine"]


TOML_PIECES = st.sampled_from(
    [
        "[general]\n",
        "[appearance]\n",
        "[[profiles]]\n",
        'name = "p"\n',
        "port = 99999\n",
        "max_model_len = 1e400\n",
        "max_model_len = -3\n",
        'source = "nowhere"\n',
        "font_size = 'big'\n",
        "x = [[[[1]]]]\n",
        "schema_version = 'two'\n",
        "schema_version = 99\n",
        "[presets.Default]\n",
        "temperature = nan\n",
        "= broken\n",
        "[[",
        '"unterminated\n',
        "\x00\n",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(TOML_PIECES | st.text(max_size=30), max_size=25))
def test_any_settings_text_loads(tmp_path_factory: pytest.TempPathFactory, pieces: list[str]) -> None:
    path = tmp_path_factory.mktemp("settings") / "settings.toml"
    path.write_text("".join(pieces), encoding="utf-8", errors="surrogatepass")
    store = SettingsStore.open(path)  # never raises
    assert isinstance(store.settings, Settings)
    again = SettingsStore.open(path)  # what was written back loads cleanly
    assert again.take_problems() is None or again.settings == store.settings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_any_bytes_load(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("settings") / "settings.toml"
    path.write_bytes(raw)
    assert isinstance(SettingsStore.open(path).settings, Settings)


def test_a_linked_settings_file_is_repaired_where_it_lives(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "vllm-desk.toml"
    real.write_text("[appearance]\nfont_size = 'huge'\ntheme = 'dark'\n")
    link = tmp_path / "config" / "settings.toml"
    link.parent.mkdir()
    link.symlink_to(real)
    store, report = _open(link)
    assert "font_size" in report
    assert store.settings.appearance.theme == "dark"
    assert link.is_symlink()  # the link is kept, the file it names is repaired
    assert "huge" not in real.read_text()
    assert "dark" in real.read_text()
