"""ChatGPT's conversations.json: branches, the current one, hidden nodes skipped, timestamps kept."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.transfer.chatgpt_import import parse_chatgpt
from engine.transfer.errors import ImportRejected
from engine.transfer.importer import parse_bytes

FIXTURE = Path(__file__).parents[1] / "fixtures" / "chatgpt_conversations.json"


def _raw() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def test_every_branch_and_the_current_one_are_kept() -> None:
    first, _ = parse_chatgpt(_raw())
    assert first.id == "6667a1b2-0000-4000-8000-00000000000a"
    assert first.source_id == "chatgpt:6667a1b2-0000-4000-8000-00000000000a"
    assert first.title == "Sorting dicts in Python"
    branches = [[m.id for m in b] for b in first.branches()]
    assert branches == [["u1-edit", "call", "tool-out", "a2-final"], ["u1", "a1"], ["u1-edit", "a2-first"]]
    assert first.shown_leaf == "a2-final"
    assert [m.id for m in first.shown_branch()] == ["u1-edit", "call", "tool-out", "a2-final"]


def test_hidden_system_and_recap_nodes_are_skipped_and_children_reattached() -> None:
    first, _ = parse_chatgpt(_raw())
    ids = {m.id for m in first.messages}
    assert ids == {"u1", "a1", "u1-edit", "a2-first", "call", "tool-out", "a2-final"}
    by_id = first.by_id()
    # The root, system and custom-instruction nodes are gone: the two user messages are roots now.
    assert by_id["u1"].parent_id is None
    assert by_id["u1-edit"].parent_id is None
    # thoughts -> recap were skipped: the tool call hangs under the user message, the answer under its output,
    # and the thoughts go with the answer.
    assert by_id["call"].parent_id == "u1-edit"
    assert by_id["a2-final"].parent_id == "tool-out"
    assert by_id["a2-final"].reasoning == "The user wants descending order; sorted() has reverse=True."
    assert first.system_prompt == "I am a backend developer.\n\nAnswer briefly, with code."


def test_roles_models_states_and_timestamps() -> None:
    first, second = parse_chatgpt(_raw())
    by_id = first.by_id()
    assert by_id["u1"].role == "user"
    assert by_id["a1"].role == "assistant"
    assert by_id["a1"].model == "gpt-4o"
    assert by_id["a1"].finish_reason == "stop"
    assert by_id["a1"].created == datetime.fromtimestamp(1718000012.5, UTC)
    assert by_id["a2-first"].state == "stopped"  # ChatGPT's "interrupted": the user pressed stop
    assert by_id["a2-final"].model == "o3"
    assert first.created == datetime.fromtimestamp(1718000000.25, UTC)
    assert first.updated == datetime.fromtimestamp(1718000900.5, UTC)
    # A message without a time takes its parent's.
    user, answer = second.messages
    assert answer.created == user.created == datetime.fromtimestamp(1719000001.0, UTC)
    assert user.text == "[image not included in the export]\nWhat breed is this cat?"
    assert answer.text == "It looks like a **British Shorthair**."


def test_detected_automatically() -> None:
    conversations = parse_bytes(FIXTURE.read_bytes())
    assert [c.title for c in conversations] == ["Sorting dicts in Python", "A photo of my cat"]


def test_tool_calls_and_their_output_are_kept_as_tool_messages() -> None:
    first, _ = parse_chatgpt(_raw())
    by_id = first.by_id()
    code = "sorted([{'age': 3}, {'age': 5}], key=lambda d: d['age'], reverse=True)"
    call = {"tool_name": "python", "arguments": {"input": code}, "id": "call", "extra": None}
    assert by_id["call"].role == "assistant"
    assert by_id["call"].tool_calls == (call,)
    assert by_id["call"].text == ""
    assert by_id["tool-out"].role == "tool"
    assert by_id["tool-out"].text == "[{'age': 5}, {'age': 3}]"
    assert by_id["tool-out"].tool_result == {
        "result": "[{'age': 5}, {'age': 3}]",
        "origin": call,
        "error": False,
    }


def test_current_node_that_is_hidden_maps_to_its_nearest_shown_ancestor() -> None:
    data = _raw()
    data[0]["current_node"] = "recap"
    first, _ = parse_chatgpt(data)
    assert first.shown_leaf == "u1-edit"


def _broken(change: str) -> list[dict[str, Any]]:
    data = copy.deepcopy(_raw())
    mapping = data[1]["mapping"]
    if change == "cycle":
        mapping["root-b"]["parent"] = "b-a"
    elif change == "missing parent":
        mapping["b-a"]["parent"] = "ghost"
    elif change == "role":
        mapping["b-u"]["message"]["author"]["role"] = "wizard"
    elif change == "time":
        mapping["b-u"]["message"]["create_time"] = "noon"
    elif change == "parts":
        mapping["b-u"]["message"]["content"]["parts"] = "text"
    elif change == "mapping":
        data[1]["mapping"] = []
    elif change == "huge":
        mapping["b-a"]["message"]["content"]["parts"] = ["x" * 4_000_001]
    return data


@pytest.mark.parametrize(
    ("change", "what", "where"),
    [
        ("cycle", "cycle", "$[1].mapping"),
        ("missing parent", "'ghost' does not exist", "$[1].mapping['b-a'].parent"),
        ("role", "unknown author role 'wizard'", "$[1].mapping['b-u'].message.author.role"),
        ("time", "seconds since 1970", "$[1].mapping['b-u'].message.create_time"),
        ("parts", "parts must be a list", "$[1].mapping['b-u'].message.content.parts"),
        ("mapping", "expected an object, found list", "$[1].mapping"),
        ("huge", "longer than the limit", "$[1].mapping['b-a'].message.content.parts"),
    ],
)
def test_malformed_exports_say_what_and_where(change: str, what: str, where: str) -> None:
    with pytest.raises(ImportRejected) as caught:
        parse_bytes(json.dumps(_broken(change)).encode(), "chatgpt")
    assert what in caught.value.what
    assert caught.value.where == where


def test_a_long_chain_is_not_limited_by_recursion() -> None:
    mapping: dict[str, Any] = {}
    for i in range(5000):
        mapping[f"n{i}"] = {
            "id": f"n{i}",
            "parent": f"n{i - 1}" if i else None,
            "children": [f"n{i + 1}"] if i < 4999 else [],
            "message": {
                "author": {"role": "user" if i % 2 else "assistant"},
                "content": {"content_type": "text", "parts": [f"turn {i}"]},
                "create_time": 1700000000 + i,
            },
        }
    conv = parse_chatgpt([{"id": "long", "title": "Long", "mapping": mapping, "current_node": "n4999"}])[0]
    assert len(conv.shown_branch()) == 5000
