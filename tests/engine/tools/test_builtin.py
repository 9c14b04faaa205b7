"""The built-in tools: the current date and time, search my chat history (FTS), search my documents (a
PipelineTool)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import zoneinfo
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.documents.store import DocumentStore, Passage
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.tools.builtin import (
    QUERY_MAX_CHARS,
    TIMEZONE_PATTERN,
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


# The bounds on the free-text parameters (a forced strict call is held to them by vLLM: see builtin.py).


def test_every_time_zone_this_computer_knows_fits_the_bound_and_junk_does_not() -> None:
    schema = current_time_tool().parameters
    assert schema["properties"]["timezone"]["pattern"] == TIMEZONE_PATTERN
    for name in sorted(zoneinfo.available_timezones()):
        jsonschema.validate({"timezone": name}, schema)
    jsonschema.validate({}, schema)  # left out: this computer's zone
    for junk in ("2023-01-01T00:00:00Z", "../../etc/passwd", "Europe Paris", "/UTC", "Europe/", "A" * 17):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"timezone": junk}, schema)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(TIMEZONE_PATTERN, fullmatch=True))
def test_any_zone_the_bound_lets_through_is_short_and_gives_a_time_or_a_clear_error(zone: str) -> None:
    # The pattern bounds the length by itself (xgrammar drops a maxLength beside a pattern).
    assert len(zone) <= 16 + 2 * 21
    moment = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        with pytest.raises(ValueError, match=re.escape(f"“{zone}” is not a time zone (use a name such as")):
            now_text(zone, now=moment)
    else:
        assert now_text(zone, now=moment).endswith(f"time zone {zone}")


def test_a_query_is_bounded_in_both_search_tools(tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "documents.sqlite3")
    try:
        store.ensure_collection("manuals")
        documents = documents_search_tool(store, ["manuals"])
        history = history_search_tool(None)  # type: ignore[arg-type]  # the schema needs no store
        for tool in (documents, history):
            query = tool.parameters["properties"]["query"]
            assert (query["type"], query["minLength"], query["maxLength"]) == ("string", 1, QUERY_MAX_CHARS)
            assert tool.parameters["required"] == ["query"]
            jsonschema.validate({"query": "x" * QUERY_MAX_CHARS}, tool.parameters)
            with pytest.raises(jsonschema.ValidationError, match="is too long"):
                jsonschema.validate({"query": "x" * (QUERY_MAX_CHARS + 1)}, tool.parameters)
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate({"query": ""}, tool.parameters)
    finally:
        store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=QUERY_MAX_CHARS))
def test_history_search_answers_any_query_within_the_bound(tmp_path: Path, query: str) -> None:
    # Whatever a model writes in a query (cut at the bound or not), the search gives hits or "no match".
    db = tmp_path / "history.sqlite3"
    if not db.exists():
        seed = HistoryStore(db)
        conv = seed.create_conversation(title="Pizza night")
        seed.add_message(conv.id, None, "user", 'Which pizza "quattro" - NEAR: *stagioni* 🍕 or café?')
        seed.close()

    async def search() -> str:
        history = await AsyncHistoryStore.open(db)
        try:
            return str(await history_search_tool(history).invoke_async(query=query))
        finally:
            await history.close()

    found = asyncio.run(search())
    nothing = found == f"No conversation mentions “{query}”."
    assert nothing or re.match(r"- conversation \d+ “Pizza night”", found), found
