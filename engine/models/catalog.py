"""Every model the user can run: the built-in one, the Hugging Face cache, folders they added, repo ids.

Each entry carries what its ``config.json`` says (architecture, maximum context, quantization, the shape
numbers :mod:`engine.server.fit` needs) and its size. Nothing here touches the network: a repo id that is not
in
the cache is listed as "vLLM downloads it at start".
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import DeskError, Fix

if TYPE_CHECKING:
    from engine.paths import AppPaths

# huggingface_hub and the app's paths are imported where used: reading a model folder (ModelInfo,
# read_model_info) needs nothing beyond the standard library, so scripts/gpu-check.py runs where only
# PyTorch and nvidia-ml-py are installed.

log = logging.getLogger(__name__)

Source = Literal["builtin", "hf_cache", "folder", "repo"]

# Bytes per element of the dtypes found in config.json and safetensors headers.
DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "F32": 4,
    "float16": 2,
    "F16": 2,
    "bfloat16": 2,
    "BF16": 2,
    "float8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "fp8": 1,
    "int8": 1,
    "I8": 1,
    "U8": 1,
    "I32": 4,
    "I64": 8,
    "F64": 8,
    "BOOL": 1,
}
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")


class NotAModelFolder(DeskError):
    title = "This folder is not a model"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"{path} cannot be used as a model: {reason}.",
            fix=Fix(
                action="choose_model_folder",
                label="Choose another folder",
                hint="Pick a Hugging Face model folder: config.json and the weights (*.safetensors).",
            ),
        )
        self.path = path


class InvalidRepoId(DeskError):
    title = "This is not a Hugging Face repo id"

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(
            f"{text!r} is not a Hugging Face repo id ({reason}).",
            fix=Fix(
                action="edit_repo_id", label="Edit", hint="Write it as owner/name, e.g. Qwen/Qwen3-0.6B."
            ),
        )


@dataclass(frozen=True)
class ModelInfo:
    """What a model's ``config.json`` (and safetensors headers) say; ``None`` where it says nothing."""

    architecture: str | None = None
    model_type: str | None = None
    max_context: int | None = None
    quantization: str | None = None
    dtype: str | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    num_attention_heads: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    vocab_size: int | None = None
    intermediate_size: int | None = None
    tie_word_embeddings: bool = False
    # From safetensors headers when present: exact weight bytes and parameter count (a packed 4-bit
    # checkpoint counts its int32 elements, so ``param_count`` is then below the model's true count), and
    # the parameters of the embeddings and the output head, which quantization usually leaves in 16 bit.
    weight_bytes: int | None = None
    param_count: int | None = None
    embedding_params: int | None = None
    # A quantized checkpoint's method, bits per weight and group size (config.json quantization_config).
    quant_method: str | None = None
    quant_bits: int | None = None
    quant_group_size: int | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelInfo:
        """Read the numbers from a parsed ``config.json`` (multimodal models keep them in ``text_config``)."""
        text = {**config, **config["text_config"]} if isinstance(config.get("text_config"), dict) else config

        def first(*keys: str) -> Any:
            return next((text[k] for k in keys if isinstance(text.get(k), int | float | str)), None)

        heads = first("num_attention_heads", "n_head", "num_heads")
        hidden = first("hidden_size", "n_embd", "d_model")
        kv_heads = first("num_key_value_heads", "n_head_kv", "num_kv_heads")
        if kv_heads is None and text.get("multi_query"):
            kv_heads = 1
        head_dim = first("head_dim")
        if head_dim is None and heads and hidden:
            head_dim = int(hidden) // int(heads)
        quant = config.get("quantization_config")
        quantization = method = bits = group = None
        if isinstance(quant, dict):
            method, bits, group = _quant_scheme(quant)
            quantization = f"{method} {bits}-bit" if bits else method
        architectures = config.get("architectures")
        return cls(
            architecture=architectures[0] if isinstance(architectures, list) and architectures else None,
            model_type=config.get("model_type"),
            max_context=_int(first(*_CONTEXT_KEYS)),
            quantization=quantization,
            dtype=config.get("torch_dtype") or config.get("dtype") or text.get("torch_dtype"),
            num_layers=_int(first("num_hidden_layers", "n_layer", "num_layers")),
            hidden_size=_int(hidden),
            num_attention_heads=_int(heads),
            num_kv_heads=_int(kv_heads if kv_heads is not None else heads),
            head_dim=_int(head_dim),
            vocab_size=_int(first("vocab_size")),
            intermediate_size=_int(first("intermediate_size", "n_inner", "ffn_dim")),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            quant_method=method,
            quant_bits=bits,
            quant_group_size=group,
        )


