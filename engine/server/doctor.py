"""``vllm-desk doctor``: what the app sees on this machine, in one report (for people and for ``--json``)."""

from __future__ import annotations

import os
import platform
import secrets
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from engine import APP_ID, __version__
from engine.errors import DeskError
from engine.hardware import GpuStatus, gpu_status
from engine.models.builtin import BUILTIN_MODEL, builtin_model_path, builtin_model_state, builtin_reference
from engine.models.golden import GoldenRecords, machine_fingerprint, runtime_identity
from engine.paths import AppPaths
from engine.runtime.gpu_preflight import gpu_preflight
from engine.runtime.locate import INSTALL_COMMAND, locate_runtime, read_manifest
from engine.runtime.pins import pins_digest, runtime_pins
from engine.runtime.python import find_base_python

_PROBE_SERVICE = f"{APP_ID}-doctor-probe"


@dataclass
class DoctorReport:
    """Everything ``doctor`` found. ``ok`` is False when no usable vLLM runtime exists."""

    app_version: str
    python: dict[str, str]
    runtime: dict[str, Any]
    gpus: dict[str, Any]
    keyring: dict[str, Any]
    dirs: dict[str, str]
    builtin_model: dict[str, Any]
    gpu_build: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.runtime.get("usable"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "app_version": self.app_version,
            "python": self.python,
            "runtime": self.runtime,
            "gpus": self.gpus,
            "keyring": self.keyring,
            "dirs": self.dirs,
            "builtin_model": self.builtin_model,
            "gpu_build": self.gpu_build,
            "problems": self.problems,
        }


