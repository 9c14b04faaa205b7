"""The window's tool settings say before the turn that the running profile starts vLLM without a tool-call
parser (vLLM would refuse the tools with HTTP 400), with the parser to set; once the profile has one, the
warning goes. The real supervisor launches the stand-in, which refuses as vLLM does without the flags."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from engine.paths import AppPaths
from engine.server.profiles import ServerProfile
from engine.server.supervisor import Supervisor
from tests.desktop.window.test_server_link import linked_window, replace_profile, wait_ready, with_profiles
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import StandinRuntime

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def qwen_profile(parser: str = "") -> ServerProfile:
    return ServerProfile(
        name="Qwen",
        source="hf_cache",
        model="Qwen/Qwen2.5-0.5B-Instruct",
        served_name="qwen",
        tool_call_parser=parser,
    )


def test_the_tool_settings_warn_when_the_running_profile_has_no_tool_call_parser(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    settings = with_profiles(app_paths, qwen_profile())
    sup = Supervisor(app_paths, StandinRuntime(["--check-tool-parser"]))
    with linked_window(qtbot, app_paths, sup, settings) as window:
        box = window.chat_settings.tools
        box.boxes["current_time"].setChecked(True)  # ticked before the server runs: nothing to judge yet
        assert box.warning.isHidden()
        window.start_action.trigger()
        wait_ready(qtbot, sup, profile_name="Qwen")
        # Said once the server is ready, without touching the settings again.
        qtbot.waitUntil(lambda: not box.warning.isHidden(), timeout=10_000)
        text = box.warning.text()
        assert "The profile 'Qwen' starts the model without a tool-call parser" in text
        assert "vLLM will refuse tool choice auto" in text
        assert "set its tool-call parser to hermes (this model family's)" in text
        box.choice.setCurrentText("required")
        assert "vLLM will refuse the tool choice required" in box.warning.text()
        box.choice.setCurrentText("none")  # no tools sent: nothing to refuse
        assert box.warning.isHidden()
        box.choice.setCurrentText("auto")
        assert not box.warning.isHidden()

        replace_profile(settings, qwen_profile("hermes"))  # Preferences > Profiles, then restart
        window.start_action.trigger()
        qtbot.waitUntil(lambda: box.warning.isHidden(), timeout=30_000)
        wait_ready(qtbot, sup, profile_name="Qwen")
        assert sup.endpoint is not None
        assert box.boxes["current_time"].isChecked()
        box.choice.setCurrentText("required")  # judged again: the running profile has its parser now
        box.choice.setCurrentText("auto")
        assert box.warning.isHidden()
