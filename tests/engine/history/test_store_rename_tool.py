"""A renamed tool (an MCP server) carried over to the conversations' stored settings; real SQLite."""

from __future__ import annotations

from pathlib import Path

from engine.history.store import HistoryStore


def test_every_conversation_naming_the_old_server_names_the_new_one_in_its_place(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.db")
    try:
        both = store.create_conversation(
            title="both", settings={"tools": ["current_time", "desk", "search_history"], "temperature": 0.2}
        )
        already = store.create_conversation(title="already", settings={"tools": ["desk", "notes"]})
        binned = store.create_conversation(title="binned", settings={"tools": ["desk"]})
        store.delete_conversation(binned.id)
        other = store.create_conversation(title="other", settings={"tools": ["desk-2", "current_time"]})
        # A document collection named like the server is not a tool.
        documents = store.create_conversation(title="documents", settings={"documents": ["desk"]})
        plain = store.create_conversation(title="plain")
        before = {c.id: c.updated_at for c in store.list_conversations().items}

        assert store.rename_tool("desk", "notes") == 3

        assert store.conversation(both.id).settings == {
            "tools": ["current_time", "notes", "search_history"],
            "temperature": 0.2,
        }
        assert store.conversation(already.id).settings == {"tools": ["notes"]}  # named once
        assert store.conversation(other.id).settings == {"tools": ["desk-2", "current_time"]}
        assert store.conversation(documents.id).settings == {"documents": ["desk"]}
        assert store.conversation(plain.id).settings == {}
        store.undo_delete(binned.id)
        assert store.conversation(binned.id).settings == {"tools": ["notes"]}
        # The list keeps its order: a rename is not a new message.
        assert {c.id: c.updated_at for c in store.list_conversations().items if c.id in before} == before

        assert store.rename_tool("desk", "notes") == 0  # nothing names it any more
        assert store.rename_tool("notes", "notes") == 0
    finally:
        store.close()
    reopened = HistoryStore(tmp_path / "history.db")
    try:
        assert reopened.conversation(both.id).settings["tools"] == ["current_time", "notes", "search_history"]
    finally:
        reopened.close()


def test_a_second_store_closed_without_interrupting_leaves_this_process_reply_streaming(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.db"
    main = HistoryStore(path)
    try:
        conversation = main.create_conversation(title="Live", settings={"tools": ["desk"]})
        question = main.add_message(conversation.id, None, "user", "Hi")
        reply = main.add_message(conversation.id, question.id, "assistant", "Hel", state="streaming")
        second = HistoryStore(path)  # e.g. Preferences renaming a server while the window streams a reply
        assert second.rename_tool("desk", "notes") == 1
        second.close(purge=False, interrupt=False)
        assert main.message(reply.id).state == "streaming"
        third = HistoryStore(path)
        third.close()  # the default: this process's unfinished replies are marked interrupted
        assert main.message(reply.id).state == "interrupted"
    finally:
        main.close()


def test_a_rename_undone_puts_back_only_what_it_changed_and_no_later_write(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.db")
    try:
        both = store.create_conversation(title="both", settings={"tools": ["desk", "notes"], "top_p": 0.5})
        one = store.create_conversation(title="one", settings={"tools": ["desk"]})
        written = store.create_conversation(title="written", settings={"tools": ["current_time", "desk"]})
        other = store.create_conversation(title="other", settings={"tools": ["web"]})

        changed = store.rename_tool_undoably("desk", "notes")

        assert sorted(changed) == sorted([both.id, one.id, written.id])
        assert store.conversation(both.id).settings == {"tools": ["notes"], "top_p": 0.5}
        # Written after the rename (e.g. the window's Apply): that write is kept by the undo.
        store.update_conversation(written.id, settings={"tools": ["notes"], "temperature": 0.3})

        assert store.undo_rename_tool(changed) == 2

        assert store.conversation(both.id).settings == {
            "tools": ["desk", "notes"],
            "top_p": 0.5,
        }  # both again
        assert store.conversation(one.id).settings == {"tools": ["desk"]}
        assert store.conversation(written.id).settings == {"tools": ["notes"], "temperature": 0.3}
        assert store.conversation(other.id).settings == {"tools": ["web"]}
        assert store.rename_tool_undoably("desk", "desk") == {}
    finally:
        store.close()
