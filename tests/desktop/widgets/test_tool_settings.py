"""The chat settings' tools box kept in step with what is stored: a rename moves a tick (in what was loaded
too), and the stored tools read again (another process renamed a server in them) keep the user's edits."""

from __future__ import annotations

from typing import Any

import pytest

from desktop.widgets.tool_settings import ToolSettingsBox

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]


def _box(qtbot: Any, servers: list[str]) -> ToolSettingsBox:
    box = ToolSettingsBox()
    qtbot.addWidget(box)
    box.available = lambda: [("current_time", "the time"), *((name, "MCP server") for name in servers)]
    return box


def ticked(box: ToolSettingsBox) -> list[str]:
    return [name for name, check in box.boxes.items() if check.isChecked()]


def test_the_stored_tools_read_again_keep_what_the_user_changed_since(qtbot: Any) -> None:
    servers = ["desk", "web"]
    box = _box(qtbot, servers)
    box.load({"tools": ["desk", "web"], "tool_choice": "required"})
    box.boxes["web"].setChecked(False)  # the user's edits, not applied
    box.boxes["current_time"].setChecked(True)
    servers[:] = ["notes", "web"]  # "desk" renamed "notes" by another process, in the file and the chats

    box.rebase({"tools": ["notes", "web"], "tool_choice": "required"})

    assert list(box.boxes) == ["current_time", "notes", "web"]  # "desk" is not offered any more
    assert ticked(box) == ["current_time", "notes"]  # the new name; "web" stays off, the time on
    assert box.values()["tool_choice"] == "required"
    # Stored again with nothing changed here since: what is stored is shown, the choice too.
    box.load({"tools": ["notes"]})
    box.rebase({"tools": ["web"], "tool_choice": "none"})
    assert (ticked(box), box.values()["tool_choice"]) == (["web"], "none")
    # A choice changed here stays over the stored one.
    box.choice.setCurrentText("auto")
    box.rebase({"tools": ["web"], "tool_choice": "required"})
    assert box.values()["tool_choice"] == "auto"


def test_a_rename_moves_the_tick_in_what_is_shown_and_in_what_was_loaded(
    qtbot: Any,
) -> None:
    servers = ["desk"]
    box = _box(qtbot, servers)
    box.load({"tools": ["desk"]})
    servers[:] = ["notes"]
    box.rename("desk", "notes")
    assert ticked(box) == ["notes"]
    box.refresh()  # the servers offered again: the ticks stay
    assert ticked(box) == ["notes"]
    # What was loaded moved too: the stored chats, read again once renamed, show no edit to keep.
    box.rebase({"tools": ["notes"]})
    assert (ticked(box), list(box.boxes)) == (["notes"], ["current_time", "notes"])
