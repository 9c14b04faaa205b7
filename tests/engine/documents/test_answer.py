"""Answering from documents: the passages that fit the chat model's context go before the question,
numbered; a small model gets fewer, never an overflow; the sources are shown with file, page and passage."""

from __future__ import annotations

import json

from engine.documents.answer import grounded_message, sources_json, sources_lines
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
    lines = sources_lines(hits(2, chars=10))
    assert lines[0] == "[1] /docs/report1.pdf, page 1 — Results"
    assert lines[1] == "    “passage 1 xxxxxxxxxx”"
    long = sources_lines(hits(1, chars=1000), excerpt_chars=20)
    assert long[1] == "    “passage 1 xxxxxxxxxx…”"
    data = json.loads(sources_json(hits(1, chars=5)))
    assert data["event"] == "sources"
    assert data["sources"][0]["number"] == 1
    assert data["sources"][0]["page"] == 1
    assert data["sources"][0]["passage"] == "passage 1 xxxxx"