def _quant_scheme(quant: dict[str, Any]) -> tuple[str, int | None, int | None]:
    """(method, bits per weight, group size) of a ``quantization_config``; ``None`` where it says nothing.

    AWQ/GPTQ say ``bits``/``w_bit`` and ``group_size``/``q_group_size``; compressed-tensors keeps them per
    config group (``config_groups.*.weights.num_bits``); fp8 checkpoints are 8-bit; bitsandbytes says
    ``load_in_4bit``; ModelOpt names an algorithm (FP8, NVFP4).
    """
    method = str(quant.get("quant_method", "unknown")).lower()
    bits = _int(quant.get("bits") or quant.get("w_bit") or quant.get("weight_bits"))
    group = _int(quant.get("group_size") or quant.get("q_group_size"))
    groups = quant.get("config_groups")
    if bits is None and isinstance(groups, dict):
        for value in groups.values():
            weights = value.get("weights") if isinstance(value, dict) else None
            if isinstance(weights, dict):
                bits = _int(weights.get("num_bits"))
                group = _int(weights.get("group_size")) if group is None else group
                break
    if bits is None:
        algo = str(quant.get("quant_algo", "")).upper()
        if method in ("fp8", "fbgemm_fp8") or "FP8" in algo:
            bits = 8
        elif method in ("mxfp4", "gpt_oss_mxfp4") or "FP4" in algo:
            bits = 4
        elif method == "bitsandbytes":
            bits = 4 if quant.get("load_in_4bit") else 8
    return method, bits, group if group and group > 0 else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ModelEntry:
    """One runnable model. ``path`` is the folder vLLM serves (``None``: vLLM downloads ``name``)."""

    name: str
    source: Source
    path: Path | None
    size_bytes: int | None = None
    revision: str | None = None
    info: ModelInfo | None = None
    problem: str = ""

    @property
    def model_arg(self) -> str:
        """What to pass to ``vllm serve``: the folder, or the repo id."""
        return str(self.path) if self.path is not None else self.name

    def profile_fields(self) -> dict[str, str]:
        """The ``ServerProfile`` fields that select this model: ``source``, ``model`` and ``revision`` (the
        cached snapshot chosen; empty otherwise, so choosing another model clears an earlier one's)."""
        if self.source == "builtin":
            return {"source": "builtin", "model": "", "revision": ""}
        if self.source == "hf_cache":
            return {"source": "hf_cache", "model": self.name, "revision": self.revision or ""}
        if self.source == "repo":
            return {"source": "hf_repo", "model": self.name, "revision": ""}
        return {"source": "folder", "model": str(self.path), "revision": ""}

    @property
    def source_label(self) -> str:
        return {
            "builtin": "built-in",
            "hf_cache": "Hugging Face cache",
            "folder": "local folder",
            "repo": "downloaded by vLLM at start",
        }[self.source]


# Tensor names of input embeddings and output heads (Llama/Qwen/Mistral, GPT-2, BLOOM, GPT-NeoX).
_EMBEDDING_NAMES = (
    "embed_tokens.weight",
    "lm_head.weight",
    "wte.weight",
    "word_embeddings.weight",
    "embed_out.weight",
)


def read_safetensors_totals(folder: Path) -> tuple[int, int] | None:
    """(parameter count, weight bytes) from the ``*.safetensors`` headers in ``folder``; ``None`` if none."""
    summary = read_safetensors_summary(folder)
    return None if summary is None else summary[:2]


