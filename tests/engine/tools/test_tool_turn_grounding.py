"""A chat with tools turned on is grounded in its attached documents like any other: the passages go before
the question in the request, the stored question stays as typed, and the answer keeps its sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.chat.tokens import ContextMeter
from engine.documents.embedder import hashing_embedder
from engine.documents.grounding import Grounder, attach
from engine.documents.index import Indexer
from engine.documents.store import DocumentStore
from engine.history.async_store import AsyncHistoryStore
from engine.tools.approval import ApprovalPolicy
from engine.tools.session import ToolTurnOptions, rerun_tool_turn, run_tool_turn
from tests.engine.tools.test_loop import add_tool, generator_for
from tests.support.standin.launch import running_standin

LIGHTHOUSE = "The keeper of the Kelvar lighthouse is Maren Holt. She has kept the light since 1998."


@pytest.mark.asyncio
async def test_a_tool_turn_is_grounded_and_its_answer_keeps_the_sources(tmp_path: Path) -> None:
    (tmp_path / "kelvar.md").write_text(f"# Lighthouses\n\n{LIGHTHOUSE}\n", encoding="utf-8")
    documents = DocumentStore(tmp_path / "documents.sqlite3")
    Indexer(documents, hashing_embedder(32)).add("work", [tmp_path / "kelvar.md"])
    meter = ContextMeter()
    grounder = Grounder(documents, meter, lambda: None)  # no embedder running: keyword search
    store = await AsyncHistoryStore.open(tmp_path / "history.sqlite3")
    try:
        conv = await store.create_conversation(title="")
        await attach(store, conv.id, ["work"])
        asked: list[list[tuple[str, str]]] = []

        async def augment(endpoint, settings, messages):  # type: ignore[no-untyped-def]
            asked.append(messages)
            return await grounder.augment(endpoint, settings, messages)

        with running_standin("--reply", "Maren Holt keeps it [1].") as server:
            async with generator_for(server) as generator:
                options = ToolTurnOptions(
                    tools=[add_tool()], approval=ApprovalPolicy.allow_all(), choice="none", augment=augment
                )
                turn = await run_tool_turn(
                    store,
                    generator,
                    server.endpoint(),
                    conv.id,
                    "Who keeps the Kelvar lighthouse?",
                    options,
                )
                assert turn.error is None
                user = turn.user
                again = await rerun_tool_turn(store, generator, server.endpoint(), user.id, options)
                assert again.error is None
        assert asked[0] == [("user", "Who keeps the Kelvar lighthouse?")]  # what was searched, as typed
        tree = await store.load(conv.id)
        stored_user = next(m for m in tree.messages if m.id == user.id)
        assert stored_user.text == "Who keeps the Kelvar lighthouse?"  # the passages were in the request only
        for answer in (turn.stored[-1], again.stored[-1]):
            reply = next(m for m in tree.messages if m.id == answer.id)
            assert reply.role == "assistant"
            [source] = reply.content["meta"]["sources"]
            assert source["file"] == str(tmp_path / "kelvar.md")
            assert "Maren Holt" in source["passage"]
            assert source["use"] == "cited"  # which sources the answer used is stored with it too
    finally:
        await store.close()
        await meter.aclose()
        documents.close()
