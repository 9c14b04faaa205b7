"""The server dashboard over a real supervisor and the stand-in server process: live charts while shown,
no polling while hidden, the start's phases, the process table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from desktop.dialogs.dashboard import ServerDashboard
from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from engine.server.supervisor import ServerState, Supervisor
from tests.support.qasync_loop import qloop, run  # noqa: F401 - qloop is a fixture
from tests.support.standin.launch import StandinRuntime

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def _chat(endpoint: Any) -> None:
    httpx.post(
        f"{endpoint.base_url}/chat/completions",
        json={"model": endpoint.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50},
        headers={"Authorization": f"Bearer {endpoint.api_key}"},
        timeout=30,
        trust_env=False,
    ).raise_for_status()


def test_dashboard_draws_while_shown_and_stops_polling_when_hidden(
    qtbot: Any, app_paths: AppPaths, tmp_path: Path
) -> None:
    sup = Supervisor(app_paths, StandinRuntime(["--reply-tokens", "40"]), metrics_interval_s=0.1)
    dashboard = ServerDashboard(sup)
    qtbot.addWidget(dashboard)
    try:
        endpoint = run(qtbot, sup.start(ServerProfile(name="standin", source="hf_cache", model="org/m")))
        assert not sup._metrics.polling  # nobody looks: nothing polled
        dashboard.show()
        qtbot.waitUntil(lambda: sup._metrics.polling, timeout=5000)
        assert dashboard.listening
        qtbot.waitUntil(
            lambda: len(dashboard.history.points()) >= 1, timeout=5000
        )  # a reading before the chat
        _chat(endpoint)
        qtbot.waitUntil(
            lambda: any(p.generation_tok_s > 0 for p in dashboard.history.points()), timeout=10000
        )
        xs, ys = dashboard.curves["generation_tok_s"].getData()
        assert xs is not None
        assert len(xs) == len(dashboard.history.points())
        assert max(ys) > 0
        assert all(x <= 0 for x in xs)  # seconds before now
        # The start's phases, in order, and the server's processes with their memory.
        phases = [
            dashboard.timeline.topLevelItem(i).text(0) for i in range(dashboard.timeline.topLevelItemCount())
        ]
        assert phases[0] == "Checking the vLLM runtime and the model"
        assert phases[-1] == "Ready"
        dashboard.refresh_processes()
        rows = [dashboard.processes.topLevelItem(i) for i in range(dashboard.processes.topLevelItemCount())]
        assert {int(r.text(1)) for r in rows} == {p.pid for p in sup.processes()}
        assert all(r.text(2).endswith("MiB") for r in rows)
        assert "ready" in dashboard.heading.text()
        dashboard.grab().save(str(tmp_path / "dashboard.png"))
        dashboard.grab().save("/tmp/dashboard.png")
        assert (tmp_path / "dashboard.png").stat().st_size > 10_000

        dashboard.hide()
        assert not dashboard.listening
        qtbot.waitUntil(lambda: not sup._metrics.polling, timeout=5000)
        assert not dashboard.process_timer.isActive()
    finally:
        dashboard.close_dashboard()
        if sup.state is not ServerState.STOPPED:
            run(qtbot, sup.shutdown())


def test_the_dashboard_is_reachable_from_the_tray_menu_and_the_window(
    qtbot: Any, app_paths: AppPaths
) -> None:
    import argparse

    from PySide6.QtWidgets import QApplication

    from desktop.app import build

    args = argparse.Namespace(data_dir=str(app_paths.config.parent), tray=False, new_chat=False)
    parts = run(
        qtbot, build(args, QApplication.instance(), runtime=StandinRuntime([]), single_instance=False)
    )
    assert parts is not None
    qtbot.addWidget(parts.window)
    try:
        assert parts.actions.dashboard_action in parts.window.server_menu.actions()
        tray_menu = parts.actions.build_menu()
        assert parts.actions.dashboard_action in tray_menu.actions()
        parts.actions.dashboard_action.trigger()
        dashboard = parts.dashboards.dashboard
        assert dashboard is not None
        qtbot.waitUntil(dashboard.isVisible, timeout=5000)
        assert dashboard.listening
        parts.actions.dashboard_action.trigger()  # again: the same window, raised
        assert parts.dashboards.dashboard is dashboard
        tray_menu.deleteLater()
    finally:
        run(qtbot, parts.close(), timeout=60)
    assert parts.dashboards.dashboard is None
