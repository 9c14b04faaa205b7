"""The built-in model's golden check: the verdicts, the records, the supervisor's use of it (stand-in
process answering right or wrong), and the real vLLM against the reference transformers gave."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import psutil
import pytest

from engine.endpoint import Endpoint
from engine.models.builtin import (
    BUILTIN_MODEL,
    MANIFEST_NAME,
    builtin_model_path,
    builtin_reference,
    recipe_id,
)
from engine.models.golden import (
    RECORDS_NAME,
    BuiltinModelAnswersWrong,
    GoldenRecords,
    GoldenResult,
    ask_golden,
    judge,
    machine_fingerprint,
    record_key,
    runtime_identity,
)
from engine.paths import AppPaths
from engine.runtime.locate import VllmRuntime
from engine.server.log_phases import Phase
from engine.server.profiles import builtin_profile
from engine.server.supervisor import ServerState, StartProgress, Supervisor
from tests.support.standin.launch import StandinRuntime

REFERENCE = "The capital of France is Paris."
WRONG = "L'Étoile, la Marseillaise, la femme, la femme au martyre, la femme au martyre"


def _result(verdict: str = "match", dtype: str = "float32") -> GoldenResult:
    return GoldenResult(
        verdict=verdict,  # type: ignore[arg-type]
        prompt=BUILTIN_MODEL.golden_prompt,
        answer=REFERENCE if verdict != "wrong" else WRONG,
        reference=REFERENCE,
        dtype=dtype,
        runtime="vllm 0.32.0 (cpu)",
        machine="test cpu",
        checked_at="2026-12-06T00:00:00+00:00",
    )


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (REFERENCE, "match"),
        ("  The capital of France\nis Paris.  ", "match"),  # whitespace is not a difference
        (REFERENCE + " It is known for the Eiffel Tower.", "match"),  # cut at max_tokens elsewhere
        ("Paris is the capital of France.", "close"),
        ("PARIS.", "close"),
        (WRONG, "wrong"),
        ("", "wrong"),
        ("The capital of France is", "wrong"),
    ],
)
def test_judge(answer: str, verdict: str) -> None:
    assert judge(answer, REFERENCE, "Paris") == verdict


def test_machine_fingerprint_names_the_processor_and_its_kernel_flags() -> None:
    fingerprint = machine_fingerprint()
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")
    )
    assert fingerprint.startswith(model)
    flags = set(
        next(line for line in cpuinfo.splitlines() if line.startswith("flags")).split(":", 1)[1].split()
    )
    for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16"):
        assert (f" {flag}" in fingerprint) is (flag in flags)


def test_the_record_key_changes_with_each_part() -> None:
    base = ("vllm 0.32.0 (cpu)", "AMD EPYC | avx2", "float32", "recipe/when")
    keys = {record_key(*base)}
    for i in range(4):
        changed = list(base)
        changed[i] += "x"
        keys.add(record_key(*changed))
    assert len(keys) == 5


def test_records_survive_a_restart_and_a_corrupt_file_counts_as_empty(tmp_path: Path) -> None:
    records = GoldenRecords(tmp_path)
    assert records.get("k") is None
    records.put("k", _result())
    assert GoldenRecords(tmp_path).get("k") == _result()
    assert GoldenRecords(tmp_path).all() == [_result()]
    (tmp_path / RECORDS_NAME).write_text("{not json")
    assert GoldenRecords(tmp_path).get("k") is None
    assert GoldenRecords(tmp_path).all() == []
    (tmp_path / RECORDS_NAME).write_text(json.dumps({"k": {"unexpected": 1}}))
    assert GoldenRecords(tmp_path).get("k") is None


def test_a_wrong_bfloat16_answer_offers_float32_and_a_wrong_float32_answer_the_log() -> None:
    bf16 = BuiltinModelAnswersWrong(_result("wrong", "bfloat16"), cpu=True)
    assert "CPU's bfloat16 path in vLLM gives wrong results" in str(bf16)
    assert WRONG in str(bf16)
    assert bf16.fix is not None
    assert (bf16.fix.action, bf16.fix.params) == ("set_option", {"dtype": "float32"})
    f32 = BuiltinModelAnswersWrong(_result("wrong", "float32"), cpu=True)
    assert "even in float32" in str(f32)
    assert f32.fix is not None
    assert f32.fix.action == "show_log"


def test_runtime_identity_names_version_build_and_torch() -> None:
    runtime = VllmRuntime("managed", Path("/p"), "0.32.0", "cpu", ("x",), None, {"torch": "2.13.0+cpu"})
    assert runtime_identity(runtime) == "vllm 0.32.0 (cpu), torch 2.13.0+cpu"
    assert runtime_identity(StandinRuntime()) == "vllm 0.32.0 (cpu)"


# --- the supervisor, with the stand-in process as the server -------------------------------------------


def _fake_builtin_model(paths: AppPaths) -> None:
    """A prepared-looking built-in model folder (the stand-in never reads the weights)."""
    folder = builtin_model_path(paths)
    folder.mkdir(parents=True)
    manifest = {
        "files": {},
        "recipe": recipe_id(),
        "created_at": "2026-12-06T00:00:00+00:00",
        "reference": {"prompt": BUILTIN_MODEL.golden_prompt, "answer": REFERENCE, "by": "test"},
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


async def _served_requests(endpoint: Endpoint) -> float:
    root = endpoint.base_url.removesuffix("/v1")
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{root}/metrics")).text
    for line in text.splitlines():
        if line.startswith("vllm:request_success_total"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no request counter in {text[:300]!r}")


@pytest.mark.asyncio
async def test_first_start_asks_the_golden_question_once_per_runtime_machine_and_dtype(
    app_paths: AppPaths,
) -> None:
    _fake_builtin_model(app_paths)
    sup = Supervisor(app_paths, StandinRuntime(["--reply", REFERENCE]))
    phases: list[StartProgress] = []
    sup.progress.connect(phases.append)
    try:
        endpoint = await sup.start(builtin_profile())
        assert await _served_requests(endpoint) == 1  # the check's question
        assert Phase.ANSWER_CHECK in [p.phase for p in phases]
        records = GoldenRecords(app_paths.state).all()
        assert [(r.verdict, r.dtype, r.answer) for r in records] == [("match", "float32", REFERENCE)]

        phases.clear()
        endpoint = await sup.start(builtin_profile())  # a restart: already checked, nothing asked
        assert await _served_requests(endpoint) == 0
        assert Phase.ANSWER_CHECK not in [p.phase for p in phases]
    finally:
        await sup.shutdown()


@pytest.mark.asyncio
async def test_a_wrong_answer_stops_the_server_and_says_why_with_the_fix(app_paths: AppPaths) -> None:
    _fake_builtin_model(app_paths)
    sup = Supervisor(app_paths, StandinRuntime(["--reply", WRONG]))
    # Children from before (the suite's shared real server, when it runs) are not this test's.
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    try:
        with pytest.raises(BuiltinModelAnswersWrong) as caught:
            await sup.start(builtin_profile().model_copy(update={"dtype": "bfloat16"}))
        assert sup.state is ServerState.FAILED
        assert sup.problem is caught.value
        assert sup.processes() == []
        left = [
            p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
        ]
        assert left == []
        assert caught.value.fix is not None
        assert caught.value.fix.params == {"dtype": "float32"}
        assert caught.value.result.answer.startswith("L'Étoile")
        # Recorded as wrong, so the next start asks again instead of trusting it.
        assert [r.verdict for r in GoldenRecords(app_paths.state).all()] == ["wrong"]
        with pytest.raises(BuiltinModelAnswersWrong):
            await sup.start(builtin_profile().model_copy(update={"dtype": "bfloat16"}))
    finally:
        await sup.shutdown()


@pytest.mark.asyncio
async def test_other_profiles_are_not_checked(app_paths: AppPaths) -> None:
    sup = Supervisor(app_paths, StandinRuntime(["--reply", WRONG]))
    try:
        from engine.server.profiles import ServerProfile

        endpoint = await sup.start(ServerProfile(name="mine", source="hf_cache", model="org/m"))
        assert await _served_requests(endpoint) == 0
        assert GoldenRecords(app_paths.state).all() == []
    finally:
        await sup.shutdown()


@pytest.mark.asyncio
async def test_model_check_asks_again_after_a_recorded_pass_and_stops_the_server(app_paths: AppPaths) -> None:
    from engine.cli.runtime import check_builtin_answers

    _fake_builtin_model(app_paths)
    first = await check_builtin_answers(
        Supervisor(app_paths, StandinRuntime(["--reply", REFERENCE])), builtin_profile()
    )
    assert first.verdict == "match"
    other_words = Supervisor(app_paths, StandinRuntime(["--reply", "Paris is the capital of France."]))
    second = await check_builtin_answers(other_words, builtin_profile())
    assert second.verdict == "close"  # asked again although a pass was recorded
    assert other_words.processes() == []
    assert [r.verdict for r in GoldenRecords(app_paths.state).all()] == ["close"]  # same key, newest verdict
    wrong = Supervisor(app_paths, StandinRuntime(["--reply", WRONG]))
    with pytest.raises(BuiltinModelAnswersWrong):
        await check_builtin_answers(wrong, builtin_profile())
    assert wrong.processes() == []


# --- the real thing -------------------------------------------------------------------------------


@pytest.mark.vllm
@pytest.mark.asyncio
async def test_real_vllm_answers_like_transformers_float32_on_this_processor(
    vllm_server: Endpoint, vllm_paths: AppPaths, vllm_runtime: VllmRuntime
) -> None:
    reference = builtin_reference(vllm_paths)
    assert reference is not None
    assert "Paris" in reference.answer
    result = await ask_golden(
        vllm_server,
        reference.prompt,
        reference.answer,
        reference.keyword,
        dtype="float32",
        runtime=runtime_identity(vllm_runtime),
    )
    # Same greedy answer as transformers in float32, on whatever x86 processor this runs on.
    assert result.verdict == "match", result
    # And the session server's own start recorded the check for this runtime and machine.
    recorded = [
        r for r in GoldenRecords(vllm_paths.state).all() if r.runtime == runtime_identity(vllm_runtime)
    ]
    assert any(r.machine == machine_fingerprint() and r.dtype == "float32" and r.passed for r in recorded)