def read_safetensors_summary(folder: Path) -> tuple[int, int, int] | None:
    """(parameter count, weight bytes, embedding + output head parameters) from the headers of
    ``*.safetensors`` in ``folder``; ``None`` if none.

    The format starts with a little-endian u64 header length and a JSON header of tensor shapes and byte
    ranges, so reading a few KB per file is enough (no weights are loaded).
    """
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    params = 0
    nbytes = 0
    embeddings = 0
    for file in files:
        with file.open("rb") as handle:
            raw = handle.read(8)
            if len(raw) != 8:
                return None
            (length,) = struct.unpack("<Q", raw)
            if length > 100_000_000:  # a corrupt length; real headers are far smaller
                return None
            try:
                header = json.loads(handle.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None
        for name, tensor in header.items():
            if name == "__metadata__" or not isinstance(tensor, dict):
                continue
            count = math.prod(tensor.get("shape", []))
            params += count
            if name.endswith(_EMBEDDING_NAMES):
                embeddings += count
            start, end = tensor.get("data_offsets", (0, 0))
            nbytes += int(end) - int(start)
    return params, nbytes, embeddings


def _folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def read_model_info(folder: Path) -> ModelInfo:
    """Parse ``folder/config.json`` and the safetensors headers; :class:`NotAModelFolder` if unusable."""
    config_file = folder / "config.json"
    if not folder.is_dir():
        raise NotAModelFolder(folder, "it does not exist or is not a folder")
    if not config_file.is_file():
        raise NotAModelFolder(folder, "it has no config.json")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAModelFolder(folder, f"its config.json cannot be read ({exc})") from exc
    if not isinstance(config, dict):
        raise NotAModelFolder(folder, "its config.json is not a JSON object")
    info = ModelInfo.from_config(config)
    summary = read_safetensors_summary(folder)
    if summary is None:
        return info
    params, nbytes, embeddings = summary
    return ModelInfo(
        **{**info.__dict__, "param_count": params, "weight_bytes": nbytes, "embedding_params": embeddings}
    )


def inspect_folder(folder: Path, *, source: Source = "folder", name: str | None = None) -> ModelEntry:
    """A catalog entry for a local model folder (raises :class:`NotAModelFolder`)."""
    folder = folder.expanduser().absolute()
    info = read_model_info(folder)
    return ModelEntry(
        name=name or folder.name, source=source, path=folder, size_bytes=_folder_size(folder), info=info
    )


def hf_cache_dir() -> Path:
    """The hub cache as the environment says now (huggingface_hub reads it only once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    from huggingface_hub import constants as hf_constants

    return Path(hf_constants.HF_HUB_CACHE)


def scan_hf_cache(cache_dir: Path | None = None) -> list[ModelEntry]:
    """Models in the Hugging Face cache (``HF_HUB_CACHE`` by default), one entry per snapshot."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(cache_dir or hf_cache_dir())
    except CacheNotFound:
        return []
    entries: list[ModelEntry] = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model":
            continue
        # Newest first, so the snapshot "main" points at comes before stale ones.
        for rev in sorted(repo.revisions, key=lambda r: ("main" not in r.refs, -r.last_modified)):
            try:
                info: ModelInfo | None = read_model_info(rev.snapshot_path)
                problem = ""
            except NotAModelFolder as exc:
                info, problem = None, exc.message
            entries.append(
                ModelEntry(
                    name=repo.repo_id,
                    source="hf_cache",
                    path=rev.snapshot_path,
                    size_bytes=rev.size_on_disk,
                    revision=rev.commit_hash,
                    info=info,
                    problem=problem,
                )
            )
    return entries


def parse_repo_id(text: str) -> str:
    """Check a typed repo id (``owner/name``); :class:`InvalidRepoId` with the reason otherwise."""
    repo_id = text.strip()
    if "/" not in repo_id:
        raise InvalidRepoId(text, "it needs the owner, a slash and the name")
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise InvalidRepoId(text, str(exc).split("\n")[0]) from exc
    return repo_id


def build_catalog(
    *,
    builtin: Path | None = None,
    folders: list[Path] | tuple[Path, ...] = (),
    repo_ids: list[str] | tuple[str, ...] = (),
    hf_cache: Path | None = None,
) -> list[ModelEntry]:
    """The one list: built-in, HF cache, added folders (broken ones listed with their problem), repo ids."""
    entries: list[ModelEntry] = []
    if builtin is not None:
        try:
            entries.append(inspect_folder(builtin, source="builtin", name="Built-in: " + builtin.name))
        except NotAModelFolder as exc:
            entries.append(ModelEntry(builtin.name, "builtin", builtin, problem=exc.message))
    cached = scan_hf_cache(hf_cache)
    entries += cached
    for folder in folders:
        try:
            entries.append(inspect_folder(folder))
        except NotAModelFolder as exc:
            entries.append(ModelEntry(folder.name, "folder", folder, problem=exc.message))
    cached_ids = {e.name for e in cached}
    for repo_id in repo_ids:
        if repo_id not in cached_ids:
            entries.append(ModelEntry(repo_id, "repo", None))
    return entries


def app_catalog(
    paths: AppPaths, folders: list[Path] | tuple[Path, ...] = (), repo_ids: list[str] | tuple[str, ...] = ()
) -> list[ModelEntry]:
    """The catalog as the app shows it: the built-in model (ready or not yet prepared) first."""
    from engine.models.builtin import BUILTIN_MODEL, ModelState, builtin_model_path, builtin_model_state

    entries = build_catalog(folders=folders, repo_ids=repo_ids)
    folder = builtin_model_path(paths)
    name = BUILTIN_MODEL.display_name
    if builtin_model_state(paths) is ModelState.READY:
        try:
            builtin = inspect_folder(folder, source="builtin", name=name)
        except NotAModelFolder as exc:
            builtin = ModelEntry(name, "builtin", folder, problem=exc.message)
    else:
        builtin = ModelEntry(
            name, "builtin", folder, problem="prepared on first start (about 100 MB download)"
        )
    return [builtin, *entries]
