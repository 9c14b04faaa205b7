"""Tool calls and results in the files: lossless in JSON (through a store and back), readable and inert in
Markdown and HTML."""

from __future__ import annotations

import json
from pathlib import Path

from haystack.dataclasses import ChatMessage, ToolCall

from engine.history.store import HistoryStore
from engine.tools.loop import TOOL_META, result_meta
from engine.transfer.history_adapter import from_tree, to_tree
from engine.transfer.html_format import render_html
from engine.transfer.json_format import from_dict, to_dict
from engine.transfer.markdown_format import render_markdown

HOSTILE = "<script>alert(1)</script> ``` [click](javascript:alert(1))"


def _tool_conversation(db: Path) -> int:
    store = HistoryStore(db)
    conv = store.create_conversation(title="tools")
    user = store.add_message(conv.id, None, "user", "2 + 3, and fetch the page")
    calls = [
        ToolCall(tool_name="add", arguments={"a": 2, "b": 3}, id="call-1"),
        ToolCall(
            tool_name="fetch", arguments={}, id="call-2", extra={"raw_arguments": '{"url": ', "problem": "x"}
        ),
    ]
    servers = {TOOL_META: {"servers": {"call-1": "desk", "call-2": "built-in"}}}
    asked = ChatMessage.from_assistant(text="Let me compute.", tool_calls=calls, meta=servers)
    a = store.add_message(conv.id, user.id, "assistant", "Let me compute.", content=asked.to_dict())
    first = ChatMessage.from_tool("5", origin=calls[0], meta={TOOL_META: result_meta("desk", "allow_always")})
    t1 = store.add_message(conv.id, a.id, "tool", "5", content=first.to_dict())
    second = ChatMessage.from_tool(
        HOSTILE, origin=calls[1], error=True, meta={TOOL_META: result_meta("built-in")}
    )
    t2 = store.add_message(conv.id, t1.id, "tool", HOSTILE, content=second.to_dict())
    store.add_message(conv.id, t2.id, "assistant", "It is 5.")
    store.close()
    return conv.id


def test_json_export_and_import_keep_every_tool_call_and_result(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    cid = _tool_conversation(db)
    store = HistoryStore(db)
    exported = from_tree(store.export_tree(cid))
    store.close()
    data = json.loads(json.dumps(to_dict(exported)))
    messages = data["conversation"]["messages"]
    assert messages[1]["tool_calls"][0] == {
        "tool_name": "add",
        "arguments": {"a": 2, "b": 3},
        "id": "call-1",
        "extra": None,
    }
    assert messages[3]["tool_result"]["error"] is True
    # What the cards showed: each call's server, and the user's decision on the one that was asked about.
    assert messages[1]["tool_meta"] == {"servers": {"call-1": "desk", "call-2": "built-in"}}
    assert messages[2]["tool_meta"] == {"server": "desk", "decision": "allow_always"}
    assert messages[3]["tool_meta"] == {"server": "built-in"}
    assert "tool_calls" not in messages[0]  # plain messages are written as before
    again = from_dict(data)
    assert again == exported  # lossless
    target = HistoryStore(tmp_path / "b.sqlite3")
    new_id = target.import_tree(to_tree(again))
    branch = target.load(new_id).branch()
    target.close()
    original = HistoryStore(db)
    before = original.load(cid).branch()
    original.close()
    assert [m.to_chat_message() for m in branch] == [m.to_chat_message() for m in before]
    assert [m.to_chat_message().meta for m in branch[1:4]] == [m.to_chat_message().meta for m in before[1:4]]
    assert branch[1].to_chat_message().tool_calls[1].extra == {"raw_arguments": '{"url": ', "problem": "x"}


def test_markdown_and_html_show_tool_calls_and_keep_tool_output_inert(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite3"
    cid = _tool_conversation(db)
    store = HistoryStore(db)
    exported = from_tree(store.export_tree(cid))
    store.close()
    md = render_markdown(exported)
    assert "**Tool call:** `add` · desk" in md
    assert '"a": 2' in md
    assert "**Result of `add` · always allowed**" in md
    assert "**Result of `fetch` (error)**" in md
    assert "````text\n" + HOSTILE + "\n````" in md  # a fence longer than the output's own backticks
    # A call whose arguments were not a JSON object shows what the model sent (the card does too), not "{}".
    assert '**Tool call:** `fetch` · built-in\n\n```text\n{"url": \n```' in md
    page = render_html(exported)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    assert '<code>fetch</code> · built-in</p>\n<span class="lang">text</span>' in page
    assert '<code>{"url": \n</code>' in page  # as text in a code block


def test_a_chatgpt_conversation_with_a_tool_call_imports_as_chat_messages(tmp_path: Path) -> None:
    from engine.transfer.chatgpt_import import parse_chatgpt

    fixture = Path(__file__).parents[1] / "fixtures" / "chatgpt_conversations.json"
    first, _ = parse_chatgpt(json.loads(fixture.read_text(encoding="utf-8")))
    store = HistoryStore(tmp_path / "h.sqlite3")
    try:
        branch = store.load(store.import_tree(to_tree(first))).branch()
    finally:
        store.close()
    messages = [m.to_chat_message() for m in branch]
    assert [m.role.value for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1].tool_calls[0].tool_name == "python"
    assert messages[2].tool_call_result.result == "[{'age': 5}, {'age': 3}]"
    assert messages[2].tool_call_result.origin == messages[1].tool_calls[0]
