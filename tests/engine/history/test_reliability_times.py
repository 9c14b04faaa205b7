"""Issue 14.1: one imported date must not make the history unreadable.

Times outside what ``datetime`` can show are refused on import, and a bad time already in a database
(written by an older version, or by hand) reads as the nearest valid time instead of breaking every listing.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.history.store import HistoryStore
from engine.history.times import EARLIEST_S, LATEST_S, check_instant, clamp_seconds, instant, local_text
from engine.paths import AppPaths
from engine.transfer.errors import ImportRejected
from engine.transfer.importer import parse_bytes
from engine.transfer.json_format import dumps
from tests.engine.transfer_trees import sample_conversation

BAD_TIMES = [
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00",
    "1969-07-20T20:17:00Z",
]


def _file_with_created(when: str) -> bytes:
    data = json.loads(dumps(sample_conversation()))
    data["conversation"]["created"] = when
    return json.dumps(data).encode()


@pytest.mark.parametrize("when", BAD_TIMES)
def test_an_out_of_range_time_is_refused_on_import(when: str) -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_bytes(_file_with_created(when))
    assert "conversation.created" in str(caught.value)
    assert "1970" in str(caught.value)


def test_a_message_time_out_of_range_is_refused_on_import() -> None:
    data = json.loads(dumps(sample_conversation()))
    data["conversation"]["messages"][2]["created"] = "9999-12-31T23:59:59-14:00"
    with pytest.raises(ImportRejected, match=r"messages\.2\.created|messages\[2\]\.created"):
        parse_bytes(json.dumps(data).encode())


@pytest.mark.parametrize("seconds", [1e300, -1e300, 253402300799 + 86400, -62135596800])
def test_chatgpt_times_out_of_range_are_refused(seconds: float) -> None:
    export = [{"id": "x", "title": "t", "create_time": seconds, "mapping": {}}]
    with pytest.raises(ImportRejected, match="1970"):
        parse_bytes(json.dumps(export).encode(), "chatgpt")


@pytest.fixture
def poisoned(tmp_path: Path) -> Path:
    """A history where one conversation's and one message's times are far out of range (as an older
    version could import them), beside a healthy conversation."""
    root = tmp_path / "desk"
    db = AppPaths.under(root).ensure().history_db
    store = HistoryStore(db)
    good = store.create_conversation(title="Healthy")
    store.add_message(good.id, None, "user", "still here")
    bad = store.create_conversation(title="From the far future")
    msg = store.add_message(bad.id, None, "user", "hello from year 10000")
    store.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE conversations SET created_at=?, updated_at=? WHERE id=?", (253402350000.0, 1e308, bad.id)
        )
        conn.execute(
            "UPDATE messages SET created_at=-62135596800.0, updated_at='garbage' WHERE id=?", (msg.id,)
        )
        conn.execute("UPDATE conversations SET tags='not json', settings='{' WHERE id=?", (bad.id,))
    conn.close()
    return root


def test_one_bad_row_leaves_list_show_and_export_working(
    poisoned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(poisoned), "list"]) == 0
    listing = capsys.readouterr().out
    assert "Healthy" in listing
    assert "From the far future" in listing
    assert main(["--data-dir", str(poisoned), "list", "--json"]) == 0
    json.loads(capsys.readouterr().out)
    for conversation_id in (1, 2):
        assert main(["--data-dir", str(poisoned), "show", str(conversation_id)]) == 0
        assert main(["--data-dir", str(poisoned), "show", str(conversation_id), "--json"]) == 0
    capsys.readouterr()
    out = tmp_path / "backup.zip"
    assert main(["--data-dir", str(poisoned), "export", "--all", "--format", "json", "-o", str(out)]) == 0
    assert "Exported 2 conversations" in capsys.readouterr().out
    # The backup imports again (its times were brought into range).
    again = tmp_path / "again"
    assert main(["--data-dir", str(again), "import", str(out)]) == 0
    assert "Imported 2 conversations" in capsys.readouterr().out


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=5), st.none())
)
def test_clamped_seconds_always_format(value: object) -> None:
    seconds = clamp_seconds(value)
    assert EARLIEST_S <= seconds <= LATEST_S
    assert instant(value).tzinfo is UTC
    assert local_text(value)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.timezones() | st.none()))
def test_an_accepted_time_always_formats_in_every_zone(when: datetime) -> None:
    try:
        aware = check_instant(when)
    except ValueError:
        return
    seconds = aware.timestamp()
    assert EARLIEST_S <= seconds <= LATEST_S
    assert local_text(seconds)
    assert instant(seconds).astimezone(UTC).year <= 9999


def test_paging_walks_past_rows_with_damaged_times(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.db")
    ids = [store.create_conversation(title=f"c{i}").id for i in range(6)]
    store._conn.execute("UPDATE conversations SET updated_at='garbage' WHERE id=?", (ids[2],))
    store._conn.execute("UPDATE conversations SET updated_at=1e308 WHERE id=?", (ids[4],))
    seen: list[int] = []
    page = store.list_conversations(limit=1)
    seen += [c.id for c in page.items]
    while page.next_cursor is not None:
        page = store.list_conversations(limit=1, after=page.next_cursor)
        seen += [c.id for c in page.items]
    store.close()
    assert sorted(seen) == sorted(ids)
