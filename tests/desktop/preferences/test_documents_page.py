"""Preferences > Documents: which embedding model documents use (``documents.embedder``), what it takes of the
GPU beside the chat model, which collections need re-indexing after a change; and the Models page's "Will it
fit?" counting the embedder while documents are in use. GPUs are given as NVML would report them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox

from desktop.preferences import PreferencesDialog
from engine.documents.embedder import Embedder, hashing_embedder
from engine.documents.index import Indexer
from engine.documents.store import DocumentStore, documents_db
from engine.hardware import GpuInfo
from engine.paths import AppPaths
from engine.secrets import SecretStore
from engine.server.profiles import ServerProfile
from engine.settings.store import SettingsStore
from tests.support.hf_cache import SMOLLM2_CONFIG, add_cached_model, safetensors_bytes
from tests.support.memory_keyring import MemoryKeyring

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]
GIB = 2**30
BGE = ServerProfile(
    name="bge", source="hf_repo", model="BAAI/bge-small-en-v1.5", extra_args="--runner pooling"
)
REMOTE = ServerProfile(name="team embeddings", kind="remote", base_url="http://10.0.0.5:8000/v1")


def make_dialog(qtbot, app_paths: AppPaths, gpus: list[GpuInfo]) -> tuple[PreferencesDialog, SettingsStore]:  # type: ignore[no-untyped-def]
    store = SettingsStore.open(app_paths.settings_file)
    current = store.settings
    store.update(current.model_copy(update={"profiles": [*current.profiles, BGE, REMOTE]}))
    dialog = PreferencesDialog(
        store, paths=app_paths, gpus=gpus, secrets=SecretStore(backend=MemoryKeyring())
    )
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog, store


def index_with(app_paths: AppPaths, tmp_path: Path, name: str = "work") -> None:
    (tmp_path / "a.md").write_text("Basalt is a volcanic rock.\n", encoding="utf-8")
    store = DocumentStore(documents_db(app_paths))
    hashing = hashing_embedder(384)  # vectors without meaning, under the built-in model's name
    Indexer(store, Embedder("all-minilm-l6-v2", hashing.document, hashing.text)).add(
        name, [tmp_path / "a.md"]
    )
    store.close()


def test_the_documents_page_chooses_the_embedding_model(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    dialog, store = make_dialog(qtbot, app_paths, [GpuInfo(0, "RTX 4090", 24 * GIB, 23 * GIB)])
    field = dialog.show_page("documents", "embedder")  # where the "Choose the embedding model" fix leads
    page = dialog.documents_page
    assert field is page.embedder
    combo: QComboBox = page.embedder
    # The built-in model, the local profile serving embeddings and the remote one; not the chat model's.
    assert [combo.itemData(i) for i in range(combo.count())] == ["builtin", "bge", "team embeddings"]
    assert combo.currentData() == "builtin"
    # all-MiniLM-L6-v2 on a 24 GiB card: 0.03 (tests/engine/server/test_fit.py works it out).
    assert "On GPU 0 it takes 0.03 of the memory (0.7 GiB) beside the chat model" in page.gpu_note.text()
    combo.setCurrentIndex(2)
    assert "nothing runs on this machine's GPU" in page.gpu_note.text()
    assert dialog.apply()
    assert store.settings.documents.embedder == "team embeddings"
    assert SettingsStore.open(app_paths.settings_file).settings.documents.embedder == "team embeddings"


def test_a_change_of_model_names_the_collections_to_reindex(
    qtbot, app_paths: AppPaths, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    index_with(app_paths, tmp_path)
    dialog, _store = make_dialog(qtbot, app_paths, [])
    dialog.show_page("documents")
    page = dialog.documents_page
    assert page.warning.text() == ""  # indexed with the built-in model, which is still chosen
    page.embedder.setCurrentIndex(1)  # bge
    warning = page.warning.text()
    assert "“work” (all-minilm-l6-v2)" in warning
    assert "re-indexed (the Documents panel offers it)" in warning
    assert "BAAI/bge-small-en-v1.5" in warning


def test_a_removed_embedding_profile_is_said(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    store = SettingsStore.open(app_paths.settings_file)
    current = store.settings
    store.update(
        current.model_copy(update={"documents": current.documents.model_copy(update={"embedder": "gone"})})
    )
    dialog = PreferencesDialog(store, paths=app_paths, gpus=[], secrets=SecretStore(backend=MemoryKeyring()))
    qtbot.addWidget(dialog)
    dialog.show_page("documents")
    page = dialog.documents_page
    assert page.embedder.currentText() == "gone (no such profile)"
    assert "there is no such profile" in page.warning.text()


def test_will_it_fit_counts_the_embedder_while_documents_are_in_use(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hf-hub"
    model = "HuggingFaceTB/SmolLM2-360M-Instruct"
    weights = safetensors_bytes({"model.embed_tokens.weight": ("BF16", [64, 16], 2)})
    add_cached_model(
        cache, model, {"config.json": json.dumps(SMOLLM2_CONFIG).encode(), "model.safetensors": weights}
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # An 8 GiB card with 7.9 GiB free: vLLM's default share (0.92: 7.36 GiB) fits alone, 7.4 GiB being free
    # after the CUDA context. The embedder asks for 397,039,104 × 1.5 of 8 GiB = 6.9 % → 0.07; beside it
    # (ceil(0.07 × 8 GiB) + its 512 MiB context = 1.1 GiB) only 6.3 GiB are free: 0.79 of the card.
    gpus = [GpuInfo(0, "RTX Test", 8 * GIB, int(7.9 * GIB))]
    dialog, _store = make_dialog(qtbot, app_paths, gpus)
    models = dialog.models_page
    profile = dialog.draft.profiles[0]
    dialog.draft.profiles[0] = profile.model_copy(
        update={"gpu_memory_utilization": None, "source": "hf_repo", "model": model}
    )
    models.select(model)
    assert "embedding model" not in models.fit.text()  # no collection yet
    index_with(app_paths, tmp_path)
    entry = models.selected
    assert entry is not None
    estimate = models.show_fit(entry)  # as when the selection or the profile changes
    assert estimate is not None
    assert estimate.verdict == "wont_fit"
    text = models.fit.text()
    assert "less than the 7.4 GiB that gpu_memory_utilization 0.92 asks for" in text
    assert "GPU 0 has only 6.3 GiB free for vLLM" in text
    assert "the embedding model for documents takes 0.07 of GPU 0 (1.1 GiB with its CUDA context)" in text
    assert "Suggestion: Use gpu_memory_utilization 0.79 for the chat model." in text


def test_the_choice_follows_a_renamed_profile_and_falls_back_when_it_is_deleted(
    qtbot, app_paths: AppPaths
) -> None:  # type: ignore[no-untyped-def]
    dialog, store = make_dialog(qtbot, app_paths, [])
    dialog.show_page("documents")
    dialog.documents_page.embedder.setCurrentIndex(1)  # bge
    profiles = dialog.profiles_page
    profiles.select("bge")
    editor = profiles.form.rows["name"].editor
    editor.selectAll()
    qtbot.keyClicks(editor, "bge small")
    assert dialog.draft.documents.embedder == "bge small"
    assert dialog.apply()
    assert store.settings.documents.embedder == "bge small"
    profiles.select("bge small")
    profiles.delete()
    assert dialog.draft.documents.embedder == "builtin"
