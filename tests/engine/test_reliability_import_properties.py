"""Property tests of the importers: whatever bytes or damaged file arrive, the result is a list of valid
conversations that store and read back, or an :class:`ImportRejected` — never another exception."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.transfer.errors import ImportRejected
from engine.transfer.importer import import_conversations, parse_bytes
from engine.transfer.json_format import dumps
from tests.engine.transfer_trees import sample_conversation

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*prefix, i))
    return out


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    data[path[0]] = _set(data[path[0]], path[1:], value)
    return data


def _check(raw: bytes, tmp: Path) -> None:
    try:
        conversations = parse_bytes(raw)
    except ImportRejected as problem:
        message = str(problem)
        assert message.endswith("Nothing was imported.")
        return
    store = HistoryStore(AppPaths.under(tmp / "desk").ensure().history_db)
    try:
        import_conversations(store, conversations)
        for item in store.list_conversations(limit=1000).items:
            store.load(item.id).branch()
    finally:
        store.close()
    assert main(["--data-dir", str(tmp / "desk"), "list", "--json"]) == 0
    assert (
        main(
            [
                "--data-dir",
                str(tmp / "desk"),
                "export",
                "--all",
                "-o",
                str(tmp / "all.zip"),
                "--format",
                "json",
            ]
        )
        == 0
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_export_imports_cleanly_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    document = json.loads(dumps(sample_conversation()))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)[1:]))
        document = _set(document, path, data.draw(JSON_VALUES))
    _check(json.dumps(document).encode(), tmp_path_factory.mktemp("import"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_any_json_document_imports_cleanly_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, value: Any
) -> None:
    _check(json.dumps(value).encode(), tmp_path_factory.mktemp("import"))


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300))
def test_any_bytes_are_refused_with_words(raw: bytes) -> None:
    with contextlib.suppress(ImportRejected):
        parse_bytes(raw)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    conversation=st.fixed_dictionaries(
        {
            "id": st.text(min_size=1, max_size=8),
            "title": st.text(max_size=20),
            "create_time": st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.none(),
            "mapping": st.dictionaries(
                st.text(min_size=1, max_size=4),
                st.fixed_dictionaries(
                    {
                        "parent": st.none() | st.text(max_size=4),
                        "children": st.lists(st.text(max_size=4), max_size=3),
                        "message": st.none()
                        | st.fixed_dictionaries(
                            {
                                "author": st.fixed_dictionaries(
                                    {"role": st.sampled_from(["user", "assistant", "system", "tool", "x"])}
                                ),
                                "content": st.fixed_dictionaries(
                                    {
                                        "content_type": st.just("text"),
                                        "parts": st.lists(JSON_VALUES, max_size=2),
                                    }
                                ),
                                "create_time": st.floats() | st.none(),
                            }
                        ),
                    }
                ),
                max_size=5,
            ),
        }
    )
)
def test_any_chatgpt_shaped_export_imports_cleanly_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, conversation: dict[str, Any]
) -> None:
    _check(json.dumps([conversation]).encode(), tmp_path_factory.mktemp("import"))
