"""vLLM's log lines as the stand-in prints them: the startup phases and the real texts of each known failure.

The texts are copied from vLLM 0.32/0.33 (``vllm/config``, ``vllm/v1/core/kv_cache_utils.py``,
``vllm/v1/worker/gpu_worker.py``, ``vllm/transformers_utils/config.py``, ``vllm/v1/engine/utils.py``) so
that the app's diagnosis is tested against what vLLM really says.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime


def _stamp() -> str:
    return datetime.now().strftime("%m-%d %H:%M:%S")


def api(msg: str, where: str = "api_server.py:1839", level: str = "INFO") -> str:
    return f"(APIServer pid={os.getpid()}) {level} {_stamp()} [{where}] {msg}"


def core(msg: str, where: str = "core.py:93", level: str = "INFO") -> str:
    return f"(EngineCore_DP0 pid={os.getpid() + 1}) {level} {_stamp()} [{where}] {msg}"


def out(line: str) -> None:
    """vLLM's logger writes to stdout."""
    print(line, flush=True)


def err(line: str) -> None:
    """uvicorn, tqdm bars and tracebacks go to stderr."""
    print(line, file=sys.stderr, flush=True)


def startup(model: str, served: str, max_model_len: int, version: str, delay: float, download: bool) -> None:
    """The lines of a successful engine start, spread over ``delay`` seconds."""
    step = delay / 8 if delay > 0 else 0.0
    out(f"INFO {_stamp()} [__init__.py:216] Automatically detected platform cpu.")
    out(api(f"vLLM API server version {version}"))
    out(
        api(
            f"non-default args: {{'model_tag': '{model}', 'served_model_name': ['{served}']}}", "utils.py:233"
        )
    )
    time.sleep(step)
    if download:
        for pct, done in ((0, "0.00"), (45, "121M"), (100, "269M")):
            err(f"model.safetensors: {pct:3d}%|#####     | {done}/269M [00:02<00:03, 45.2MB/s]")
            time.sleep(step / 3)
    out(api("Resolved architecture: LlamaForCausalLM", "model.py:547"))
    out(api(f"Using max model len {max_model_len}", "model.py:1510"))
    out(core(f"Initializing a V1 LLM engine (v{version}) with config: model='{model}'"))
    time.sleep(step)
    out(core(f"Starting to load model {model}...", "cpu_model_runner.py:106"))
    err("Loading safetensors checkpoint shards:   0% Completed | 0/2 [00:00<?, ?it/s]")
    time.sleep(step)
    err("Loading safetensors checkpoint shards:  50% Completed | 1/2 [00:00<00:00,  7.51it/s]")
    time.sleep(step)
    err("Loading safetensors checkpoint shards: 100% Completed | 2/2 [00:00<00:00,  7.51it/s]")
    out(core("Loading weights took 0.12 seconds", "default_loader.py:267"))
    out(core("Model loading took 0.2500 GiB and 0.35 seconds", "cpu_model_runner.py:111"))
    time.sleep(step)
    out(core("Dynamo bytecode transform time: 3.21 s", "backends.py:559"))
    out(core("torch.compile takes 3.41 s in total", "monitor.py:34"))
    time.sleep(step)
    out(api("Enforce eager set, disabling torch.compile, CUDAGraphs, and JIT kernel warmup.", "vllm.py:1703"))
    out(core("Explicitly set (1.0/14.21) GiB for KV cache on node 0.", "cpu_worker.py:260"))
    out(
        core(
            f"CPU KV cache size: 46,592 tokens, Maximum concurrency for {max_model_len:,} tokens per "
            "request: 22.75x",
            "kv_cache_utils.py:2327",
        )
    )
    time.sleep(step)
    out(core("Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%", "gpu_model_runner.py:3480"))
    out(core("Graph capturing finished in 1 secs, took 0.05 GiB", "gpu_model_runner.py:3561"))
    out(core("init engine (profile, create kv cache, warmup model) took 2.30 seconds", "core.py:210"))
    time.sleep(step)
    out(api("Supported_tasks: ['generate']", "api_server.py:1634"))


def listening(host: str, port: int) -> None:
    """The readiness lines: vLLM's own on stdout, uvicorn's on stderr (no "Uvicorn running on" line)."""
    out(api(f"Starting vLLM server on http://{host}:{port}", "entry.py:140"))
    out(api("Available routes are:", "launcher.py:34"))
    for route in ("/health", "/v1/models", "/version", "/metrics", "/tokenize", "/v1/chat/completions"):
        method = "POST" if "completions" in route or "tokenize" in route else "GET"
        out(api(f"Route: {route}, Methods: {method}", "launcher.py:42"))
    err(f"INFO:     Started server process [{os.getpid()}]")
    err("INFO:     Waiting for application startup.")
    err("INFO:     Application startup complete.")


def shutting_down() -> None:
    err("INFO:     Shutting down")
    err("INFO:     Waiting for application shutdown.")
    err("INFO:     Application shutdown complete.")
    err(f"INFO:     Finished server process [{os.getpid()}]")


ENGINE_FAILED = (
    "RuntimeError: Engine core initialization failed. See root cause above. "
    "Failed core proc(s): {'EngineCore_DP0': 1}"
)

PORT_IN_USE = [
    "Traceback (most recent call last):",
    '  File "/venv/lib/python3.11/site-packages/vllm/entrypoints/openai/api_server.py", line 1930, in '
    "create_server_socket",
    "    sock.bind(addr)",
    "OSError: [Errno 98] Address already in use",
]


