"""The preferences pages together: each page writes only the fields it shows, the fit verdict follows profile
edits, every input has a name for screen readers, and every label and explanation goes through translation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, Qt, QTranslator
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from desktop.preferences import PreferencesDialog
from desktop.preferences.form import ModelForm
from desktop.preferences.generation_page import HELP as GENERATION_HELP
from desktop.preferences.profiles_page import HELP as PROFILE_HELP
from desktop.preferences.profiles_page import LABELS as PROFILE_LABELS
from engine.hardware import GpuInfo
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.server.fit import estimate_for_profile
from engine.settings.store import SettingsStore
from tests.support.hf_cache import SMOLLM2_CONFIG, add_cached_model, safetensors_bytes
from tests.support.memory_keyring import MemoryKeyring

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]
GIB = 2**30
MODEL = "HuggingFaceTB/SmolLM2-360M-Instruct"
INPUTS = (QLineEdit, QPlainTextEdit, QComboBox, QAbstractSpinBox, QAbstractButton, QAbstractItemView)
MARK = "⟦"


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-hub"
    weights = safetensors_bytes({"model.embed_tokens.weight": ("BF16", [64, 16], 2)})
    add_cached_model(
        cache,
        MODEL,
        {"config.json": json.dumps(SMOLLM2_CONFIG).encode(), "model.safetensors": weights},
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def make_dialog(qtbot, app_paths: AppPaths, gpus: list[GpuInfo] | None = None) -> PreferencesDialog:  # type: ignore[no-untyped-def]
    store = SettingsStore.open(app_paths.settings_file)
    secrets = SecretStore(backend=MemoryKeyring())
    dialog = PreferencesDialog(store, paths=app_paths, gpus=gpus or [], secrets=secrets)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def type_into(qtbot, form: ModelForm, field: str, text: str) -> None:  # type: ignore[no-untyped-def]
    editor = form.rows[field].editor
    if isinstance(editor, QComboBox):
        editor.setCurrentIndex(editor.findText(text))
        return
    assert isinstance(editor, QLineEdit)
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    qtbot.keyClicks(editor, text)


# --- each page writes only what it shows --------------------------------------------------------------------


def test_an_appearance_edit_keeps_the_profiles_pages_start_choice(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    appearance, profiles = dialog.appearance_page, dialog.profiles_page
    dialog.show_page("Appearance and behaviour")
    assert appearance.start_server.isChecked()
    dialog.show_page("Server profiles")
    profiles.start_with_app.click()
    assert not dialog.draft.general.start_server_with_app
    dialog.show_page("Appearance and behaviour")
    # The page shows the choice made elsewhere, and an unrelated edit leaves it alone.
    assert not appearance.start_server.isChecked()
    appearance.font_size.setValue(15)
    appearance.theme.setCurrentIndex(appearance.theme.findData("dark"))
    assert dialog.apply()
    general = SettingsStore.open(app_paths.settings_file).settings.general
    assert general.start_server_with_app is False
    assert SettingsStore.open(app_paths.settings_file).settings.appearance.font_size == 15


def test_an_appearance_edit_made_before_the_profiles_page_keeps_it_too(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    # The Appearance page's widgets still hold the old choice here (it is not shown again before the edit).
    dialog = make_dialog(qtbot, app_paths)
    dialog.show_page("Server profiles")
    dialog.profiles_page.start_with_app.click()
    dialog.appearance_page.notifications.setChecked(not dialog.appearance_page.notifications.isChecked())
    assert dialog.draft.general.start_server_with_app is False


def test_the_profiles_page_shows_the_appearance_pages_start_choice(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    dialog.show_page("Server profiles")
    assert dialog.profiles_page.start_with_app.isChecked()
    dialog.show_page("Appearance and behaviour")
    dialog.appearance_page.start_server.setChecked(False)
    dialog.show_page("Server profiles")
    assert not dialog.profiles_page.start_with_app.isChecked()
    # Ticking it again there is what is saved.
    dialog.profiles_page.start_with_app.click()
    assert dialog.apply()
    assert SettingsStore.open(app_paths.settings_file).settings.general.start_server_with_app is True


# --- the fit verdict follows the profile --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "changed"),
    [
        ("max_model_len", "400000", "Won't fit"),
        ("dtype", "float32", "Won't fit"),
        ("tensor_parallel_size", "2", "Tensor-parallel size 2 needs 2 GPUs"),
        ("gpu_memory_utilization", "0.5", "of 4.0 GiB available"),
    ],
)
def test_fit_verdict_follows_profile_edits(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, hf_cache: Path, field: str, value: str, changed: str
) -> None:
    gpus = [GpuInfo(0, "RTX Test", 8 * GIB, int(7.9 * GIB))]
    dialog = make_dialog(qtbot, app_paths, gpus)
    models, form = dialog.models_page, dialog.profiles_page.form
    models.select(MODEL)
    entry = models.selected
    assert entry is not None
    assert entry.info is not None
    dialog.show_page("Server profiles")
    if field != "max_model_len":
        # A long context, so the KV cache is big enough for dtype and memory share to matter.
        type_into(qtbot, form, "max_model_len", "200000")
    before = models.fit.text()
    assert before.startswith("Will it fit? Fits:")
    type_into(qtbot, form, field, value)
    profile = dialog.draft.profile(models.profile_choice.currentText())
    assert profile is not None
    assert str(getattr(profile, field)) == value
    after = models.fit.text()
    assert after != before
    assert changed in after
    assert estimate_for_profile(profile, entry.info, gpus).message in after


# --- accessibility ------------------------------------------------------------------------------------------


def _inputs(page: QWidget) -> list[QWidget]:
    """The page's own input widgets (not the line edit inside a combo box, a table's header, ...)."""
    found: list[QWidget] = []
    for widget in page.findChildren(QWidget):
        if not isinstance(widget, INPUTS):
            continue
        parent = widget.parentWidget()
        while parent is not None and parent is not page and not isinstance(parent, INPUTS):
            parent = parent.parentWidget()
        if parent is page:
            found.append(widget)
    return found


def test_every_input_has_a_name_for_screen_readers(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    nameless = []
    checked = 0
    for title, page in dialog.pages.items():
        for widget in _inputs(page):
            accessible = QAccessible.queryAccessibleInterface(widget)
            name = accessible.text(QAccessible.Text.Name) if accessible is not None else ""
            checked += 1
            if not name.strip() or "<" in name:
                nameless.append(f"{title}: {type(widget).__name__} {widget.objectName()!r} named {name!r}")
    assert not nameless
    # Every form row (and the generated ones are most of the inputs) was walked.
    rows = len(dialog.profiles_page.form.rows) + len(dialog.generation_page.form.rows)
    assert checked > rows


def test_form_labels_are_the_buddies_of_their_fields(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    for form in (dialog.profiles_page.form, dialog.generation_page.form):
        for name, row in form.rows.items():
            assert form.labels[name].buddy() is row.editor, name
            assert row.editor.accessibleName() == form.labels[name].text()
            assert row.editor.accessibleDescription() == form.hints[name].text()
    assert dialog.profiles_page.key_label.buddy() is dialog.profiles_page.key_edit
    assert dialog.profiles_page.form.rows["max_model_len"].editor.accessibleName() == "Max model length"


# --- translation --------------------------------------------------------------------------------------------


class MarkingTranslator(QTranslator):
    """Translates the preferences' texts by marking them, so a test sees which ones went through tr()."""

    def translate(
        self, context: str, source: str, disambiguation: str | None = None, n: int = -1
    ) -> str | None:
        return MARK + source if context == "preferences" else None

    def isEmpty(self) -> bool:
        return False


