"""The whole app on a GPU (NVML's reading written here: the boundary): the chat model runs (the stand-in,
through the real supervisor), and the documents' embedder that does not fit beside it is refused before
anything is spawned; the refusal is shown in the window's one problem banner, and its fix lowers the chat
model's share and starts it again; the chat model started beside a running embedder is refused the same way,
through the server's own failed state. The embedder's runtime is a fake GPU venv that could not serve: only
the refusal keeps it from being launched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

import engine.hardware
from engine.hardware import GpuInfo, GpuStatus
from engine.paths import AppPaths
from engine.server.gpu_shares import SharesDoNotFit, reserved
from engine.server.profiles import ServerProfile
from engine.settings.store import SettingsStore
from tests.desktop.test_app import close_app, configure, start_app
from tests.support.fake_runtime import make_fake_runtime
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import StandinRuntime

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
GIB = 2**30


@dataclass
class GpuStandinRuntime(StandinRuntime):
    is_cpu: bool = False
    is_gpu: bool = True


def test_an_embedder_that_does_not_fit_beside_the_chat_model_is_shown_with_its_fix(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = GpuInfo(0, "RTX 4090", 24 * GIB, int(23.5 * GIB))
    monkeypatch.setattr(engine.hardware, "gpu_status", lambda: GpuStatus((card,)))  # NVML: the boundary
    make_fake_runtime(tmp_path / "venv", dist="vllm", version="0.32.0")  # the embedder's GPU runtime
    monkeypatch.setenv("VLLM_DESK_VLLM", str(tmp_path / "venv"))
    configure(app_paths, start_with_app=True, gpu_memory_utilization=0.92)
    store = SettingsStore.open(app_paths.settings_file)
    local = ServerProfile(
        name="local embeddings",
        source="hf_cache",
        model="org/embed",
        extra_args="--runner pooling",
        gpu_memory_utilization=0.05,
    )
    current = store.settings
    documents = current.documents.model_copy(update={"embedder": "local embeddings"})
    store.update(current.model_copy(update={"profiles": [*current.profiles, local], "documents": documents}))
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nSome text.\n", encoding="utf-8")

    parts = start_app(qtbot, app_paths, GpuStandinRuntime([]))
    try:
        window = parts.window
        qtbot.waitUntil(lambda: window.server_status.state_label.property("state") == "ready", timeout=20000)
        qtbot.waitUntil(lambda: getattr(window, "documents", None) is not None, timeout=20000)
        controller = window.documents
        controller.add([notes], "work")
        qtbot.waitUntil(lambda: controller.job is not None and controller.job.done(), timeout=20000)
        banner = window.banner
        qtbot.waitUntil(lambda: banner.isVisible() and banner.problem is not None, timeout=5000)
        problem = banner.problem
        assert isinstance(problem.error, SharesDoNotFit)
        assert problem.title == "The chat model and the embedding model do not fit on the GPU together"
        assert "“local embeddings” asks vLLM for 0.05 of GPU 0" in banner.text
        assert "beside the chat model “Stand-in” (gpu_memory_utilization 0.92)" in banner.text
        assert problem.context.profile == "Stand-in"  # the fix changes the chat model's profile
        # 1.2 GiB wanted, 0.42 free: the chat model gives up the missing 0.78 GiB of 22.08 → 0.88.
        assert banner.fix_button.text() == "Use 88% of the GPU for “Stand-in”"
        assert "Indexing stopped" in controller.panel.notice.text()
        assert not controller.doc_store.has_collection("work")  # nothing was indexed
        # Attaching a collection starts the embedder in the background (answers search by keyword until it
        # is there): its refusal is shown too, not only logged.
        banner.dismiss()
        controller.doc_store.ensure_collection("older")
        attached = controller.attach(["older"])
        assert attached is not None
        qtbot.waitUntil(attached.done, timeout=10000)
        qtbot.waitUntil(lambda: banner.problem is not None, timeout=10000)
        assert isinstance(banner.problem.error, SharesDoNotFit)
        assert banner.problem.context.profile == "Stand-in"
        # One click: the chat model's profile is saved with the lower share and started again with it.
        qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: (
                [r.share for r in reserved()] == [0.88]
                and window.server_status.state_label.property("state") == "ready"
            ),
            timeout=20000,
        )
        saved = SettingsStore.open(app_paths.settings_file).settings.profile("Stand-in")
        assert saved is not None
        assert saved.gpu_memory_utilization == 0.88
    finally:
        close_app(qtbot, parts)
    assert reserved() == []


def test_a_chat_model_that_does_not_fit_beside_the_embedder_is_refused_in_the_window(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.server.supervisor import Supervisor
    from tests.support.qasync_loop import run

    card = GpuInfo(0, "RTX 4090", 24 * GIB, int(23.5 * GIB))
    monkeypatch.setattr(engine.hardware, "gpu_status", lambda: GpuStatus((card,)))  # NVML: the boundary
    embedder = Supervisor(app_paths, GpuStandinRuntime())  # the documents' embedder, already starting
    embedding = ServerProfile(
        name="embeddings",
        source="hf_cache",
        model="org/embed",
        extra_args="--runner pooling",
        gpu_memory_utilization=0.03,
    )
    run(qtbot, embedder.start(embedding))
    configure(app_paths, start_with_app=True, gpu_memory_utilization=0.92)
    parts = start_app(qtbot, app_paths, GpuStandinRuntime([]))
    try:
        window = parts.window
        banner = window.banner
        qtbot.waitUntil(lambda: banner.isVisible() and banner.problem is not None, timeout=20000)
        assert isinstance(banner.problem.error, SharesDoNotFit)
        assert window.server_status.state_label.property("state") == "failed"
        assert "beside the embedding model for documents “embeddings”" in banner.text
        assert banner.fix_button.text() == "Use 90% of the GPU for “Stand-in”"
        qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.server_status.state_label.property("state") == "ready", timeout=20000)
        assert not banner.isVisible()
        saved = SettingsStore.open(app_paths.settings_file).settings.profile("Stand-in")
        assert saved is not None
        assert saved.gpu_memory_utilization == 0.9
    finally:
        close_app(qtbot, parts)
        run(qtbot, embedder.stop())
    assert reserved() == []
