"""The generated question set for recall@5 of the documents benchmark: files people keep, and the two kinds
of questions they ask of them.

Everything is fictional and drawn from seeded random generators, so every run asks the same questions of
the same files. Three collections of files, one question per sampled entry:

- **Paraphrased questions** (``paraphrase``) over a gazetteer: a PDF per fictional place, a fact a page
  (export, population, climate, founding, mayor, festival, river, dish). Each question names the place and
  words the fact without any other word of its passage ("Which goods are sold abroad by X?" for "X ships
  salted cod to merchants overseas"). Keyword search finds the place's eight pages (the name) but cannot
  tell which one answers; meaning must. One question per place.
- **Questions naming an exact identifier** (``identifier``), where meaning is the same for hundreds of
  passages and only a rare token tells them apart:

  - a parts catalogue (Markdown, a section per part): "Part KX-4471-B is the pressure valve of the grain
    dryer. It is fastened with a torque of 12 Nm, …" — asked "What torque does KX-4471-B need?". Codes share
    their two-letter family prefixes, as real part numbers do;
  - a staff directory (Markdown, a section per person): "Ada Dravenmir works in Accounts and looks after
    …; office B-214, phone extension 4821." — asked "What is Ada Dravenmir's phone extension?". First names
    are common ones, surnames rare made-up words, as in any company.

  Questions ask a sampled quarter of the entries; the rest are there as near-identical distractors.

Half the questions are of each kind (as many identifier questions as places). We have no data on the real
mix of what people ask their files, so the set weighs the two kinds equally and the benchmark reports the
recall of each kind apart: a reader who expects another mix can weigh them. The set was written from the
kinds of questions, not fitted to any retriever's result; its sizes were fixed before the first measurement.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Question:
    """A question, the passage text that answers it, and its kind ("paraphrase" or "identifier")."""

    text: str
    expected: str
    kind: str


KINDS = ("paraphrase", "identifier")

# -- gazetteer: paraphrased questions ----------------------------------------------------------------
EXPORTS = ["salted cod", "copper wire", "woven wool", "pine timber", "olive oil", "glass beads", "tea leaves"]
CLIMATES = ["foggy and cold", "hot and dry", "rainy all year", "windy in spring", "snowy in winter"]
RIVERS = ["Amber", "Silver", "Grey", "Swift", "Willow", "Stone"]
DISHES = ["smoked eel", "barley soup", "plum dumplings", "herring pie", "mushroom stew"]
PEOPLE = ["Ada Moreau", "Tomas Vey", "Ilse Grun", "Pavel Odin", "Nora Lind", "Elias Berg"]
_SYLLABLES = ["ka", "lo", "mir", "ven", "dra", "sol", "tek", "ora", "zan", "bel", "quo", "rin", "fal", "gus"]


def _syllables(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice(_SYLLABLES) for _ in range(n)).capitalize()


def places(n: int, seed: int = 5) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        name = f"{_syllables(rnd, 2)} {_syllables(rnd, 2)}"
        if name in seen:
            continue
        seen.add(name)
        out.append(
            {
                "name": name,
                "export": rnd.choice(EXPORTS),
                "population": f"{rnd.randint(1, 90)},{rnd.randint(100, 999)}",
                "climate": rnd.choice(CLIMATES),
                "year": str(rnd.randint(1100, 1850)),
                "mayor": rnd.choice(PEOPLE),
                "river": rnd.choice(RIVERS),
                "dish": rnd.choice(DISHES),
            }
        )
    return out


def passages_for(place: dict[str, str]) -> dict[str, str]:
    """Eight facts about a place, each worded so that its question (below) shares no word with it but the
    place's name: keyword search finds the place, only meaning finds the fact."""
    n = place["name"]
    return {
        "export": f"The harbour town of {n} ships {place['export']} to merchants overseas every season.",
        "population": f"According to the last census, {n} has {place['population']} inhabitants.",
        "climate": f"Visitors to {n} find the weather {place['climate']}.",
        "founded": f"{n} was founded in {place['year']} by fishermen from the south.",
        "mayor": f"The current mayor of {n} is {place['mayor']}.",
        "festival": f"Every autumn, {n} holds a lantern festival on the main square.",
        "river": f"The {place['river']} river flows through the centre of {n}.",
        "dish": f"Cooks in {n} are proud of their {place['dish']}, served with rye bread.",
    }


QUESTIONS = {
    "export": "Which goods are sold abroad by {n}?",
    "population": "How many people live in {n}?",
    "climate": "What is it usually like outside in {n}?",
    "founded": "When did the settlement of {n} begin?",
    "mayor": "Who leads the local council in {n}?",
    "festival": "What celebration takes place each year in {n}?",
    "river": "Which stream of water crosses {n}?",
    "dish": "What food is {n} famous for?",
}

# -- parts catalogue: exact codes ----------------------------------------------------------------------
COMPONENTS = ["pressure valve", "drive belt", "fuse holder", "filter cartridge", "ball bearing",
              "gasket ring", "relay board", "cooling fan"]  # fmt: skip
