"""A conversation held with the REAL vLLM (CPU, built-in model) exported and imported again: real replies,
real numbers and a real regenerated branch survive, and the Markdown/HTML show them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.chat.engine import ChatEngine
from engine.chat.generation import GenerationSettings
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.transfer import history_adapter
from engine.transfer.exporter import export_from_store
from engine.transfer.importer import import_path

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def store(app_paths) -> AsyncIterator[AsyncHistoryStore]:  # type: ignore[no-untyped-def]
    s = await AsyncHistoryStore.open(app_paths.history_db)
    yield s
    await s.close()


async def test_a_real_conversation_with_a_branch_survives_export_and_import(  # type: ignore[no-untyped-def]
    vllm_server, store: AsyncHistoryStore, tmp_path: Path
) -> None:
    engine = ChatEngine(store, lambda: vllm_server)
    conv = await engine.new_conversation(settings=GenerationSettings(temperature=0.0, max_tokens=20))
    turn = await engine.send(conv.id, "Name one planet of the solar system.")
    first = await turn.wait()
    again = await engine.regenerate(first.id)
    second = await again.wait()
    await engine.shutdown()  # its kept connection to the launched server
    assert first.parent_id == second.parent_id  # two alternative replies: a branch

    await store.call(export_from_store, [conv.id], tmp_path / "chat.json", "json")
    await store.call(export_from_store, [conv.id], tmp_path / "chat.md", "md", all_branches=True)
    await store.call(export_from_store, [conv.id], tmp_path / "chat.html", "html")
    original = history_adapter.from_tree(await store.export_tree(conv.id))

    other = HistoryStore(tmp_path / "other.sqlite3")
    try:
        summary = import_path(other, tmp_path / "chat.json")
        back = history_adapter.from_tree(other.export_tree(summary.imported[0]))
    finally:
        other.close()
    assert len(back.messages) == 3
    assert [m.text for m in back.messages] == [m.text for m in original.messages]
    assert [dict(m.numbers) for m in back.messages] == [dict(m.numbers) for m in original.messages]
    reply = back.messages[1]
    assert reply.model == vllm_server.model
    assert reply.numbers["completion_tokens"] > 0
    assert "ttft_s" in reply.numbers
    assert back.settings == original.settings
    assert [m.text for m in back.shown_branch()][-1] == second.text

    markdown = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert "## Branch 2 of 2" in markdown
    assert first.text.strip().splitlines()[0] in markdown
    assert f"**Model:** {vllm_server.model}" in markdown
    page = (tmp_path / "chat.html").read_text(encoding="utf-8")
    assert "tok/s" in page
    assert "Name one planet of the solar system." in page
