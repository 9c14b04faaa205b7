"""What `make run` does, end to end on the real vLLM (CPU): the app built as ``run_app`` builds it, with its
own supervisor starting the built-in model from the data folder, and a user chatting in the window.

The data folder is fresh; only the 3.4 GB runtime and the converted model are linked in from the session's
test cache (built there by the app's own installer), so no minutes-long install runs again.
"""

from __future__ import annotations

import argparse

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.app import build
from engine.models.builtin import builtin_model_path
from engine.paths import AppPaths
from tests.support.qasync_loop import qloop, run  # noqa: F401

pytestmark = [
    pytest.mark.gui,
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def test_the_app_starts_the_built_in_model_and_a_user_chats(  # type: ignore[no-untyped-def]
    qtbot, tmp_path, vllm_paths, builtin_model_dir
) -> None:
    home = tmp_path / "desk"
    paths = AppPaths.under(home).ensure()
    paths.runtime.symlink_to(vllm_paths.runtime, target_is_directory=True)
    builtin_model_path(paths).symlink_to(builtin_model_dir, target_is_directory=True)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    args = argparse.Namespace(data_dir=str(home), tray=False)
    parts = run(qtbot, build(args, app, single_instance=False))
    assert parts is not None
    window = parts.window
    qtbot.addWidget(window)
    try:
        assert window.isVisible()
        # Default settings: start the built-in model with the app; a question asked meanwhile is queued.
        qtbot.waitUntil(window.server_starting, timeout=10000)
        window.composer.editor.setFocus()
        qtbot.keyClicks(window.composer.editor, "What is the capital of France?")
        qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
        assert [q.text for q in window.outbox.pending] == ["What is the capital of France?"]
        qtbot.waitUntil(
            lambda: window.server_status.state_label.property("state") in ("ready", "failed"), timeout=300000
        )
        assert window.server_status.state_label.property("state") == "ready", window.banner.text
        assert "smollm2" in window.server_status.server_label.text().lower()
        qtbot.waitUntil(
            lambda: any(
                w.data.role == "assistant" and w.data.state != "streaming"
                for w in window.transcript.messages()
            ),
            timeout=180000,
        )
        reply = next(w for w in window.transcript.messages() if w.data.role == "assistant")
        assert reply.data.state == "complete", reply.data.error
        assert reply.data.text.strip()
    finally:
        run(qtbot, parts.close(), timeout=60)
    assert parts.supervisor.processes() == []
