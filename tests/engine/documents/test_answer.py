"""Answering from documents: the passages that fit the chat model's context go before the question,
numbered; a small model gets fewer, never an overflow; the sources are shown with file, page and passage."""

from __future__ import annotations

import json

from engine.documents.answer import grounded_message, sources_json, sources_lines
from engine.documents.attribution import attribute
from engine.documents.grounding import source_record
from engine.documents.retrieval import Hit, estimate_tokens


def hits(n: int, chars: int = 700) -> list[Hit]:
    return [
        Hit(
            i,
            1.0 / i,
            "c",
            f"/docs/report{i}.pdf",
            i,
            "Results",
            0,
            chars,
            f"passage {i} " + "x" * chars,
            f"d{i}",
        )
        for i in range(1, n + 1)
    ]


def test_passages_that_fit_a_2048_token_model_go_before_the_question_numbered() -> None:
    question = "What were the results?"
    message, chosen = grounded_message(
        question, hits(8), system="Be brief.", max_model_len=2048, reply_tokens=None
    )
    assert 0 < len(chosen) < 8
    assert message.startswith("Answer the question using the numbered sources below.")
    assert f"[{len(chosen)}] report{len(chosen)}.pdf, page {len(chosen)}, Results" in message
    assert message.endswith("\n\nQuestion: What were the results?")
    # system + message + template + 512 for the reply stay inside the context, counted pessimistically
    assert estimate_tokens("Be brief.") + estimate_tokens(message) + 64 + 512 <= 2048 + 8


def test_a_bigger_context_or_a_shorter_reply_gets_more_passages() -> None:
    small = grounded_message("q", hits(8), system="", max_model_len=2048, reply_tokens=512)[1]
    shorter_reply = grounded_message("q", hits(8), system="", max_model_len=2048, reply_tokens=100)[1]
    big = grounded_message("q", hits(8), system="", max_model_len=32768, reply_tokens=512)[1]
    assert len(small) < len(shorter_reply) < len(big) == 8


def test_when_nothing_fits_the_question_goes_alone() -> None:
    question = "q" * 600
    assert grounded_message(question, hits(3), system="", max_model_len=600, reply_tokens=512) == (
        question,
        [],
    )
    assert grounded_message("q", [], system="", max_model_len=2048, reply_tokens=None) == ("q", [])


def test_sources_are_listed_with_file_page_section_and_the_quoted_passage() -> None:
    stored = [source_record(n, hit) for n, hit in enumerate(hits(2, chars=10), start=1)]
    lines = sources_lines(stored)  # stored before replies were attributed: all listed, as they were
    assert lines[0] == "Sources:"
    assert lines[1] == "[1] /docs/report1.pdf, page 1 — Results"
    assert lines[2] == "    “passage 1 xxxxxxxxxx”"
    long = sources_lines([source_record(1, hits(1, chars=1000)[0])], excerpt_chars=20)
    assert long[2] == "    “passage 1 xxxxxxxxxx…”"
    cited = sources_lines(attribute("It is passage 2 [2].", stored))
    assert cited[:2] == ["Sources the reply cites:", "[2] /docs/report2.pdf, page 2 — Results"]
    assert cited[3:5] == ["Also given to the model, not used:", "[1] /docs/report1.pdf, page 1 — Results"]
    data = json.loads(sources_json(attribute("It is passage 2 [2].", stored[:1] + stored[1:])))
    assert data["event"] == "sources"
    assert [(s["number"], s["use"]) for s in data["sources"]] == [(1, "unused"), (2, "cited")]
    assert data["sources"][0]["page"] == 1
    assert data["sources"][0]["passage"] == "passage 1 xxxxxxxxxx"
