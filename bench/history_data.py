"""A generated chat history of N conversations / M messages, in our schema and in a plain baseline file.

Generated once per size into the cache folder and reused (a half-written file is never reused: it is built
under a temporary name and renamed at the end). Text is drawn from a Zipf-distributed vocabulary so full-text
search sees common and rare words like in real chats. One conversation has ``big`` messages (the one the
"open a 2,000-message conversation" measurement opens); it is the most recently updated one.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GENERATOR_VERSION = 1
SEED = 20261126
_SYLLABLES = "ka lo mi ne ru sa ti vo ze pa qu ri sto fle gra dro mun tel bis cor ax".split()  # noqa: SIM905
_REAL = (  # noqa: SIM905 - a word list reads better as text
    "python vllm server model token stream latency memory kernel cache query sqlite index function class "
    "error config docker linux window button paris france berlin köln museum recipe garden tomato bicycle "
    "quantum matrix vector tensor gradient optimizer"
).split()

# The plain baseline: the same rows, without our indexes and without full-text search.
BASELINE_SCHEMA = (
    """CREATE TABLE conversations (id INTEGER PRIMARY KEY, title TEXT, created_at REAL, updated_at REAL,
       pinned INTEGER, deleted_at REAL)""",
    """CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id INTEGER, parent_id INTEGER, role TEXT,
       text TEXT, created_at REAL)""",
)


@dataclass(frozen=True)
class HistoryDataset:
    """Two SQLite files with the same conversations and what the measurements need to know about them."""

    app_db: Path
    baseline_db: Path
    conversations: int
    messages: int
    big_conversation_id: int
    big_messages: int
    queries: tuple[str, ...]
    generated_in_s: float


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words = list(_REAL)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    rng.shuffle(words)
    return words


def _sizes(conversations: int, messages: int, big: int, rng: random.Random) -> list[int]:
    """Messages per conversation: one ``big`` one (last), the others around the mean, ``messages`` in all."""
    rest = messages - big
    others = conversations - 1
    mean = rest / others
    sizes = [max(2, round(rng.uniform(0.2, 1.8) * mean)) for _ in range(others)]
    # Nudge to the exact total so the dataset is what its name says.
    diff = rest - sum(sizes)
    i = 0
    while diff:
        step = 1 if diff > 0 else -1
        if sizes[i % others] + step >= 2:
            sizes[i % others] += step
            diff -= step
        i += 1
    return [*sizes, big]


def _queries(vocab: list[str], rng: random.Random, n: int) -> tuple[str, ...]:
    """What people type into the search box: one word, two words, or a word being typed (a prefix)."""
    pool = vocab[20:3000]
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append(rng.choice(pool))
        elif kind == 1:
            out.append(f"{rng.choice(vocab[:400])} {rng.choice(pool)}")
        else:
            out.append(rng.choice(pool)[:4])
    return tuple(out)


def dataset(
    cache_dir: Path, conversations: int, messages: int, big: int = 2000, n_queries: int = 60
) -> HistoryDataset:
    """The dataset of that size, generated into ``cache_dir`` unless already there."""
    from engine.history.schema import SCHEMA_VERSION

    stem = f"history-{conversations}c-{messages}m-{big}b-s{SCHEMA_VERSION}-g{GENERATOR_VERSION}"
    app_db = cache_dir / f"{stem}.sqlite3"
    baseline_db = cache_dir / f"{stem}-plain.sqlite3"
    meta_file = cache_dir / f"{stem}.json"
    if not (app_db.exists() and baseline_db.exists() and meta_file.exists()):
        _generate(app_db, baseline_db, meta_file, conversations, messages, big, n_queries)
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    return HistoryDataset(
        app_db=app_db,
        baseline_db=baseline_db,
        conversations=conversations,
        messages=messages,
        big_conversation_id=meta["big_conversation_id"],
        big_messages=big,
        queries=tuple(meta["queries"]),
        generated_in_s=meta["generated_in_s"],
    )


def _rows(
    conversations: int, messages: int, big: int, rng: random.Random, vocab: list[str]
) -> Iterator[tuple[tuple[object, ...], list[tuple[object, ...]]]]:
    """(conversation row, its message rows) in our schema's column order, oldest conversation first."""
    from engine.history.records import chat_message_dict

    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    cum: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    now = time.time()
    start = now - 365 * 86400
    sizes = _sizes(conversations, messages, big, rng)
    next_id = 1
    for cid, size in enumerate(sizes, start=1):
        t = start + (now - start) * cid / (len(sizes) + 1)
        title_words = rng.choices(vocab, cum_weights=cum, k=rng.randint(2, 6))
        title = " ".join(title_words).capitalize()
        msgs: list[tuple[object, ...]] = []
        parent: int | None = None
        for i in range(size):
            role = "user" if i % 2 == 0 else "assistant"
            length = rng.randint(4, 30) if role == "user" else rng.randint(15, 90)
            text = " ".join(rng.choices(vocab, cum_weights=cum, k=length))
            created = t + i * 7.0
            content = json.dumps(chat_message_dict(role, text))
            msgs.append((next_id, cid, parent, role, text, content, created, created))
            parent = next_id
            next_id += 1
        updated = t + size * 7.0
        pinned = 1 if cid % 997 == 0 else 0
        conv = (cid, f"gen-{cid}", title, t, updated, pinned, parent)
        yield conv, msgs


