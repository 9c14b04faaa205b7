"""Tool-turn setups for the window's tests: the window's ``ToolTurns`` over real widgets and a real history
store but no window, and a window showing a chat that uses the test MCP server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from desktop.widgets.composer import Composer
from desktop.widgets.markdown_view import MarkdownRenderer
from desktop.widgets.sidebar import Sidebar
from desktop.widgets.tool_settings import ToolSettingsBox
from desktop.widgets.transcript import TranscriptView
from desktop.window.main_window import MainWindow
from desktop.window.tool_turns import ToolTurns
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.tools.config import ToolsSettings
from tests.support.main_window import close_window, open_window
from tests.support.mcp import stdio_test_server
from tests.support.qasync_loop import run


@dataclass
class BareToolTurns:
    """What :func:`bare_tool_turns` yields: the turns and the parts a test looks at."""

    turns: ToolTurns
    box: ToolSettingsBox
    composer: Composer
    store: AsyncHistoryStore
    shown_id: int | None = None  # the chat the turns take as the one shown


@contextmanager
def bare_tool_turns(qtbot: Any, app_paths: AppPaths) -> Iterator[BareToolTurns]:
    """The window's ``ToolTurns`` on the app's paths, over a transcript, composer, sidebar, chat settings box
    and history store of its own, with no window and no engine yet (a test attaches one, ``turns.chat = ...``,
    when it wants tools.toml read); it shows nothing (``show``) and takes ``shown_id`` as the chat shown. The
    turns (and their MCP servers), the sidebar and the store are closed after."""
    box = ToolSettingsBox()
    qtbot.addWidget(box)
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    transcript = TranscriptView(MarkdownRenderer())
    composer = Composer()
    sidebar = Sidebar(store)
    for widget in (transcript, composer, sidebar):
        qtbot.addWidget(widget)
    turns: ToolTurns | None = None
    try:
        turns = ToolTurns(
            store,
            transcript,
            composer,
            sidebar,
            config_dir=app_paths.config,
            paths=app_paths,
            shown=lambda: bare.shown_id,
            show=lambda _id: asyncio.sleep(0),
            settings_box=box,
        )
        bare = BareToolTurns(turns, box, composer, store)
        yield bare
    finally:
        if turns is not None:
            run(qtbot, turns.aclose())
        run(qtbot, sidebar.aclose())
        run(qtbot, store.close())


@contextmanager
def showing_a_chat_that_uses_desk(qtbot: Any, app_paths: AppPaths) -> Iterator[tuple[MainWindow, int]]:
    """A window with the app's paths (Preferences and the CLI read tools.toml and the history there)
    showing a chat whose tools are the MCP server "desk" (the test server) and current_time, its chat
    settings open with both ticked; yields it and the chat's id, closed after."""
    ToolsSettings(app_paths.config).add(stdio_test_server())
    history = HistoryStore(app_paths.history_db)
    conversation = history.create_conversation(
        title="Uses desk", settings={"tools": ["desk", "current_time"]}
    )
    history.add_message(conversation.id, None, "user", "Add 2 and 3.")
    history.close()
    window = open_window(qtbot, app_paths, paths=app_paths)
    try:
        qtbot.waitUntil(lambda: window.conversation_id == conversation.id, timeout=5000)
        if not window.chat_settings.isVisible():
            window.toggle_chat_settings()
        box = window.chat_settings.tools
        qtbot.waitUntil(lambda: "desk" in box.boxes and box.boxes["desk"].isChecked(), timeout=5000)
        assert box.values()["tools"] == ("current_time", "desk")
        yield window, conversation.id
    finally:
        close_window(qtbot, window)