MACHINES = ["grain dryer", "bottling line", "paper press", "kiln conveyor", "ice machine", "saw mill"]
FAMILIES = ["KX", "KQ", "VT", "VR", "MB", "ML"]
PART_QUESTIONS = {
    "torque": "What torque does {code} need?",
    "hours": "After how many hours should {code} be swapped?",
    "stock": "How many {code} do we have in store?",
}


def parts(n: int, seed: int = 11) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        code = f"{rnd.choice(FAMILIES)}-{rnd.randint(1000, 9999)}-{rnd.choice(string.ascii_uppercase)}"
        if code in seen:
            continue
        seen.add(code)
        out.append(
            {
                "code": code,
                "component": rnd.choice(COMPONENTS),
                "machine": rnd.choice(MACHINES),
                "torque": str(rnd.randint(4, 60)),
                "hours": str(rnd.randint(2, 40) * 100),
                "stock": str(rnd.randint(0, 90)),
            }
        )
    return out


def part_passage(part: dict[str, str]) -> str:
    return (
        f"Part {part['code']} is the {part['component']} of the {part['machine']}. It is fastened with a "
        f"torque of {part['torque']} Nm, replaced after {part['hours']} operating hours, and "
        f"{part['stock']} are kept in stock."
    )


# -- staff directory: names --------------------------------------------------------------------------
FIRST_NAMES = ["Ada", "Tomas", "Ilse", "Pavel", "Nora", "Elias", "Marta", "Jonas", "Lena", "Oskar", "Rita",
               "Hugo", "Clara", "Viktor", "Sofia", "Anton"]  # fmt: skip
DEPARTMENTS = ["Accounts", "Purchasing", "Maintenance", "Quality", "Logistics", "Human Resources"]
DUTIES = ["supplier invoices", "the spare parts store", "safety inspections", "shift rotas", "travel claims",
          "customer returns", "the night shift", "new starters"]  # fmt: skip
STAFF_QUESTIONS = {
    "extension": "What is {name}'s phone extension?",
    "office": "Where can I find {name}?",
    "duty": "What does {name} look after?",
}


def staff(n: int, seed: int = 13) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        name = f"{rnd.choice(FIRST_NAMES)} {_syllables(rnd, 3)}"
        if name in seen:
            continue
        seen.add(name)
        out.append(
            {
                "name": name,
                "department": rnd.choice(DEPARTMENTS),
                "duty": rnd.choice(DUTIES),
                "office": f"{rnd.choice('ABCD')}-{rnd.randint(100, 399)}",
                "extension": str(rnd.randint(2000, 8999)),
            }
        )
    return out


def staff_passage(person: dict[str, str]) -> str:
    return (
        f"{person['name']} works in {person['department']} and looks after {person['duty']}; "
        f"office {person['office']}, phone extension {person['extension']}."
    )


# -- the files and the questions ----------------------------------------------------------------------
def write_corpus(folder: Path, n_places: int, seed: int = 0) -> list[Question]:
    """Write the three kinds of files into ``folder`` and return the questions: one per place
    (paraphrase), and as many again about parts and people (identifier), half each, asked of a quarter of
    the catalogue's and the directory's entries. Another ``seed`` gives another set of the same kind (the
    benchmark's is seed 0; the fusion settings were chosen on seed 1, see docs/documents.md)."""
    from tests.engine.documents.files import write_pdf

    folder.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(9 + seed)
    questions: list[Question] = []
    for i, place in enumerate(places(n_places, seed=5 + seed)):
        texts = passages_for(place)
        topics = list(texts)
        rnd.shuffle(topics)
        write_pdf(folder / f"place-{i:03d}.pdf", [[texts[t]] for t in topics])
        topic = rnd.choice(topics)
        questions.append(Question(QUESTIONS[topic].format(n=place["name"]), texts[topic], "paraphrase"))

    asked = n_places // 2
    catalogue = parts(asked * 4, seed=11 + seed)
    per_file = 25
    for f in range(0, len(catalogue), per_file):
        sections = [f"## {p['code']}\n\n{part_passage(p)}" for p in catalogue[f : f + per_file]]
        (folder / f"parts-{f // per_file:02d}.md").write_text(
            f"# Spare parts catalogue {f // per_file + 1}\n\n" + "\n\n".join(sections) + "\n",
            encoding="utf-8",
        )
    for part in rnd.sample(catalogue, asked):
        template = PART_QUESTIONS[rnd.choice(list(PART_QUESTIONS))]
        questions.append(Question(template.format(code=part["code"]), part_passage(part), "identifier"))

    people = staff((n_places - asked) * 4, seed=13 + seed)
    lines = ["# Staff directory"]
    for department in DEPARTMENTS:
        lines.append(f"## {department}")
        lines += [f"### {p['name']}\n\n{staff_passage(p)}" for p in people if p["department"] == department]
    (folder / "staff-directory.md").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    for person in rnd.sample(people, n_places - asked):
        template = STAFF_QUESTIONS[rnd.choice(list(STAFF_QUESTIONS))]
        questions.append(Question(template.format(name=person["name"]), staff_passage(person), "identifier"))
    return questions