def _generate(
    app_db: Path,
    baseline_db: Path,
    meta_file: Path,
    conversations: int,
    messages: int,
    big: int,
    n_queries: int,
) -> None:
    from engine.history.schema import migrate

    t0 = time.perf_counter()
    app_db.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    vocab = vocabulary(20000, rng)
    tmp_app = app_db.with_suffix(".partial")
    tmp_plain = baseline_db.with_suffix(".partial")
    for tmp in (tmp_app, tmp_plain):
        tmp.unlink(missing_ok=True)
    app = sqlite3.connect(tmp_app, isolation_level=None)
    plain = sqlite3.connect(tmp_plain, isolation_level=None)
    migrate(app)
    # Bulk load: drop the FTS insert triggers, fill the tables, rebuild the indexes once, restore the triggers
    # exactly as the schema wrote them.
    triggers = app.execute(
        "SELECT name, sql FROM sqlite_master"
        " WHERE type = 'trigger' AND name IN ('messages_ai', 'conversations_ai')"
    ).fetchall()
    for name, _sql in triggers:
        app.execute(f"DROP TRIGGER {name}")
    for statement in BASELINE_SCHEMA:
        plain.execute(statement)
    big_id = 0
    for conn in (app, plain):
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
    for conv, msgs in _rows(conversations, messages, big, rng, vocab):
        cid, _uid, title, created, updated, pinned, _leaf = conv
        app.executemany(
            "INSERT INTO messages (id, conversation_id, parent_id, role, text, content, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            msgs,
        )
        app.execute(
            "INSERT INTO conversations (id, uid, title, created_at, updated_at, pinned, current_leaf_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            conv,
        )
        plain.executemany(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
            [(m[0], m[1], m[2], m[3], m[4], m[6]) for m in msgs],
        )
        plain.execute(
            "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, NULL)", (cid, title, created, updated, pinned)
        )
        if len(msgs) == big:
            big_id = int(str(cid))
    app.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
    app.execute("INSERT INTO conversations_fts (conversations_fts) VALUES ('rebuild')")
    for _name, sql in triggers:
        app.execute(sql)
    for conn in (app, plain):
        conn.execute("COMMIT")
    app.execute("PRAGMA journal_mode = WAL")
    app.execute("ANALYZE")
    for conn in (app, plain):
        conn.close()
    tmp_app.replace(app_db)
    tmp_plain.replace(baseline_db)
    meta = {
        "big_conversation_id": big_id,
        "queries": list(_queries(vocab, random.Random(SEED + 1), n_queries)),
        "generated_in_s": time.perf_counter() - t0,
    }
    meta_file.write_text(json.dumps(meta), encoding="utf-8")


def for_context(cache_dir: Path, scale: float) -> HistoryDataset:
    """The benchmarks' dataset: 10,000 conversations / 500,000 messages at scale 1, 1/10 in quick mode."""
    conversations = max(20, round(10_000 * scale))
    messages = max(400, round(500_000 * scale))
    big = min(2000, messages // 5)
    return dataset(cache_dir, conversations, messages, big=big)
