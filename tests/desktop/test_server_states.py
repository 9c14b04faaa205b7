"""One table puts every server state into words and looks; the status bar, the model picker and the tray all
read it (tests/desktop/launcher/test_tray.py checks the tray's icons from it too)."""

from __future__ import annotations

import pytest

from desktop.server_states import look_of, state_kind, state_name, state_words
from desktop.widgets.model_picker import ModelPicker
from desktop.widgets.status_bar import ServerStatusBar
from engine.server.remote import RemoteUnreachable
from engine.server.supervisor import ServerState, StateChange

pytestmark = pytest.mark.gui


def test_every_supervisor_state_has_its_own_row() -> None:
    rows = {state: look_of(state) for state in ServerState}
    assert len({row.words for row in rows.values()}) == len(ServerState)  # no two states read alike
    assert {row.look for row in rows.values()} == {"stopped", "starting", "ready", "failed"}
    assert state_name("READY") == "ready"
    assert look_of("no such state") == look_of(ServerState.STOPPED)


def test_the_status_bar_and_the_model_picker_say_the_same_words(qtbot) -> None:  # type: ignore[no-untyped-def]
    bar, picker = ServerStatusBar(), ModelPicker()
    qtbot.addWidget(bar)
    qtbot.addWidget(picker)
    assert bar.state_label.text() == state_words(ServerState.STOPPED)  # before any event
    for state in ServerState:
        look = look_of(state)
        bar.set_state(look.bar, look.words)
        picker.show_state(state)
        assert picker.state.text() == bar.state_label.text() == state_words(state)
        assert picker.state.property("state") == state_kind(state)


def test_a_remote_server_that_does_not_answer_reads_not_reachable_not_failed_to_start() -> None:
    lost = StateChange(
        ServerState.FAILED,
        ServerState.PREPARING,
        "Lab",
        None,
        RemoteUnreachable("http://lab:8000", "refused"),
    )
    assert state_words(lost) == "Not reachable"
    assert state_kind(lost) == "failed"
    other = StateChange(ServerState.FAILED, ServerState.STARTING, "Tiny", None, None)
    assert state_words(other) == state_words(ServerState.FAILED) == "Failed to start"
