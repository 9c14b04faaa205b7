"""Conversation trees for the transfer tests: a hand-made sample, hostile content, hypothesis strategies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from engine.transfer.model import STATES, ExportedConversation, ExportedMessage

T0 = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
EXPORTED_AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def sample_conversation() -> ExportedConversation:
    """Two user turns; the second reply was regenerated (two siblings), the newer one is shown."""

    def at(minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    messages = (
        ExportedMessage("1", None, "user", "How do I reverse a list in Python?", at(0)),
        ExportedMessage(
            "2",
            "1",
            "assistant",
            "Use slicing:\n\n```python\nitems = [1, 2, 3]\nprint(items[::-1])\n```\n\nOr `items.reverse()`.",
            at(0.1),
            reasoning="The user wants a reversed list; slicing is simplest.",
            model="SmolLM2-135M-Instruct",
            finish_reason="stop",
            numbers={"prompt_tokens": 31, "completion_tokens": 42, "ttft_s": 0.125, "tokens_per_s": 38.5},
        ),
        ExportedMessage(
            "3", "2", "user", "And in *place*? See [the docs](https://docs.python.org/3/).", at(1)
        ),
        ExportedMessage(
            "4",
            "3",
            "assistant",
            "`items.reverse()` changes the list itself.",
            at(1.1),
            model="SmolLM2-135M-Instruct",
            state="stopped",
            finish_reason="stop",
            numbers={"completion_tokens": 9, "wall_s": 0.5},
        ),
        ExportedMessage(
            "5",
            "3",
            "assistant",
            "Call `items.reverse()`; it returns `None`.\n\n"
            "| method | copies |\n|---|---|\n| reverse() | no |",
            at(2),
            model="SmolLM2-135M-Instruct",
            finish_reason="stop",
            numbers={"prompt_tokens": 80, "completion_tokens": 17, "ttft_s": 0.09, "tokens_per_s": 41.25},
        ),
    )
    return ExportedConversation(
        id="c0ffee00c0ffee00c0ffee00c0ffee00",
        title="Reversing lists",
        created=T0,
        updated=at(2),
        messages=messages,
        shown_leaf="5",
        tags=("python", "howto"),
        folder="Work",
        pinned=True,
        system_prompt="You are a concise Python tutor.",
        settings={"temperature": 0.2, "top_p": 0.9, "stop": ["</s>"]},
    )


def hostile_conversation(base_url: str) -> ExportedConversation:
    """Model output that tries to run script or load things from ``base_url`` when the export is opened."""
    attacks = "\n\n".join(
        [
            "<script>document.title='PWNED-script'; fetch('" + base_url + "/script')</script>",
            '<img src="' + base_url + '/img-onerror" onerror="document.title=\'PWNED-onerror\'">',
            "![remote](" + base_url + "/markdown-image.png)",
            "[click me](javascript:document.title='PWNED-link')",
            "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            '<iframe src="' + base_url + '/iframe"></iframe>',
            '<link rel="stylesheet" href="' + base_url + '/style.css">',
            "<svg onload=\"document.title='PWNED-svg'\"></svg>",
            '<a href="' + base_url + '/plain-link">a real link</a>',
            "[ok](" + base_url + "/markdown-link)",
            "```html\n<script>document.title='PWNED-code'</script>\n```",
        ]
    )
    messages = (
        ExportedMessage("u", None, "user", "Show me some HTML <b>bold</b>", T0),
        ExportedMessage(
            "a",
            "u",
            "assistant",
            attacks,
            T0 + timedelta(seconds=5),
            reasoning="<script>document.title='PWNED-reasoning'</script>![r](" + base_url + "/reasoning.png)",
            model="evil<script>document.title='PWNED-model'</script>",
        ),
    )
    return ExportedConversation(
        id="hostile",
        title="</title><script>document.title='PWNED-title'</script>",
        created=T0,
        updated=T0,
        messages=messages,
        shown_leaf="a",
        tags=("<script>x</script>",),
        system_prompt="<img src=" + base_url + "/system.png>",
    )


_TEXT = st.text(max_size=60)
_INSTANT = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False, width=64)
_INT = st.integers(min_value=-(2**53), max_value=2**53)
_JSON = st.recursive(
    st.none() | st.booleans() | _INT | _FLOAT | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_COUNT = st.integers(min_value=0, max_value=2**40)
_MEASURE = st.floats(min_value=0, max_value=1e9)
_NUMBERS = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": _COUNT,
        "completion_tokens": _COUNT,
        "ttft_s": _MEASURE,
        "tokens_per_s": _MEASURE,
        "wall_s": _MEASURE,
        "other": _INT | _FLOAT,
    },
)


@st.composite
def conversations(draw: st.DrawFn, max_messages: int = 25) -> ExportedConversation:
    """Arbitrary trees: each message answers nothing or an earlier one; ids are arbitrary unique strings."""
    count = draw(st.integers(min_value=0, max_value=max_messages))
    ids = draw(st.lists(st.text(min_size=1, max_size=12), min_size=count, max_size=count, unique=True))
    messages = []
    for i, message_id in enumerate(ids):
        parent = draw(st.none() | st.sampled_from(ids[:i])) if i else None
        messages.append(
            ExportedMessage(
                id=message_id,
                parent_id=parent,
                role=draw(st.sampled_from(["system", "user", "assistant", "tool"])),
                text=draw(st.text(max_size=200)),
                created=draw(_INSTANT),
                reasoning=draw(st.none() | _TEXT),
                state=draw(st.sampled_from(STATES)),
                model=draw(st.none() | _TEXT),
                finish_reason=draw(st.none() | _TEXT),
                error=draw(st.none() | _TEXT),
                numbers=draw(_NUMBERS),
            )
        )
    return ExportedConversation(
        id=draw(st.text(min_size=1, max_size=40)),
        source=draw(st.just("") | _TEXT),
        title=draw(_TEXT),
        created=draw(_INSTANT),
        updated=draw(_INSTANT),
        messages=tuple(messages),
        shown_leaf=draw(st.none() | st.sampled_from(ids)) if ids else None,
        tags=tuple(draw(st.lists(_TEXT, max_size=4))),
        folder=draw(st.none() | _TEXT),
        pinned=draw(st.booleans()),
        system_prompt=draw(st.text(max_size=100)),
        settings=draw(st.dictionaries(_TEXT, _JSON, max_size=5)),
    )
