"""The preferences dialog driven like a user would (pytest-qt, offscreen): pick a model from a fake Hugging
Face cache, edit profiles with as-you-type validation, Cancel restores, keys go to the keychain only, Test
connection against the stand-in server process (and once against the real vLLM)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.backends import fail
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QLineEdit, QPlainTextEdit

from desktop.preferences import PreferencesDialog, open_preferences
from desktop.preferences.form import ModelForm
from engine.hardware import GpuInfo
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.server.profiles import ServerProfile
from engine.server.supervisor import Supervisor
from engine.settings.store import SettingsStore
from tests.support.hf_cache import SMOLLM2_CONFIG, add_cached_model, safetensors_bytes
from tests.support.memory_keyring import MemoryKeyring
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import StandinRuntime, running_standin

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]
SHOTS = Path(__file__).resolve().parents[3] / "shots"
GIB = 2**30


@pytest.fixture
def keyring_memory() -> Iterator[MemoryKeyring]:
    MemoryKeyring._store.clear()
    yield MemoryKeyring()
    MemoryKeyring._store.clear()


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-hub"
    weights = safetensors_bytes({"model.embed_tokens.weight": ("BF16", [64, 16], 2)})
    add_cached_model(
        cache,
        "HuggingFaceTB/SmolLM2-360M-Instruct",
        {
            "config.json": json.dumps({**SMOLLM2_CONFIG, "hidden_size": 960}).encode(),
            "model.safetensors": weights,
        },
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def make_dialog(qtbot, app_paths: AppPaths, **kwargs) -> PreferencesDialog:  # type: ignore[no-untyped-def]
    store = kwargs.pop("store", None) or SettingsStore.open(app_paths.settings_file)
    kwargs.setdefault("gpus", [])
    kwargs.setdefault("secrets", SecretStore(backend=MemoryKeyring()))
    dialog = PreferencesDialog(store, paths=app_paths, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def set_text(qtbot, form: ModelForm, field: str, text: str) -> None:  # type: ignore[no-untyped-def]
    editor = form.rows[field].editor
    if isinstance(editor, QPlainTextEdit):
        editor.setPlainText(text)
        return
    assert isinstance(editor, QLineEdit)
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClicks(editor, text)


def choose(form: ModelForm, field: str, text: str) -> None:
    combo = form.rows[field].editor
    assert isinstance(combo, QComboBox)
    combo.setCurrentIndex(combo.findText(text))


def shot(dialog: PreferencesDialog, title: str, name: str) -> None:
    dialog.show_page(title)
    # Layouts settle in the event loop: let pending layout requests run before grabbing.
    for _ in range(3):
        QApplication.processEvents()
    SHOTS.mkdir(exist_ok=True)
    assert dialog.grab().save(str(SHOTS / f"prefs-{name}.png"))


def test_pick_a_model_from_the_hf_cache(qtbot, app_paths: AppPaths, hf_cache: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    page = dialog.models_page
    names = [page.table.item(r, 0).text() for r in range(page.table.rowCount())]
    assert names[0].startswith("SmolLM2 135M Instruct (built-in)")
    assert names[1] == "HuggingFaceTB/SmolLM2-360M-Instruct  @01234567"
    assert page.table.item(1, 2).text().endswith("KB")
    assert page.table.item(1, 3).text() == "LlamaForCausalLM"
    assert page.table.item(1, 4).text() == "8,192"
    page.select("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert "the CPU build of vLLM will be used" in page.fit.text()
    assert "1,024 parameters" in page.details.text()
    assert page.profile_choice.currentText() == "Built-in model"
    qtbot.mouseClick(page.use_button, Qt.MouseButton.LeftButton)
    # The profiles page shows the change at once, but nothing is saved before OK/Apply.
    form = dialog.profiles_page.form
    assert form.rows["source"].value() == "hf_cache"
    assert form.rows["model"].value() == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert dialog.store.settings.profiles[0].source == "builtin"
    shot(dialog, "Models", "models")
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    saved = SettingsStore.open(app_paths.settings_file).settings.profiles[0]
    assert (saved.source, saved.model) == ("hf_cache", "HuggingFaceTB/SmolLM2-360M-Instruct")


def test_fit_verdict_on_a_gpu(qtbot, app_paths: AppPaths, hf_cache: Path) -> None:  # type: ignore[no-untyped-def]
    gpus = [GpuInfo(0, "RTX Test", 8 * GIB, int(7.9 * GIB))]
    dialog = make_dialog(qtbot, app_paths, gpus=gpus)
    page = dialog.models_page
    assert "GPU 0 RTX Test: 7.9 GiB free of 8.0 GiB" in page.gpu_label.text()
    page.select("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert page.fit.text().startswith("Will it fit? Fits:")


def test_add_folder_and_repo_id_with_reasons(qtbot, app_paths: AppPaths, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    page = dialog.models_page
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not page.add_folder(empty)
    assert "has no config.json" in page.add_problem.text()
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(SMOLLM2_CONFIG))
    assert page.add_folder(model)
    assert page.selected is not None
    assert page.selected.source == "folder"
    qtbot.keyClicks(page.repo_edit, "not a repo")
    qtbot.mouseClick(page.add_repo_button, Qt.MouseButton.LeftButton)
    assert "owner, a slash" in page.add_problem.text()
    page.repo_edit.clear()
    qtbot.keyClicks(page.repo_edit, "Qwen/Qwen3-0.6B")
    qtbot.keyClick(page.repo_edit, Qt.Key.Key_Return)
    assert page.add_problem.text() == ""
    assert page.selected is not None
    assert page.selected.source_label == "downloaded by vLLM at start"
    assert dialog.apply()
    models = dialog.store.settings.models
    assert models.folders == [model]
    assert models.repo_ids == ["Qwen/Qwen3-0.6B"]


def test_a_profiles_environment_is_edited_one_variable_a_line(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    dialog.show_page("Server profiles")
    form = dialog.profiles_page.form
    assert form.rows["env"].editor.isVisible()
    assert form.rows["env"].value() == {}
    set_text(qtbot, form, "env", "VLLM_API_KEY=sk-123")
    assert "VLLM_API_KEY cannot be set in the profile" in form.rows["env"].error.text()
    set_text(qtbot, form, "env", "not a name")
    assert "is not an environment variable name" in form.rows["env"].error.text()
    assert not dialog.apply()
    set_text(qtbot, form, "env", "CUDA_VISIBLE_DEVICES=1\n# the second card\n\nNCCL_P2P_DISABLE = 1\n")
    assert form.errors == {}
    assert dialog.apply()
    saved = SettingsStore.open(app_paths.settings_file).settings.profiles[0]
    assert saved.env == {"CUDA_VISIBLE_DEVICES": "1", "NCCL_P2P_DISABLE": "1"}
    # Shown back as written, one a line; a remote profile has no environment row.
    dialog.profiles_page.reload(0)
    assert form.rows["env"].editor.toPlainText() == "CUDA_VISIBLE_DEVICES=1\nNCCL_P2P_DISABLE=1"
    choose(form, "kind", "remote")
    assert not form.rows["env"].editor.isVisible()


def test_invalid_values_are_rejected_with_the_reason(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    dialog.show_page("Server profiles")
    form = dialog.profiles_page.form
    set_text(qtbot, form, "port", "70000")
    assert "less than or equal to 65535" in form.rows["port"].error.text()
    assert form.rows["port"].error.isVisible()
    set_text(qtbot, form, "max_model_len", "lots")
    assert "valid integer" in form.rows["max_model_len"].error.text()
    set_text(qtbot, form, "extra_args", "--port 9000")
    assert "--port cannot be given in the extra arguments" in form.rows["extra_args"].error.text()
    shot(dialog, "Server profiles", "profiles-invalid")
    assert not dialog.apply()
    assert "Not saved" in dialog.problem.text()
    assert not app_paths.settings_file.exists()
    set_text(qtbot, form, "port", "8001")
    set_text(qtbot, form, "max_model_len", "auto")
    set_text(qtbot, form, "extra_args", "--max-num-batched-tokens 4096")
    assert form.errors == {}
    assert dialog.apply()
    saved = dialog.store.settings.profiles[0]
    assert (saved.port, saved.max_model_len, saved.extra_args) == (
        8001,
        "auto",
        "--max-num-batched-tokens 4096",
    )


def test_cancel_leaves_everything_as_it_was(
    qtbot, app_paths: AppPaths, keyring_memory: MemoryKeyring
) -> None:  # type: ignore[no-untyped-def]
    store = SettingsStore.open(app_paths.settings_file)
    store.update(store.settings)  # a file exists, so "unchanged" is checkable byte for byte
    before_file = app_paths.settings_file.read_bytes()
    before = store.settings.model_copy(deep=True)
    dialog = make_dialog(qtbot, app_paths, store=store, secrets=SecretStore(backend=keyring_memory))
    appearance = dialog.appearance_page
    appearance.theme.setCurrentIndex(appearance.theme.findData("dark"))
    appearance.font_size.setValue(20)
    appearance.close_to_tray.setChecked(True)
    profiles = dialog.profiles_page
    set_text(qtbot, profiles.form, "name", "Renamed")
    choose(profiles.form, "key_mode", "fixed")
    qtbot.keyClicks(profiles.key_edit, "sk-cancelled")
    qtbot.mouseClick(profiles.new_button, Qt.MouseButton.LeftButton)
    dialog.generation_page.add_preset("Scratch")
    dialog.generation_page.reset_to_defaults()
    assert dialog.draft != before
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert store.settings == before
    assert app_paths.settings_file.read_bytes() == before_file
    assert MemoryKeyring._store == {}


def test_create_duplicate_rename_delete(qtbot, app_paths: AppPaths, keyring_memory: MemoryKeyring) -> None:  # type: ignore[no-untyped-def]
    secrets = SecretStore(backend=keyring_memory)
    secrets.set("profile:Built-in model", "sk-fixed")
    dialog = make_dialog(qtbot, app_paths, secrets=secrets)
    page = dialog.profiles_page
    qtbot.mouseClick(page.new_button, Qt.MouseButton.LeftButton)
    assert page.current is not None
    assert page.current.name == "New profile"
    qtbot.mouseClick(page.duplicate_button, Qt.MouseButton.LeftButton)
    assert [p.name for p in dialog.draft.profiles] == ["Built-in model", "New profile", "New profile (copy)"]
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert [p.name for p in dialog.draft.profiles] == ["Built-in model", "New profile"]
    page.select("Built-in model")
    qtbot.mouseClick(page.rename_button, Qt.MouseButton.LeftButton)
    set_text(qtbot, page.form, "name", "New profile")
    assert "another profile already has this name" in page.form.rows["name"].error.text()
    set_text(qtbot, page.form, "name", "Tiny")
    assert [page.list.item(i).text() for i in range(page.list.count())] == ["Tiny", "New profile"]
    assert dialog.models_page.profile_choice.findText("Tiny") >= 0
    assert page.start_with_app.isChecked()  # the first profile starts when none is named
    page.select("New profile")
    assert not page.start_with_app.isChecked()
    page.start_with_app.setChecked(True)
    assert dialog.apply()
    settings = dialog.store.settings
    assert [p.name for p in settings.profiles] == ["Tiny", "New profile"]
    assert settings.general.default_profile == "New profile"
    # The key followed the rename.
    assert secrets.get("profile:Tiny") == "sk-fixed"
    assert secrets.get("profile:Built-in model") is None


def remote_profile(qtbot, dialog: PreferencesDialog, base_url: str, key: str) -> None:  # type: ignore[no-untyped-def]
    page = dialog.profiles_page
    dialog.show_page("Server profiles")
    qtbot.mouseClick(page.new_button, Qt.MouseButton.LeftButton)
    set_text(qtbot, page.form, "name", "Lab server")
    choose(page.form, "kind", "remote")
    # Under the URL field, in its label's words (not the internal key base_url).
    assert page.form.errors == {"base_url": "a remote profile needs a URL"}
    set_text(qtbot, page.form, "base_url", base_url)
    assert page.form.errors == {}
    assert page.test_button.isVisible()
    assert not page.form.rows["dtype"].editor.isVisible()
    qtbot.keyClicks(page.key_edit, key)


@pytest.mark.usefixtures("qloop")
def test_remote_endpoint_test_connection_and_key_in_keychain(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, keyring_memory: MemoryKeyring
) -> None:
    secrets = SecretStore(backend=keyring_memory)
    dialog = make_dialog(qtbot, app_paths, secrets=secrets)
    page = dialog.profiles_page
    with running_standin("--version-string", "0.33.0", model="lab-model", api_key="sk-lab-secret") as server:
        remote_profile(qtbot, dialog, server.base_url, "sk-wrong")
        qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
        # Not "401" alone: the "Connecting to http://127.0.0.1:PORT…" shown first can hold it (port 40103).
        qtbot.waitUntil(lambda: "refused the API key" in page.test_result.text(), timeout=10_000)
        assert "401" in page.test_result.text()
        qtbot.waitUntil(page.test_button.isEnabled)
        page.key_edit.clear()
        qtbot.keyClicks(page.key_edit, "sk-lab-secret")
        qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.test_result.text().startswith("Connected"), timeout=10_000)
        assert page.test_result.text() == (
            "Connected: healthy, vLLM 0.33.0; models: lab-model; chats use lab-model (context 2048)"
        )
        set_text(qtbot, page.form, "served_name", "other-model")
        qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "does not serve" in page.test_result.text(), timeout=10_000)
        assert "it serves: lab-model" in page.test_result.text()
        qtbot.waitUntil(page.test_button.isEnabled)
        set_text(qtbot, page.form, "served_name", "")
        qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: page.test_result.text().startswith("Connected"), timeout=10_000)
        qtbot.waitUntil(page.test_button.isEnabled)
        shot(dialog, "Server profiles", "profiles-remote")
    assert dialog.apply()
    saved = dialog.store.settings.profile("Lab server")
    assert saved is not None
    assert saved.kind == "remote"
    assert secrets.get("profile:Lab server") == "sk-lab-secret"
    for folder in app_paths.all_dirs():
        for file in folder.rglob("*"):
            if file.is_file():
                assert b"sk-lab-secret" not in file.read_bytes(), file


def test_without_a_keychain_keys_are_session_only_by_choice(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    secrets = SecretStore(backend=fail.Keyring())
    dialog = make_dialog(qtbot, app_paths, secrets=secrets)
    page = dialog.profiles_page
    assert "No keychain works here" in page.keychain_note.text()
    dialog.show_page("Server profiles")
    choose(page.form, "key_mode", "fixed")
    assert dialog.session_only.isVisible()
    qtbot.keyClicks(page.key_edit, "sk-session")
    assert not dialog.apply()
    assert "Remember for this session only" in dialog.problem.text() or "keychain" in dialog.problem.text()
    assert secrets.get("profile:Built-in model") is None
    dialog.session_only.setChecked(True)
    assert dialog.apply()
    assert secrets.get("profile:Built-in model") == "sk-session"
    assert secrets.is_session_only("profile:Built-in model")
    assert b"sk-session" not in app_paths.settings_file.read_bytes()


def test_changing_the_running_profile_offers_a_restart(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    restarted: list[ServerProfile] = []
    dialog = make_dialog(
        qtbot, app_paths, running_profile=lambda: "Built-in model", restart_server=restarted.append
    )
    dialog.appearance_page.font_size.setValue(13)
    assert dialog.apply()
    assert not dialog.restart_bar.isVisible()  # nothing about the server changed
    set_text(qtbot, dialog.profiles_page.form, "max_model_len", "1024")
    assert dialog.apply()
    assert dialog.restart_bar.isVisible()
    qtbot.mouseClick(dialog.restart_button, Qt.MouseButton.LeftButton)
    assert [p.max_model_len for p in restarted] == [1024]
    assert not dialog.restart_bar.isVisible()


def test_generation_presets_edit_and_reset(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    page = dialog.generation_page
    dialog.show_page("Generation")
    page.preset.setCurrentText("Balanced")
    set_text(qtbot, page.form, "temperature", "5")
    assert "less than or equal to 2" in page.form.rows["temperature"].error.text()
    assert not dialog.apply()
    set_text(qtbot, page.form, "temperature", "0.3")
    set_text(qtbot, page.form, "top_k", "40")
    set_text(qtbot, page.form, "stop", "###|END")
    set_text(qtbot, page.form, "system_prompt", "Be brief.")
    page.model_choice.setCurrentText("smollm2-135m-instruct")
    assert page.model_preset.currentText() == "Small model"
    page.model_preset.setCurrentText("Balanced")
    shot(dialog, "Generation", "generation")
    assert dialog.apply()
    saved = dialog.store.settings
    balanced = saved.presets["Balanced"]
    assert (balanced.temperature, balanced.top_k, balanced.stop) == (0.3, 40, ("###", "END"))
    assert balanced.system_prompt == "Be brief."
    assert saved.preset_for("smollm2-135m-instruct") == balanced
    qtbot.mouseClick(page.reset_button, Qt.MouseButton.LeftButton)
    assert dialog.apply()
    assert dialog.store.settings.presets["Balanced"].temperature == 0.7
    assert dialog.store.settings.preset_for("smollm2-135m-instruct").temperature == 0.2


def test_appearance_and_behaviour(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    page = dialog.appearance_page
    page.theme.setCurrentIndex(page.theme.findData("dark"))
    page.font_size.setValue(14)
    page.close_to_tray.setChecked(True)
    page.send_key.setCurrentIndex(page.send_key.findData("ctrl+enter"))
    page.autostart.setChecked(True)
    shot(dialog, "Appearance and behaviour", "appearance")
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    settings = SettingsStore.open(app_paths.settings_file).settings
    assert settings.appearance.theme == "dark"
    assert settings.appearance.font_size == 14
    assert settings.general.close_to_tray is True
    assert settings.general.send_key == "ctrl+enter"
    assert settings.general.autostart is True
    assert isinstance(page.notifications, QCheckBox)


@pytest.mark.vllm
@pytest.mark.usefixtures("qloop")
def test_test_connection_against_the_real_vllm(qtbot, app_paths: AppPaths, vllm_server) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    page = dialog.profiles_page
    remote_profile(qtbot, dialog, vllm_server.base_url, vllm_server.api_key or "")
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.test_result.text().startswith("Connecting"), timeout=30_000)
    text = page.test_result.text()
    assert text.startswith("Connected: healthy, vLLM 0.3"), text
    assert f"models: {vllm_server.model}; chats use {vllm_server.model} (context 2048)" in text
    qtbot.waitUntil(page.test_button.isEnabled)


@pytest.mark.usefixtures("qloop")
def test_restart_server_now_relaunches_the_running_profile_and_the_window_stays_usable(
    qtbot, app_paths: AppPaths, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Through ``open_preferences(window)`` on a real window, whose server link starts the stand-in process
    with a real Supervisor: the restart loads the model in the background, the window stays usable."""
    from PySide6.QtCore import QSettings

    from desktop.window.main_window import MainWindow
    from engine.chat.engine import ChatEngine
    from engine.history.async_store import AsyncHistoryStore
    from engine.server.supervisor import ServerState

    model = tmp_path / "tiny-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(SMOLLM2_CONFIG))
    store = SettingsStore.open(app_paths.settings_file)
    profile = ServerProfile(name="Tiny", source="folder", model=str(model), max_model_len=2048)
    store.update(store.settings.model_copy(update={"profiles": [profile]}))
    supervisor = Supervisor(app_paths, StandinRuntime(["--startup-delay", "1"]), grace_s=2)
    history = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=history,
        chat=ChatEngine(history, lambda: supervisor.endpoint),
        settings=store,
        supervisor=supervisor,
        paths=app_paths,
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    window.show()
    try:
        window.start_action.trigger()
        qtbot.waitUntil(lambda: supervisor.endpoint is not None, timeout=30_000)
        assert supervisor.endpoint is not None
        assert supervisor.endpoint.max_model_len == 2048
        dialog = open_preferences(window)
        assert dialog.isVisible()
        set_text(qtbot, dialog.profiles_page.form, "max_model_len", "1024")
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
        assert dialog.restart_bar.isVisible()
        qtbot.mouseClick(dialog.restart_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: supervisor.state is ServerState.STARTING, timeout=10_000)
        assert window.isEnabled()  # the model loads for a while (minutes, for a real one)
        assert window.composer.send_button.isEnabled()
        assert window.server_starting()  # so a message written now waits for it
        qtbot.waitUntil(
            lambda: supervisor.endpoint is not None and supervisor.endpoint.max_model_len == 1024,
            timeout=30_000,
        )
        assert supervisor.endpoint is not None
        assert supervisor.endpoint.profile_name == "Tiny"
    finally:
        run(qtbot, window.shutdown())
        run(qtbot, supervisor.shutdown(), timeout=30)
        run(qtbot, history.close())


def test_hf_token_goes_to_the_keychain_only(
    qtbot, app_paths: AppPaths, keyring_memory: MemoryKeyring
) -> None:  # type: ignore[no-untyped-def]
    secrets = SecretStore(backend=keyring_memory)
    dialog = make_dialog(qtbot, app_paths, secrets=secrets)
    assert not dialog.session_only.isVisible()  # the keychain works: no session-only offer
    qtbot.keyClicks(dialog.models_page.hf_token, "hf_secret_token_123")
    assert dialog.apply()
    assert secrets.get("hf_token") == "hf_secret_token_123"
    assert b"hf_secret_token_123" not in app_paths.settings_file.read_bytes()
    again = make_dialog(qtbot, app_paths, secrets=secrets)
    assert again.models_page.hf_token.text() == ""
    assert "a token is stored" in again.models_page.hf_token.placeholderText()
