"""The cap on a forced strict call's unbounded strings (:func:`engine.tools.loop.capped_strings`): vLLM 0.32's
grammar holds a string to its ``maxLength``, which keeps a small model from running one on to the token limit.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from haystack.dataclasses import ChatMessage
from haystack.tools import Tool
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.endpoint import Endpoint
from engine.models.builtin import BUILTIN_MODEL
from engine.tools.approval import ApprovalPolicy, CallRequest, Decision
from engine.tools.loop import LoopLimits, ToolLoop, capped_strings, strict_specs
from engine.tools.session import BUILTIN_MODEL_STRING_CHARS, limits_for

SHAPES = ("maxLength", "pattern", "enum", "const", "format")


def test_every_unbounded_string_where_a_value_must_match_gets_the_cap() -> None:
    schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "A file."},
            "note": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
            "either": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/item"}]},
            "both": {"allOf": [{"type": "string", "minLength": 150}]},
            "extra": {"type": "object", "additionalProperties": {"type": "string"}},
            "switch": {"if": {"type": "string"}, "then": {"type": "string"}, "else": {"type": "string"}},
        },
        "$defs": {"item": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    capped = capped_strings(schema, 100)
    props = capped["properties"]
    assert props["path"] == {"type": "string", "description": "A file.", "maxLength": 100}
    assert props["note"]["maxLength"] == 100
    assert props["tags"]["items"]["maxLength"] == 100
    assert props["pair"]["prefixItems"] == [{"type": "string", "maxLength": 100}, {"type": "integer"}]
    assert props["either"]["anyOf"][0]["maxLength"] == 100
    assert props["either"]["anyOf"][1] == {"$ref": "#/$defs/item"}
    assert capped["$defs"]["item"]["properties"]["name"]["maxLength"] == 100
    assert props["both"]["allOf"][0]["maxLength"] == 150  # never below the string's own minLength
    assert props["extra"]["additionalProperties"]["maxLength"] == 100
    # ``if`` decides which branch applies: capping it would change the choice, not narrow it.
    assert props["switch"] == {
        "if": {"type": "string"},
        "then": {"type": "string", "maxLength": 100},
        "else": {"type": "string", "maxLength": 100},
    }


def test_strings_with_a_shape_of_their_own_and_places_that_would_widen_are_left_alone() -> None:
    schema = {
        "type": "object",
        "properties": {
            "short": {"type": "string", "maxLength": 500},  # its own bound, even above the cap
            "zone": {"type": "string", "pattern": "^[A-Z]+$"},  # xgrammar drops a maxLength beside a pattern
            "unit": {"type": "string", "enum": ["C", "F"]},
            "fixed": {"const": "x", "type": "string"},
            "when": {"type": "string", "format": "date-time"},
            "count": {"type": "integer"},
            "anything": {},
            "not_text": {"not": {"type": "string"}},  # a narrower "not" lets more through
            "one": {"oneOf": [{"type": "string"}, {"type": "string", "minLength": 3}]},
        },
        "propertyNames": {"type": "string"},
    }
    before = copy.deepcopy(schema)
    assert capped_strings(schema, 10) == schema
    assert schema == before  # a copy: the tool's own schema is never touched


def test_only_forced_tools_are_capped_and_only_when_asked() -> None:
    text = {"type": "object", "properties": {"text": {"type": "string"}}}
    echo = Tool(name="echo", description="Echo.", parameters=text, function=lambda text="": text)
    other = Tool(name="other", description="Other.", parameters=text, function=lambda text="": text)
    plain = strict_specs([echo, other], "echo")
    assert plain is not None
    assert plain[0].tool_spec["parameters"] == text  # no cap asked: the schema as it is
    capped = strict_specs([echo, other], "echo", string_cap=40)
    assert capped is not None
    assert capped[0].tool_spec["parameters"]["properties"]["text"] == {"type": "string", "maxLength": 40}
    assert capped[0].tool_spec["strict"] is True
    assert capped[1] is other  # not forced: sent as it is
    assert echo.parameters == text
    assert strict_specs([echo], "auto", string_cap=40) is None


class RecordingGenerator:
    """Haystack's chat generator as the loop calls it (a boundary we do not own): records each request's
    tools and answers without calls."""

    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []

    async def run_async(self, messages: list[ChatMessage], **kwargs: Any) -> dict[str, Any]:
        self.sent.append([tool.tool_spec for tool in kwargs.get("tools") or ()])
        return {"replies": [ChatMessage.from_assistant("Done.")]}


async def never_asked(request: CallRequest) -> Decision:
    raise AssertionError(f"no call was made, yet {request.tool} was to be approved")


@pytest.mark.asyncio
@pytest.mark.parametrize(("cap", "expected"), [(None, None), (64, 64)])
async def test_the_loop_sends_the_cap_from_its_limits(cap: int | None, expected: int | None) -> None:
    parameters = {"type": "object", "properties": {"text": {"type": "string"}}}
    echo = Tool(name="echo", description="Echo.", parameters=parameters, function=lambda text="": text)
    generator = RecordingGenerator()
    loop = ToolLoop(
        generator,
        [echo],
        approval=ApprovalPolicy(never_asked),
        choice="echo",
        limits=LoopLimits(forced_string_chars=cap),
    )
    await loop.run([ChatMessage.from_user("Say hi.")])
    [spec] = generator.sent[0]
    assert spec["strict"] is True
    assert spec["parameters"]["properties"]["text"].get("maxLength") == expected


def test_the_built_in_model_gets_the_cap_and_other_models_do_not() -> None:
    builtin = Endpoint(base_url="http://127.0.0.1:1/v1", model=BUILTIN_MODEL.served_name)
    other = Endpoint(base_url="http://127.0.0.1:1/v1", model="Qwen/Qwen2.5-7B-Instruct")
    assert limits_for(builtin, LoopLimits()).forced_string_chars == BUILTIN_MODEL_STRING_CHARS
    assert limits_for(builtin, LoopLimits(max_rounds=2)).max_rounds == 2  # the rest kept
    assert limits_for(builtin, LoopLimits(forced_string_chars=7)).forced_string_chars == 7  # the caller's own
    assert limits_for(other, LoopLimits()).forced_string_chars is None


# Any schema in: a valid schema out that is the input plus some maxLength keys, nothing else changed.

_names = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
_string = st.fixed_dictionaries(
    {"type": st.sampled_from(["string", ["string", "null"]])},
    optional={
        "maxLength": st.integers(0, 300),
        "minLength": st.integers(0, 300),
        "pattern": st.just("^[a-z]*$"),
        "enum": st.just(["a", "bb"]),
        "const": st.just("a"),
        "format": st.just("date"),
        "description": st.text(max_size=5),
        "default": st.text(max_size=3),
    },
)
_leaf = st.one_of(
    _string,
    st.fixed_dictionaries({"type": st.sampled_from(["integer", "number", "boolean", "null"])}),
    st.just({}),
)


def _compound(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(_names, children, max_size=3)},
            optional={
                "additionalProperties": st.one_of(st.booleans(), children),
                "patternProperties": st.dictionaries(st.just("^x"), children, max_size=1),
                "$defs": st.dictionaries(_names, children, max_size=2),
            },
        ),
        st.fixed_dictionaries({"type": st.just("array"), "items": children}),
        st.fixed_dictionaries(
            {"type": st.just("array"), "prefixItems": st.lists(children, min_size=1, max_size=3)}
        ),
        st.fixed_dictionaries({"anyOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"allOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"oneOf": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"not": children}),
        st.fixed_dictionaries({"if": children, "then": children, "else": children}),
    )


schemas = st.recursive(_leaf, _compound, max_leaves=12)
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(alphabet="abx ", max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_names, inner, max_size=3)),
    max_leaves=8,
)


def added_caps(before: Any, after: Any) -> list[dict[str, Any]]:
    """The dicts of ``before`` to which ``after`` adds a key (only ``maxLength`` may be added); everything
    else must be equal, value for value."""
    if isinstance(before, dict):
        assert isinstance(after, dict)
        assert set(after) - set(before) <= {"maxLength"}
        found = [before] if set(after) - set(before) else []
        for key, value in before.items():
            found += added_caps(value, after[key])
        return found
    if isinstance(before, list):
        assert isinstance(after, list)
        assert len(after) == len(before)
        return [d for b, a in zip(before, after, strict=True) for d in added_caps(b, a)]
    assert type(after) is type(before)
    assert after == before
    return []


@settings(max_examples=300, deadline=None)
@given(schemas, st.integers(1, 200))
def test_any_schema_gives_a_valid_schema_with_only_caps_added(schema: dict[str, Any], cap: int) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    before = copy.deepcopy(schema)
    capped = capped_strings(schema, cap)
    assert schema == before  # the input untouched
    jsonschema.Draft202012Validator.check_schema(capped)
    for string in added_caps(schema, capped):
        assert "string" in (string["type"] if isinstance(string["type"], list) else [string["type"]])
        assert not any(shape in string for shape in SHAPES)
    assert capped_strings(capped, cap) == capped  # a capped string has its bound: capping again adds nothing


@settings(max_examples=300, deadline=None)
@given(schemas, st.integers(1, 8), values)
def test_what_the_capped_schema_accepts_the_tool_s_own_schema_accepts(
    schema: dict[str, Any], cap: int, value: Any
) -> None:
    # The loop checks a call against the tool's own schema: the cap may only narrow it, never widen it.
    if jsonschema.Draft202012Validator(capped_strings(schema, cap)).is_valid(value):
        assert jsonschema.Draft202012Validator(schema).is_valid(value), json.dumps(value)
