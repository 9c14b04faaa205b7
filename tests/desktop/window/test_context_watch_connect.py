"""While the user writes, the window has the chat's client open a connection to the server it launched, and
the send goes out on it — against the stand-in process, which logs each request's client port."""

from __future__ import annotations

import dataclasses

import pytest

from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import start_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def test_the_send_goes_out_on_a_connection_opened_while_the_user_wrote(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    server = start_standin("--reply", "Ok.", env={"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "600"})
    try:
        endpoint = dataclasses.replace(server.endpoint(), keep_alive_s=600)  # as for a server it launched
        window = open_window(qtbot, app_paths, lambda: endpoint)
        try:
            window.composer.editor.setPlainText("Hello there")
            # start_standin's own readiness check, then the window's connect after a count.
            qtbot.waitUntil(lambda: len(server.client_ports("GET /health")) >= 2, timeout=15000)
            opened = set(server.client_ports("GET /health")[1:])
            assert not server.client_ports("POST /v1/chat/completions")  # nothing sent yet
            with qtbot.waitSignal(window.turn_finished, timeout=15000):
                window.send_message("Hello there")
            qtbot.waitUntil(lambda: len(server.client_ports("POST /v1/chat/completions")) == 1, timeout=10000)
            assert server.client_ports("POST /v1/chat/completions")[0] in opened
        finally:
            close_window(qtbot, window)
    finally:
        server.stop()
