"""Our JSON format: lossless round trip, migration of earlier versions, and precise errors."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import __version__
from engine.transfer.errors import ImportRejected
from engine.transfer.importer import parse_bytes
from engine.transfer.json_format import (
    FORMAT,
    MANY_FORMAT,
    VERSION,
    dumps,
    from_dict,
    from_many,
    to_dict,
    write_many,
)
from engine.transfer.model import ExportedConversation, ExportedMessage
from tests.engine.transfer_trees import EXPORTED_AT, T0, conversations, sample_conversation


def _load(text: str) -> ExportedConversation:
    return from_dict(pydantic_core.from_json(text))


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_import_of_export_gives_back_the_same_conversation(conv: ExportedConversation) -> None:
    assert _load(dumps(conv)) == conv


@settings(max_examples=40, deadline=None)
@given(st.lists(conversations(), max_size=4))
def test_many_conversations_in_one_file_round_trip(convs: list[ExportedConversation]) -> None:
    out = io.StringIO()
    assert write_many(convs, out, exported_at=EXPORTED_AT) == len(convs)
    data = pydantic_core.from_json(out.getvalue())
    assert data["format"] == MANY_FORMAT
    assert data["exported_at"] == "2026-11-26T12:00:00+00:00"
    assert from_many(data) == convs


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"version": 99}, "newer vLLM Desk"),
        ({"conversations": {}}, "no list of conversations"),
        ({"conversation_version": "2"}, "not a whole number"),
    ],
)
def test_a_damaged_many_file_says_what_is_wrong(change: dict[str, object], error: str) -> None:
    out = io.StringIO()
    write_many([sample_conversation()], out)
    data = {**json.loads(out.getvalue()), **change}
    with pytest.raises(ImportRejected, match=error):
        from_many(data)


def test_the_file_names_format_version_and_app_version() -> None:
    data = json.loads(dumps(sample_conversation(), exported_at=EXPORTED_AT))
    assert data["format"] == FORMAT
    assert data["version"] == VERSION
    assert data["exported_by"] == f"vLLM Desk {__version__}"
    assert data["exported_at"] == "2026-11-26T12:00:00+00:00"
    messages = data["conversation"]["messages"]
    assert [m["parent_id"] for m in messages] == [None, "1", "2", "3", "3"]
    assert messages[1]["numbers"] == {
        "prompt_tokens": 31,
        "completion_tokens": 42,
        "ttft_s": 0.125,
        "tokens_per_s": 38.5,
    }
    assert data["conversation"]["shown_leaf"] == "5"


def test_version_1_files_are_migrated() -> None:
    v1 = {
        "format": FORMAT,
        "version": 1,
        "id": "old",
        "title": "From the preview",
        "created": 1700000000,
        "model": "tiny",
        "settings": {"temperature": 0.5},
        "messages": [
            {"role": "user", "content": "hi", "created": 1700000001},
            {"role": "assistant", "content": "hello", "reasoning": "greet back", "created": 1700000002.5},
        ],
    }
    conv = parse_bytes(json.dumps(v1).encode())[0]
    assert conv.id == "old"
    assert [(m.id, m.parent_id, m.role, m.text) for m in conv.messages] == [
        ("old-0", None, "user", "hi"),
        ("old-1", "old-0", "assistant", "hello"),
    ]
    assert conv.messages[1].model == "tiny"
    assert conv.messages[1].reasoning == "greet back"
    assert conv.messages[1].created.timestamp() == 1700000002.5
    assert conv.shown_leaf == "old-1"
    assert conv.settings == {"temperature": 0.5}
    # Migrated, then written again in the current version: still the same conversation.
    assert _load(dumps(conv)) == conv


def _file(**changes: Any) -> dict[str, Any]:
    data = to_dict(sample_conversation())
    for path, value in changes.items():
        target = data
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("changes", "what", "where"),
    [
        ({"version": 99}, "newer vLLM Desk", "$.version"),
        ({"version": "2"}, "version is missing", "$.version"),
        ({"conversation__messages__2__role": 5}, "found int 5", "$.conversation.messages[2].role"),
        ({"conversation__title": _DELETE}, "field required", "$.conversation.title"),
        (
            {"conversation__messages__0__created": "yesterday"},
            "not an ISO 8601",
            "$.conversation.messages[0].created",
        ),
        ({"conversation__created": 1700000000}, "must be ISO 8601 text", "$.conversation.created"),
        (
            {"conversation__messages__1__text": "x" * 4_000_001},
            "at most 4000000",
            "$.conversation.messages[1].text",
        ),
        ({"conversation__pinned": "yes"}, "valid boolean", "$.conversation.pinned"),
        (
            {"conversation__messages__4__parent_id": "404"},
            "does not exist",
            "$.conversation.messages[4].parent_id",
        ),
        ({"conversation__messages__0__parent_id": "2"}, "cycle", "$.conversation.messages"),
        ({"conversation__messages__3__id": "1"}, "appears twice", "$.conversation.messages[3]"),
        ({"conversation__shown_leaf": "nope"}, "does not exist", "$.conversation.shown_leaf"),
        ({"conversation__messages": {"not": "a list"}}, "valid list", "$.conversation.messages"),
    ],
)
def test_bad_files_say_what_and_where(changes: dict[str, Any], what: str, where: str) -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_bytes(json.dumps(_file(**changes)).encode())
    assert what in caught.value.what
    assert caught.value.where == where
    assert "Nothing was imported" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "what", "where"),
    [
        (b'{"format": "vllm-desk.conversation", "version": 2, "conv', "not valid JSON", "line 1 column 56"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply", "line 1 column 202"),
        (b'{"a": NaN}', "not valid JSON", "line 1 column 7"),
        (b"\xff\xfe{}", "not UTF-8", "byte 0"),
        (b'{"hello": "world"}', "neither a vLLM Desk conversation nor a ChatGPT export", "$"),
    ],
)
def test_damaged_json_is_refused_with_its_position(raw: bytes, what: str, where: str) -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_bytes(raw)
    assert what in caught.value.what
    assert caught.value.where == where


def test_parents_listed_after_children_are_put_in_order() -> None:
    conv = sample_conversation()
    shuffled = replace(conv, messages=tuple(reversed(conv.messages)))
    loaded = _load(dumps(shuffled))
    assert [m.id for m in loaded.messages] == ["1", "2", "3", "5", "4"]
    assert loaded.shown_branch() == conv.shown_branch()


def test_shown_branch_and_branches() -> None:
    conv = sample_conversation()
    assert [m.id for m in conv.shown_branch()] == ["1", "2", "3", "5"]
    assert [[m.id for m in b] for b in conv.branches()] == [["1", "2", "3", "5"], ["1", "2", "3", "4"]]
    forks = [(len(branch), shared, with_branch) for branch, shared, with_branch in conv.forks()]
    assert forks == [(4, 0, 0), (4, 3, 1)]
    # Without a remembered leaf, the newest path is shown.
    no_leaf = replace(conv, shown_leaf=None)
    assert [m.id for m in no_leaf.shown_branch()] == ["1", "2", "3", "5"]
    lone = ExportedConversation("x", "t", T0, T0, (ExportedMessage("a", None, "user", "hi", T0),))
    assert [m.id for m in lone.shown_branch()] == ["a"]