@pytest.fixture
def marking_translator(qapp) -> Iterator[None]:  # type: ignore[no-untyped-def]
    translator = MarkingTranslator()
    assert QCoreApplication.installTranslator(translator)
    yield
    QCoreApplication.removeTranslator(translator)


@pytest.mark.usefixtures("marking_translator")
def test_form_labels_and_explanations_are_translated(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    profiles = dialog.profiles_page.form
    for name, label in PROFILE_LABELS.items():
        assert profiles.labels[name].text() == MARK + label
    assert profiles.labels["dtype"].text() == MARK + "Dtype"
    for name, text in PROFILE_HELP.items():
        assert profiles.hints[name].text() == MARK + text
    generation = dialog.generation_page.form
    assert generation.labels["top_p"].text() == MARK + "Top p"
    for name, text in GENERATION_HELP.items():
        assert generation.hints[name].text() == MARK + text
    assert dialog.generation_page.model_preset.itemText(0) == MARK + "(server defaults)"
    # A "Not saved" reason names the field as the form shows it.
    type_into(qtbot, profiles, "max_model_len", "0")
    assert MARK + "Max model length" in dialog.profiles_page.invalid


# --- the chosen snapshot ---------------------------------------------------------------------------------


def test_use_this_model_keeps_the_chosen_cached_revision(qtbot, app_paths: AppPaths, hf_cache: Path) -> None:  # type: ignore[no-untyped-def]
    old = "f" * 40
    add_cached_model(hf_cache, MODEL, {"config.json": json.dumps(SMOLLM2_CONFIG).encode()}, revision=old)
    dialog = make_dialog(qtbot, app_paths)
    page = dialog.models_page
    rows = [r for r, e in enumerate(page.entries) if e.revision == old]
    assert len(rows) == 1
    page.table.selectRow(rows[0])
    page.use_button.click()
    assert dialog.profiles_page.form.rows["revision"].value() == old
    assert dialog.apply()
    saved = SettingsStore.open(app_paths.settings_file).settings.profiles[0]
    assert (saved.source, saved.model, saved.revision) == ("hf_cache", MODEL, old)
    # Choosing a model that is not a cached snapshot clears it again.
    assert page.add_repo("org/new")
    page.use_button.click()
    assert dialog.draft.profiles[0].revision == ""


# --- task I: a refill of the model list keeps an invalid Generation edit ----------------------------------


def test_new_models_keep_an_invalid_generation_edit_and_its_error(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, app_paths)
    dialog.show_page("Generation")
    page = dialog.generation_page
    type_into(qtbot, page.form, "temperature", "5")
    error = page.form.rows["temperature"].error
    assert "less than or equal to 2" in error.text()
    page.set_models(["a-model-added-meanwhile"])  # what the dialog does when the profiles change
    editor = page.form.rows["temperature"].editor
    assert isinstance(editor, QLineEdit)
    assert editor.text() == "5"  # the value the user is still fixing
    assert "less than or equal to 2" in error.text()
    assert "temperature" in page.form.errors
    assert page.model_choice.findText("a-model-added-meanwhile") >= 0
    assert not dialog.apply()
