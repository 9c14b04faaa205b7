"""`vllm-desk doctor`: the report's shape, its exit status, and what it says when things are missing."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from engine.cli import main
from engine.models.golden import GoldenRecords, GoldenResult, machine_fingerprint
from engine.paths import AppPaths
from engine.server.doctor import check_keyring, format_report, run_doctor
from tests.support.fake_runtime import make_fake_runtime


@pytest.fixture
def no_vllm_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def failing_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


def _doctor_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main([*argv, "doctor", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_shape_without_runtime_exits_nonzero_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_vllm_on_path: None
) -> None:
    code, report = _doctor_json(capsys, "--data-dir", str(tmp_path / "desk"))

    assert code == 1
    assert set(report) == {
        "ok",
        "app_version",
        "python",
        "runtime",
        "gpus",
        "keyring",
        "dirs",
        "builtin_model",
        "gpu_build",
        "problems",
    }
    assert report["ok"] is False
    runtime = report["runtime"]
    assert isinstance(runtime, dict)
    assert runtime["usable"] is False
    assert runtime["problem"]["kind"] == "RuntimeMissing"
    assert runtime["problem"]["fix"]["action"] == "install_runtime"
    assert "vllm-desk runtime install" in runtime["problem"]["fix"]["hint"]
    assert report["gpus"] == {"devices": [], "note": report["gpus"]["note"]}  # type: ignore[index]
    assert report["gpus"]["note"]  # type: ignore[index]
    assert report["keyring"] == {
        "backend": "tests.support.memory_keyring.MemoryKeyring",
        "can_store": True,
        "error": "",
    }
    dirs = report["dirs"]
    assert isinstance(dirs, dict)
    assert set(dirs) == {"config", "data", "cache", "state", "logs", "runtime", "models"}
    assert all(Path(p).is_relative_to(tmp_path / "desk") for p in dirs.values())
    assert report["builtin_model"] == {
        "name": "SmolLM2 135M Instruct (built-in)",
        "served_name": "smollm2-135m-instruct",
        "state": "missing",
        "path": str(tmp_path / "desk" / "data" / "models" / "smollm2-135m-instruct"),
        "answer_check": {"machine": machine_fingerprint(), "reference": None, "checks": []},
    }
    assert any("vllm-desk runtime install" in p for p in report["problems"])  # type: ignore[union-attr]


def test_data_dir_from_env_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_vllm_on_path: None
) -> None:
    monkeypatch.setenv("VLLM_DESK_HOME", str(tmp_path / "from-env"))
    _, report = _doctor_json(capsys)
    assert report["dirs"]["data"] == str(tmp_path / "from-env" / "data")  # type: ignore[index]


def test_usable_runtime_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_vllm_on_path: None
) -> None:
    make_fake_runtime(tmp_path / "venv", version="0.32.0")
    code, report = _doctor_json(capsys, "--data-dir", str(tmp_path / "desk"))
    assert code == 1  # without --vllm the fake is not found...

    code = main(["--data-dir", str(tmp_path / "desk"), "doctor", "--json", "--vllm", str(tmp_path / "venv")])
    report = json.loads(capsys.readouterr().out)
    assert code == 0  # ...with it, it is
    assert report["ok"] is True
    assert report["runtime"]["usable"] is True
    assert report["runtime"]["build"] == "cpu"
    assert report["runtime"]["version"] == "0.32.0"
    assert report["runtime"]["source"] == "settings"


def test_text_report_names_the_problem_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_vllm_on_path: None
) -> None:
    code = main(["--data-dir", str(tmp_path / "desk"), "doctor"])
    text = capsys.readouterr().out
    assert code == 1
    assert "vLLM      not usable: vLLM Desk has not installed its vLLM runtime yet" in text
    assert "fix: Run: vllm-desk runtime install" in text
    assert "Model     SmolLM2 135M Instruct (built-in): missing" in text
    assert "Answers   not checked on this machine yet" in text


def test_the_golden_checks_of_this_machine_are_reported_and_a_wrong_one_is_a_problem(
    app_paths: AppPaths, no_vllm_on_path: None
) -> None:
    records = GoldenRecords(app_paths.state)
    good = GoldenResult(
        "match", "Q?", "Paris.", "Paris.", "float32", "vllm 0.32.0 (cpu)", machine_fingerprint(), "2026-12-06"
    )
    records.put("a", good)
    records.put("b", dataclasses.replace(good, verdict="wrong", answer="L'Étoile", dtype="bfloat16"))
    records.put("c", dataclasses.replace(good, machine="another processor"))
    report = run_doctor(app_paths)
    checks = report.builtin_model["answer_check"]["checks"]
    assert [(c["dtype"], c["verdict"]) for c in checks] == [("float32", "match"), ("bfloat16", "wrong")]
    text = format_report(report)
    assert "Answers   float32 on vllm 0.32.0 (cpu): answers like the reference (2026-12-06)" in text
    assert 'Answers   bfloat16 on vllm 0.32.0 (cpu): WRONG: "L\'Étoile"' in text
    # No runtime here, so neither check is of the current runtime: history, not a problem.
    assert not any("answered wrongly" in p for p in report.problems)
    assert "Keyring   tests.support.memory_keyring.MemoryKeyring: can store secrets" in text


def test_the_gpu_builds_install_check_is_reported_where_there_is_a_gpu(app_paths: AppPaths) -> None:
    from engine.hardware import GpuInfo, GpuStatus
    from engine.server.doctor import check_gpu_build

    assert check_gpu_build(app_paths, GpuStatus((), "no NVIDIA driver or GPU")) == {
        "checked": False,
        "reason": "no NVIDIA driver or GPU",
    }
    old_driver = GpuStatus(
        (GpuInfo(0, "NVIDIA GeForce RTX 3090", 24 * 2**30, 23 * 2**30, compute_capability=(8, 6)),),
        "",
        "550.54.14",
        12040,
    )
    found = check_gpu_build(app_paths, old_driver)
    assert found["checked"] is True
    assert found["ok"] is False
    driver = next(c for c in found["checks"] if c["name"] == "driver")
    assert driver["ok"] is False
    assert "12.4" in driver["message"]
    assert [c["name"] for c in found["checks"]] == ["driver", "gpu", "python", "compiler", "headers", "disk"]


def test_keyring_that_cannot_store_is_reported(failing_keyring: None) -> None:
    result = check_keyring()
    assert result["backend"] == "keyring.backends.fail.Keyring"
    assert result["can_store"] is False
    assert "NoKeyringError" in result["error"]


def test_keyring_probe_leaves_nothing_behind() -> None:
    from tests.support.memory_keyring import MemoryKeyring

    before = dict(MemoryKeyring._store)
    assert check_keyring()["can_store"] is True
    assert before == MemoryKeyring._store


def test_report_with_failing_keyring_lists_the_problem(app_paths: AppPaths, failing_keyring: None) -> None:
    report = run_doctor(app_paths)
    assert any("keyring cannot store secrets" in p for p in report.problems)
    assert "cannot store secrets (NoKeyringError" in format_report(report)


@pytest.mark.vllm
def test_doctor_reports_the_real_runtime_and_model_as_ready(
    vllm_server: object,
    vllm_paths: AppPaths,
    builtin_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    no_vllm_on_path: None,
) -> None:
    code, report = _doctor_json(capsys, "--data-dir", str(vllm_paths.data.parent))
    assert code == 0
    assert report["runtime"]["usable"] is True  # type: ignore[index]
    assert report["runtime"]["source"] == "managed"  # type: ignore[index]
    assert report["runtime"]["build"] == "cpu"  # type: ignore[index]
    assert report["builtin_model"]["state"] == "ready"  # type: ignore[index]
    assert report["builtin_model"]["path"] == str(builtin_model_dir)  # type: ignore[index]
    runtime = report["runtime"]
    assert runtime["pins"] == "current"  # type: ignore[index]
    assert runtime["packages"]["torch"].startswith("2.")  # type: ignore[index]
    assert runtime["packages"]["transformers"]  # type: ignore[index]
    answers = report["builtin_model"]["answer_check"]  # type: ignore[index]
    assert "Paris" in answers["reference"]["answer"]
    # The shared server's start ran the golden check for this runtime on this machine.
    assert any(c["current_runtime"] and c["passed"] and c["dtype"] == "float32" for c in answers["checks"])


def test_doctor_and_runtime_status_use_the_vllm_path_from_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_vllm_on_path: None
) -> None:
    from engine.settings.store import SettingsStore

    python = make_fake_runtime(tmp_path / "venv", dist="vllm", version="0.33.1")
    paths = AppPaths.under(tmp_path / "desk").ensure()
    store = SettingsStore.open(paths.settings_file)
    chosen = store.stored.model_copy(deep=True)
    chosen.general.vllm_path = python.parent / "vllm"
    store.update(chosen)

    code, report = _doctor_json(capsys, "--data-dir", str(tmp_path / "desk"))
    assert code == 0
    assert report["runtime"]["source"] == "settings"  # type: ignore[index]
    assert report["runtime"]["build"] == "gpu"  # type: ignore[index]

    assert main(["--data-dir", str(tmp_path / "desk"), "runtime", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["version"] == "0.33.1"
    assert status["python"] == str(python)


def test_runtime_status_without_runtime_prints_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_vllm_on_path: None
) -> None:
    assert main(["--data-dir", str(tmp_path / "desk"), "runtime", "status"]) == 1
    err = capsys.readouterr().err
    assert "error: vLLM Desk has not installed its vLLM runtime yet" in err
    assert "fix: Run: vllm-desk runtime install" in err


def test_model_status_exit_code_follows_the_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path / "desk"), "model", "status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["state"] == "missing"
