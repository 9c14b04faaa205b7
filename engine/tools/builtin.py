"""The built-in tools: the current date and time, search my chat history, search my documents.

All three only read. History search goes through the history store's full-text index
(:meth:`engine.history.async_store.AsyncHistoryStore.search`); document search is the document collections'
retrieval
pipeline (:func:`engine.documents.retrieval.build_pipeline`) wrapped as a Haystack ``PipelineTool``.

Their free-text parameters are bounded: a query is at most :data:`QUERY_MAX_CHARS` characters, a time zone
matches :data:`TIMEZONE_PATTERN` (itself bounded). A forced choice sends the tool ``strict``, and vLLM 0.32
(xgrammar 0.2.8) then holds the string to the bound, so a small model (the built-in SmolLM2-135M) that runs a
string on — measured: ``"1234567890123…"`` until the token limit, the JSON never closed — has its string
closed at the bound and the call stays well-formed. A string cut there still gives a clear result: a query
finds hits or says nothing matched, an unknown zone is a tool error the model and the user see. xgrammar
honours ``maxLength`` or ``pattern``, not both at once (it warns and drops the length), and a bounded string
cannot hold a quote, a backslash or a line break (no escapes) — fine for a query or a zone name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from haystack.tools.tool import Tool

    from engine.documents.embedder import Embedder
    from engine.documents.retrieval import Mode
    from engine.documents.store import DocumentStore
    from engine.history.async_store import AsyncHistoryStore

CURRENT_TIME = "current_time"
SEARCH_HISTORY = "search_history"
SEARCH_DOCUMENTS = "search_documents"
BUILTIN_NAMES = (CURRENT_TIME, SEARCH_HISTORY, SEARCH_DOCUMENTS)
# A few words to look for; the bound keeps a forced strict call within the built-in model's reply budget
# (one character can cost one token: digits did).
QUERY_MAX_CHARS = 100
# An IANA name (the longest is America/Argentina/ComodRivadavia: segments of at most 10 and 14 characters, the
# characters A-Z a-z 0-9 _ + -), with margin. The pattern bounds the length itself: xgrammar ignores a
# maxLength beside a pattern.
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]{0,15}(/[A-Za-z0-9_+-]{1,20}){0,2}$"
DESCRIPTIONS = {
    CURRENT_TIME: "The current date, time and weekday (in a time zone, or this computer's).",
    SEARCH_HISTORY: "Search the user's earlier chat conversations for words; returns matching snippets.",
    SEARCH_DOCUMENTS: "Search the user's document collections; returns passages with the file and page.",
}


def now_text(timezone: str = "", *, now: dt.datetime | None = None) -> str:
    """``2026-12-06 03:04:05 +0100 (Sunday), time zone Europe/Paris``; raises ``ValueError`` for an unknown
    zone."""
    moment = now or dt.datetime.now(dt.UTC)
    if timezone:
        try:
            zone: dt.tzinfo | None = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"“{timezone}” is not a time zone (use a name such as Europe/Paris or UTC)"
            ) from None
        local = moment.astimezone(zone)
        name = timezone
    else:
        local = moment.astimezone()
        name = local.tzname() or "local"
    return f"{local:%Y-%m-%d %H:%M:%S %z} ({local:%A}), time zone {name}"


def current_time_tool() -> Tool:
    from haystack.tools.tool import Tool

    parameters = {
        "type": "object",
        "properties": {
            "timezone": {
                "type": "string",
                "pattern": TIMEZONE_PATTERN,
                "description": "An IANA time zone such as Europe/Paris; leave out for this computer's.",
            }
        },
        "additionalProperties": False,
    }

    def current_time(timezone: str = "") -> str:
        return now_text(timezone)

    return Tool(
        name=CURRENT_TIME,
        description=DESCRIPTIONS[CURRENT_TIME],
        parameters=parameters,
        function=current_time,
    )


def history_search_tool(history: AsyncHistoryStore, *, max_hits: int = 8) -> Tool:
    from haystack.tools.tool import Tool

    parameters = {
        "type": "object",
        "properties": {
            "query": query_parameter("Words to look for."),
            "limit": {"type": "integer", "minimum": 1, "maximum": max_hits, "description": "How many hits."},
        },
        "required": ["query"],
        "additionalProperties": False,
    }

    async def search_history(query: str, limit: int = 5) -> str:
        hits = await history.search(query, limit=max(1, min(limit, max_hits)), mark=("«", "»"))
        if not hits:
            return f"No conversation mentions “{query}”."
        lines = []
        for hit in hits:
            where = f"conversation {hit.conversation_id} “{hit.title}”"
            lines.append(f"- {where}: {hit.snippet}" if hit.message_id is not None else f"- {where} (title)")
        return "\n".join(lines)

    return Tool(
        name=SEARCH_HISTORY,
        description=DESCRIPTIONS[SEARCH_HISTORY],
        parameters=parameters,
        async_function=search_history,
    )


def query_parameter(description: str) -> dict[str, Any]:
    """A search query's schema: a string of 1 to :data:`QUERY_MAX_CHARS` characters."""
    return {"type": "string", "minLength": 1, "maxLength": QUERY_MAX_CHARS, "description": description}


def format_passages(documents: Sequence[Any]) -> str:
    """Passages as the model reads them: numbered, each with where it is."""
    from engine.documents.retrieval import hit_from_document, source_text

    if not documents:
        return "No passage of the documents matches."
    return "\n\n".join(
        source_text(number, hit_from_document(number, doc)) for number, doc in enumerate(documents, start=1)
    )


def documents_search_tool(
    store: DocumentStore, collections: Sequence[str], *, embedder: Embedder | None = None, top_k: int = 5
) -> Tool:
    """The collections' retrieval pipeline as a ``PipelineTool`` (keyword search without an embedder,
    hybrid with one)."""
    from haystack.tools import PipelineTool

    from engine.documents.retrieval import build_pipeline

    mode: Mode = "hybrid" if embedder is not None else "keyword"
    pipeline = build_pipeline(store, embedder, collections, mode=mode, top_k=top_k)
    targets = ["keyword.query", *(["embed.text"] if embedder is not None else [])]

    def passages(found: Sequence[Any]) -> str:
        # The pipeline hands on bare ids and scores (as Retriever.search does); the passages are read here.
        return format_passages(store.documents_for([(int(d.id), float(d.score or 0.0)) for d in found]))

    return PipelineTool(
        pipeline,
        name=SEARCH_DOCUMENTS,
        description=DESCRIPTIONS[SEARCH_DOCUMENTS] + " Collections: " + ", ".join(collections) + ".",
        input_mapping={"query": targets},
        # Our own schema in place of the one Haystack derives from the pipeline's input (an unbounded string).
        parameters={
            "type": "object",
            "properties": {"query": query_parameter("Words or a question to look for in the documents.")},
            "required": ["query"],
        },
        output_mapping={"join.documents": "documents"},
        outputs_to_string={"source": "documents", "handler": passages},
    )
