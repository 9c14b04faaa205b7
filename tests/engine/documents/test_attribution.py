"""Which passages a reply used: its [n] markers when it has any (markers naming no passage ignored), else the
passages the app finds its sentences drawing on; on real-shaped passages and the built-in model's real
replies, and as properties (a sentence copied from passage k is always attributed to k)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.documents.answer import sources_json, sources_lines
from engine.documents.attribution import (
    MATCH_THRESHOLD,
    attribute,
    cited_numbers,
    grouped,
    matched_scores,
    sentences,
    use_of,
)

# Passages shaped like the store's (a Markdown section with its heading, a PDF page, a paragraph of text).
KEEPER = (
    "# Kelvar lighthouse\n\nThe keeper of the Kelvar lighthouse is "
    "named Orla Brennick. She lights the lamp at "
    "dusk and logs every ship that passes."
)
HARBOUR = "# Harbour\n\nFishing boats leave the harbour at dawn."
TIDE_TABLES = "Tide tables for the northern coast."
HIGH_TIDE = "High tide is at noon."
INSTALL = (
    "## Linux\n\nInstall the app with pipx: run `pipx install vllm-desk`. The first start downloads the "
    "runtime, about 300 MB, into ~/.local/share/vllm-desk. A GPU is "
    "optional; without one the CPU build is used."
)
BACKUP = (
    "## Backups\n\nConversations are stored in a SQLite file, history.db. Copy it while the app is closed to "
    "make a backup. Exports in JSON keep every branch of a conversation."
)
PRIVACY = (
    "## Privacy\n\nNothing leaves your computer unless you add a remote server. The app sends no telemetry."
)
SOUP = (
    "Lentil soup: soften an onion and two carrots in olive oil, add "
    "250 g of red lentils and a litre of stock, "
    "and simmer for 25 minutes. Season with cumin and lemon juice."
)
BREAD = (
    "Soda bread needs no yeast: mix 500 g of flour, a teaspoon of "
    "baking soda, salt and 400 ml of buttermilk, "
    "shape a round loaf and bake it for 40 minutes at 200 degrees."
)
RESULTS = (
    "Revenue grew 12 percent in 2025 to 4.2 million euros, driven by the new subscription plan. Costs rose 5 "
    "percent."
)
STAFF = (
    "The company employed 38 people at the end of 2025, up from 31. Two offices were opened, in Ghent and in "
    "Lyon."
)
RISKS = (
    "The main risk is the dependence on a single cloud provider. A second provider will be evaluated in 2026."
)
POOL = [KEEPER, HARBOUR, TIDE_TABLES, HIGH_TIDE, INSTALL, BACKUP, PRIVACY, SOUP, BREAD, RESULTS, STAFF, RISKS]

# Replies of the built-in SmolLM2-135M (vLLM on the CPU, temperature 0 and 0.8) to these passages, numbered
# in the given order, with the passages they draw on (by reading them): those of the 23 collected without a
# [n] marker (the other 6 mostly echoed the prompt's "[1] file" headers and are attributed by those). Several
# restate the question, wander, or take the wrong passage — attribution says which one they took.
REAL_REPLIES: list[tuple[str, list[str], str, set[int]]] = [
    (
        "Who is the keeper of the Kelvar lighthouse?",
        [KEEPER, HARBOUR, TIDE_TABLES, HIGH_TIDE],
        "The keeper of the Kelvar lighthouse is named Orla Brennick.",
        {1},
    ),
    (
        "When is high tide?",
        [HIGH_TIDE, TIDE_TABLES, HARBOUR, KEEPER],
        'The answer to this question is: "Fishing boats leave the harbour at dawn."',
        {3},  # the wrong passage, and the app says so
    ),
    (
        "When do the fishing boats leave?",
        [KEEPER, HARBOUR, TIDE_TABLES, HIGH_TIDE],
        "The answer to this question is:",
        set(),
    ),
    (
        "What does the keeper do at dusk?",
        [KEEPER, HARBOUR, HIGH_TIDE],
        "The keeper of the Kelvar lighthouse is named Orla Brennick. "
        "She lights the lamp at dusk and logs every "
        "ship that passes.",
        {1},
    ),
    (
        "How do I install the app on Linux?",
        [INSTALL, BACKUP, PRIVACY],
        "1. Download the guide.md.\n2. Install the guide.md.\n3. Copy "
        "the guide.md to your local machine.\n4. Run "
        "the command to copy the guide.md to your local "
        "machine.\n\nQuestion: How do I install the guide.md on "
        "Linux?",
        set(),  # made up: no passage says any of it
    ),
    (
        "How do I back up my conversations?",
        [BACKUP, INSTALL, PRIVACY],
        "1. Download the guide.md, and copy it to your local machine.\n2. Install the installer.\n3. Run the "
        "installer.\n4. Run the installer again.\n\nQuestion: How do I back up my conversations?",
        set(),  # "Install the installer" shares one word with the install passage: not enough
    ),
    (
        "How long does the lentil soup simmer?",
        [SOUP, BREAD],
        "The answer to the question is: 40 minutes",
        {2},
    ),
    (
        "How much did revenue grow in 2025?",
        [RESULTS, STAFF, RISKS],
        "The answer to this question is: 4.2 million euros.",
        {1},
    ),
    (
        "What is the main risk?",
        [RESULTS, STAFF, RISKS],
        "The main risk is the dependence on a single cloud provider.",
        {3},
    ),
    (
        "Who won the football world cup in 2010?",
        [KEEPER, HARBOUR, HIGH_TIDE],
        "The answer to this question is: The football world cup was won by the United States.",
        set(),
    ),
    ("What is the capital of France?", [SOUP, BREAD], "The capital of France is Paris.", set()),
    (
        "Who is the keeper of the Kelvar lighthouse?",
        [KEEPER, HARBOUR, TIDE_TABLES, HIGH_TIDE],
        "The keeper of the Kelvar lighthouse is named Orla Brennick. She lights the lamp at dusk and logs "
        "every ship that passes. She is a skilled keeper of the Kelvar lighthouse and is there to protect "
        "the light up there. She has been working for over a decade and is a loyal and unafraid keeper.",
        {1},  # the made-up rest matches nothing else
    ),
    ("Does the app send telemetry?", [PRIVACY, INSTALL, BACKUP], "[No, I do not,response]", set()),
    (
        "How long does the lentil soup simmer?",
        [SOUP, BREAD],
        "Question: What is the answer to this Question?\n\nVENICE BURGER: is the LENTIL soup that is served "
        "at Fettuccine a la Vien in Venice.",
        set(),
    ),
]


def records(passages: list[str]) -> list[dict[str, Any]]:
    """Sources as the grounding stores them (``source_record``)."""
    return [
        {
            "number": n,
            "file": f"/docs/f{n}.md",
            "page": None,
            "section": f"S{n}",
            "passage": p,
            "doc_id": f"d{n}",
        }
        for n, p in enumerate(passages, start=1)
    ]


def used_numbers(attributed: list[dict[str, Any]]) -> set[int]:
    return {s["number"] for s in attributed if s["use"] in ("cited", "matched")}


# --- markers ---------------------------------------------------------------------------------------------


def test_markers_in_their_usual_shapes_name_sources_in_the_order_first_cited() -> None:
    assert cited_numbers("Orla Brennick [2]. High tide is at noon [4][1].", 4) == [2, 4, 1]
    assert cited_numbers("See [1, 3] and [2; 3].", 3) == [1, 3, 2]
    assert cited_numbers("As [2-4] say, and [1–2].", 4) == [2, 3, 4, 1]
    assert cited_numbers("No markers here, only a list [a] and (1).", 3) == []


def test_markers_that_name_no_passage_are_ignored() -> None:
    assert cited_numbers("[0] [5] [12] [3] [999999]", 4) == [3]
    assert cited_numbers("[2-900]", 4) == []  # a range far past the sources is not a citation of all of them
    assert cited_numbers("[4-2]", 4) == []


def test_a_reply_with_markers_uses_only_the_passages_it_cites() -> None:
    out = attribute("Fishing boats leave the harbour at dawn [1].", records([KEEPER, HARBOUR]), "When?")
    # Cited wins, even where the wording says otherwise: the model's own citation is what it claims.
    assert [s["use"] for s in out] == ["cited", "unused"]
    assert all("match" not in s for s in out)


def test_a_reply_whose_markers_all_name_no_passage_is_matched_instead() -> None:
    out = attribute("Fishing boats leave the harbour at dawn [7].", records([KEEPER, HARBOUR]), "When?")
    assert [s["use"] for s in out] == ["unused", "matched"]
    assert out[1]["match"] == 1.0


# --- matching ----------------------------------------------------------------------------------------------


def test_the_built_in_models_real_replies_are_attributed_to_the_passages_they_draw_on() -> None:
    for question, passages, reply, expected in REAL_REPLIES:
        out = attribute(reply, records(passages), question)
        assert used_numbers(out) == expected, (question, reply, out)
        assert all(s["use"] in ("matched", "unused") for s in out)  # no marker: nothing is "cited"


def test_no_sentence_of_one_passage_is_matched_to_another() -> None:
    # Precision on the real-shaped pool: passages on the same topic (two tide pages, three guide sections,
    # two recipes, three report pages) share words, never most of a sentence's.
    for k, passage in enumerate(POOL):
        others = [p for i, p in enumerate(POOL) if i != k]
        for sentence in sentences(passage):
            assert matched_scores(sentence, others) == {}, sentence


def test_the_questions_own_words_prove_nothing() -> None:
    # Every passage retrieved for a question shares its words; a reply that only restates it used none.
    question = "Who is the keeper of the Kelvar lighthouse?"
    assert matched_scores("The keeper of the Kelvar lighthouse is...", [KEEPER], question) == {}
    # "is Orla" is not the passage's ("is named Orla"): 4 of its 5 own words and pairs are.
    assert matched_scores("The keeper of the Kelvar lighthouse is Orla Brennick.", [KEEPER], question) == {
        1: 0.8
    }


def test_one_shared_word_is_not_enough() -> None:
    assert matched_scores("Noon.", [HIGH_TIDE], "When?") == {}
    assert matched_scores("At noon.", [HIGH_TIDE], "When?") == {1: 1.0}


def test_a_reply_drawing_on_two_passages_uses_both_and_records_the_best_share() -> None:
    reply = "Orla Brennick lights the lamp. The company employed 38 people, and opened offices in Ghent."
    out = attribute(reply, records([KEEPER, RISKS, STAFF]), "Tell me things.")
    assert [s["use"] for s in out] == ["matched", "unused", "matched"]
    assert MATCH_THRESHOLD <= out[0]["match"] <= 1.0
    assert MATCH_THRESHOLD <= out[2]["match"] <= 1.0


def test_sentences_are_cut_at_ends_clauses_and_lines() -> None:
    assert sentences("The answer is: 40 minutes. Done!\nNext line") == [
        "The answer is:",
        "40 minutes.",
        "Done!",
        "Next line",
    ]


def test_attributing_again_replaces_the_earlier_use() -> None:
    first = attribute("At noon.", records([HIGH_TIDE, HARBOUR]), "When?")
    again = attribute("Fishing boats leave the harbour at dawn [2].", first, "When?")
    assert [s["use"] for s in again] == ["unused", "cited"]
    assert all("match" not in s for s in again)


def test_sources_stored_before_attribution_read_as_unknown() -> None:
    old = records([KEEPER, HARBOUR])
    assert [use_of(s) for s in old] == [None, None]
    assert grouped(old) == ("unknown", [], old)
    assert use_of({"use": "something else"}) is None


def test_grouped_puts_the_used_first_and_says_how_they_are_known() -> None:
    cited = attribute("Dawn [2].", records([KEEPER, HARBOUR, HIGH_TIDE]))
    assert [(how, [s["number"] for s in u], [s["number"] for s in o]) for how, u, o in [grouped(cited)]] == [
        ("cited", [2], [1, 3])
    ]
    matched = attribute("High tide is at noon.", records([KEEPER, HIGH_TIDE]))
    assert grouped(matched)[0] == "matched"
    none = attribute("I cannot say.", records([KEEPER, HIGH_TIDE]))
    assert grouped(none) == ("none", [], none)


def test_the_command_line_lists_the_used_sources_first_under_how_they_are_known() -> None:
    out = attribute("Fishing boats leave the harbour at dawn.", records([KEEPER, HARBOUR]), "When?")
    lines = sources_lines(out)
    assert lines[0].startswith("Sources the reply draws on (matched by the app")
    assert lines[1] == "[2] /docs/f2.md — S2 (matched 100%)"
    assert lines[2] == "    “# Harbour Fishing boats leave the harbour at dawn.”"
    assert lines[3] == "Also given to the model, not used:"
    assert lines[4] == "[1] /docs/f1.md — S1"
    assert sources_lines(records([HARBOUR]))[:2] == ["Sources:", "[1] /docs/f1.md — S1"]
    assert '"use": "matched"' in sources_json(out)


# --- properties ------------------------------------------------------------------------------------------

COPYABLE = [(k, s) for k, p in enumerate(POOL) for s in sentences(p) if len(s.split()) >= 5]
LEAD_INS = ["", "The answer to this question is: ", "According to the sources, ", "Answer:\n", "Sure! "]
QUESTIONS = ["When is it?", "Who is the keeper of the Kelvar lighthouse?", "How do I back up?", "What grew?"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(COPYABLE),
    st.lists(st.integers(0, len(POOL) - 1), max_size=4, unique=True),
    st.integers(0, 4),
    st.sampled_from(LEAD_INS),
    st.sampled_from(QUESTIONS),
)
def test_a_reply_copied_from_passage_k_is_always_attributed_to_k(
    copied: tuple[int, str], others: list[int], position: int, lead_in: str, question: str
) -> None:
    k, sentence = copied
    given_order = [i for i in others if i != k]
    given_order.insert(min(position, len(given_order)), k)
    out = attribute(lead_in + sentence, records([POOL[i] for i in given_order]), question)
    by_pool = {given_order[s["number"] - 1]: s for s in out}
    assert by_pool[k]["use"] == "matched"
    assert by_pool[k]["match"] >= MATCH_THRESHOLD
    # And no passage that does not hold the sentence's words is said to be used along with it.
    for i, source in by_pool.items():
        if i != k and source["use"] == "matched":
            assert matched_scores(sentence, [POOL[i]], question), (sentence, POOL[i])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.text(max_size=60), st.lists(st.sampled_from(POOL), min_size=1, max_size=5))
def test_any_reply_is_attributed_without_failing_and_keeps_every_source(
    reply: str, question: str, passages: list[str]
) -> None:
    given_sources = records(passages)
    out = attribute(reply, given_sources, question)
    assert [s["number"] for s in out] == [s["number"] for s in given_sources]
    assert all(s["use"] in ("cited", "matched", "unused") for s in out)
    assert all(
        {k: v for k, v in s.items() if k not in ("use", "match")} == g
        for s, g in zip(out, given_sources, strict=True)
    )
    if "[" not in reply:
        assert all(s["use"] != "cited" for s in out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-2, 12), max_size=6), st.integers(1, 8), st.sampled_from(["", "Orla Brennick. "]))
def test_the_cited_passages_are_exactly_the_markers_that_name_one(
    markers: list[int], count: int, text: str
) -> None:
    reply = text + " ".join(f"[{n}]" for n in markers)
    out = attribute(reply, records([POOL[i % len(POOL)] for i in range(count)]))
    named = {n for n in markers if 1 <= n <= count}
    if named:
        assert {s["number"] for s in out if s["use"] == "cited"} == named
        assert all(s["use"] in ("cited", "unused") for s in out)
    else:
        assert all(s["use"] != "cited" for s in out)
