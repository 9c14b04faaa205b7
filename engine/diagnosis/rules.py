"""vLLM's start log and error responses → the most specific :class:`~engine.diagnosis.problems.ServerProblem`.

The rules, most specific first; the texts matched are vLLM's own (FACTS.md quotes them). The problems
themselves live in :mod:`engine.diagnosis.problems` (general) and :mod:`engine.diagnosis.gpu` (GPU builds).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from engine.diagnosis.gpu import GPU_RULES, NCCL_RULES, out_of_memory
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
)

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], str], ServerProblem]]
_NUM = r"([\d.]+)"
_OOM_RULE: _Rule = (
    re.compile(r"Failed to load model - not enough GPU memory|CUDA out of memory|CUDA error: out of memory"),
    lambda m, d: WeightsDoNotFit(details=d),
)
_RULES: list[_Rule] = [
    (
        re.compile(r"\[Errno 98\].*(?:address already in use|Address already in use)", re.IGNORECASE),
        lambda m, d: PortInUse(None, details=d),
    ),
    (
        re.compile(
            r"max seq len \((\d+)\), \("
            + _NUM
            + r" GiB KV cache is needed, which is larger than the available "
            r"KV cache memory \("
            + _NUM
            + r" GiB\)\. Based on the available memory, the estimated maximum model "
            r"length is (\d+)"
        ),
        lambda m, d: KvCacheTooSmall(int(m[1]), int(m[4]), float(m[2]), float(m[3]), details=d),
    ),
    (re.compile(r"No available memory for the cache blocks"), lambda m, d: NoCacheMemory(details=d)),
    (
        re.compile(
            r"User-specified max_model_len \((\d+)\) is greater than the derived max_model_len \((.*?)\)"
        ),
        lambda m, d: MaxModelLenTooLong(int(m[1]), _derived_limit(m[2]), details=d),
    ),
    (
        re.compile(
            # vLLM >= 0.32 names the device ("on device cuda:0 ("); with weights held by another process it
            # compares with "the engine's budget after excluding external process's weights".
            r"Free memory on device (?:\S+ )?\(" + _NUM + "/" + _NUM + r" GiB\) on startup is less than "
            r"(?:desired GPU memory utilization|the engine's budget after excluding external process's "
            r"weights) \(" + _NUM
        ),
        lambda m, d: GpuMemoryBusy(float(m[1]), float(m[2]), float(m[3]), details=d),
    ),
    _OOM_RULE,
    (
        re.compile(r"Invalid repository ID or local directory specified: '([^']*)'"),
        lambda m, d: ModelNotFound(m[1], details=d),
    ),
    (
        re.compile(r"(?:RepositoryNotFoundError|is not a local folder and is not a valid model identifier)"),
        lambda m, d: ModelNotFound("the model", details=d),
    ),
    (re.compile(r"Cannot access gated repo|GatedRepoError"), lambda m, d: GatedModel(details=d)),
    (
        re.compile(
            r"LocalEntryNotFoundError|couldn't connect to 'https://huggingface\.co'|"
            r"Failed to resolve 'huggingface\.co'|Max retries exceeded with url"
        ),
        lambda m, d: NoNetwork(details=d),
    ),
    (
        # transformers' words, inside the pydantic ValidationError vLLM stops with.
        re.compile(r"Unrecognized model in (.+?)\. Should have a `model_type` key in its (\S+?)\.(?=\s|$)"),
        lambda m, d: ModelConfigUnrecognized(m[1], m[2], details=d),
    ),
    (
        re.compile(r"Model architectures (\[.*?\]) are not supported"),
        lambda m, d: UnsupportedArchitecture(m[1], details=d),
    ),
    (re.compile(r"default chat template is no longer allowed"), lambda m, d: ChatTemplateMissing(details=d)),
]

_EXCEPTION_LINE = re.compile(r"^(?:\(\w+ pid=\d+\) )?[\w.]*(?:Error|Exception|Interrupt)\b.*?:\s*\S")
_NOT_ROOT = ("Engine core initialization failed", "See root cause above")


def _ordered_rules() -> list[_Rule]:
    """The rules, most specific first: the GPU ones (engine/diagnosis/gpu.py) go before the memory rule,
    because a CUDA out-of-memory after the weights loaded is not "the weights do not fit"."""
    at = _RULES.index(_OOM_RULE)
    return [*_RULES[:at], *GPU_RULES, *_RULES[at:], *NCCL_RULES]


def _derived_limit(text: str) -> int | None:
    numbers = re.findall(r"=(\d+)(?:\.0)?\b", text)
    return int(numbers[0]) if numbers else None


def root_cause_lines(lines: Sequence[str], limit: int = 3) -> list[str]:
    """The exception lines of a traceback, innermost cause first, without vLLM's "see above" wrapper."""
    found = [
        line.strip()
        for line in lines
        if _EXCEPTION_LINE.match(line.strip()) and not any(s in line for s in _NOT_ROOT)
    ]
    return found[-limit:]


def diagnose(
    lines: Sequence[str], *, exit_code: int | None = None, port: int | None = None, tail: int = 60
) -> ServerProblem:
    """The most specific problem the log shows; :class:`ServerFailed` quoting the root cause otherwise."""
    details = "\n".join(lines[-tail:])
    text = "\n".join(lines)
    for pattern, make in _ordered_rules():
        if pattern is _OOM_RULE[0] and (after_load := out_of_memory(text, details)) is not None:
            return after_load
        if match := pattern.search(text):
            problem = make(match, details)
            if isinstance(problem, PortInUse):
                problem = PortInUse(port, details=details)
            return problem
    causes = root_cause_lines(lines)
    return ServerFailed(" / ".join(causes), exit_code, details=details)


def diagnose_response(status: int, body: str) -> ServerProblem | None:
    """A problem for an HTTP error of a running server when it is a known one (e.g. no chat template)."""
    if status == 400 and "chat template" in body:
        return ChatTemplateMissing(details=body[:2000])
    return None
