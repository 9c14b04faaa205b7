"""Tool calls and results are stored as Haystack ChatMessages (ToolCall / ToolCallResult), read back whole."""

from __future__ import annotations

from pathlib import Path

from haystack.dataclasses import ChatMessage, ToolCall

from engine.history.store import HistoryStore


def test_a_tool_call_and_its_result_survive_a_reopen_as_chat_messages(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    store = HistoryStore(db)
    conv = store.create_conversation(title="t")
    user = store.add_message(conv.id, None, "user", "what time is it?")
    call = ToolCall(tool_name="current_time", arguments={"zone": "UTC"}, id="call-1")
    asked = ChatMessage.from_assistant(text="", tool_calls=[call])
    a = store.add_message(conv.id, user.id, "assistant", "", content=asked.to_dict())
    result = ChatMessage.from_tool("2026-12-06T03:00:00+00:00", origin=call)
    t = store.add_message(conv.id, a.id, "tool", "2026-12-06T03:00:00+00:00", content=result.to_dict())
    store.close()

    again = HistoryStore(db)
    branch = again.load(conv.id).branch()
    again.close()
    assert [m.role for m in branch] == ["user", "assistant", "tool"]
    back_call = branch[1].to_chat_message()
    assert back_call.tool_calls == [call]
    back_result = branch[2].to_chat_message()
    assert back_result.tool_call_result is not None
    assert back_result.tool_call_result.result == "2026-12-06T03:00:00+00:00"
    assert back_result.tool_call_result.origin == call
    assert branch[2].id == t.id
    assert branch[2].text == "2026-12-06T03:00:00+00:00"
