"""Export from and import into the real history store (SQLite): lossless, idempotent, all-or-nothing."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.history.records import ReplyNumbers
from engine.history.store import HistoryStore
from engine.transfer import history_adapter
from engine.transfer.errors import ImportRejected
from engine.transfer.exporter import all_conversation_ids, export_from_store
from engine.transfer.importer import ImportLimits, import_conversations, import_path, read_conversations
from engine.transfer.json_format import dumps, to_dict
from engine.transfer.model import ExportedConversation
from tests.engine.transfer_trees import conversations, sample_conversation
from tests.support.database import database_rows

CHATGPT = Path(__file__).parents[1] / "fixtures" / "chatgpt_conversations.json"


def _comparable(conv: ExportedConversation) -> ExportedConversation:
    """Ids renumbered 1..n in order, identity dropped: what survives a trip through another history."""
    ids = {m.id: str(i) for i, m in enumerate(conv.messages, 1)}
    return replace(
        conv,
        id="",
        source="",
        shown_leaf=None if conv.shown_leaf is None else ids[conv.shown_leaf],
        messages=tuple(
            replace(m, id=ids[m.id], parent_id=None if m.parent_id is None else ids[m.parent_id])
            for m in conv.messages
        ),
    )


def _chat_in(store: HistoryStore) -> int:
    """A conversation made the way the chat engine makes one: turns, a regenerated reply, numbers."""
    conv = store.create_conversation(title="Made by chatting", system_prompt="Be brief.", tags=["a"])
    user = store.add_message(conv.id, None, "user", "Hello **there**")
    first = store.add_message(conv.id, user.id, "assistant", "", state="streaming", model="tiny")
    store.finish(
        first.id,
        state="complete",
        text="Hi!",
        reasoning="Greet.",
        finish_reason="stop",
        numbers=ReplyNumbers(
            prompt_tokens=5, completion_tokens=2, ttft_s=0.05, tokens_per_s=40.0, wall_s=0.1
        ),
    )
    second = store.add_message(conv.id, user.id, "assistant", "", state="streaming", model="tiny")
    store.finish(second.id, state="failed", text="Hel", error="The server stopped.")
    store.set_current_leaf(conv.id, first.id)
    return conv.id


def test_export_then_import_into_another_history_is_lossless(store: HistoryStore, tmp_path: Path) -> None:
    conversation_id = _chat_in(store)
    original = history_adapter.from_tree(store.export_tree(conversation_id))
    assert original.shown_leaf == str(store.export_tree(conversation_id).messages[1].id)
    out = tmp_path / "chat.json"
    export_from_store(store, [conversation_id], out, "json")

    other = HistoryStore(tmp_path / "other.sqlite3")
    try:
        summary = import_path(other, out)
        assert len(summary.imported) == 1
        again = history_adapter.from_tree(other.export_tree(summary.imported[0]))
    finally:
        other.close()
    assert _comparable(again) == _comparable(original)
    assert again.id == original.id  # the uid travels: importing into the first history would not duplicate
    failed = again.messages[2]
    assert (failed.state, failed.text, failed.error) == ("failed", "Hel", "The server stopped.")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conv=conversations(max_messages=12))
def test_generated_trees_survive_the_store(conv: ExportedConversation, tmp_path: Path) -> None:
    # The store keeps its own five numbers and never keeps a reply "streaming"; the rest must survive.
    known = {"prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s", "wall_s"}
    conv = replace(
        conv,
        messages=tuple(
            replace(
                m,
                state="interrupted" if m.state == "streaming" else m.state,
                reasoning=m.reasoning or None,
                model=m.model or None,
                finish_reason=m.finish_reason or None,
                error=m.error or None,
                numbers={k: v for k, v in m.numbers.items() if k in known},
            )
            for m in conv.messages
        ),
        folder=conv.folder or None,
    )
    db = tmp_path / f"h-{abs(hash(conv.id))}.sqlite3"
    db.unlink(missing_ok=True)
    history = HistoryStore(db)
    try:
        imported = history.import_tree(history_adapter.to_tree(conv))
        back = history_adapter.from_tree(history.export_tree(imported))
    finally:
        history.close()
        db.unlink()
    assert back.id == conv.source_id
    expected = _comparable(conv)
    got = _comparable(back)
    if expected.shown_leaf is None and got.messages:
        expected = replace(expected, shown_leaf=got.shown_leaf)  # the store always remembers a leaf
    assert [m.created.timestamp() for m in got.messages] == pytest.approx(
        [m.created.timestamp() for m in expected.messages], abs=1e-5
    )
    strip = [
        replace(m, created=got.messages[0].created if got.messages else m.created) for m in expected.messages
    ]
    got_strip = [replace(m, created=got.messages[0].created) for m in got.messages]
    numbers = [{k: pytest.approx(v) for k, v in m.numbers.items()} for m in expected.messages]
    assert [m.numbers for m in got.messages] == numbers
    assert [replace(m, numbers={}) for m in got_strip] == [replace(m, numbers={}) for m in strip]
    assert (
        got.title,
        got.tags,
        got.folder,
        got.pinned,
        got.system_prompt,
        dict(got.settings),
        got.shown_leaf,
    ) == (
        expected.title,
        expected.tags,
        expected.folder,
        expected.pinned,
        expected.system_prompt,
        dict(expected.settings),
        expected.shown_leaf,
    )


def test_importing_the_same_file_twice_adds_nothing_the_second_time(store: HistoryStore) -> None:
    first = import_path(store, CHATGPT)
    assert len(first.imported) == 2
    rows = database_rows(store.path)
    second = import_path(store, CHATGPT)
    assert second.imported == []
    assert sorted(second.already_present) == sorted(first.imported)
    assert database_rows(store.path) == rows
    assert second.sentence() == "Imported 0 conversations; 2 were already in the history."


def test_chatgpt_branches_land_in_the_store(store: HistoryStore) -> None:
    summary = import_path(store, CHATGPT, "chatgpt")
    tree = store.load(summary.imported[0])
    assert tree.conversation.uid == "chatgpt:6667a1b2-0000-4000-8000-00000000000a"
    assert [m.text for m in tree.branch()] == [
        "How do I sort a list of dicts by a key, newest first?",
        "",  # the python tool call and its output (issue 19: kept as tool messages)
        "[{'age': 5}, {'age': 3}]",
        '```python\nsorted(items, key=lambda d: d["age"], reverse=True)\n```',
    ]
    assert len(tree.messages) == 7
    roots = tree.children(None)
    assert len(roots) == 2
    assert tree.conversation.system_prompt.startswith("I am a backend developer.")


def test_a_deleted_conversation_comes_back_instead_of_a_copy(store: HistoryStore) -> None:
    summary = import_path(store, CHATGPT)
    store.delete_conversation(summary.imported[0])
    again = import_path(store, CHATGPT)
    assert again.imported == []
    assert store.conversation(summary.imported[0]).deleted_at is None


def _valid_file() -> dict[str, Any]:
    return to_dict(sample_conversation())


_PATHS = [
    ("conversation", "title"),
    ("conversation", "created"),
    ("conversation", "tags"),
    ("conversation", "pinned"),
    ("conversation", "settings"),
    ("conversation", "messages"),
    ("conversation", "messages", 0),
    ("conversation", "messages", 1, "role"),
    ("conversation", "messages", 2, "text"),
    ("conversation", "messages", 3, "parent_id"),
    ("conversation", "messages", 4, "numbers"),
    ("conversation", "messages", 4, "created"),
    ("conversation", "shown_leaf"),
    ("conversation",),
    ("version",),
]
_WRONG = st.sampled_from([12345, -1.5, True, [], [1, "x"], {"a": {}}, "2026-13-45T99:99:99"])


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@st.composite
def _hostile_files(draw: st.DrawFn) -> bytes:
    """Each strategy breaks the file for sure: nothing in it may reach the history."""
    raw = (json.dumps(_valid_file(), ensure_ascii=False) + "\n").encode()
    kind = draw(st.sampled_from(["truncate", "wrong type", "deep", "huge", "cycle", "garbage", "batch"]))
    data = _valid_file()
    if kind == "truncate":
        return raw[: draw(st.integers(min_value=0, max_value=len(raw.rstrip()) - 1))]
    if kind == "wrong type":
        path = draw(st.sampled_from(_PATHS))
        original: Any = data
        for key in path:
            original = original[key]
        # A value of another JSON type than the one the format wants there.
        _set(data, path, draw(_WRONG.filter(lambda value: type(value) is not type(original))))
    elif kind == "deep":
        depth = draw(st.integers(min_value=201, max_value=3000))
        _set(data, draw(st.sampled_from(_PATHS)), "DEEP")
        return json.dumps(data).replace('"DEEP"', "[" * depth + "]" * depth).encode()
    elif kind == "huge":
        _set(data, ("conversation", "messages", draw(st.integers(0, 4)), "text"), "y" * 4_000_001)
    elif kind == "cycle":
        _set(
            data,
            ("conversation", "messages", 0, "parent_id"),
            draw(st.sampled_from(["1", "2", "3", "4", "5"])),
        )
    elif kind == "garbage":
        return draw(
            st.binary(min_size=1, max_size=200).filter(lambda b: not b.lstrip().startswith((b"{", b"[")))
        )
    else:
        # A ChatGPT export whose first conversation is fine and whose last is broken: the file or nothing.
        chat = json.loads(CHATGPT.read_text(encoding="utf-8"))
        chat[-1]["mapping"]["b-a"]["parent"] = draw(st.sampled_from(["ghost", "b-a"]))
        return json.dumps(chat).encode()
    return json.dumps(data).encode()


def test_hostile_files_leave_the_history_unchanged(store: HistoryStore, tmp_path: Path) -> None:
    _chat_in(store)
    import_path(store, CHATGPT)
    before = database_rows(store.path)
    assert any("Sorting dicts" in line for line in before)
    target = tmp_path / "hostile.json"

    @settings(max_examples=150, deadline=None)
    @given(_hostile_files())
    def attempt(raw: bytes) -> None:
        target.write_bytes(raw)
        with pytest.raises(ImportRejected) as caught:
            import_path(store, target)
        assert "hostile.json" in str(caught.value)
        assert "Nothing was imported" in str(caught.value)
        assert database_rows(store.path) == before

    attempt()


def test_oversized_files_are_refused_before_reading(store: HistoryStore, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(dumps(sample_conversation()), encoding="utf-8")
    before = database_rows(store.path)
    with pytest.raises(ImportRejected, match=r"more than the limit of 0 MiB"):
        import_path(store, big, limits=ImportLimits(max_bytes=100))
    assert database_rows(store.path) == before


def test_zip_bombs_are_refused(store: HistoryStore, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations.json", b"[" + b" " * (3 * 2**20) + b"]")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ImportRejected, match="larger than the limit"):
        read_conversations(bomb, limits=ImportLimits(max_bytes=2**20))


def test_export_everything_to_a_folder_and_a_zip_and_import_it_back(
    store: HistoryStore, tmp_path: Path
) -> None:
    _chat_in(store)
    import_path(store, CHATGPT)
    folder = export_from_store(store, None, tmp_path / "all", "json")
    assert len(folder.files) == 3
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(p.name for p in folder.files)
    archive = export_from_store(store, None, tmp_path / "all.zip", "md")
    with zipfile.ZipFile(tmp_path / "all.zip") as z:
        names = z.namelist()
        assert len(names) == 3
        assert any("# Sorting dicts in Python" in z.read(n).decode() for n in names)
    assert archive.sentence() == f"Exported 3 conversations to {tmp_path / 'all.zip'}."
    json_zip = tmp_path / "json.zip"
    export_from_store(store, None, json_zip, "json")

    fresh = HistoryStore(tmp_path / "fresh.sqlite3")
    try:
        assert len(import_path(fresh, tmp_path / "all").imported) == 3
        again = import_path(fresh, json_zip)
        assert (again.imported, len(again.already_present)) == ([], 3)
    finally:
        fresh.close()


def test_everything_in_one_json_file_and_back_losslessly(store: HistoryStore, tmp_path: Path) -> None:
    _chat_in(store)
    import_path(store, CHATGPT)
    ticks: list[tuple[int, int]] = []
    out = tmp_path / "backup" / "all.json"
    summary = export_from_store(store, None, out, "json", progress=lambda d, t: ticks.append((d, t)))
    assert summary.sentence() == f"Exported 3 conversations to {out}."
    assert ticks == [(1, 3), (2, 3), (3, 3)]
    assert [p.name for p in out.parent.iterdir()] == ["all.json"]  # one file, no temporary left
    data = json.loads(out.read_text())
    assert data["format"] == "vllm-desk.conversations"
    assert len(data["conversations"]) == 3

    fresh = HistoryStore(tmp_path / "fresh.sqlite3")
    try:
        assert len(import_path(fresh, out).imported) == 3
        originals = {
            c.id: c
            for c in (history_adapter.from_tree(store.export_tree(i)) for i in all_conversation_ids(store))
        }
        copies = [history_adapter.from_tree(fresh.export_tree(i)) for i in all_conversation_ids(fresh)]
        assert sorted(c.id for c in copies) == sorted(originals)
        for copy in copies:
            assert _comparable(copy) == _comparable(originals[copy.id])
        again = import_path(fresh, out)
        assert (again.imported, len(again.already_present)) == ([], 3)
    finally:
        fresh.close()


def test_one_bad_entry_in_a_many_conversations_file_rejects_it_with_its_place(
    store: HistoryStore, tmp_path: Path
) -> None:
    _chat_in(store)
    import_path(store, CHATGPT)
    export_from_store(store, None, tmp_path / "all.json", "json")
    data = json.loads((tmp_path / "all.json").read_text())
    data["conversations"][2]["messages"][0]["role"] = "wizard"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    fresh = HistoryStore(tmp_path / "fresh.sqlite3")
    try:
        with pytest.raises(ImportRejected, match=r"conversations\[2\]"):
            import_path(fresh, tmp_path / "bad.json")
        assert all_conversation_ids(fresh) == []  # all or nothing
    finally:
        fresh.close()


def test_chatgpt_export_zip_is_read_as_it_comes(store: HistoryStore, tmp_path: Path) -> None:
    # ChatGPT mails a zip: conversations.json next to other JSON files and the page that shows them.
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("user.json", json.dumps({"id": "user-1", "email": "a@example.org"}))
        z.writestr("message_feedback.json", "[]")
        z.writestr("chat.html", "<html></html>")
        z.writestr("conversations.json", CHATGPT.read_bytes())
    summary = import_path(store, archive)
    assert len(summary.imported) == 2
    assert store.load(summary.imported[1]).conversation.title == "A photo of my cat"


def test_a_write_failing_midway_takes_back_the_conversations_already_written(store: HistoryStore) -> None:
    good = sample_conversation()
    # A lone surrogate cannot be encoded for SQLite: the second write fails after the first succeeded.
    # (Files cannot carry one: the JSON parser refuses it; this drives the store's failure directly.)
    bad = replace(good, id="other", title="\ud800")
    listed = [c.id for c in store.list_conversations().items]
    with pytest.raises(UnicodeEncodeError):
        import_conversations(store, [good, bad])
    assert [c.id for c in store.list_conversations().items] == listed