def check_runtime(paths: AppPaths, settings_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The runtime :func:`engine.runtime.install.locate_runtime` picks, or why none is usable (with the fix).

    For the managed runtime also whether it was installed with the pins this app ships (``pins``:
    ``current``, ``other`` or ``none``).
    """
    try:
        runtime = locate_runtime(paths, settings_path)
    except DeskError as problem:
        return {"usable": False, "problem": problem.to_dict()}
    out: dict[str, Any] = {"usable": True, "identity": runtime_identity(runtime), **runtime.to_dict()}
    if runtime.source == "managed" and runtime.root is not None:
        installed = (read_manifest(runtime.root) or {}).get("pins")
        try:
            shipped = runtime_pins(runtime.build)
        except DeskError:
            shipped = None
        current = pins_digest(shipped) if shipped else None
        out["pins"] = "none" if not installed else ("current" if installed == current else "other")
    return out


def check_answers(paths: AppPaths, runtime: dict[str, Any]) -> dict[str, Any]:
    """The built-in model's reference answer and the golden checks recorded on this machine."""
    reference = builtin_reference(paths)
    machine = machine_fingerprint()
    checks = [r for r in GoldenRecords(paths.state).all() if r.machine == machine]
    return {
        "machine": machine,
        "reference": {"prompt": reference.prompt, "answer": reference.answer, "by": reference.by}
        if reference
        else None,
        "checks": [
            {**asdict(r), "passed": r.passed, "current_runtime": r.runtime == runtime.get("identity")}
            for r in checks
        ],
    }


def check_gpus(status: GpuStatus | None = None) -> dict[str, Any]:
    status = status or gpu_status()
    return {
        "devices": [
            {"index": g.index, "name": g.name, "total_bytes": g.total_bytes, "free_bytes": g.free_bytes}
            for g in status.gpus
        ],
        "note": status.reason,
    }


def check_gpu_build(paths: AppPaths, status: GpuStatus) -> dict[str, Any]:
    """Whether vLLM's GPU build could be installed here (engine.runtime.gpu_preflight), when there is a GPU
    at all."""
    if not status.gpus:
        return {"checked": False, "reason": status.reason or "no NVIDIA GPU"}
    try:
        python = find_base_python()
    except DeskError as problem:
        return {"checked": False, "reason": str(problem)}
    report = gpu_preflight(status, python, paths.data)
    return {
        "checked": True,
        "ok": report.ok,
        "checks": [{"name": c.name, "ok": c.ok, "message": c.message} for c in report.checks],
    }


def check_keyring() -> dict[str, Any]:
    """The keyring backend and whether it really stores a secret (a set/get/delete of a probe entry)."""
    import keyring

    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    user, token = f"probe-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    try:
        keyring.set_password(_PROBE_SERVICE, user, token)
        works = keyring.get_password(_PROBE_SERVICE, user) == token
        keyring.delete_password(_PROBE_SERVICE, user)
    except Exception as exc:  # noqa: BLE001 - NoKeyringError, D-Bus and file errors all mean "cannot store"
        return {"backend": name, "can_store": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "backend": name,
        "can_store": works,
        "error": "" if works else "the stored secret read back wrong",
    }


def run_doctor(paths: AppPaths, settings_path: str | os.PathLike[str] | None = None) -> DoctorReport:
    """Collect the report. Never raises for a problem it can describe."""
    runtime = check_runtime(paths, settings_path)
    model_state = builtin_model_state(paths)
    answers = check_answers(paths, runtime)
    gpus = gpu_status()
    report = DoctorReport(
        app_version=__version__,
        python={"version": platform.python_version(), "executable": sys.executable},
        runtime=runtime,
        gpus=check_gpus(gpus),
        keyring=check_keyring(),
        dirs={
            "config": str(paths.config),
            "data": str(paths.data),
            "cache": str(paths.cache),
            "state": str(paths.state),
            "logs": str(paths.logs),
            "runtime": str(paths.runtime),
            "models": str(paths.models),
        },
        builtin_model={
            "name": BUILTIN_MODEL.display_name,
            "served_name": BUILTIN_MODEL.served_name,
            "state": model_state.value,
            "path": str(builtin_model_path(paths)),
            "answer_check": answers,
        },
        gpu_build=check_gpu_build(paths, gpus),
    )
    if report.gpu_build.get("checked") and not report.gpu_build["ok"]:
        failed = [c["message"] for c in report.gpu_build["checks"] if not c["ok"]]
        report.problems.append("vLLM's GPU build cannot run here yet: " + " ".join(failed))
    for check in answers["checks"]:
        if check["current_runtime"] and not check["passed"]:
            report.problems.append(
                f"The built-in model answered wrongly with {check['dtype']} on this machine "
                f"({check['answer']!r}). Fix: use float32 (the default on the CPU build)."
            )
    if runtime.get("pins") == "other":
        report.problems.append(
            "The vLLM runtime was installed with other package versions than this app tested. "
            "Fix: vllm-desk runtime install --force"
        )
    if not runtime["usable"]:
        report.problems.append(f"No usable vLLM runtime. Fix: {INSTALL_COMMAND}")
    if model_state.value != "ready":
        report.problems.append(f"The built-in model is {model_state.value}. Fix: vllm-desk model prepare")
    if not report.keyring["can_store"]:
        report.problems.append(
            "The keyring cannot store secrets: API keys of remote servers cannot be saved."
        )
    return report


def format_report(report: DoctorReport) -> str:
    """The report as text for a terminal."""
    lines = [
        f"vLLM Desk {report.app_version}",
        f"Python    {report.python['version']} ({report.python['executable']})",
    ]
    rt = report.runtime
    if rt["usable"]:
        lines.append(
            f"vLLM      {rt['version']} ({rt['build'].upper()} build, from {rt['source']}) at {rt['python']}"
        )
        packages = ", ".join(f"{name} {version}" for name, version in rt.get("packages", {}).items())
        if packages:
            lines.append(f"          {packages}")
        pins = {"current": "the versions this app tested", "other": "OTHER versions than this app tested"}
        if "pins" in rt:
            lines.append(f"          installed with {pins.get(rt['pins'], 'no pinned versions')}")
    else:
        problem = rt["problem"]
        lines.append(f"vLLM      not usable: {problem['message']}")
        if "fix" in problem:
            lines.append(f"          fix: {problem['fix']['hint']}")
    devices = report.gpus["devices"]
    if devices:
        for g in devices:
            lines.append(
                f"GPU {g['index']}     {g['name']}: {g['free_bytes'] / 2**30:.1f} GiB free"
                f" of {g['total_bytes'] / 2**30:.1f} GiB"
            )
    else:
        lines.append(f"GPU       none ({report.gpus['note']})")
    kr = report.keyring
    verdict = "can store secrets" if kr["can_store"] else f"cannot store secrets ({kr['error']})"
    lines.append(f"Keyring   {kr['backend']}: {verdict}")
    bm = report.builtin_model
    lines.append(f"Model     {bm['name']}: {bm['state']} ({bm['path']})")
    check = bm["answer_check"]
    if check["reference"]:
        ref = check["reference"]
        lines.append(f"          reference: {ref['prompt']!r} -> {ref['answer']!r} ({ref['by']}, float32)")
    if not check["checks"]:
        lines.append(
            "Answers   not checked on this machine yet (the first start of the built-in model does it)"
        )
    for c in check["checks"]:
        words = {"match": "answers like the reference", "close": "answers correctly in other words"}
        said = words.get(c["verdict"], f"WRONG: {c['answer']!r}")
        lines.append(f"Answers   {c['dtype']} on {c['runtime']}: {said} ({c['checked_at']})")
    gpu_build = report.gpu_build
    if gpu_build.get("checked"):
        lines.append(f"GPU build {'can be installed' if gpu_build['ok'] else 'cannot be installed yet'}")
        lines.extend(f"  {'ok ' if c['ok'] else 'NO '} {c['message']}" for c in gpu_build["checks"])
    lines.append("Folders")
    lines.extend(f"  {key:8} {value}" for key, value in report.dirs.items())
    if report.problems:
        lines.append("Problems")
        lines.extend(f"  - {p}" for p in report.problems)
    return "\n".join(lines)
