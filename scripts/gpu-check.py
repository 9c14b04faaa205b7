#!/usr/bin/env python3
"""Compare vLLM Desk's GPU detection and fit estimates with what a real card and PyTorch report.

Run on a machine with an NVIDIA GPU, PyTorch (CUDA build) and nvidia-ml-py; vLLM and a network are not
needed (nor the app's other dependencies: engine.hardware, engine.server.fit and engine.runtime.gpu_preflight
use only the
standard library). From the repository root:

    python scripts/gpu-check.py [--json OUT.json] [--utilization 0.9] [--no-alloc]

It reports, for each check, what the app believes and what the card says:

1. NVML as the app reads it (engine.hardware): names, compute capability, total/free/reserved memory, the
   driver's CUDA version, processes holding memory; and the pre-install check (engine.runtime.gpu_preflight).
2. PyTorch: its CUDA version, each device's capability and ``mem_get_info`` total; whether the app's
   "CUDA total" (NVML total minus reserved) matches; the memory a CUDA context with cuBLAS takes (the fit's
   ``CONTEXT_BYTES``); PyTorch's device order against ``visible_gpus`` (CUDA_VISIBLE_DEVICES and
   CUDA_DEVICE_ORDER as set in this shell).
3. The fit estimate for three models of issue 20 at a few context lengths on device 0, then an allocation
   of the estimated weights + KV cache + activation proxy under ``torch.cuda.set_per_process_memory_fraction``
   (vLLM's budget): a "fits"/"tight" verdict must allocate, a "won't fit" must not.

Exit status 0 when every comparison agrees, 1 otherwise (the report says which).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.hardware import GpuInfo, gpu_status, visible_gpus
from engine.models.catalog import ModelInfo
from engine.runtime.gpu_preflight import gpu_preflight
from engine.server.fit import (
    CONTEXT_BYTES,
    GIB,
    RunShape,
    activation_bytes,
    estimate_fit,
    graph_bytes,
    kv_bytes_per_token,
)

MIB = 2**20
# Published config.json numbers (and checkpoint sizes) of the three models the fit tests work out by hand.
MODELS: dict[str, ModelInfo] = {
    "Qwen2.5-7B bf16": ModelInfo(
        max_context=32768,
        dtype="bfloat16",
        num_layers=28,
        hidden_size=3584,
        num_attention_heads=28,
        num_kv_heads=4,
        head_dim=128,
        vocab_size=152064,
        intermediate_size=18944,
        weight_bytes=15_231_233_024,
        param_count=7_615_616_512,
    ),
    "Llama-3.1-8B fp8 (online)": ModelInfo(
        max_context=131072,
        dtype="bfloat16",
        num_layers=32,
        hidden_size=4096,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=128,
        vocab_size=128256,
        intermediate_size=14336,
        weight_bytes=16_060_522_496,
        param_count=8_030_261_248,
        embedding_params=1_050_673_152,
    ),
    "Llama-3.3-70B AWQ": ModelInfo(
        max_context=131072,
        dtype="float16",
        quantization="awq 4-bit",
        quant_method="awq",
        quant_bits=4,
        quant_group_size=128,
        num_layers=80,
        hidden_size=8192,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=128,
        vocab_size=128256,
        intermediate_size=28672,
        weight_bytes=39_767_785_472,
    ),
}
QUANTIZATION = {"Llama-3.1-8B fp8 (online)": "fp8"}


def gib(n: float | None) -> str:
    return "?" if n is None else f"{n / GIB:.2f} GiB"


class Report:
    def __init__(self) -> None:
        self.sections: dict[str, Any] = {}
        self.disagreements: list[str] = []

    def say(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def compare(self, what: str, ours: object, theirs: object, agree: bool) -> None:
        mark = "ok  " if agree else "DIFF"
        self.say(f"  [{mark}] {what}: app {ours} / card {theirs}")
        if not agree:
            self.disagreements.append(f"{what}: app {ours}, card {theirs}")


def nvml_section(report: Report) -> list[GpuInfo]:
    status = gpu_status()
    report.say("== NVML, as the app reads it (engine.hardware.gpu_status)")
    report.say(
        f"  driver {status.driver_version or '?'}, CUDA {status.cuda_driver_version}, {status.reason or 'ok'}"
    )
    for g in status.gpus:
        procs = ", ".join(f"{p.pid}:{gib(p.used_bytes)}" for p in g.processes) or "none"
        report.say(
            f"  GPU {g.index} {g.name} cc {g.compute_capability} total {gib(g.total_bytes)} reserved "
            f"{gib(g.reserved_bytes)} free {gib(g.free_bytes)} uuid {g.uuid} processes {procs}"
        )
    report.sections["nvml"] = {
        "driver": status.driver_version,
        "cuda_driver_version": status.cuda_driver_version,
        "reason": status.reason,
        "gpus": [asdict(g) for g in status.gpus],
    }
    data_dir = Path.home()
    preflight = gpu_preflight(status, Path(sys.executable), data_dir)
    report.say("== Pre-install check (engine.runtime.gpu_preflight) for this Python")
    for check in preflight.checks:
        report.say(f"  [{'ok  ' if check.ok else 'FAIL'}] {check.name}: {check.message}")
    report.sections["preflight"] = [asdict(c) for c in preflight.checks]
    return list(status.gpus)


def torch_section(report: Report, gpus: list[GpuInfo]) -> Any:
    import torch

    report.say("== PyTorch")
    report.say(f"  torch {torch.__version__}, CUDA {torch.version.cuda}, devices {torch.cuda.device_count()}")
    before = {g.uuid: g.free_bytes for g in gpus}
    torch.cuda.init()
    a = torch.randn(256, 256, device="cuda:0")
    (a @ a).sum().item()  # cuBLAS handle and workspace, as a vLLM worker has them
    torch.cuda.synchronize()
    found = []
    by_uuid = {g.uuid: g for g in gpus}
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        free, total = torch.cuda.mem_get_info(i)
        uuid = str(getattr(props, "uuid", ""))
        uuid = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
        found.append(
            {
                "index": i,
                "name": props.name,
                "cc": [props.major, props.minor],
                "free": free,
                "total": total,
                "uuid": uuid,
            }
        )
        report.say(
            f"  cuda:{i} {props.name} cc {props.major}.{props.minor} total {gib(total)} free {gib(free)}"
        )
        match = by_uuid.get(uuid)
        if match is None:
            report.compare(f"cuda:{i} found in NVML by UUID", "-", uuid, False)
            continue
        report.compare(
            f"cuda:{i} compute capability",
            match.compute_capability,
            (props.major, props.minor),
            match.compute_capability == (props.major, props.minor),
        )
        # The app's CUDA total (NVML total - reserved) against torch's; within 64 MiB counts as the same.
        report.compare(
            f"cuda:{i} CUDA total",
            gib(match.cuda_total_bytes),
            gib(total),
            abs(match.cuda_total_bytes - total) <= 64 * MIB,
        )
        if i == 0:
            context = before.get(uuid, 0) - free
            report.compare(
                "CUDA context + cuBLAS on cuda:0 (the fit's CONTEXT_BYTES)",
                gib(CONTEXT_BYTES),
                gib(context),
                context <= CONTEXT_BYTES,
            )
            report.sections["context_bytes"] = context
    predicted, warning = visible_gpus(gpus, os.environ)
    order_ok = [g.uuid for g in predicted] == [d["uuid"] for d in found]
    report.compare(
        "device order (engine.hardware.visible_gpus)",
        [g.index for g in predicted],
        [d["uuid"] for d in found],
        order_ok,
    )
    if warning:
        report.say(f"  note: {warning}")
    report.sections["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "devices": found}
    return torch


def allocate(torch: Any, parts: dict[str, int], fraction: float) -> tuple[bool, str]:
    """Allocate ``parts`` (bytes) on cuda:0 with the caching allocator capped at ``fraction`` of the card."""
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(fraction, 0)
    held = []
    try:
        for name, size in parts.items():
            held.append(torch.empty(max(1, size), dtype=torch.uint8, device="cuda:0"))
            del name
        torch.cuda.synchronize()
        return True, ""
    except torch.cuda.OutOfMemoryError as exc:
        return False, str(exc).splitlines()[0]
    finally:
        held.clear()
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(1.0, 0)


def fit_section(report: Report, torch: Any, gpus: list[GpuInfo], util: float, do_alloc: bool) -> None:
    report.say(f"== Fit estimate on GPU 0 at gpu_memory_utilization {util}, then allocation under that share")
    from engine.hardware import gpu_status

    fresh = list(gpu_status().gpus)[:1] or gpus[:1]  # free memory as it is now (this process holds a context)
    rows = []
    for name, info in MODELS.items():
        quant = QUANTIZATION.get(name)
        first = estimate_fit(
            info, fresh, quantization=quant, gpu_memory_utilization=util, own_pids=[os.getpid()]
        )
        lengths = [info.max_context or 4096]
        if first.max_len_that_fits:
            lengths.append(first.max_len_that_fits)
        for length in lengths:
            est = estimate_fit(
                info,
                fresh,
                max_model_len=length,
                quantization=quant,
                gpu_memory_utilization=util,
                own_pids=[os.getpid()],
            )
            per_token = kv_bytes_per_token(info) or 0
            shape = RunShape()
            parts = {
                "weights": est.weights_bytes or 0,
                "kv": per_token * length,
                "activations": activation_bytes(info, fresh[0], shape),
                "cuda_graphs": graph_bytes(info, shape),
            }
            row: dict[str, Any] = {
                "model": name,
                "max_model_len": length,
                "verdict": est.verdict,
                "message": est.message,
                "need": est.need_per_gpu,
                "budget": est.budget_per_gpu,
                "parts": parts,
            }
            report.say(f"  {name} @ {length}: {est.verdict}: {est.message}")
            if do_alloc and est.verdict in ("fits", "tight", "wont_fit") and est.need_per_gpu is not None:
                started = time.monotonic()
                ok, error = allocate(torch, parts, util)
                row["allocated"], row["alloc_error"] = ok, error
                expected = est.verdict != "wont_fit"
                report.compare(
                    f"{name} @ {length} allocates",
                    "yes" if expected else "no",
                    "yes" if ok else "no",
                    ok == expected,
                )
                row["alloc_s"] = round(time.monotonic() - started, 2)
            rows.append(row)
    report.sections["fit"] = rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    parser.add_argument("--utilization", type=float, default=0.9, help="gpu_memory_utilization to test")
    parser.add_argument("--no-alloc", action="store_true", help="skip the allocation checks")
    args = parser.parse_args()
    report = Report()
    gpus = nvml_section(report)
    if not gpus:
        report.say("No NVIDIA GPU found through NVML: nothing more to compare.")
        report.disagreements.append("no NVIDIA GPU: nothing was compared")
        code = 1
    else:
        torch = torch_section(report, gpus)
        fit_section(report, torch, gpus, args.utilization, not args.no_alloc)
        code = 0 if not report.disagreements else 1
    report.say("== Summary")
    for line in report.disagreements or ["every comparison agrees"]:
        report.say(f"  {line}")
    if args.json:
        report.sections["disagreements"] = report.disagreements
        args.json.write_text(json.dumps(report.sections, indent=2, default=str), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
