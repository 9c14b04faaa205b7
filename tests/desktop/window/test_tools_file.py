"""`vllm-desk tools add-mcp / edit-mcp / remove` run while the window is open reach it: the chat settings
offer the servers tools.toml holds now, Preferences > Tools lists them, and a running server whose settings
changed (in the file or in the keychain) is stopped so its next use starts it anew; one that did not change
runs on."""

from __future__ import annotations

import sys

import pytest

from desktop.window.main_window import MainWindow
from engine.chat.engine import ChatEngine
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.tools.config import McpServer, ToolsSettings
from tests.support.cli import run_cli
from tests.support.main_window import close_window, open_window
from tests.support.mcp import MCP_SERVER, stdio_test_server
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.tool_turns import bare_tool_turns, showing_a_chat_that_uses_desk

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def cli(app_paths: AppPaths, *args: str) -> None:
    """``vllm-desk tools ...`` in a process of its own, as a user runs it beside the app."""
    done = run_cli(app_paths.config.parent, "tools", *args, timeout=120)
    assert done.returncode == 0, done.stderr


def listed(window: MainWindow) -> list[str]:
    page = window.preferences_dialog.tools_page  # type: ignore[attr-defined]
    return [page.server_list.item(row).text() for row in range(page.server_list.count())]


def offered(window: MainWindow) -> list[str]:
    return list(window.chat_settings.tools.boxes)


BUILTIN = ["current_time", "search_history", "search_documents"]


