"""`vllm-desk serve`: profile choice, JSON events, Ctrl-C, failures (stand-in; real vLLM: vllm tests)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time

import httpx
import psutil
import pytest

from engine.cli import main
from engine.cli.serve import _Printer, choose_profile, serve
from engine.paths import AppPaths
from engine.server.processes import StrayProcess
from engine.server.profiles import ServerProfile
from engine.server.supervisor import Supervisor
from engine.settings.store import Settings, SettingsStore
from tests.support.procs import is_alive
from tests.support.standin.launch import Standin, StandinRuntime, start_standin


def args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"profile": None, "model": None, "port": None}
    return argparse.Namespace(**{**base, **kw})


def test_choose_profile(app_paths: AppPaths, tmp_path: os.PathLike[str]) -> None:
    store = SettingsStore.open(app_paths.settings_file)
    store.update(Settings(profiles=[ServerProfile(name="big", source="hf_repo", model="org/big", port=9000)]))
    assert choose_profile(args(), store).source == "builtin"
    assert choose_profile(args(profile="big"), store).model == "org/big"
    assert choose_profile(args(profile="big", port=9100), store).port == 9100
    assert choose_profile(args(model="org/other"), store).source == "hf_repo"
    # Tool calling is on for a model family whose parser is known (issue 19), off otherwise.
    assert choose_profile(args(model="Qwen/Qwen2.5-7B-Instruct"), store).tool_call_parser == "hermes"
    assert choose_profile(args(model="org/other"), store).tool_call_parser == ""
    folder = app_paths.models / "mine"
    folder.mkdir()
    chosen = choose_profile(args(model=str(folder)), store)
    assert (chosen.source, chosen.model) == ("folder", str(folder))


def test_unknown_profile_is_an_error(app_paths: AppPaths, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data-dir", str(app_paths.data.parent), "serve", "--profile", "nope", "--json"])
    assert code == 1
    err = capsys.readouterr().err
    assert "there is no such profile" in err
    assert "fix:" in err


@pytest.mark.asyncio
async def test_json_events_ready_then_sigint_stops_everything(
    app_paths: AppPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = Supervisor(app_paths, StandinRuntime(["--fork-child"]))
    profile = ServerProfile(name="cli", source="hf_cache", model="org/m")
    task = asyncio.create_task(serve(profile, sup, _Printer(as_json=True, show_log=False)))
    ready: dict[str, object] = {}
    for _ in range(500):
        for line in capsys.readouterr().out.splitlines():
            event = json.loads(line)
            if event["event"] == "ready":
                ready = event
        if ready:
            break
        await asyncio.sleep(0.02)
    assert ready["model"] == "org/m"
    members = sup.processes()
    assert len(members) == 2
    async with httpx.AsyncClient(trust_env=False) as client:
        resp = await client.get(
            f"{ready['base_url']}/models", headers={"Authorization": f"Bearer {ready['api_key']}"}
        )
    assert resp.status_code == 200
    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
    assert await task == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["state"] for e in events if e["event"] == "state"][-2:] == ["stopping", "stopped"]
    assert not any(is_alive(p) for p in members)


@pytest.mark.asyncio
async def test_failed_start_prints_the_diagnosis(
    app_paths: AppPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = Supervisor(app_paths, StandinRuntime(["--fail-with", "invalid-repo"]))
    profile = ServerProfile(name="cli", source="hf_repo", model="nobody/nothing")
    assert await serve(profile, sup, _Printer(as_json=False, show_log=False)) == 1
    err = capsys.readouterr().err
    assert "error: “nobody/nothing” is neither a Hugging Face repository id nor a folder" in err
    assert "fix: Check the repo id" in err
    assert "--- last lines of the server log ---" in err
    assert sup.log_path is not None
    assert "Invalid repository ID or local directory specified" in sup.log_path.read_text()


@pytest.mark.asyncio
async def test_sigterm_during_the_start_cancels_it(
    app_paths: AppPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    sup = Supervisor(app_paths, StandinRuntime(["--startup-delay", "30"]))
    profile = ServerProfile(name="cli", source="hf_cache", model="org/m")
    task = asyncio.create_task(serve(profile, sup, _Printer(as_json=False, show_log=False)))
    for _ in range(500):
        if sup.pid is not None:
            break
        await asyncio.sleep(0.02)
    leader = psutil.Process(sup.pid)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await task == 0
    assert not is_alive(leader)
    assert "Server stopped." in capsys.readouterr().out


class OnlyOurStrays(Supervisor):
    """The engine's real stray search, narrowed to one pid: other people's processes are never touched."""

    ours = 0

    @staticmethod
    async def find_strays() -> list[StrayProcess]:
        return [s for s in await Supervisor.find_strays() if s.pid == OnlyOurStrays.ours]


def crashed_standin() -> tuple[Standin, int]:
    """A stand-in whose leader was SIGKILLed, leaving its ``VLLM::EngineCore`` child running."""
    server = start_standin("--fork-child")
    child = psutil.Process(server.proc.pid).children()[0]
    for _ in range(500):
        if child.name().startswith("VLLM::"):
            break
        time.sleep(0.02)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    return server, child.pid


@pytest.mark.asyncio
@pytest.mark.parametrize("stop", [True, False])
async def test_strays_are_listed_and_stopped_with_stop_strays(
    app_paths: AppPaths, capsys: pytest.CaptureFixture[str], stop: bool
) -> None:
    server, pid = crashed_standin()
    try:
        OnlyOurStrays.ours = pid
        sup = OnlyOurStrays(app_paths, StandinRuntime(["--fail-with", "invalid-repo"]))
        profile = ServerProfile(name="cli", source="hf_repo", model="nobody/nothing")
        assert await serve(profile, sup, _Printer(as_json=True, show_log=False), stop_strays=stop) == 1
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        [listed] = [e for e in events if e["event"] == "strays"]
        assert listed["pids"] == [pid]
        [process] = listed["processes"]
        assert process["command"].startswith("VLLM::EngineCore")
        assert process["rss_bytes"] > 0
        stopped = [e["pids"] for e in events if e["event"] == "strays_stopped"]
        alive = is_alive(pid)
        if stop:
            assert stopped == [[pid]]
            assert not alive
        else:
            assert stopped == []
            assert alive
        # The start itself went on after the strays (and failed, as the stand-in was told to).
        names = [e["event"] for e in events]
        assert names.index("strays") < names.index("state") < names.index("error")
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_strays_are_listed_in_words(app_paths: AppPaths, capsys: pytest.CaptureFixture[str]) -> None:
    server, pid = crashed_standin()
    try:
        OnlyOurStrays.ours = pid
        sup = OnlyOurStrays(app_paths, StandinRuntime(["--fail-with", "invalid-repo"]))
        profile = ServerProfile(name="cli", source="hf_repo", model="nobody/nothing")
        assert await serve(profile, sup, _Printer(as_json=False, show_log=False), stop_strays=True) == 1
        err = capsys.readouterr().err
        assert "vLLM processes left by an earlier run are still running" in err
        assert f"{pid}" in err
        assert "Stopped 1 leftover vLLM process(es)." in err
    finally:
        server.stop()


def test_stop_strays_is_an_option(app_paths: AppPaths, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data-dir", str(app_paths.data.parent), "serve", "--stop-strays", "--profile", "nope"])
    assert code == 1  # parsed; the unknown profile is the error
    assert "there is no such profile" in capsys.readouterr().err
