"""History at scale: the sidebar's first page, opening a 2,000-message conversation and FTS search.

App: ``engine.history.store.HistoryStore`` over the generated history (our schema: keyset listing index,
FTS5).
Baseline: the same rows in a plain SQLite file without our indexes, queried the obvious way (ORDER BY over
the table, ``LIKE '%word%'`` for search). Both files are copied to the scratch folder first (the store writes
on open) so both are equally warm in the page cache.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from bench.context import BenchContext
from bench.history_data import for_context
from bench.result import BenchResult, Goal, Metric, SubjectMissing
from bench.stats import median, percentile

PAGE = 50


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0


def _baseline_sidebar(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        "SELECT id, title, updated_at, pinned FROM conversations WHERE deleted_at IS NULL"
        " ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT ?",
        (PAGE + 1,),
    ).fetchall()
    conn.close()


def _baseline_open(conn: sqlite3.Connection, conversation_id: int) -> int:
    conn.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return len(
        conn.execute(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        ).fetchall()
    )


def _baseline_search(conn: sqlite3.Connection, text: str) -> int:
    words = text.split()
    where = " AND ".join("m.text LIKE ?" for _ in words)
    hits = conn.execute(
        f"SELECT m.conversation_id, m.id, c.title, substr(m.text, 1, 120) FROM messages m"
        f" JOIN conversations c ON c.id = m.conversation_id WHERE {where} AND c.deleted_at IS NULL LIMIT ?",
        (*[f"%{w}%" for w in words], PAGE),
    ).fetchall()
    titles = conn.execute(
        f"SELECT id, title FROM conversations WHERE {where.replace('m.text', 'title')} LIMIT ?",
        (*[f"%{w}%" for w in words], PAGE),
    ).fetchall()
    return len(hits) + len(titles)


def run(ctx: BenchContext) -> BenchResult:
    try:
        from engine.history.store import HistoryStore
    except ImportError as exc:
        raise SubjectMissing(f"engine/history/store.py (HistoryStore) cannot be imported: {exc}") from exc
    result = BenchResult("history", "History at scale")
    t0 = time.perf_counter()
    data = for_context(ctx.cache_dir, ctx.scale)
    ctx.say(
        f"history: {data.conversations:,} conversations / {data.messages:,} messages "
        f"(ready in {time.perf_counter() - t0:.1f} s; generated once in {data.generated_in_s:.1f} s)"
    )
    app_db = ctx.work_dir / "history-app.sqlite3"
    plain_db = ctx.work_dir / "history-plain.sqlite3"
    shutil.copyfile(data.app_db, app_db)
    shutil.copyfile(data.baseline_db, plain_db)
    reps = max(3, ctx.repeats // 10)

    def app_sidebar() -> None:
        store = HistoryStore(app_db)
        page = store.list_conversations(limit=PAGE)
        if len(page.items) != min(PAGE, data.conversations):
            raise AssertionError(f"the sidebar's first page has {len(page.items)} conversations")
        store.close(purge=False)

    sidebar_app = [_timed(app_sidebar) for _ in range(reps)]
    sidebar_base = [_timed(lambda: _baseline_sidebar(plain_db)) for _ in range(reps)]

    store = HistoryStore(app_db)
    plain = sqlite3.connect(plain_db)
    try:
        loaded = store.load(data.big_conversation_id)
        if len(loaded.messages) != data.big_messages:
            raise AssertionError(f"opened {len(loaded.messages)} messages, expected {data.big_messages}")
        open_app = [_timed(lambda: store.load(data.big_conversation_id)) for _ in range(reps)]
        open_base = [_timed(lambda: _baseline_open(plain, data.big_conversation_id)) for _ in range(reps)]
        search_app = [_timed(lambda q=q: store.search(q, limit=PAGE)) for q in data.queries]  # type: ignore[misc]
        found = sum(len(store.search(q, limit=PAGE)) > 0 for q in data.queries)
        # The LIKE scan reads every message: a handful of queries is enough to know its cost.
        base_queries = data.queries[: 6 if ctx.quick else 15]
        search_base = [_timed(lambda q=q: _baseline_search(plain, q)) for q in base_queries]  # type: ignore[misc]
    finally:
        store.close(purge=False)
        plain.close()

    size = f"{data.conversations:,} conversations / {data.messages:,} messages"
    result.add(
        Metric(
            "sidebar_ms",
            f"sidebar first page at start ({size})",
            median(sidebar_app),
            "ms",
            median(sidebar_base),
            "plain SQLite, no index",
            Goal("<=", 1000),
        )
    )
    result.add(
        Metric(
            "open_ms",
            f"open a {data.big_messages:,}-message conversation",
            median(open_app),
            "ms",
            median(open_base),
            "plain SQLite, no index",
            Goal("<=", 150),
        )
    )
    result.add(
        Metric(
            "search_p50_ms",
            "FTS search p50",
            percentile(search_app, 50),
            "ms",
            percentile(search_base, 50),
            "LIKE '%word%' scan",
        )
    )
    result.add(
        Metric(
            "search_p95_ms",
            "FTS search p95",
            percentile(search_app, 95),
            "ms",
            percentile(search_base, 95),
            "LIKE '%word%' scan",
            Goal("<=", 30),
        )
    )
    result.notes += [
        f"{size}; database {data.app_db.stat().st_size / 2**20:.0f} MiB (ours, with FTS) vs "
        f"{data.baseline_db.stat().st_size / 2**20:.0f} MiB (plain).",
        f"sidebar = open the store (connect, migrate check, recovery) + first page of {PAGE}; "
        f"median of {reps}.",
        f"search: {len(data.queries)} queries (one word, two words, a 4-letter prefix), {found} with hits; "
        f"baseline timed on the first {len(base_queries)} of them.",
        "Files are in the OS page cache for both (copied just before); a cold disk would add to both.",
    ]
    result.series["latency"] = {
        "kind": "bars",
        "title": f"History at scale ({size})",
        "ylabel": "ms (log scale)",
        "log": True,
        "data": {
            "sidebar (median)": {"app": median(sidebar_app), "baseline": median(sidebar_base)},
            "open 2k msgs (median)": {"app": median(open_app), "baseline": median(open_base)},
            "search p50": {"app": percentile(search_app, 50), "baseline": percentile(search_base, 50)},
            "search p95": {"app": percentile(search_app, 95), "baseline": percentile(search_base, 95)},
        },
    }
    result.series["search"] = {
        "kind": "box",
        "title": "FTS search latency per query",
        "ylabel": "ms (log scale)",
        "log": True,
        "data": {"app (FTS5)": search_app, "baseline (LIKE scan)": search_base},
    }
    return result
