"""A profile's environment (set in the settings file; no row on the form) survives edits in Preferences."""

from __future__ import annotations

import pytest

from desktop.preferences import PreferencesDialog
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.server.profiles import ServerProfile
from engine.settings.store import SettingsStore
from tests.support.memory_keyring import MemoryKeyring

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]
ENV = {"CUDA_VISIBLE_DEVICES": "1,0", "NCCL_P2P_DISABLE": "1"}


def test_editing_a_profile_keeps_its_environment(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    store = SettingsStore.open(app_paths.settings_file)
    profile = ServerProfile(name="tp2", source="hf_repo", model="org/m", tensor_parallel_size=2, env=ENV)
    store.update(store.settings.model_copy(update={"profiles": [profile]}))
    dialog = PreferencesDialog(store, paths=app_paths, gpus=[], secrets=SecretStore(backend=MemoryKeyring()))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_page("Server profiles")
    page = dialog.profiles_page
    page.select("tp2")
    editor = page.form.rows["port"].editor
    editor.setText("8123")
    edited = dialog.draft.profile("tp2")
    assert edited is not None
    assert edited.port == 8123
    assert edited.env == ENV
    assert dialog.apply()
    saved = SettingsStore.open(app_paths.settings_file).settings.profile("tp2")
    assert saved is not None
    assert (saved.port, saved.env) == (8123, ENV)
