"""The command line refuses a server whose GPU memory share does not fit, before spawning vLLM, in words:
``vllm-desk serve`` (the chat model) and ``vllm-desk docs add`` (the embedder) while another program, here
the window's other server, holds the card. The runtime is a fake GPU venv (nothing in it can serve, so a
spawn would fail differently); NVML's reading is written here (the boundary); the holder is a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import engine.hardware
from engine.cli import main
from engine.hardware import GpuInfo, GpuProcess, GpuStatus
from engine.paths import AppPaths
from engine.server.gpu_shares import reserved
from engine.server.profiles import ServerProfile
from engine.settings.store import SettingsStore
from tests.support.fake_runtime import make_fake_runtime

GIB = 2**30


@pytest.fixture
def busy_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen[bytes]]:
    """A 24 GiB card on which another vLLM Desk's chat model (a real process) holds 22.6 GiB."""
    make_fake_runtime(tmp_path / "venv", dist="vllm", version="0.32.0")  # the GPU build
    monkeypatch.setenv("VLLM_DESK_VLLM", str(tmp_path / "venv"))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    card = GpuInfo(
        0, "RTX 4090", 24 * GIB, int(1.4 * GIB), processes=(GpuProcess(other.pid, int(22.6 * GIB)),)
    )
    monkeypatch.setattr(engine.hardware, "gpu_status", lambda: GpuStatus((card,)))  # NVML: the boundary
    try:
        yield other
    finally:
        other.kill()
        other.wait()
    assert reserved() == []


def home(tmp_path: Path, *profiles: ServerProfile) -> list[str]:
    paths = AppPaths.under(tmp_path / "home").ensure()
    store = SettingsStore.open(paths.settings_file)
    current = store.settings
    store.update(current.model_copy(update={"profiles": [*current.profiles, *profiles]}))
    return ["--data-dir", str(tmp_path / "home")]


def test_serve_refuses_a_chat_model_that_does_not_fit_and_says_what_holds_the_card(
    tmp_path: Path, busy_card: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    chat = ServerProfile(name="chat", source="hf_cache", model="org/chat", gpu_memory_utilization=0.5)
    args = home(tmp_path, chat)
    assert main([*args, "serve", "--profile", "chat"]) == 1
    err = capsys.readouterr().err
    assert (
        "error: The chat model “chat” asks vLLM for 0.5 of GPU 0 (RTX 4090): 12.0 GiB, but only 0.9 GiB"
        in err
    )
    assert f"(pid {busy_card.pid}, 22.6 GiB)" in err
    assert "Nothing was started." in err
    assert "fix: Close the programs holding the GPU's memory, then start again." in err
    assert "--- last lines of the server log ---" not in err  # no server ran, so no log
    assert not (tmp_path / "home" / "logs").exists() or not list((tmp_path / "home" / "logs").iterdir())
    # The same refusal as a JSON event.
    assert main([*args, "serve", "--profile", "chat", "--json"]) == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [error] = [e for e in events if e.get("event") == "error"]
    assert error["kind"] == "SharesDoNotFit"
    assert error["fix"]["action"] == "retry"


def test_docs_add_refuses_an_embedder_that_does_not_fit(
    tmp_path: Path, busy_card: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    embedder = ServerProfile(
        name="local embeddings",
        source="hf_cache",
        model="org/embed",
        extra_args="--runner pooling",
        gpu_memory_utilization=0.1,
    )
    args = home(tmp_path, embedder)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nSome text.\n", encoding="utf-8")
    code = main([*args, "docs", "add", str(notes), "--embedder-profile", "local embeddings"])
    assert code == 1
    err = capsys.readouterr().err
    assert "error: The embedding model for documents “local embeddings” asks vLLM for 0.1 of GPU 0" in err
    assert "fix: Close what holds the GPU's memory, or use a remote embedding server" in err
