"""Launch profiles: a typed, saved description of one server, and the one function that turns it into argv.

A :class:`ServerProfile` is either ``local`` (a ``vllm serve`` the app launches) or ``remote`` (an existing
OpenAI-compatible server at ``base_url``). Settings keep a ``list[ServerProfile]`` in TOML, so fields avoid
``None`` where a neutral value exists and dump with ``model_dump(exclude_none=True)``. API keys are never
fields: a launch gets a fresh random key, or the profile's fixed key from the keychain (``profile:<name>``).
"""

from __future__ import annotations

import re
import secrets as random_secrets
import shlex
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.errors import DeskError, Fix
from engine.models.builtin import BUILTIN_MODEL, builtin_model_path
from engine.paths import AppPaths
from engine.secrets import KeychainUnavailable, SecretStore, profile_key

ModelSource = Literal["builtin", "folder", "hf_repo", "hf_cache"]
KeyMode = Literal["random", "fixed"]
Dtype = Literal["auto", "bfloat16", "float16", "float32", "half", "float"]

# Options the app sets itself; in extra args they would fight the profile's own fields (or leak the key into
# `ps`). The value says where the option belongs instead.
MANAGED_OPTIONS: dict[str, str] = {
    "--api-key": "the key is handed to vLLM through the environment, never on the command line",
    "--port": "set the profile's port",
    "--host": "set the profile's host",
    "--served-model-name": "set the profile's served name",
    "--model": "choose the model in the profile",
    "--max-model-len": "set the profile's max model length",
    "--gpu-memory-utilization": "set the profile's GPU memory utilization",
    "--tensor-parallel-size": "set the profile's tensor-parallel size",
    "--pipeline-parallel-size": "set the profile's pipeline-parallel size",
    "--dtype": "set the profile's dtype",
    "--revision": "pick the model's revision on the Models page (the profile's revision)",
    "--tokenizer-revision": "the tokenizer follows the profile's revision",
}
_ALIASES = {"-tp": "--tensor-parallel-size", "-pp": "--pipeline-parallel-size"}
# A profile's environment: names as a shell writes them; those the app sets itself are refused (secrets
# never go in the settings file).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MANAGED_ENV: dict[str, str] = {
    "VLLM_API_KEY": "the key comes from the key mode (random, or fixed in the keychain)",
    "HF_TOKEN": "save the Hugging Face token on the Models page (it goes to the keychain)",
    "HUGGING_FACE_HUB_TOKEN": "save the Hugging Face token on the Models page (it goes to the keychain)",
    "VLLM_CPU_KVCACHE_SPACE": "set the profile's CPU KV cache size",
    "PYTHONUNBUFFERED": "the app needs vLLM's lines as they happen",
    "VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "the app sets how long vLLM keeps its idle connections (and knows it)",
}


class ProfileInvalid(DeskError):
    title = "The server profile cannot be used"

    def __init__(self, profile: str, reason: str) -> None:
        super().__init__(
            f"The profile “{profile}” cannot be used: {reason}.",
            fix=Fix(action="edit_profile", label="Edit the profile", hint="Fix the profile in the settings."),
        )
        self.profile = profile
        self.reason = reason


def split_extra_args(text: str) -> list[str]:
    """Split free-form extra arguments like a shell would (never run through one) and check them.

    Raises ``ValueError`` with a human reason for malformed quoting, a stray positional word, or an option the
    app manages itself.
    """
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"the extra arguments cannot be split ({exc}: check the quotes)") from exc
    if words and not words[0].startswith("-"):
        raise ValueError(f"the extra arguments must start with an option, not “{words[0]}”")
    for word in words:
        option = _ALIASES.get(word.split("=", 1)[0], word.split("=", 1)[0])
        if option in MANAGED_OPTIONS:
            raise ValueError(f"{option} cannot be given in the extra arguments: {MANAGED_OPTIONS[option]}")
    return words


