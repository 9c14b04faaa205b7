"""A turn with tools is saved in the history message by message, reads back whole and goes on."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from haystack.dataclasses import ChatMessage, ToolCall

from engine.chat.errors import ChatError
from engine.endpoint import Endpoint
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from engine.server.readiness import free_port
from engine.tools.approval import ApprovalPolicy
from engine.tools.loop import ToolChoiceInvalid
from engine.tools.session import ToolTurnOptions, branch_messages, run_tool_turn
from tests.engine.tools.test_loop import add_tool, generator_for
from tests.support.standin.launch import running_standin


@pytest.mark.asyncio
async def test_every_message_of_a_tool_turn_is_stored_and_the_next_turn_sees_them(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    store = await AsyncHistoryStore.open(db)
    try:
        conv = await store.create_conversation(title="")
        with running_standin("--tool-calls", "well-formed", "--tool-arguments", '{"a": 2, "b": 3}') as server:
            async with generator_for(server) as generator:
                turn = await run_tool_turn(
                    store,
                    generator,
                    server.endpoint(),
                    conv.id,
                    "What is 2 + 3?",
                    ToolTurnOptions(tools=[add_tool()], approval=ApprovalPolicy.allow_all()),
                )
                assert turn.error is None
                second = await run_tool_turn(
                    store,
                    generator,
                    server.endpoint(),
                    conv.id,
                    "And again?",
                    ToolTurnOptions(tools=[add_tool()], approval=ApprovalPolicy.allow_all(), choice="none"),
                )
        assert second.error is None
        tree = await store.load(conv.id)
        assert tree.conversation.title == "What is 2 + 3?"
    finally:
        await store.close()
    reopened = HistoryStore(db)
    branch = reopened.load(conv.id).branch()
    reopened.close()
    assert [m.role for m in branch] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    call = branch[1].to_chat_message().tool_calls[0]
    assert call.tool_name == "add"
    assert call.arguments == {"a": 2, "b": 3}
    result = branch[2].to_chat_message().tool_call_result
    assert result.result == "5"
    assert result.origin == call
    assert branch[2].text == "5"  # what search and listings see
    assert [p.parent_id for p in branch[1:]] == [m.id for m in branch[:-1]]  # one chain, in order
    # The next request carries the tool call and its result whole.
    sent = branch_messages(reopened_conversation(db, conv.id), branch)
    assert [m.role.value for m in sent] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert sent[1].tool_calls == [call]


def reopened_conversation(db: Path, conversation_id: int):  # type: ignore[no-untyped-def]
    store = HistoryStore(db)
    try:
        return store.conversation(conversation_id)
    finally:
        store.close()


def gone_endpoint() -> Endpoint:
    """An endpoint where no server listens (a free port): a turn's request is refused at once."""
    return Endpoint(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", api_key="k", max_model_len=2048)


@pytest.mark.asyncio
async def test_a_turn_whose_server_is_gone_keeps_the_message_and_says_why(tmp_path: Path) -> None:
    store = await AsyncHistoryStore.open(tmp_path / "history.sqlite3")
    try:
        conv = await store.create_conversation(title="t")
        gone = gone_endpoint()
        async with generator_for(gone) as generator:
            turn = await run_tool_turn(
                store, generator, gone, conv.id, "hi", ToolTurnOptions([add_tool()], ApprovalPolicy())
            )
        assert turn.error is not None
        assert turn.reply is not None
        assert turn.reply.state == "failed"
        assert turn.reply.error == str(turn.error)
        assert [m.role for m in (await store.load(conv.id)).branch()] == ["user", "assistant"]
        with pytest.raises(ToolChoiceInvalid):
            await run_tool_turn(
                store,
                object(),
                gone,
                conv.id,
                "x",
                ToolTurnOptions(tools=[add_tool()], approval=ApprovalPolicy(), choice="nope"),
            )
        assert len((await store.load(conv.id)).messages) == 2  # a bad choice stored nothing
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_tool_turn_moves_what_lives_before_it_out_of_the_collectors_reach(tmp_path: Path) -> None:
    """As ``ChatEngine.send`` does: the window's send no longer freezes for tool turns."""
    store = await AsyncHistoryStore.open(tmp_path / "history.sqlite3")
    try:
        conv = await store.create_conversation(title="t")
        gone = gone_endpoint()
        try:
            async with generator_for(gone) as generator:
                gc.unfreeze()
                alive = [[n] for n in range(1000)]  # tracked objects alive before the turn
                assert gc.get_freeze_count() == 0
                turn = await run_tool_turn(
                    store, generator, gone, conv.id, "hi", ToolTurnOptions([add_tool()], ApprovalPolicy())
                )
                frozen = gc.get_freeze_count()
        finally:
            gc.unfreeze()
        assert turn.error is not None  # the turn ran (to the refused connection)
        assert frozen > len(alive)
    finally:
        await store.close()


def test_an_orphan_tool_result_is_not_sent() -> None:
    from engine.history.records import Conversation, StoredMessage

    conv = Conversation(id=1, uid="u", title="t", created_at=0, updated_at=0)
    orphan = ChatMessage.from_tool("x", origin=ToolCall("t", {}))
    branch = [
        StoredMessage(1, 1, None, "user", "hi"),
        StoredMessage(2, 1, 1, "tool", "x", content=orphan.to_dict()),
    ]
    assert [m.role.value for m in branch_messages(conv, branch)] == ["user"]


@pytest.mark.asyncio
async def test_regenerate_with_tools_makes_a_sibling_branch_and_keeps_the_old_one(tmp_path: Path) -> None:
    from engine.tools.session import rerun_tool_turn

    store = await AsyncHistoryStore.open(tmp_path / "history.sqlite3")
    try:
        conv = await store.create_conversation(title="t")
        with running_standin("--tool-calls", "well-formed", "--tool-arguments", '{"a": 1, "b": 1}') as server:
            async with generator_for(server) as generator:
                first = await run_tool_turn(
                    store,
                    generator,
                    server.endpoint(),
                    conv.id,
                    "1 + 1?",
                    ToolTurnOptions(tools=[add_tool()], approval=ApprovalPolicy.allow_all()),
                )
                again = await rerun_tool_turn(
                    store,
                    generator,
                    server.endpoint(),
                    first.user.id,
                    ToolTurnOptions(tools=[add_tool()], approval=ApprovalPolicy.allow_all()),
                )
        tree = await store.load(conv.id)
    finally:
        await store.close()
    old_call, new_call = first.stored[0], again.stored[0]
    assert tree.siblings(new_call.id) == [old_call.id, new_call.id]  # ‹ 2/2 ›, the old answer kept
    shown = tree.branch()
    assert [m.id for m in shown] == [first.user.id, *(m.id for m in again.stored)]
    assert [m.role for m in shown] == ["user", "assistant", "tool", "assistant"]


@pytest.mark.asyncio
async def test_an_edit_with_tools_is_a_sibling_of_the_message_even_the_first_one(tmp_path: Path) -> None:
    from engine.tools.session import edit_tool_turn

    store = await AsyncHistoryStore.open(tmp_path / "history.sqlite3")
    try:
        conv = await store.create_conversation(title="")
        with running_standin("--tool-calls", "well-formed", "--tool-arguments", '{"a": 1, "b": 1}') as server:
            async with generator_for(server) as generator:
                common = ToolTurnOptions(tools=[add_tool()], approval=ApprovalPolicy.allow_all())
                first = await run_tool_turn(store, generator, server.endpoint(), conv.id, "1 + 1?", common)
                second = await run_tool_turn(store, generator, server.endpoint(), conv.id, "2 + 2?", common)
                root = await edit_tool_turn(
                    store, generator, server.endpoint(), first.user.id, "1 + 2?", common
                )
                tree = await store.load(conv.id)
                assert tree.siblings(root.user.id) == [first.user.id, root.user.id]  # a new first message
                assert root.user.parent_id is None
                assert [m.role for m in tree.branch()] == ["user", "assistant", "tool", "assistant"]
                # A later message (of the old branch): its new version hangs under the answer the old one did.
                later = await edit_tool_turn(
                    store, generator, server.endpoint(), second.user.id, "2 + 3?", common
                )
                with pytest.raises(ChatError, match="Only a message you wrote"):
                    await edit_tool_turn(store, generator, server.endpoint(), later.stored[0].id, "x", common)
                tree = await store.load(conv.id)
    finally:
        await store.close()
    assert later.user.parent_id == second.user.parent_id
    assert tree.siblings(later.user.id) == [second.user.id, later.user.id]
    shown = tree.branch()
    assert [m.text for m in shown if m.role == "user"] == ["1 + 1?", "2 + 3?"]
    assert [m.role for m in shown][-4:] == ["user", "assistant", "tool", "assistant"]
    assert shown[-2].to_chat_message().tool_call_result.result == "2"  # type: ignore[union-attr]
    assert tree.conversation.title == "1 + 1?"  # an edit keeps the conversation's title
