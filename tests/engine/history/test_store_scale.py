"""The history at scale: 10,000 conversations / 500,000 messages (built with bulk SQL through the real schema,
FTS triggers included). Checks that listing pages, opening a 2,000-message conversation and search give the
right answers, and prints how long each took (no thresholds: the numbers go into the report)."""

from __future__ import annotations

import json
import time

import pytest

from engine.history.store import HistoryStore, PageCursor

CONVERSATIONS = 10_000
MESSAGES = 500_000
BIG = 2_000  # messages in conversation 1
VOCAB = [
    "river",
    "mountain",
    "lighthouse",
    "engine",
    "garden",
    "window",
    "kernel",
    "harbor",
    "violin",
    "orbit",
    "candle",
    "meadow",
]


@pytest.mark.slow
def test_ten_thousand_conversations_half_a_million_messages(app_paths) -> None:  # type: ignore[no-untyped-def]
    store = HistoryStore(app_paths.history_db)
    conn = store._conn
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO conversations (id, uid, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (
            (i, f"u{i}", f"Conversation {i} about {VOCAB[i % len(VOCAB)]}", i, i)
            for i in range(1, CONVERSATIONS + 1)
        ),
    )
    per_rest = (MESSAGES - BIG) // (CONVERSATIONS - 1)

    def rows():  # type: ignore[no-untyped-def]
        mid = 0
        for conv in range(1, CONVERSATIONS + 1):
            count = BIG if conv == 1 else per_rest
            parent = None
            for k in range(count):
                mid += 1
                role = "user" if k % 2 == 0 else "assistant"
                words = f"{VOCAB[(conv + k) % len(VOCAB)]} {VOCAB[(conv * 7 + k) % len(VOCAB)]}"
                text = f"message {k} of {conv}: {words}"
                content = json.dumps({"role": role, "meta": {}, "name": None, "content": [{"text": text}]})
                yield (mid, conv, parent, role, text, content, conv + k / 1e4, conv + k / 1e4)
                parent = mid

    conn.executemany(
        "INSERT INTO messages (id, conversation_id, parent_id, role, text, content, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    # a needle for search
    conn.execute("UPDATE messages SET text = 'the zeppelin over Zürich' WHERE id = 777")
    conn.execute("UPDATE conversations SET pinned = 1 WHERE id = 42")
    conn.execute("COMMIT")
    built = time.perf_counter() - started
    total = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert total >= MESSAGES - CONVERSATIONS

    t0 = time.perf_counter()
    first = store.list_conversations(limit=50)
    t_first = time.perf_counter() - t0
    assert first.items[0].id == 42
    assert [c.id for c in first.items[1:4]] == [CONVERSATIONS, CONVERSATIONS - 1, CONVERSATIONS - 2]

    cursor: PageCursor | None = first.next_cursor
    t0 = time.perf_counter()
    for _ in range(100):
        page = store.list_conversations(limit=50, after=cursor)
        cursor = page.next_cursor
    t_deep = (time.perf_counter() - t0) / 100
    assert (
        page.items[-1].id == CONVERSATIONS - 49 - 100 * 50 + 1
    )  # 49 newest shared page 1 with the pinned one

    t0 = time.perf_counter()
    tree = store.load(1)
    t_load = time.perf_counter() - t0
    assert len(tree.branch()) == BIG

    t0 = time.perf_counter()
    hits = store.search("zurich zeppelin")
    t_needle = time.perf_counter() - t0
    assert [h.message_id for h in hits] == [777]

    t0 = time.perf_counter()
    common = store.search("lighthouse", limit=50)
    t_common = time.perf_counter() - t0
    assert len(common) == 50
    assert all("[lighthouse]" in h.snippet.lower() for h in common)
    # A word in every message, and a one-letter prefix (typed while searching): newest first.
    t0 = time.perf_counter()
    everywhere = store.search("message", limit=50)
    t_everywhere = time.perf_counter() - t0
    assert [h.message_id for h in everywhere[:2]] == [total, total - 1]
    assert everywhere[0].snippet.startswith("[message] ")
    t0 = time.perf_counter()
    letter = store.search("m", limit=50)
    t_letter = time.perf_counter() - t0
    assert len(letter) == 50
    store.close()
    print(
        f"\nbuilt {total:,} messages in {built:.1f} s; list first page {t_first * 1000:.1f} ms, "
        f"a page 100 deep {t_deep * 1000:.1f} ms, open {BIG} messages {t_load * 1000:.1f} ms, "
        f"search rare {t_needle * 1000:.1f} ms, search common (top 50) {t_common * 1000:.1f} ms, "
        f"a word in every message {t_everywhere * 1000:.1f} ms, one letter {t_letter * 1000:.1f} ms"
    )