class ServerProfile(BaseModel):
    """One server: what to run and with which ``vllm serve`` options (or where a remote one is)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(min_length=1, description="Shown in the GUI and used by `vllm-desk serve --profile`.")
    kind: Literal["local", "remote"] = "local"
    base_url: str = Field(default="", description="Remote only: the server's address ending in /v1.")
    source: ModelSource = "builtin"
    model: str = Field(default="", description="A folder, or a Hugging Face repo id (hf_repo, hf_cache).")
    revision: str = Field(
        default="", description="hf_repo / hf_cache: the commit, branch or tag to run; empty: main."
    )
    served_name: str = Field(default="", description="The name clients use; empty: derived.")
    host: str = Field(default="127.0.0.1", min_length=1, description="Bind address (0.0.0.0: all).")
    port: int = Field(default=0, ge=0, le=65535, description="0: pick a free port at each launch.")
    dtype: Dtype = "auto"
    max_model_len: int | Literal["auto"] | None = Field(default=None, description="None: vLLM's default.")
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    tensor_parallel_size: int = Field(default=1, ge=1)
    pipeline_parallel_size: int = Field(default=1, ge=1)
    quantization: str = ""
    kv_cache_dtype: str = ""
    max_num_seqs: int | None = Field(default=None, ge=1)
    enforce_eager: bool | None = Field(default=None, description="None: on for the CPU build.")
    enable_prefix_caching: bool | None = None
    chat_template: str = Field(default="", description="A template file or inline Jinja.")
    reasoning_parser: str = ""
    tool_call_parser: str = Field(default="", description="Also turns on --enable-auto-tool-choice.")
    trust_remote_code: bool = False
    download_dir: str = ""
    seed: int | None = None
    extra_args: str = Field(default="", description="More vllm serve options, split like a shell.")
    key_mode: KeyMode = "random"
    cpu_kv_cache_gib: float = Field(default=1.0, gt=0, description="CPU build only: VLLM_CPU_KVCACHE_SPACE.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables for vllm serve (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER, "
        "NCCL_P2P_DISABLE, ...).",
    )

    @field_validator("max_model_len")
    @classmethod
    def _positive_len(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be a positive number of tokens or 'auto'")
        return value

    @field_validator("cpu_kv_cache_gib")
    @classmethod
    def _whole_gib(cls, value: float) -> float:
        # vLLM reads VLLM_CPU_KVCACHE_SPACE with int(): "0.5" would stop the server at its start.
        if value != int(value):
            raise ValueError("must be a whole number of GiB (vLLM's CPU build takes no fractions)")
        return value

    @field_validator("extra_args")
    @classmethod
    def _valid_extra_args(cls, value: str) -> str:
        split_extra_args(value)
        return value

    @field_validator("env")
    @classmethod
    def _valid_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"“{name}” is not an environment variable name (letters, digits and _)")
            if name in MANAGED_ENV:
                raise ValueError(f"{name} cannot be set in the profile: {MANAGED_ENV[name]}")
            if "\0" in text:
                raise ValueError(f"the value of {name} contains a NUL character")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> ServerProfile:
        if self.kind == "remote" and not self.base_url:
            raise ValueError("a remote profile needs a base_url")
        if self.kind == "local" and self.source != "builtin" and not self.model:
            raise ValueError(f"a model is needed for source '{self.source}'")
        return self

    @property
    def served_model_name(self) -> str:
        """What clients send as ``model``: the explicit name, else one derived from the model."""
        if self.served_name:
            return self.served_name
        if self.source == "builtin":
            return BUILTIN_MODEL.served_name
        if self.source == "folder":
            return Path(self.model).expanduser().name
        return self.model

    @property
    def needs_network(self) -> bool:
        """Only a repo id may download; everything else runs with the hub switched off."""
        return self.source == "hf_repo"

    def to_dict(self) -> dict[str, object]:
        """TOML-friendly: no ``None`` values."""
        return self.model_dump(mode="json", exclude_none=True)


# What "auto" means on the CPU build. vLLM's CPU bfloat16 path answered "What is the capital of France?" with
# "L'Étoile, la Marseillaise, ..." on an Intel Xeon with AMX (right on an AMD EPYC); float32 gave the same
# greedy answer as transformers on both. Its price on this machine kind: docs/benchmarks.md ("CPU dtype").
CPU_DEFAULT_DTYPE = "float32"


def builtin_profile() -> ServerProfile:
    """The profile used when the user has none: the built-in model, tuned for a CPU start."""
    return ServerProfile(
        name="Built-in model",
        source="builtin",
        # "auto": float32 on the CPU build (see CPU_DEFAULT_DTYPE), the model's own on a GPU.
        dtype="auto",
        max_model_len=BUILTIN_MODEL.max_model_len,
        # SmolLM2's chat template does not describe tools, so it calls one only when the tool choice forces
        # it (vLLM then constrains the output); without a parser vLLM refuses a forced choice (HTTP 400).
        tool_call_parser="hermes",
    )


def model_argument(profile: ServerProfile, paths: AppPaths) -> str:
    """The first argument of ``vllm serve``: a folder or a repo id. Checks local folders exist."""
    if profile.source == "builtin":
        return str(builtin_model_path(paths))
    if profile.source == "folder":
        folder = Path(profile.model).expanduser()
        if not folder.is_dir():
            raise ProfileInvalid(profile.name, f"the model folder {folder} does not exist")
        if not (folder / "config.json").is_file() and not (folder / "params.json").is_file():
            raise ProfileInvalid(profile.name, f"{folder} holds no config.json, so it is not a model folder")
        return str(folder)
    return profile.model


# The endpoints the app itself polls (readiness, live metrics, the context meter): left out of the access
# log, which they would otherwise flood with a line or two a second, hiding vLLM's own lines.
APP_PROBE_ENDPOINTS = ("/health", "/metrics", "/tokenize", "/ping", "/load")
# The vLLM that first had --disable-access-log-for-endpoints among the versions we run (0.32 has it).
QUIET_PROBES_SINCE = (0, 32)


def quiet_probes_supported(version: str) -> bool:
    """Whether a vLLM of ``version`` (e.g. ``0.32.0``, ``0.33.1+cu130``) knows the option (an unknown
    option would stop an older vLLM from starting)."""
    numbers = []
    for part in version.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            return False
        numbers.append(int(digits))
    return tuple(numbers) >= QUIET_PROBES_SINCE


def build_serve_args(
    profile: ServerProfile, model_path: str, port: int, *, cpu: bool = False, quiet_probes: bool = False
) -> list[str]:
    """The arguments after ``vllm serve`` for ``profile`` (never the API key: that goes in the environment).

    ``cpu`` says the runtime is the CPU build, where ``enforce_eager`` defaults to on; ``quiet_probes`` keeps
    the app's own polling out of the access log (see :func:`quiet_probes_supported`).
    """
    if profile.kind != "local":
        raise ProfileInvalid(profile.name, "it describes a remote server, which the app does not launch")
    args = [model_path, "--served-model-name", profile.served_model_name, "--host", profile.host]
    args += ["--port", str(port)]
    if profile.revision and profile.source in ("hf_repo", "hf_cache"):
        # The tokenizer comes from the same repo, so it must come from the same snapshot.
        args += ["--revision", profile.revision, "--tokenizer-revision", profile.revision]
    args += _option_args(profile, cpu)
    extra = split_extra_args(profile.extra_args)
    if quiet_probes and not any(a.startswith("--disable-access-log-for-endpoints") for a in extra):
        args += ["--disable-access-log-for-endpoints", ",".join(APP_PROBE_ENDPOINTS)]
    return args + extra


def _valued(flag: str, value: object) -> list[str]:
    """``[flag, value]``, or nothing when the profile leaves the option to vLLM (None or empty)."""
    return [] if value is None or value == "" else [flag, str(value)]


def _switch(flag: str, on: bool | None) -> list[str]:
    return [flag] if on else []


def _option_args(profile: ServerProfile, cpu: bool) -> list[str]:
    """The ``vllm serve`` options the profile sets, always in this order (what tests and logs expect)."""
    dtype = profile.dtype if profile.dtype != "auto" else (CPU_DEFAULT_DTYPE if cpu else None)
    share = profile.gpu_memory_utilization
    eager = profile.enforce_eager if profile.enforce_eager is not None else cpu
    prefix = profile.enable_prefix_caching
    parser = profile.tool_call_parser
    download = profile.download_dir
    parts = [
        _valued("--dtype", dtype),
        _valued("--max-model-len", profile.max_model_len),
        _valued("--gpu-memory-utilization", None if share is None else f"{share:g}"),
        _valued(
            "--tensor-parallel-size",
            profile.tensor_parallel_size if profile.tensor_parallel_size != 1 else None,
        ),
        _valued(
            "--pipeline-parallel-size",
            profile.pipeline_parallel_size if profile.pipeline_parallel_size != 1 else None,
        ),
        _valued("--quantization", profile.quantization),
        _valued("--kv-cache-dtype", profile.kv_cache_dtype),
        _valued("--max-num-seqs", profile.max_num_seqs),
        _switch("--enforce-eager", eager),
        [] if prefix is None else ["--enable-prefix-caching" if prefix else "--no-enable-prefix-caching"],
        _valued("--chat-template", profile.chat_template),
        _valued("--reasoning-parser", profile.reasoning_parser),
        ["--enable-auto-tool-choice", "--tool-call-parser", parser] if parser else [],
        _switch("--trust-remote-code", profile.trust_remote_code),
        _valued("--download-dir", str(Path(download).expanduser()) if download else None),
        _valued("--seed", profile.seed),
    ]
    return [arg for part in parts for arg in part]


def launch_api_key(profile: ServerProfile, store: SecretStore | None = None) -> str:
    """The key for one launch: fresh and random, or the profile's fixed key from the keychain.

    A fixed key that does not exist yet is created and stored (in this session's memory when no keychain
    works, so the launch still succeeds and nothing is written to disk).
    """
    if profile.key_mode == "random":
        return random_secrets.token_urlsafe(32)
    store = store or SecretStore()
    name = profile_key(profile.name)
    key = store.get(name)
    if key:
        return key
    key = random_secrets.token_urlsafe(32)
    try:
        store.set(name, key)
    except KeychainUnavailable:
        store.set(name, key, session_only=True)
    return key
