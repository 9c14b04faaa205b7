"""The documents benchmark runs end to end at a tiny size without vLLM and reports rows of the right shape;
its generated question set asks every question without the key words of its passage. Nothing here looks
at how fast anything is."""

from __future__ import annotations

import re
from pathlib import Path

from bench import registry
from bench.context import BenchContext
from bench.documents import QUESTIONS, passages_for, places, write_recall_corpus


def test_tiny_run_without_vllm_reports_ingest_and_latency(tmp_path: Path) -> None:
    ctx = BenchContext(
        quick=True, cache_dir=tmp_path / "c", work_dir=tmp_path / "w", scale=0.1, repeats=3, real_vllm=False
    )
    bench = next(b for b in registry.BENCHMARKS if b.name == "documents")
    result = registry.run_one(bench, ctx)
    assert result.status == "partial", result.reason + "\n".join(result.notes)
    names = {m.name for m in result.metrics}
    assert {"ingest_pages_s", "ingest_chunks_s", "hybrid_p95_1000", "keyword_p95_10000", "rss_1000"} <= names
    assert "hybrid_p95_100000" not in names  # quick mode stops at 10,000
    ingest = next(m for m in result.metrics if m.name == "ingest_chunks_s")
    assert ingest.value > 0
    assert ingest.baseline is not None
    assert ingest.baseline > 0
    assert any("recall@5" in note for note in result.notes)


def test_questions_avoid_their_passages_key_words(tmp_path: Path) -> None:
    questions = write_recall_corpus(tmp_path, 30)
    assert len(questions) == 30
    assert len(list(tmp_path.glob("*.pdf"))) == 30
    for question, passage in questions:
        name = next(p["name"] for p in places(30) if p["name"] in question)
        assert name in passage
        rest = set(re.findall(r"\w+", question.replace(name, "").lower()))
        key = set(re.findall(r"\w+", passage.replace(name, "").lower())) - {"the", "of", "in", "is"}
        assert not rest & key, (question, passage)


def test_every_question_template_shares_no_word_with_its_passage_but_the_name() -> None:
    place = places(1)[0]
    name = place["name"]
    for topic, passage in passages_for(place).items():
        question = QUESTIONS[topic].format(n=name)
        rest = set(re.findall(r"\w+", question.replace(name, "").lower()))
        key = set(re.findall(r"\w+", passage.replace(name, "").lower())) - {"the", "of", "in", "is"}
        assert not rest & key, topic
