"""A conversation the engine keeps between turns (the command line's sends) and the openai form each message
keeps: read again whenever another connection wrote to it, the same request either way, and the user's
message still committed before any of the reply shows."""

from __future__ import annotations

import asyncio
import threading

import pytest
from haystack.dataclasses import ChatMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.chat.engine import ChatEngine, TurnEvent
from engine.chat.request import plain_chat_message, to_chat_message
from engine.history.async_store import AsyncHistoryStore
from engine.history.store import HistoryStore
from tests.support.chat_turns import CountedLoads, collect
from tests.support.standin.launch import running_standin


@pytest.mark.asyncio
async def test_a_second_send_without_a_tree_reads_no_messages_and_sends_the_whole_branch(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_standin("--reply", "Fine thanks.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation(system_prompt="Be brief.")
        first = await engine.send(conv.id, "Hello there")  # as the command line sends: no tree
        await collect(first)
        loads = CountedLoads(store)
        monkeypatch.setattr(store, "load", loads)
        second = await engine.send(conv.id, "How are you")
        await collect(second)
        reply = await second.wait()
        assert loads.calls == 0
        regenerated = await engine.regenerate(reply.id)  # the kept tree holds the turn it just ended
        await collect(regenerated)
        assert loads.calls == 0
        await engine.shutdown()
    monkeypatch.undo()
    tree = await store.load(conv.id)
    assert [m.text for m in tree.branch()] == ["Hello there", "Fine thanks.", "How are you", "Fine thanks."]
    assert tree.branch()[2].parent_id == first.reply_id
    # The request carried the system prompt and the whole branch (the stand-in counts words): 2 + 2 + 2 + 3.
    assert reply.numbers.prompt_tokens == 9
    assert (await regenerated.wait()).numbers.prompt_tokens == 9
    assert len(tree.siblings(reply.id)) == 2


@pytest.mark.asyncio
async def test_a_kept_conversation_another_connection_wrote_to_is_read_again(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_standin("--reply", "Ok.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        await collect(await engine.send(conv.id, "One"))
        # Another process (the window, a second command line) answers a message in the same conversation.
        other_store = await AsyncHistoryStore.open(store.path)
        other = ChatEngine(other_store, server.endpoint)
        try:
            newer = await other.send(conv.id, "Two")
            await collect(newer)
        finally:
            await other.shutdown()
            await other_store.close()
        loads = CountedLoads(store)
        monkeypatch.setattr(store, "load", loads)
        third = await engine.send(conv.id, "Three")
        await collect(third)
        reply = await third.wait()
        assert loads.calls == 1
        await engine.shutdown()
    monkeypatch.undo()
    branch = (await store.load(conv.id)).branch()
    assert [m.text for m in branch] == ["One", "Ok.", "Two", "Ok.", "Three", "Ok."]
    assert branch[4].parent_id == newer.reply_id  # under the other process's reply, not the kept leaf
    assert reply.numbers.prompt_tokens == 5


@pytest.mark.asyncio
async def test_a_kept_conversation_whose_message_another_connection_deleted_is_read_again(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_standin("--reply", "Ok.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        first = await engine.send(conv.id, "One")
        await collect(first)
        second = await engine.send(conv.id, "Two")
        await collect(second)
        writer = HistoryStore(store.path)  # another process's connection
        try:
            writer.delete_message(second.user_message_id or 0)  # "Two" and its reply go
        finally:
            writer.close(purge=False)
        loads = CountedLoads(store)
        monkeypatch.setattr(store, "load", loads)
        third = await engine.send(conv.id, "Three")
        await collect(third)
        reply = await third.wait()
        assert loads.calls == 1
        await engine.shutdown()
    monkeypatch.undo()
    branch = (await store.load(conv.id)).branch()
    assert [m.text for m in branch] == ["One", "Ok.", "Three", "Ok."]
    assert reply.numbers.prompt_tokens == 3


@pytest.mark.asyncio
async def test_a_message_another_connection_added_during_the_turn_is_read_even_with_the_leaf_back(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the reply streams, another process adds a message on a branch of its own and shows the turn's
    # branch again: the leaf and the last write end as the turn left them, only the count tells.
    with running_standin("--reply-tokens", "20", "--tokens-per-second", "40") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        first = await engine.send(conv.id, "One")
        await collect(first)
        second = await engine.send(conv.id, "Two")
        writer = HistoryStore(store.path)
        try:
            side = writer.add_message(conv.id, first.reply_id, "user", "Side")
            writer.set_current_leaf(conv.id, second.reply_id)
        finally:
            writer.close(purge=False)
        events = await collect(second)
        assert events[-1].state == "complete"
        loads = CountedLoads(store)
        monkeypatch.setattr(store, "load", loads)
        third = await engine.send(conv.id, "Three", parent_id=side.id)
        await collect(third)
        reply = await third.wait()
        assert loads.calls == 1
        await engine.shutdown()
    assert reply.numbers.prompt_tokens == 1 + 20 + 1 + 1  # One, its reply, Side, Three


@pytest.mark.asyncio
async def test_a_kept_conversations_new_message_is_committed_before_anything_of_the_reply_shows(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_standin("--reply-tokens", "20", "--tokens-per-second", "40") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        await collect(await engine.send(conv.id, "First"))
        seen: list[TurnEvent] = []
        engine.turn_events.connect(seen.append)
        gate = threading.Event()
        real_add_turn = HistoryStore.add_turn

        def slow_commit(self: HistoryStore, *args: object, **kwargs: object) -> object:
            gate.wait(30)  # a commit that takes long (a slow disk's fsync): the real one, late
            return real_add_turn(self, *args, **kwargs)  # type: ignore[arg-type]

        loads = CountedLoads(store)
        monkeypatch.setattr(store, "load", loads)
        monkeypatch.setattr(HistoryStore, "add_turn", slow_commit)
        sending = asyncio.ensure_future(engine.send(conv.id, "Second"))
        await server.until_a_request_runs()  # while the history's writer is held up
        assert not sending.done()  # send() waits for the commit...
        assert seen == []  # ...and nothing of the reply is shown before it
        gate.set()
        turn = await sending
        events = await collect(turn)
        assert loads.calls == 0  # it was the kept conversation that was sent
        await engine.shutdown()
    monkeypatch.undo()
    assert events[0].kind == "started"
    assert events[-1].state == "complete"
    branch = (await store.load(conv.id)).branch()
    assert [m.text for m in branch][2] == "Second"
    assert branch[2].id == turn.user_message_id


@pytest.mark.asyncio
async def test_a_conversation_read_while_another_process_streams_into_it_is_not_kept(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpoint changes the streaming reply's text but neither the conversation's leaf nor its last write.
    with running_standin("--reply", "Ok.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        first = await engine.send(conv.id, "One")
        await collect(first)
        writer = HistoryStore(store.path)  # another process, streaming a reply to a new first message
        try:
            streaming = writer.add_turn(conv.id, None, "Elsewhere")
            # Read now (the leaf moved), with that reply still empty; answered under "One"'s reply.
            await collect(await engine.send(conv.id, "Two", parent_id=first.reply_id))
            writer.checkpoint(streaming.id, "Half of it")
        finally:
            writer.close(purge=False, interrupt=False)
        loads = CountedLoads(store)
        monkeypatch.setattr(store, "load", loads)
        third = await engine.send(conv.id, "Three", parent_id=streaming.id)
        await collect(third)
        reply = await third.wait()
        assert loads.calls == 1
        await engine.shutdown()
    assert reply.numbers.prompt_tokens == 1 + 3 + 1  # Elsewhere, the checkpointed text, Three


def _fresh(messages: list[tuple[str, str]]) -> list[dict[str, object]]:
    return [to_chat_message(ChatMessage, role, text).to_openai_dict_format() for role, text in messages]


roles = st.sampled_from(["system", "user", "assistant"])
texts = st.text(max_size=40)  # any characters, empty included


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(roles, texts), max_size=8), min_size=1, max_size=5))
def test_the_kept_openai_form_is_haystacks_own_whatever_was_sent_before(
    requests: list[list[tuple[str, str]]],
) -> None:
    # Requests one after another, each converted twice (as two turns would), by the generator Haystack runs.
    from haystack.utils import Secret

    from engine.chat.generator import ReasoningChatGenerator

    generator = ReasoningChatGenerator(api_key=Secret.from_token("k"), model="m")
    kept = plain_chat_message()
    for messages in requests:
        built = [to_chat_message(kept, role, text) for role, text in messages]
        for _ in range(2):
            sent = generator._prepare_api_call(messages=built, streaming_callback=lambda chunk: None)
            assert sent["messages"] == _fresh(messages)
            for form in sent["messages"]:
                form["content"] = "changed by whoever got it"  # what was handed out is a copy
        assert built == [to_chat_message(kept, role, text) for role, text in messages]
