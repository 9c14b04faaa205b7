"""The built-in tools: the current date and time, search my chat history (FTS), search my documents (a
PipelineTool)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.documents.store import DocumentStore, Passage
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.tools.builtin import (
    current_time_tool,
    documents_search_tool,
    history_search_tool,
    now_text,
)
from engine.tools.loop import tool_output_text


def test_the_current_time_in_a_zone_and_a_clear_error_for_a_bad_one() -> None:
    moment = dt.datetime(2026, 12, 6, 3, 4, 5, tzinfo=dt.UTC)
    assert (
        now_text("Europe/Paris", now=moment) == "2026-12-06 04:04:05 +0100 (Sunday), time zone Europe/Paris"
    )
    with pytest.raises(ValueError, match="“Mars/Olympus” is not a time zone"):
        now_text("Mars/Olympus", now=moment)
    tool = current_time_tool()
    assert str(dt.datetime.now(dt.UTC).year) in tool.invoke(timezone="UTC")


@pytest.mark.asyncio
async def test_history_search_finds_earlier_chats_through_the_index(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    seed = HistoryStore(db)
    conv = seed.create_conversation(title="Trip planning")
    seed.add_message(conv.id, None, "user", "Which trains go from Köln to Marseille?")
    seed.close()
    history = await AsyncHistoryStore.open(db)
    try:
        tool = history_search_tool(history)
        found = await tool.invoke_async(query="koln")
        assert f"conversation {conv.id} “Trip planning”" in found
        assert "«Köln»" in found
        assert await tool.invoke_async(query="zeppelin") == "No conversation mentions “zeppelin”."
    finally:
        await history.close()


@pytest.mark.asyncio
async def test_documents_search_is_the_retrieval_pipeline_as_a_pipeline_tool(tmp_path: Path) -> None:
    from haystack.tools import PipelineTool

    store = DocumentStore(tmp_path / "documents.sqlite3")
    try:
        store.ensure_collection("manuals")
        text = "To reset the router, hold the button for ten seconds."
        store.replace_file(
            "manuals",
            "/docs/router.pdf",
            sha256="0" * 64,
            size=100,
            mtime=0.0,
            kind="pdf",
            pages=3,
            passages=[Passage(0, text, 0, len(text), 2, "Troubleshooting")],
        )
        tool = documents_search_tool(store, ["manuals"])
        assert isinstance(tool, PipelineTool)
        assert tool.parameters["properties"]["query"]["type"] == "string"
        found = tool_output_text(tool, await tool.invoke_async(query="reset router"))
        assert "[1] router.pdf, page 2, Troubleshooting" in found
        assert "hold the button for ten seconds" in found
        nothing = tool_output_text(tool, await tool.invoke_async(query="volcano"))
        assert nothing == "No passage of the documents matches."
    finally:
        store.close()
