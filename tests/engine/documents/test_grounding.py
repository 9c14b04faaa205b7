"""Chat turns grounded in attached collections: the passages go into the request within the context, the
history keeps the user's own text, and the reply is stored with its sources (through a real chat engine,
the stand-in server process and a real document store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from engine.chat.engine import ChatEngine
from engine.chat.generation import GenerationSettings
from engine.chat.tokens import ContextMeter
from engine.documents.embedder import Embedder, EmbeddingFailed
from engine.documents.grounding import Grounder, attach, attached, detach, source_place, sources_of
from engine.documents.index import Indexer
from engine.documents.store import DocumentStore
from engine.endpoint import Endpoint
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from tests.support.standin.launch import running_standin

pytestmark = pytest.mark.asyncio

LIGHTHOUSE = "The keeper of the Kelvar lighthouse is Maren Holt. She has kept the light since 1998."


@pytest_asyncio.fixture
async def history(app_paths: AppPaths) -> AsyncIterator[AsyncHistoryStore]:
    s = await AsyncHistoryStore.open(app_paths.history_db)
    yield s
    await s.close()


def index_files(doc_store: DocumentStore, embedder: Embedder, folder: Path, texts: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    report = Indexer(doc_store, embedder).add("notes", [folder])
    assert report.ok, report.failed


def filler(n: int) -> dict[str, str]:
    """``n`` files of long paragraphs that all mention the lighthouse (so each is a candidate)."""
    para = "The lighthouse stands on the rock above the harbour and its lamp turns all night long. " * 8
    return {f"filler{i}.md": f"# Part {i}\n\n{para}\n\n{para}\n" for i in range(n)}


async def grounded_turn(
    history: AsyncHistoryStore, grounder: Grounder, endpoint: Endpoint, question: str, **settings: object
) -> tuple[int, int]:
    engine = ChatEngine(history, lambda: endpoint)
    engine.augment = grounder.augment
    conversation = await engine.new_conversation(settings=GenerationSettings(**settings))  # type: ignore[arg-type]
    await attach(history, conversation.id, ["notes"])
    turn = await engine.send(conversation.id, question)
    reply = await turn.wait()
    await engine.shutdown()
    assert reply.state == "complete", reply.error
    return conversation.id, reply.id


async def test_the_reply_is_stored_with_its_sources_and_the_history_keeps_the_question(
    history: AsyncHistoryStore,
    doc_store: DocumentStore,
    embedder: Embedder,
    tmp_path: Path,
    app_paths: AppPaths,
) -> None:
    index_files(doc_store, embedder, tmp_path / "docs", {"kelvar.md": f"# Lighthouses\n\n{LIGHTHOUSE}\n"})
    grounder = Grounder(doc_store, ContextMeter(), lambda: embedder)
    question = "Who is the keeper of the Kelvar lighthouse?"
    with running_standin("--reply", "Maren Holt keeps it [1].") as server:
        conversation_id, reply_id = await grounded_turn(history, grounder, server.endpoint(), question)
        plain = ChatEngine(history, server.endpoint)
        bare = await plain.new_conversation()
        bare_reply = await (await plain.send(bare.id, question)).wait()
        await plain.shutdown()
    await grounder.meter.aclose()
    tree = await history.load(conversation_id)
    user, reply = tree.branch()
    assert user.text == question  # the history keeps what the person typed, not the passages
    # The request carried the passage: many more prompt tokens than the same question alone.
    assert reply.numbers.prompt_tokens is not None
    assert bare_reply.numbers.prompt_tokens is not None
    assert reply.numbers.prompt_tokens > bare_reply.numbers.prompt_tokens + 20
    sources = sources_of(reply.content["meta"])
    assert len(sources) == 1
    assert sources[0]["number"] == 1
    assert sources[0]["file"] == str(tmp_path / "docs" / "kelvar.md")
    assert sources[0]["section"] == "Lighthouses"
    assert LIGHTHOUSE in sources[0]["passage"]
    assert source_place(sources[0]) == "kelvar.md, Lighthouses"
    assert sources[0]["use"] == "cited"  # the reply's [1]
    assert sources_of(bare_reply.content["meta"]) == []
    # After a restart: the database file opened anew still has them.
    reopened = HistoryStore(app_paths.history_db)
    try:
        assert sources_of(reopened.message(reply_id).content["meta"]) == sources
    finally:
        reopened.close()


async def test_a_reply_without_markers_is_stored_with_the_passage_its_wording_came_from(
    history: AsyncHistoryStore, doc_store: DocumentStore, embedder: Embedder, tmp_path: Path
) -> None:
    texts = {
        "kelvar.md": f"# Lighthouses\n\n{LIGHTHOUSE}\n",
        "harbour.md": "# Harbour\n\nThe lighthouse keeper's boat leaves the harbour at dawn.\n",
    }
    index_files(doc_store, embedder, tmp_path / "docs", texts)
    grounder = Grounder(doc_store, ContextMeter(), lambda: embedder)
    with running_standin("--reply", "The keeper of the Kelvar lighthouse is Maren Holt.") as server:
        _, reply_id = await grounded_turn(
            history, grounder, server.endpoint(), "Who is the keeper of the Kelvar lighthouse?"
        )
    await grounder.meter.aclose()
    reply = await history.message(reply_id)
    uses = {Path(s["file"]).name: (s["use"], s.get("match")) for s in sources_of(reply.content["meta"])}
    assert uses == {"kelvar.md": ("matched", 1.0), "harbour.md": ("unused", None)}


async def test_a_2048_token_model_gets_fewer_passages_and_never_an_overflow(
    history: AsyncHistoryStore, doc_store: DocumentStore, embedder: Embedder, tmp_path: Path
) -> None:
    index_files(doc_store, embedder, tmp_path / "docs", filler(12))
    counts = {}
    for limit in (2048, 32768):
        grounder = Grounder(doc_store, ContextMeter(), lambda: embedder, candidates=12)
        # The stand-in refuses (HTTP 400) a prompt plus max_tokens over its --max-model-len, like vLLM.
        with running_standin("--max-model-len", str(limit), "--reply", "It turns all night [1].") as server:
            endpoint = replace(server.endpoint(), max_model_len=limit)
            _, reply_id = await grounded_turn(
                history, grounder, endpoint, "What does the lighthouse lamp do?", max_tokens=400
            )
        await grounder.meter.aclose()
        reply = await history.message(reply_id)
        assert reply.numbers.prompt_tokens is not None
        assert reply.numbers.prompt_tokens + 400 <= limit
        counts[limit] = len(sources_of(reply.content["meta"]))
    assert 0 < counts[2048] < counts[32768]


async def test_without_attached_collections_nothing_is_added(
    history: AsyncHistoryStore, doc_store: DocumentStore, embedder: Embedder, tmp_path: Path
) -> None:
    index_files(doc_store, embedder, tmp_path / "docs", {"kelvar.md": LIGHTHOUSE})
    grounder = Grounder(doc_store, ContextMeter(), lambda: embedder)
    endpoint = Endpoint(base_url="http://127.0.0.1:9/v1", model="m", max_model_len=2048)
    messages = [("user", "Who is the keeper of the Kelvar lighthouse?")]
    assert await grounder.augment(endpoint, GenerationSettings(), messages) is None
    # An attached collection that was removed since is passed over.
    assert await grounder.augment(endpoint, GenerationSettings(documents=("gone",)), messages) is None


async def test_a_failing_embedder_leaves_the_keyword_search(
    doc_store: DocumentStore, embedder: Embedder, tmp_path: Path
) -> None:
    index_files(doc_store, embedder, tmp_path / "docs", {"kelvar.md": LIGHTHOUSE, "other.md": "Stocks fell."})

    class Broken(Embedder):
        def embed_query(self, text: str) -> list[float]:
            raise EmbeddingFailed(self.name, "the server went away")

    broken = Broken(embedder.name, embedder.document, embedder.text)
    grounder = Grounder(doc_store, ContextMeter(), lambda: broken)
    hits = await grounder.search("Kelvar keeper", ["notes"])
    assert [Path(h.file).name for h in hits] == ["kelvar.md"]


async def test_collections_attach_and_detach_in_the_conversation_settings(history: AsyncHistoryStore) -> None:
    conversation = await history.create_conversation(settings={"temperature": 0.3})
    await attach(history, conversation.id, ["work", "papers"])
    again = await attach(history, conversation.id, ["papers", "notes"])
    assert attached(again) == ["work", "papers", "notes"]
    assert GenerationSettings.parse(again.settings).documents == ("work", "papers", "notes")
    assert GenerationSettings.parse(again.settings).temperature == 0.3
    left = await detach(history, conversation.id, "papers")
    assert attached(left) == ["work", "notes"]
    # Changing another setting through GenerationSettings keeps them.
    updated = GenerationSettings.parse(left.settings).updated(mode="completion").to_json_dict()
    assert updated["documents"] == ["work", "notes"]
    # Not a request parameter.
    assert "documents" not in GenerationSettings.parse(left.settings).to_generation_kwargs()


async def test_a_regenerated_reply_is_grounded_and_stored_with_its_sources_too(
    history: AsyncHistoryStore, doc_store: DocumentStore, embedder: Embedder, tmp_path: Path
) -> None:
    index_files(doc_store, embedder, tmp_path / "docs", {"kelvar.md": f"# Lighthouses\n\n{LIGHTHOUSE}\n"})
    grounder = Grounder(doc_store, ContextMeter(), lambda: embedder)
    with running_standin("--reply", "Maren Holt [1].") as server:
        engine = ChatEngine(history, server.endpoint)
        engine.augment = grounder.augment
        conversation = await engine.new_conversation()
        await attach(history, conversation.id, ["notes"])
        first = await (await engine.send(conversation.id, "Who keeps the Kelvar lighthouse?")).wait()
        again = await (await engine.regenerate(first.id)).wait()
        await engine.shutdown()
    await grounder.meter.aclose()
    assert again.id != first.id
    assert again.parent_id == first.parent_id
    assert [s["file"] for s in sources_of(again.content["meta"])] == [str(tmp_path / "docs" / "kelvar.md")]
    assert again.numbers.prompt_tokens == first.numbers.prompt_tokens  # the same passages were sent
