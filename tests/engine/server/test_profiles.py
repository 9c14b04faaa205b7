"""Launch profiles: validation, TOML-friendly dumps, and argv built option by option."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.models.builtin import BUILTIN_MODEL, builtin_model_path
from engine.paths import AppPaths
from engine.secrets import SecretStore, profile_key
from engine.server.profiles import (
    CPU_DEFAULT_DTYPE,
    ProfileInvalid,
    ServerProfile,
    build_serve_args,
    builtin_profile,
    launch_api_key,
    model_argument,
    quiet_probes_supported,
    split_extra_args,
)

BASE = ["/m", "--served-model-name", "smollm2-135m-instruct", "--host", "127.0.0.1", "--port", "8000"]


def args_for(**fields: object) -> list[str]:
    return build_serve_args(ServerProfile(name="p", **fields), "/m", 8000)  # type: ignore[arg-type]


def test_defaults_give_only_the_managed_options() -> None:
    assert args_for() == BASE


def test_cpu_runtime_turns_enforce_eager_on_unless_the_profile_says_otherwise() -> None:
    f32 = ["--dtype", "float32"]
    assert build_serve_args(ServerProfile(name="p"), "/m", 8000, cpu=True) == [*BASE, *f32, "--enforce-eager"]
    off = ServerProfile(name="p", enforce_eager=False)
    assert build_serve_args(off, "/m", 8000, cpu=True) == [*BASE, *f32]
    assert args_for(enforce_eager=True) == [*BASE, "--enforce-eager"]


def test_auto_dtype_is_float32_on_the_cpu_build_and_the_models_own_on_a_gpu() -> None:
    # vLLM's CPU bfloat16 path answered wrongly on an Intel Xeon with AMX; float32 matched transformers.
    assert CPU_DEFAULT_DTYPE == "float32"
    profile = builtin_profile()
    assert profile.dtype == "auto"
    cpu_args = build_serve_args(profile, "/m", 8000, cpu=True)
    assert cpu_args[cpu_args.index("--dtype") + 1] == "float32"
    assert "--dtype" not in build_serve_args(profile, "/m", 8000, cpu=False)
    # A dtype the user chose is passed as it is, on either build.
    chosen = ServerProfile(name="p", dtype="bfloat16")
    cpu_chosen = build_serve_args(chosen, "/m", 8000, cpu=True)
    assert cpu_chosen[cpu_chosen.index("--dtype") + 1] == "bfloat16"


def test_the_cpu_kv_cache_is_whole_gib_as_vllm_reads_it() -> None:
    assert ServerProfile(name="p", cpu_kv_cache_gib=4).cpu_kv_cache_gib == 4
    with pytest.raises(ValidationError, match="whole number of GiB"):
        ServerProfile(name="p", cpu_kv_cache_gib=0.5)


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("0.32.0", True),
        ("0.33.1+cu130", True),
        ("1.0.0", True),
        ("0.31.9", False),
        ("0.10.1", False),
        ("", False),
    ],
)
def test_quiet_probes_only_for_a_vllm_that_knows_the_option(version: str, supported: bool) -> None:
    assert quiet_probes_supported(version) is supported


def test_quiet_probes_keep_the_apps_polling_out_of_the_access_log_unless_the_user_set_it() -> None:
    args = build_serve_args(ServerProfile(name="p"), "/m", 8000, quiet_probes=True)
    assert args[-2:] == ["--disable-access-log-for-endpoints", "/health,/metrics,/tokenize,/ping,/load"]
    assert "--disable-access-log-for-endpoints" not in args_for()
    own = ServerProfile(name="p", extra_args="--disable-access-log-for-endpoints /health")
    assert build_serve_args(own, "/m", 8000, quiet_probes=True)[-2:] == [
        "--disable-access-log-for-endpoints",
        "/health",
    ]


@pytest.mark.parametrize(
    ("fields", "extra"),
    [
        ({"dtype": "bfloat16"}, ["--dtype", "bfloat16"]),
        ({"max_model_len": 4096}, ["--max-model-len", "4096"]),
        ({"max_model_len": "auto"}, ["--max-model-len", "auto"]),
        ({"gpu_memory_utilization": 0.85}, ["--gpu-memory-utilization", "0.85"]),
        ({"tensor_parallel_size": 2}, ["--tensor-parallel-size", "2"]),
        ({"pipeline_parallel_size": 4}, ["--pipeline-parallel-size", "4"]),
        ({"quantization": "awq"}, ["--quantization", "awq"]),
        ({"kv_cache_dtype": "fp8"}, ["--kv-cache-dtype", "fp8"]),
        ({"max_num_seqs": 8}, ["--max-num-seqs", "8"]),
        ({"enable_prefix_caching": True}, ["--enable-prefix-caching"]),
        ({"enable_prefix_caching": False}, ["--no-enable-prefix-caching"]),
        ({"chat_template": "/t/chatml.jinja"}, ["--chat-template", "/t/chatml.jinja"]),
        ({"reasoning_parser": "deepseek_r1"}, ["--reasoning-parser", "deepseek_r1"]),
        ({"tool_call_parser": "hermes"}, ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]),
        ({"trust_remote_code": True}, ["--trust-remote-code"]),
        ({"download_dir": "/data/hf"}, ["--download-dir", "/data/hf"]),
        ({"seed": 7}, ["--seed", "7"]),
        (
            {"extra_args": "--max-num-batched-tokens 512 --generation-config 'a b'"},
            ["--max-num-batched-tokens", "512", "--generation-config", "a b"],
        ),
    ],
)
def test_each_option(fields: dict[str, object], extra: list[str]) -> None:
    assert args_for(**fields) == [*BASE, *extra]


def test_host_port_and_served_name() -> None:
    profile = ServerProfile(name="p", source="hf_repo", model="Qwen/Qwen3-0.6B", host="0.0.0.0")
    args = build_serve_args(profile, "Qwen/Qwen3-0.6B", 9001)
    assert args == [
        "Qwen/Qwen3-0.6B",
        "--served-model-name",
        "Qwen/Qwen3-0.6B",
        "--host",
        "0.0.0.0",
        "--port",
        "9001",
    ]
    named = ServerProfile(name="p", source="folder", model="/models/my-llama", served_name="llama")
    assert named.served_model_name == "llama"
    assert ServerProfile(name="p", source="folder", model="/models/my-llama").served_model_name == "my-llama"
    assert builtin_profile().served_model_name == BUILTIN_MODEL.served_name


def test_the_builtin_profile_keeps_tool_calling_on_so_a_forced_tool_choice_works() -> None:
    # Without a parser vLLM refuses tool_choice required/named with HTTP 400.
    args = build_serve_args(builtin_profile(), "/m", 8000, cpu=True)
    at = args.index("--tool-call-parser")
    assert args[at - 1] == "--enable-auto-tool-choice"
    assert args[at + 1] == "hermes"


def test_api_key_is_never_in_argv() -> None:
    args = args_for(key_mode="fixed", extra_args="--seed 1")
    assert not any("key" in a for a in args)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("--api-key abc", "environment"),
        ("--port=9000", "profile's port"),
        ("--host 0.0.0.0", "profile's host"),
        ("-tp 2", "tensor-parallel"),
        ("--chat-template 'unclosed", "quotes"),
        ("model-name --seed 1", "must start with an option"),
    ],
)
def test_bad_extra_args_are_refused_with_a_reason(extra: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        split_extra_args(extra)
    with pytest.raises(ValidationError, match=reason):
        ServerProfile(name="p", extra_args=extra)


def test_field_checks() -> None:
    with pytest.raises(ValidationError, match="base_url"):
        ServerProfile(name="r", kind="remote")
    with pytest.raises(ValidationError, match="http"):
        ServerProfile(name="r", kind="remote", base_url="ftp://x")
    with pytest.raises(ValidationError, match="model is needed"):
        ServerProfile(name="p", source="folder")
    with pytest.raises(ValidationError):
        ServerProfile(name="p", gpu_memory_utilization=1.5)
    with pytest.raises(ValidationError):
        ServerProfile(name="p", port=70000)
    with pytest.raises(ValidationError):
        ServerProfile(name="p", max_model_len=0)
    with pytest.raises(ValidationError):
        ServerProfile(name="")


def test_remote_profile_builds_no_argv() -> None:
    remote = ServerProfile(name="team", kind="remote", base_url="https://llm.example.org/v1/")
    assert remote.base_url == "https://llm.example.org/v1"
    with pytest.raises(ProfileInvalid, match="remote"):
        build_serve_args(remote, "/m", 1)


def test_dump_is_toml_friendly_and_round_trips() -> None:
    profile = ServerProfile(name="p", max_model_len="auto", seed=3, enable_prefix_caching=False)
    data = profile.to_dict()
    assert None not in data.values()
    assert "gpu_memory_utilization" not in data
    assert ServerProfile.model_validate(data) == profile


def test_model_argument(app_paths: AppPaths, tmp_path: Path) -> None:
    assert model_argument(builtin_profile(), app_paths) == str(builtin_model_path(app_paths))
    repo = ServerProfile(name="p", source="hf_cache", model="org/m")
    assert model_argument(repo, app_paths) == "org/m"
    folder = tmp_path / "m"
    with pytest.raises(ProfileInvalid, match="does not exist"):
        model_argument(ServerProfile(name="p", source="folder", model=str(folder)), app_paths)
    folder.mkdir()
    with pytest.raises(ProfileInvalid, match=r"config\.json"):
        model_argument(ServerProfile(name="p", source="folder", model=str(folder)), app_paths)
    (folder / "config.json").write_text("{}")
    assert model_argument(ServerProfile(name="p", source="folder", model=str(folder)), app_paths) == str(
        folder
    )


def test_launch_keys_random_or_fixed_in_the_keychain() -> None:
    random_profile = ServerProfile(name="p")
    first, second = launch_api_key(random_profile), launch_api_key(random_profile)
    assert first != second
    assert len(first) >= 32
    store = SecretStore()
    fixed = ServerProfile(name="scripts", key_mode="fixed")
    key = launch_api_key(fixed, store)
    assert store.get(profile_key("scripts")) == key
    assert launch_api_key(fixed, store) == key


def test_a_cached_snapshot_is_served_at_its_revision() -> None:
    rev = "0123456789abcdef0123456789abcdef01234567"
    profile = ServerProfile(name="p", source="hf_cache", model="org/m", revision=rev)
    args = build_serve_args(profile, "org/m", 8000)
    assert args[args.index("--revision") + 1] == rev
    assert args[args.index("--tokenizer-revision") + 1] == rev
    # A folder is one snapshot already: a leftover revision is not passed.
    folder = profile.model_copy(update={"source": "folder", "model": "/models/m"})
    assert "--revision" not in build_serve_args(folder, "/models/m", 8000)
    with pytest.raises(ValueError, match="--revision cannot be given in the extra arguments"):
        ServerProfile(name="p", extra_args="--revision main")
