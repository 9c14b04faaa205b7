"""The CPU dtype: the real vLLM serving the built-in model in float32 (the app's CPU default) beside
bfloat16 (the old default), one after the other in the same run on the same machine. For each: the answer
to the golden question at temperature 0, decode speed (200 tokens, ``ignore_eos``, temperature 0) and time
to first token (a 42-token prompt), repeated; the figures are medians with min and max alongside."""

from __future__ import annotations

import time

import httpx

from bench.context import BenchContext
from bench.result import BenchResult, Metric
from bench.servers import real_vllm
from bench.stats import summary

DECODE_TOKENS = 200
PROMPT = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle. Describe the sea, the "
    "weather and the keeper's thoughts in plain words."
)


def _ask(client: httpx.Client, server: object, messages: list[dict[str, str]], **body: object) -> dict:  # type: ignore[type-arg]
    endpoint = server.endpoint  # type: ignore[attr-defined]
    response = client.post(
        f"{endpoint.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {endpoint.api_key}"},
        json={"model": endpoint.model, "messages": messages, "temperature": 0, **body},
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def _ttft_s(client: httpx.Client, server: object) -> float:
    endpoint = server.endpoint  # type: ignore[attr-defined]
    body = {
        "model": endpoint.model,
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0,
        "max_tokens": 8,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {endpoint.api_key}"}
    start = time.perf_counter()
    with client.stream("POST", f"{endpoint.base_url}/chat/completions", json=body, headers=headers) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line:
                return time.perf_counter() - start
    raise RuntimeError("the stream ended without a token")


def _measure(ctx: BenchContext, dtype: str, repeats: int) -> dict[str, object]:
    from engine.models.builtin import BUILTIN_MODEL

    with real_vllm(ctx, ctx.work_dir / f"vllm-{dtype}.log", dtype=dtype) as server:
        ctx.say(f"{dtype}: ready after {server.ready_at - server.launched_at:.1f} s")
        with httpx.Client(timeout=300, trust_env=False) as client:
            golden = _ask(
                client, server, [{"role": "user", "content": BUILTIN_MODEL.golden_prompt}], max_tokens=32
            )
            answer = golden["choices"][0]["message"]["content"]
            ctx.say(f"{dtype}: {BUILTIN_MODEL.golden_prompt!r} -> {answer!r}")
            _ask(client, server, [{"role": "user", "content": "Hi"}], max_tokens=8)  # warm-up
            speeds, ttfts = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                reply = _ask(
                    client,
                    server,
                    [{"role": "user", "content": PROMPT}],
                    max_tokens=DECODE_TOKENS,
                    ignore_eos=True,
                )
                took = time.perf_counter() - start
                speeds.append(reply["usage"]["completion_tokens"] / took)
                ttfts.append(_ttft_s(client, server) * 1000)
            ctx.say(f"{dtype}: {summary(speeds)['median']:.1f} tok/s, TTFT {summary(ttfts)['median']:.0f} ms")
    return {"answer": answer, "speeds": speeds, "ttfts": ttfts}


def run(ctx: BenchContext) -> BenchResult:
    result = BenchResult("cpu_dtype", "CPU dtype: float32 against bfloat16")
    if not ctx.real_vllm:
        result.skip_part("everything", "needs the real vLLM (--no-vllm given)")
        return result
    repeats = 3 if ctx.quick else 6
    f32 = _measure(ctx, "float32", repeats)
    bf16 = _measure(ctx, "bfloat16", repeats)
    s32, s16 = summary(f32["speeds"]), summary(bf16["speeds"])  # type: ignore[arg-type]
    t32, t16 = summary(f32["ttfts"]), summary(bf16["ttfts"])  # type: ignore[arg-type]
    result.add(
        Metric(
            "decode_tok_s",
            f"decode, {DECODE_TOKENS} tokens, median (min–max: float32 {s32['min']:.1f}–{s32['max']:.1f}, "
            f"bfloat16 {s16['min']:.1f}–{s16['max']:.1f})",
            s32["median"],
            "tok/s",
            baseline=s16["median"],
            baseline_label="bfloat16",
        )
    )
    result.add(
        Metric(
            "ttft_ms",
            f"time to first token, median (min–max: float32 {t32['min']:.0f}–{t32['max']:.0f}, "
            f"bfloat16 {t16['min']:.0f}–{t16['max']:.0f})",
            t32["median"],
            "ms",
            baseline=t16["median"],
            baseline_label="bfloat16",
        )
    )
    result.notes.append(f"float32 answered the golden question: {f32['answer']!r}")
    result.notes.append(f"bfloat16 answered the golden question: {bf16['answer']!r}")
    result.series = {"float32": f32, "bfloat16": bf16}
    return result
