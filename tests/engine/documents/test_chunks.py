"""Passages keep their place: exact character spans, pages, heading paths, and a size the embedder reads."""

from __future__ import annotations

from engine.documents.chunks import MAX_TOKENS, split_text, token_bound


def test_every_chunk_is_the_exact_slice_of_the_text_it_claims() -> None:
    text = "# Guide\n\nFirst paragraph.\n\n## Install\n\n" + "Run the installer now. " * 80 + "\n\nDone.\n"
    chunks = split_text(text, structured=True)
    assert len(chunks) > 2
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.content
        assert chunk.content == chunk.content.strip()
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_heading_path_follows_the_nesting_and_resets_at_a_higher_level() -> None:
    text = "# A\n\nalpha\n\n## B\n\nbeta\n\n### C\n\ngamma\n\n## D\n\ndelta\n\n# E\n\nepsilon\n"
    sections = {c.content.split("\n")[-1]: c.headings for c in split_text(text, structured=True)}
    assert sections["alpha"] == ("A",)
    assert sections["beta"] == ("A", "B")
    assert sections["gamma"] == ("A", "B", "C")
    assert sections["delta"] == ("A", "D")
    assert sections["epsilon"] == ("E",)


def test_hash_lines_in_code_blocks_and_plain_text_are_not_headings() -> None:
    text = "# Real\n\n```\n# a comment in code\nx = 1\n```\n\nafter\n"
    assert {c.headings for c in split_text(text, structured=True)} == {("Real",)}
    assert {c.headings for c in split_text(text, structured=False)} == {()}


def test_pages_are_counted_from_form_feeds_and_never_shared_by_a_chunk() -> None:
    text = "one\n\fpage two text\n\f\fpage four\n"
    chunks = split_text(text, paged=True)
    assert [(c.page, c.content) for c in chunks] == [(1, "one"), (2, "page two text"), (4, "page four")]
    assert all("\f" not in c.content for c in chunks)


def test_long_paragraphs_are_cut_at_sentence_ends_within_the_limits() -> None:
    sentence = "The quick brown fox jumps over the lazy dog. "
    text = sentence * 60
    chunks = split_text(text, max_chars=300)
    assert len(chunks) >= 9
    for chunk in chunks:
        assert len(chunk.content) <= 300
        assert chunk.content.endswith(".")


def test_text_without_spaces_is_bounded_by_word_pieces_not_characters() -> None:
    text = "日本語のテキスト" * 200  # CJK: about one word piece a character
    chunks = split_text(text)
    assert len(chunks) > 1
    assert all(token_bound(c.content) <= MAX_TOKENS for c in chunks)
    assert "".join(c.content for c in chunks) == text


def test_a_heading_stays_with_the_long_paragraph_it_introduces() -> None:
    text = "## Setup\n\n" + "word " * 400
    first = split_text(text, structured=True)[0]
    assert first.content.startswith("## Setup\n\nword")


def test_blank_text_gives_no_chunks() -> None:
    assert split_text("  \n\n \f \n", paged=True) == []


def test_a_heading_with_only_subsections_under_it_is_no_passage_of_its_own() -> None:
    text = "# Garden\n\n## Tomatoes\n\nFull sun.\n"
    [chunk] = split_text(text, structured=True)
    assert chunk.content == "## Tomatoes\n\nFull sun."
    assert chunk.headings == ("Garden", "Tomatoes")
