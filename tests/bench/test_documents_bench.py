"""The documents benchmark runs end to end at a tiny size without vLLM and reports rows of the right shape;
its generated question set is deterministic, half paraphrased questions (none with a key word of its passage
but the place's name) and half naming a part code or a person that only their passage has. Nothing here looks
at how fast anything is."""

from __future__ import annotations

import re
from pathlib import Path

from bench import registry
from bench.context import BenchContext
from bench.document_questions import (
    QUESTIONS,
    part_passage,
    parts,
    passages_for,
    places,
    staff,
    staff_passage,
    write_corpus,
)


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


def test_the_question_set_is_half_paraphrased_half_naming_identifiers_and_the_same_every_run(
    tmp_path: Path,
) -> None:
    questions = write_corpus(tmp_path / "a", 30)
    assert questions == write_corpus(tmp_path / "b", 30)
    assert [q.kind for q in questions].count("paraphrase") == 30
    assert [q.kind for q in questions].count("identifier") == 30
    assert len(list((tmp_path / "a").glob("place-*.pdf"))) == 30
    written = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "a").glob("*.md"))
    for q in questions:
        if q.kind == "identifier":
            assert q.expected in written
    assert len({q.text for q in questions}) == len(questions)


def test_paraphrased_questions_avoid_their_passages_key_words(tmp_path: Path) -> None:
    names = [p["name"] for p in places(30)]
    for q in write_corpus(tmp_path, 30):
        if q.kind != "paraphrase":
            continue
        name = next(n for n in names if n in q.text)
        assert name in q.expected
        rest = set(re.findall(r"\w+", q.text.replace(name, "").lower()))
        key = set(re.findall(r"\w+", q.expected.replace(name, "").lower())) - {"the", "of", "in", "is"}
        assert not rest & key, q


def test_identifier_questions_name_a_code_or_person_that_only_their_passage_has(tmp_path: Path) -> None:
    catalogue = {p["code"]: part_passage(p) for p in parts(60)}
    people = {p["name"]: staff_passage(p) for p in staff(60)}
    found = 0
    for q in write_corpus(tmp_path, 30):
        if q.kind != "identifier":
            continue
        named = [c for c in catalogue if c in q.text] + [n for n in people if n in q.text]
        assert len(named) == 1, q
        entries = {**catalogue, **people}
        assert entries[named[0]] == q.expected
        assert sum(named[0] in passage for passage in entries.values()) == 1
        found += 1
    assert found == 30


def test_every_question_template_shares_no_word_with_its_passage_but_the_name() -> None:
    place = places(1)[0]
    name = place["name"]
    for topic, passage in passages_for(place).items():
        question = QUESTIONS[topic].format(n=name)
        rest = set(re.findall(r"\w+", question.replace(name, "").lower()))
        key = set(re.findall(r"\w+", passage.replace(name, "").lower())) - {"the", "of", "in", "is"}
        assert not rest & key, topic
