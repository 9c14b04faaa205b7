"""The built-in model's golden check: does this runtime, on this machine, answer like the reference?

vLLM's CPU bfloat16 path gave garbage on an Intel Xeon with AMX ("L'Étoile, la Marseillaise, …" for "What
is the capital of France?") while it answered right on an AMD EPYC, so a model that converted fine can
still be served wrong. The conversion keeps a reference answer (transformers, float32, greedy) in the
model's manifest; the first time a runtime serves the model on a machine, the same prompt is asked at
temperature 0 and the answer compared. The verdict is recorded per (runtime, machine, dtype, model) in
``<state>/golden-checks.json``, so later starts cost nothing and ``vllm-desk doctor`` can show it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from engine.diagnosis.problems import ServerProblem
from engine.endpoint import Endpoint
from engine.errors import Fix

RECORDS_NAME = "golden-checks.json"
# Enough for the reference sentence and a little more: a right answer ends well before this.
MAX_TOKENS = 32
TIMEOUT_S = 60.0

Verdict = Literal["match", "close", "wrong"]

# CPU flags that select different kernels in torch/oneDNN; two machines that differ here may compute
# differently, so a verdict from one is not taken for the other.
_KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "amx_int8")


@dataclass(frozen=True)
class GoldenResult:
    """One check: what was asked, what came back, what was expected, and the verdict."""

    verdict: Verdict
    prompt: str
    answer: str
    reference: str
    dtype: str
    runtime: str
    machine: str
    checked_at: str

    @property
    def passed(self) -> bool:
        return self.verdict != "wrong"

    def describe(self) -> str:
        if self.verdict == "match":
            return f"answers like the reference ({self.dtype}, {self.runtime})"
        if self.verdict == "close":
            return f"answers correctly in other words ({self.dtype}, {self.runtime}): {self.answer!r}"
        return f"WRONG answer ({self.dtype}, {self.runtime}): {self.answer!r}, expected {self.reference!r}"


class BuiltinModelAnswersWrong(ServerProblem):
    """The served model gave a wrong answer to the golden prompt: the runtime computes wrongly here."""

    title = "The built-in model answers wrongly on this machine"

    def __init__(self, result: GoldenResult, *, cpu: bool) -> None:
        fix: Fix | None
        if result.dtype != "float32":
            reason = f"this {'CPU' if cpu else 'GPU'}'s {result.dtype} path in vLLM gives wrong results"
            fix = Fix(
                "set_option",
                "Use float32",
                "Set the profile's dtype to float32 (vllm-desk serve ... with --dtype float32).",
                {"dtype": "float32"},
            )
        else:
            reason = "vLLM computes wrongly on this machine even in float32"
            fix = Fix("show_log", "Show the log", "Report the answer below with `vllm-desk doctor --json`.")
        super().__init__(
            f"Asked {result.prompt!r}, the model answered {result.answer!r} instead of "
            f"{result.reference!r}: {reason}. The server was stopped so that no wrong answers reach a chat.",
            fix=fix,
            details=json.dumps(asdict(result), indent=2),
        )
        self.result = result


def machine_fingerprint() -> str:
    """The processor's model name and the kernel-selecting flags, e.g. ``AMD EPYC | avx2 avx512f ...``."""
    name, flags = platform.processor() or platform.machine(), set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and value.strip():
            name = value.strip()
        elif key == "flags":
            flags = set(value.split())
            break
    present = " ".join(flag for flag in _KERNEL_FLAGS if flag in flags)
    return f"{name} | {present}" if present else name


def runtime_identity(runtime: object) -> str:
    """What computes the answers: vLLM's version and build, and the torch it runs on (any ServeRuntime)."""
    version = getattr(runtime, "version", "?")
    build = "cpu" if getattr(runtime, "is_cpu", False) else "gpu"
    packages = getattr(runtime, "packages", None) or {}
    torch = packages.get("torch") if isinstance(packages, Mapping) else None
    return f"vllm {version} ({build})" + (f", torch {torch}" if torch else "")


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def judge(answer: str, reference: str, keyword: str) -> Verdict:
    """``match``: the reference's words (a longer answer that starts with them too); ``close``: other words
    that still hold the fact; ``wrong``: neither."""
    got, want = normalise(answer), normalise(reference)
    if want and (got == want or got.startswith(want)):
        return "match"
    if keyword and keyword.lower() in got.lower():
        return "close"
    return "wrong"


def record_key(runtime: str, machine: str, dtype: str, model_id: str) -> str:
    raw = "\n".join((runtime, machine, dtype, model_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class GoldenRecords:
    """The recorded verdicts in ``<state>/golden-checks.json`` (a corrupt file counts as empty)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / RECORDS_NAME

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> GoldenResult | None:
        entry = self._load().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            return GoldenResult(**entry)
        except TypeError:
            return None

    def put(self, key: str, result: GoldenResult) -> None:
        data = self._load()
        data[key] = asdict(result)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{RECORDS_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def all(self) -> list[GoldenResult]:
        out = []
        for key in self._load():
            result = self.get(key)
            if result is not None:
                out.append(result)
        return out


async def ask_golden(
    endpoint: Endpoint, prompt: str, reference: str, keyword: str, *, dtype: str, runtime: str
) -> GoldenResult:
    """Ask ``prompt`` at temperature 0 through the server's chat API and judge the answer."""
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    body = {
        "model": endpoint.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
    }
    # trust_env=False: a local server is never reached through the environment's proxy (it would see the key).
    async with httpx.AsyncClient(timeout=TIMEOUT_S, trust_env=False) as client:
        response = await client.post(f"{endpoint.base_url}/chat/completions", json=body, headers=headers)
        response.raise_for_status()
        answer = str(response.json()["choices"][0]["message"].get("content") or "")
    return GoldenResult(
        verdict=judge(answer, reference, keyword),
        prompt=prompt,
        answer=answer,
        reference=reference,
        dtype=dtype,
        runtime=runtime,
        machine=machine_fingerprint(),
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