def _engine_failure(root_cause: list[str]) -> list[str]:
    # The engine core process logs its traceback, then the API server gives up with ENGINE_FAILED.
    return [
        core("EngineCore failed to start.", "core.py:708", "ERROR"),
        core("Traceback (most recent call last):", "core.py:708", "ERROR"),
        '  File "/venv/lib/python3.11/site-packages/vllm/v1/engine/core.py", line 699, in run_engine_core',
        "    engine_core = EngineCoreProc(*args, **kwargs)",
        *root_cause,
        "Traceback (most recent call last):",
        '  File "/venv/lib/python3.11/site-packages/vllm/v1/engine/utils.py", line 744, in '
        "wait_for_engine_startup",
        ENGINE_FAILED,
    ]


def failure_lines(kind: str, model: str, max_model_len: int) -> list[str]:
    """The stderr lines vLLM prints for each known failure (``--fail-with KIND``)."""
    if kind == "port-in-use":
        return PORT_IN_USE
    if kind == "kv-cache-too-small":
        return _engine_failure(
            [
                f"ValueError: To serve at least one request with the model's max seq len ({max_model_len}), "
                "(3.00 GiB KV cache is needed, which is larger than the available KV cache memory "
                "(1.00 GiB). "
                "Based on the available memory, the estimated maximum model length is 10912. Try increasing "
                "`gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing "
                "`max_model_len` when initializing the engine. See "
                "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
            ]
        )
    if kind == "no-cache-memory":
        return _engine_failure(
            [
                "ValueError: No available memory for the cache blocks. Try increasing "
                "`gpu_memory_utilization` when initializing the engine (this flag also controls CPU memory "
                "reservation on the CPU backend, despite its name). See "
                "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
            ]
        )
    if kind == "max-model-len-too-long":
        return [
            "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig",
            f"  Value error, User-specified max_model_len ({max_model_len}) is greater than the derived "
            "max_model_len (max_position_embeddings=8192.0 or model_max_length=None in model's config.json). "
            "To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. "
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. If the model uses relative "
            "position encoding (RoPE), positions exceeding derived_max_model_len lead to nan. If the model "
            "uses absolute position encoding, positions exceeding derived_max_model_len will cause a CUDA "
            "array out-of-bounds error. [type=value_error, input_value=ArgsKwargs((), {...}), "
            "input_type=ArgsKwargs]",
        ]
    if kind == "free-memory-below-utilization":
        return _engine_failure(
            [
                "ValueError: Free memory on device cuda:0 (10.5/79.19 GiB) on startup is less than desired "
                "GPU memory "
                "utilization (0.92, 72.85 GiB). Decrease GPU memory utilization or reduce GPU memory used by "
                "other processes."
            ]
        )
    if kind == "weights-do-not-fit":
        return _engine_failure(
            [
                # vLLM 0.32 logs its advice with the original error, then re-raises torch's error.
                core(
                    "Failed to load model - not enough GPU memory. Try lowering --gpu-memory-utilization "
                    "to free memory for weights, increasing --tensor-parallel-size, or using --quantization. "
                    "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more tips. "
                    "(original error: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total "
                    "capacity of 23.55 GiB of which 1.03 GiB is free.)",
                    "gpu_model_runner.py:5147",
                    "ERROR",
                ),
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total "
                "capacity of 23.55 GiB of which 1.03 GiB is free.",
            ]
        )
    if kind == "invalid-repo":
        return [
            f"ValueError: Invalid repository ID or local directory specified: '{model}'.",
            "Please verify the following requirements:",
            "1. Provide a valid Hugging Face repository ID.",
            "2. Specify a local directory that contains a recognized configuration file.",
            "   - For Hugging Face models: ensure the presence of a 'config.json'.",
            "   - For Mistral models: ensure the presence of a 'params.json'.",
        ]
    if kind == "no-network":
        return [
            "requests.exceptions.ConnectionError: "
            "(MaxRetryError(\"HTTPSConnectionPool(host='huggingface.co', "
            f"port=443): Max retries exceeded with url: /api/models/{model}/revision/main (Caused by "
            'NameResolutionError("<urllib3.connection.HTTPSConnection object>: Failed to resolve '
            "'huggingface.co' ([Errno -3] Temporary failure in name resolution)\"))\"))",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to "
            "locate the file "
            "on the Hub and we cannot find the requested files in the local cache. Please check your "
            "connection and try again or make sure your Internet connection is on.",
        ]
    if kind == "unsupported-architecture":
        return [
            "ValueError: Model architectures ['FancyNewForCausalLM'] are not supported for now. Supported "
            "architectures: dict_keys(['AquilaModel', 'LlamaForCausalLM', 'MistralForCausalLM'])",
        ]
    if kind == "generic":
        return _engine_failure(["AssertionError: the oneDNN matmul primitive could not be created"])
    raise ValueError(f"unknown failure kind {kind!r}")


FAILURE_KINDS = (
    "port-in-use",
    "kv-cache-too-small",
    "no-cache-memory",
    "max-model-len-too-long",
    "free-memory-below-utilization",
    "weights-do-not-fit",
    "invalid-repo",
    "no-network",
    "unsupported-architecture",
    "generic",
)

NO_CHAT_TEMPLATE = (
    "As of transformers v4.44, default chat template is no longer allowed, so you must provide a chat "
    "template if the tokenizer does not define one."
)

# vLLM's message in the stream's error event when EngineCore dies mid-reply (seen on the CPU build).
ENGINE_DEAD_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."


def context_too_long(max_model_len: int, prompt_tokens: int, max_tokens: object) -> str:
    """vLLM's 400 answer to a request longer than the model's context (its own wording)."""
    completion = max_tokens if isinstance(max_tokens, int) else 0
    return (
        f"This model's maximum context length is {max_model_len} tokens. However, you requested "
        f"{prompt_tokens + completion} tokens ({prompt_tokens} in the messages, {completion} in the "
        "completion). Please reduce the length of the messages or completion."
    )