def test_the_cli_changing_tools_reaches_the_window_and_its_tools_page(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    desk = stdio_test_server()
    settings = ToolsSettings(app_paths.config)
    settings.add(desk)
    window = open_window(qtbot, app_paths, paths=app_paths)
    try:
        assert window.paths is not None
        assert window.paths.config == app_paths.config  # the CLI's --data-dir is the window's folder
        if not window.chat_settings.isVisible():
            window.toggle_chat_settings()
        qtbot.waitUntil(lambda: offered(window) == [*BUILTIN, "desk"], timeout=5000)
        manager = window.tool_turns.manager
        assert run(qtbot, manager.start("desk")).status == "ready"
        window.open_preferences()
        ready = f"desk — ready with 8 tool(s) — stdio: {desk.describe()}"
        assert listed(window) == [ready]

        # Added from the command line: offered and listed; the running server's settings did not change.
        cli(app_paths, "add-mcp", "notes", "--url", "http://127.0.0.1:9/mcp")
        notes = "notes — stopped — http: http://127.0.0.1:9/mcp"
        qtbot.waitUntil(lambda: offered(window) == [*BUILTIN, "desk", "notes"], timeout=10000)
        qtbot.waitUntil(lambda: listed(window) == [ready, notes], timeout=10000)
        assert manager.connections["desk"].state.status == "ready"

        # Its command changed: stopped (the next use starts it with the new one), the new command shown.
        cli(app_paths, "edit-mcp", "desk", "--", sys.executable, MCP_SERVER, "stdio", "--quiet")
        changed = f"{sys.executable} {MCP_SERVER} stdio --quiet"
        qtbot.waitUntil(
            lambda: listed(window) == [f"desk — stopped — stdio: {changed}", notes], timeout=10000
        )
        assert "desk" not in manager.connections
        assert window.chat_settings.tools.boxes["desk"].toolTip() == f"MCP server: {changed}"

        # Only a keychain value changed (the file is written again, the same): stopped too.
        settings.update("desk", desk)  # back to the command that the test server runs with
        assert run(qtbot, manager.start("desk")).status == "ready"
        qtbot.waitUntil(lambda: listed(window)[0] == ready, timeout=10000)
        text_before = settings.path.read_text()
        settings.update("desk", desk, secret_env={"MY_TOKEN": "t0k"})
        assert settings.path.read_text() != text_before  # names the secret, not its value
        assert "t0k" not in settings.path.read_text()
        qtbot.waitUntil(lambda: "desk" not in manager.connections, timeout=10000)
        qtbot.waitUntil(lambda: listed(window)[0].startswith("desk — stopped"), timeout=10000)
        assert run(qtbot, manager.start("desk")).status == "ready"
        text_before = settings.path.read_text()
        settings.update("desk", desk, secret_env={"MY_TOKEN": "other"})
        assert settings.path.read_text() == text_before  # the same file: only the keychain's value changed
        qtbot.waitUntil(lambda: "desk" not in manager.connections, timeout=10000)

        # Removed from the command line: neither offered nor listed.
        cli(app_paths, "remove", "notes")
        qtbot.waitUntil(lambda: offered(window) == [*BUILTIN, "desk"], timeout=10000)
        qtbot.waitUntil(lambda: [t.split(" — ")[0] for t in listed(window)] == ["desk"], timeout=10000)
    finally:
        dialog = getattr(window, "preferences_dialog", None)
        if dialog is not None:
            dialog.close()
        close_window(qtbot, window)


def stored_settings(app_paths: AppPaths, conversation_id: int) -> dict[str, object]:
    store = HistoryStore(app_paths.history_db)
    try:
        return dict(store.conversation(conversation_id).settings)
    finally:
        store.close(purge=False, interrupt=False)  # the window's store is open in this process too


def test_a_rename_from_the_cli_moves_the_shown_chats_tick_and_apply_keeps_the_new_name(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    with showing_a_chat_that_uses_desk(qtbot, app_paths) as (window, conversation_id):
        box = window.chat_settings.tools
        assert offered(window) == [*BUILTIN, "desk"]
        # An edit not applied yet: it stays on top of what the store says after the rename.
        box.boxes["search_history"].setChecked(True)
        assert window.chat_settings.apply_button.isEnabled()

        cli(app_paths, "edit-mcp", "desk", "--name", "notes")
        # The chats were renamed before the file was written; the window, told by the file, reads the
        # shown chat's tools again: "notes" ticked, "desk" gone (not "not configured any more").
        qtbot.waitUntil(lambda: offered(window) == [*BUILTIN, "notes"], timeout=10000)
        assert box.values()["tools"] == ("current_time", "search_history", "notes")
        assert stored_settings(app_paths, conversation_id)["tools"] == ["notes", "current_time"]

        # Apply writes the new name (the old one would have come back with it before).
        window.chat_settings.temperature.setValue(0.3)
        with qtbot.waitSignal(window.chat_settings.saved, timeout=5000):
            window.chat_settings.apply()
        stored = stored_settings(app_paths, conversation_id)
        assert stored["tools"] == ["current_time", "search_history", "notes"]
        assert stored["temperature"] == 0.3


def test_a_read_of_the_chats_from_before_the_tools_pages_rename_of_them_keeps_the_new_name(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    settings = ToolsSettings(app_paths.config)
    settings.add(stdio_test_server())
    with bare_tool_turns(qtbot, app_paths) as bare:
        turns, box = bare.turns, bare.box
        conversation = run(
            qtbot, bare.store.create_conversation(title="Uses desk", settings={"tools": ["desk"]})
        )
        bare.shown_id = conversation.id
        turns.chat = ChatEngine(bare.store, lambda: None)
        box.load(conversation.settings)
        assert [n for n, b in box.boxes.items() if b.isChecked()] == ["desk"]
        # The Tools page saved the rename and said so; its rename of the chats has not reached the store
        # yet when the window, told by the file, reads the shown chat again: that read has "desk".
        settings.update("desk", McpServer(name="notes", transport="stdio", command=sys.executable))
        turns.servers_changed("desk", "notes")
        run(qtbot, turns.follow_tools_file())
        assert list(box.boxes) == [*BUILTIN, "notes"]
        assert [n for n, b in box.boxes.items() if b.isChecked()] == ["notes"]
        # A server named "desk" again is another one: a chat that ticks it keeps it.
        settings.add(McpServer(name="desk", transport="http", url="http://127.0.0.1:9/mcp"))
        run(qtbot, bare.store.update_conversation(conversation.id, settings={"tools": ["desk", "notes"]}))
        run(qtbot, turns.follow_tools_file())
        assert [n for n, b in box.boxes.items() if b.isChecked()] == ["notes", "desk"]  # tools.toml's order
