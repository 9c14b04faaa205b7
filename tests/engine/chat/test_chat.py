"""Chat turns against the OpenAI-compatible stand-in *process*: speed, faults, reasoning, stop, branches."""

from __future__ import annotations

import gc
import socket
import time
from dataclasses import replace

import pytest

from engine.chat.engine import ChatEngine, ChatTimeouts, TurnEvent
from engine.chat.errors import (
    ConnectionLost,
    ContextTooLong,
    EngineDied,
    ModelNotFound,
    NoChatTemplate,
    NoServer,
    ReplyStalled,
    ServerUnreachable,
)
from engine.chat.generation import GenerationSettings
from engine.endpoint import Endpoint
from engine.history.async_store import AsyncHistoryStore
from tests.support.chat_turns import CountedLoads, collect
from tests.support.standin.launch import running_standin
from tests.support.standin.server import WORDS

pytestmark = pytest.mark.asyncio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_ten_thousand_tokens_a_second_none_lost_or_reordered(store: AsyncHistoryStore) -> None:
    n = 20_000
    with running_standin("--reply-tokens", str(n), "--tokens-per-second", "10000") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        seen: list[TurnEvent] = []
        engine.turn_events.connect(seen.append)
        turn = await engine.send(conv.id, "Count for me")
        events = await collect(turn)
        reply = await turn.wait()
    tokens = [e.text for e in events if e.kind == "token"]
    expected = [(" " if i else "") + WORDS[i % len(WORDS)] for i in range(n)]
    assert tokens == expected
    assert reply.text == "".join(expected)
    assert reply.state == "complete"
    assert reply.numbers.completion_tokens == n
    assert events[0].kind == "started"
    assert events[-1].kind == "finished"
    assert seen == events  # the engine-wide event carries the same sequence
    print(f"\n{n} tokens, {reply.numbers.tokens_per_s:.0f} tok/s received, wall {reply.numbers.wall_s:.2f} s")


async def test_a_turn_whose_caller_follows_turn_events_queues_nothing(store: AsyncHistoryStore) -> None:
    # The window follows engine.turn_events and never iterates its turns: their queues held every token's
    # event until the reply ended.
    n = 300
    with running_standin("--reply-tokens", str(n), "--tokens-per-second", "3000") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        seen: list[TurnEvent] = []
        engine.turn_events.connect(seen.append)
        turn = await engine.send(conv.id, "Count for me")
        turn.ignore_events()
        reply = await turn.wait()
    assert sum(e.kind == "token" for e in seen) == n
    assert seen[-1].kind == "finished"
    assert reply.state == "complete"
    assert turn._queue is None
    with pytest.raises(RuntimeError, match="keeps no events"):
        await anext(turn.events())


async def test_a_turn_is_saved_with_its_numbers_and_a_title(store: AsyncHistoryStore) -> None:
    with running_standin("--reply", "Paris is the capital.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation(settings=GenerationSettings(temperature=0.0, max_tokens=50))
        turn = await engine.send(conv.id, "What is the capital of France? Answer briefly.")
        await collect(turn)
        reply = await turn.wait()
    tree = await store.load(conv.id)
    assert [(m.role, m.text) for m in tree.branch()] == [
        ("user", "What is the capital of France? Answer briefly."),
        ("assistant", "Paris is the capital."),
    ]
    assert tree.conversation.title == "What is the capital of France?"
    assert reply.model == "standin"
    assert reply.finish_reason == "stop"
    n = reply.numbers
    assert n.prompt_tokens is not None
    assert n.prompt_tokens > 0
    assert n.completion_tokens == 4
    assert n.ttft_s is not None
    assert n.wall_s is not None
    assert n.ttft_s <= n.wall_s


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
async def test_reasoning_is_captured_apart_from_the_answer(store: AsyncHistoryStore, field: str) -> None:
    with running_standin("--reasoning", "First I recall Europe.", "--reasoning-field", field) as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "Capital of France?")
        events = await collect(turn)
        reply = await turn.wait()
    kinds = [e.kind for e in events if e.kind in ("reasoning", "token")]
    assert kinds == ["reasoning"] * 4 + ["token"] * 6  # all reasoning first, in order
    assert "".join(e.text for e in events if e.kind == "reasoning") == "First I recall Europe."
    assert reply.reasoning == "First I recall Europe."
    assert reply.text == "The capital of France is Paris."
    assert reply.to_chat_message().reasoning.reasoning_text == "First I recall Europe."


async def test_stop_keeps_the_partial_reply_marked_stopped(store: AsyncHistoryStore) -> None:
    with running_standin("--reply-tokens", "2000", "--tokens-per-second", "100") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "Go on")
        tokens: list[str] = []
        finished: TurnEvent | None = None
        stopped_at = 0.0
        async for event in turn:
            if event.kind == "token":
                tokens.append(event.text)
                if len(tokens) == 10:
                    stopped_at = time.monotonic()
                    engine.stop(conv.id)
            if event.kind == "finished":
                finished = event
        latency = time.monotonic() - stopped_at
    assert finished is not None
    assert finished.state == "stopped"
    reply = await store.message(turn.reply_id)
    assert reply.state == "stopped"
    assert reply.text == "".join(tokens)
    assert 10 <= len(tokens) < 2000
    print(f"\nstop -> finished (reply saved): {latency * 1000:.1f} ms")


async def test_dead_server_is_reported_at_once_and_nothing_is_lost(store: AsyncHistoryStore) -> None:
    endpoint = Endpoint(base_url=f"http://127.0.0.1:{_free_port()}/v1", model="m", max_model_len=2048)
    engine = ChatEngine(store, lambda: endpoint)
    conv = await engine.new_conversation()
    started = time.monotonic()
    turn = await engine.send(conv.id, "Hello?", check_context=False)
    events = await collect(turn)
    elapsed = time.monotonic() - started
    finished = events[-1]
    assert finished.state == "failed"
    assert isinstance(finished.error, ServerUnreachable)
    assert "127.0.0.1" in str(finished.error)
    tree = await store.load(conv.id)
    assert [m.text for m in tree.branch()] == ["Hello?", ""]
    assert tree.branch()[-1].state == "failed"
    print(f"\ndead local server reported in {elapsed * 1000:.0f} ms")


async def test_no_server_at_all_refuses_before_storing(store: AsyncHistoryStore) -> None:
    engine = ChatEngine(store, lambda: None)
    conv = await engine.new_conversation()
    with pytest.raises(NoServer):
        await engine.send(conv.id, "anyone?")
    assert (await store.load(conv.id)).messages == ()


async def test_connection_lost_mid_stream_keeps_the_partial_and_retry_works(store: AsyncHistoryStore) -> None:
    current: list[Endpoint] = []
    engine = ChatEngine(store, lambda: current[0])
    conv = await engine.new_conversation()
    with running_standin("--reply-tokens", "500", "--crash-after", "40") as crashing:
        current.append(crashing.endpoint())
        turn = await engine.send(conv.id, "Tell me everything")
        events = await collect(turn)
    failed = await store.message(turn.reply_id)
    assert failed.state == "failed"
    assert isinstance(events[-1].error, ConnectionLost)
    assert failed.text == "".join(e.text for e in events if e.kind == "token")
    assert 0 < len(failed.text.split()) <= 40
    assert failed.error  # the sentence is stored with the reply

    with running_standin("--reply", "All of it.") as healthy:
        current[0] = healthy.endpoint()
        retry = await engine.regenerate(turn.reply_id)
        await collect(retry)
        again = await retry.wait()
    tree = await store.load(conv.id)
    assert again.state == "complete"
    assert again.text == "All of it."
    assert tree.siblings(again.id) == [failed.id, again.id]  # the failed attempt stays as an alternative


async def test_a_stalled_stream_is_abandoned_after_the_read_timeout(store: AsyncHistoryStore) -> None:
    with running_standin("--reply-tokens", "100", "--stall-after", "5") as server:
        engine = ChatEngine(store, server.endpoint, timeouts=ChatTimeouts(read=1.0))
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "Hello")
        events = await collect(turn)
    reply = await store.message(turn.reply_id)
    assert isinstance(events[-1].error, ReplyStalled)
    assert reply.state == "failed"
    assert reply.text == " ".join(WORDS[:5])


async def test_unknown_model_becomes_model_not_found(store: AsyncHistoryStore) -> None:
    with running_standin() as server:
        wrong = replace(server.endpoint(), model="no-such-model")
        engine = ChatEngine(store, lambda: wrong)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "hi")
        events = await collect(turn)
    error = events[-1].error
    assert isinstance(error, ModelNotFound)
    assert "no-such-model" in str(error)
    assert "does not exist" in error.details


async def test_base_model_without_template_is_told_and_completion_mode_answers(
    store: AsyncHistoryStore,
) -> None:
    with running_standin("--no-chat-template", "--reply", "Once upon a time.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "Write a story")
        events = await collect(turn)
        error = events[-1].error
        assert isinstance(error, NoChatTemplate)
        assert error.fix is not None
        assert error.fix.action == "set_mode_completion"

        settings = GenerationSettings.parse((await store.conversation(conv.id)).settings).updated(
            mode="completion"
        )
        await store.update_conversation(conv.id, settings=settings.to_json_dict())
        retry = await engine.regenerate(turn.reply_id)
        tokens = [e.text for e in await collect(retry) if e.kind == "token"]
        reply = await retry.wait()
    assert "".join(tokens) == reply.text == "Once upon a time."
    assert reply.state == "complete"
    assert reply.numbers.completion_tokens == 4


async def test_a_turn_that_will_not_fit_is_refused_before_storing_and_dropping_turns_helps(
    store: AsyncHistoryStore,
) -> None:
    with running_standin("--max-model-len", "40", "--reply", "ok") as server:
        endpoint = replace(server.endpoint(), max_model_len=None)  # the limit comes from /v1/models
        engine = ChatEngine(store, lambda: endpoint)
        conv = await engine.new_conversation()
        for i in range(3):
            turn = await engine.send(conv.id, f"turn {i} " + "word " * 8)
            await collect(turn)
        before = len((await store.load(conv.id)).messages)
        with pytest.raises(ContextTooLong) as info:
            await engine.send(conv.id, "and one more " + "word " * 8)
        assert len((await store.load(conv.id)).messages) == before
        fix = info.value.fix
        assert fix is not None
        assert fix.action == "drop_oldest_turns"
        turns = fix.params["turns"]
        assert 1 <= turns <= 3
        assert info.value.limit == 40
        turn = await engine.send(conv.id, "and one more " + "word " * 8, drop_oldest_turns=turns)
        await collect(turn)
        assert (await turn.wait()).text == "ok"
    tree = await store.load(conv.id)
    assert len(tree.messages) == before + 2  # dropped from the request, never from the history


async def test_the_servers_own_refusal_of_a_long_request_is_a_context_problem(
    store: AsyncHistoryStore,
) -> None:
    # Without the app's own check (or when its count was off), vLLM answers 400 in its own words.
    with running_standin("--max-model-len", "40", "--reply", "ok") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "word " * 60, check_context=False)
        await collect(turn)
        reply = await turn.wait()
    assert reply.state == "failed"
    assert reply.error is not None
    assert reply.error == "The conversation no longer fits in the model's context."  # ContextTooLong's words


async def test_edit_and_resend_adds_a_sibling_user_message(store: AsyncHistoryStore) -> None:
    with running_standin("--reply", "Sure.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation(system_prompt="Be kind.")
        first = await engine.send(conv.id, "Hello")
        await collect(first)
        second = await engine.send(conv.id, "How are you")
        await collect(second)
        edited = await engine.edit_and_resend(second.user_message_id or 0, "How are you today")
        await collect(edited)
    tree = await store.load(conv.id)
    assert [m.text for m in tree.branch()] == ["Hello", "Sure.", "How are you today", "Sure."]
    assert tree.siblings(edited.user_message_id or 0) == [second.user_message_id, edited.user_message_id]
    old_leaf = tree.leaf_after_switch(second.user_message_id or 0)
    assert old_leaf == second.reply_id

    # editing the very first message makes a second root, not a message at the end
    with running_standin("--reply", "Hi again.") as server:
        engine = ChatEngine(store, server.endpoint)
        root_edit = await engine.edit_and_resend(first.user_message_id or 0, "Good morning")
        await collect(root_edit)
    tree = await store.load(conv.id)
    assert [m.text for m in tree.branch()] == ["Good morning", "Hi again."]
    assert tree.siblings(root_edit.user_message_id or 0) == [first.user_message_id, root_edit.user_message_id]


async def test_one_turn_at_a_time_per_conversation(store: AsyncHistoryStore) -> None:
    with running_standin("--reply-tokens", "400", "--tokens-per-second", "200") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "long one")
        from engine.chat.errors import ChatError

        with pytest.raises(ChatError, match="still answering"):
            await engine.send(conv.id, "impatient")
        assert len((await store.load(conv.id)).messages) == 2  # the refused message was not stored
        await engine.shutdown()
        assert (await turn.wait()).state == "stopped"


async def test_engine_dying_mid_reply_is_engine_died_and_keeps_the_partial(store: AsyncHistoryStore) -> None:
    with running_standin("--reply-tokens", "100", "--engine-error-after", "7") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "Talk")
        events = await collect(turn)
    error = events[-1].error
    assert isinstance(error, EngineDied)
    assert "EngineCore encountered an issue" in error.details
    assert error.fix is not None
    assert error.fix.action == "restart_server"
    reply = await store.message(turn.reply_id)
    assert reply.state == "failed"
    assert reply.text == " ".join(WORDS[:7])


async def test_regenerating_a_user_message_is_refused_without_storing(store: AsyncHistoryStore) -> None:
    from engine.chat.errors import ChatError

    with running_standin("--reply", "Yes.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "Is it?")
        await collect(turn)
        with pytest.raises(ChatError, match="edit a message instead"):
            await engine.regenerate(turn.user_message_id or 0)
    assert len((await store.load(conv.id)).messages) == 2


async def test_a_reply_that_cannot_be_saved_still_ends_the_turn_with_words(store: AsyncHistoryStore) -> None:
    from engine.chat.errors import HistoryWriteFailed

    with running_standin("--reply-tokens", "30", "--tokens-per-second", "50") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        turn = await engine.send(conv.id, "Go")
        # The database refuses writes from now on (what a full disk or a vanished file looks like to us).
        await store.call(lambda s: s._conn.execute("PRAGMA query_only=ON"))
        events = await collect(turn)
        with pytest.raises(HistoryWriteFailed):
            await turn.wait()
        await store.call(lambda s: s._conn.execute("PRAGMA query_only=OFF"))
    assert events[-1].kind == "finished"
    assert events[-1].state == "failed"
    assert isinstance(events[-1].error, HistoryWriteFailed)
    assert "could not be saved" in str(events[-1].error)
    assert len([e for e in events if e.kind == "token"]) == 30  # the tokens still reached the listeners


async def test_a_reply_row_that_cannot_be_written_refuses_the_turn_and_keeps_the_question(
    store: AsyncHistoryStore,
) -> None:
    from engine.chat.errors import HistoryWriteFailed

    with running_standin("--reply", "Fine.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        # The reply's row is written while the request is already on its way; make that write fail.
        await store.call(
            lambda s: s._conn.execute(
                "CREATE TEMP TRIGGER no_replies BEFORE INSERT ON messages WHEN NEW.role = 'assistant' "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        )
        with pytest.raises(HistoryWriteFailed, match="disk is full"):
            await engine.send(conv.id, "How are you")
        assert engine.running_turn(conv.id) is None
        tree = await store.load(conv.id)
        assert [(m.role, m.text) for m in tree.messages] == [("user", "How are you")]  # committed first
        await store.call(lambda s: s._conn.execute("DROP TRIGGER no_replies"))
        turn = await engine.send(conv.id, "Now?")
        events = await collect(turn)
        await engine.shutdown()
    assert events[0].kind == "started"
    assert events[-1].kind == "finished"
    assert (await turn.wait()).text == "Fine."


async def test_the_request_leaves_before_the_rows_are_committed_and_nothing_shows_before_them(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import threading

    from engine.history.store import HistoryStore

    with running_standin("--reply-tokens", "20", "--tokens-per-second", "40") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        seen: list[TurnEvent] = []
        engine.turn_events.connect(seen.append)
        gate = threading.Event()
        real_add_turn = HistoryStore.add_turn

        def slow_commit(self: HistoryStore, *args: object, **kwargs: object) -> object:
            gate.wait(30)  # a commit that takes long (a slow disk's fsync): the real one, late
            return real_add_turn(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(HistoryStore, "add_turn", slow_commit)
        sending = asyncio.ensure_future(engine.send(conv.id, "Tell me"))
        await server.until_a_request_runs()  # while the history's writer is held up
        assert not sending.done()  # send() waits for the commit...
        assert seen == []  # ...and nothing of the reply is shown before it
        gate.set()
        turn = await sending
        events = await collect(turn)
        await engine.shutdown()
    assert events[0].kind == "started"
    assert events[-1].state == "complete"
    tree = await store.load(conv.id)
    user, reply = tree.branch(turn.reply_id)
    assert (user.role, user.text, user.id) == ("user", "Tell me", turn.user_message_id)
    assert (reply.role, reply.parent_id, reply.state) == ("assistant", user.id, "complete")
    assert tree.conversation.title == "Tell me"
    assert await store.call(HistoryStore.message, user.id) == user


async def test_send_with_the_callers_current_tree_reads_no_messages_and_sends_the_same(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_standin("--reply", "Fine thanks.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation(system_prompt="Be brief.")
        first = await engine.send(conv.id, "Hello there")
        await collect(first)
        tree = await store.load(conv.id)  # as the window holds it after the turn
        loads = CountedLoads(store)
        monkeypatch.setattr(store, "load", loads)
        second = await engine.send(conv.id, "How are you", tree=tree)
        await collect(second)
        reply = await second.wait()
        assert loads.calls == 0
    branch = (await store.load(conv.id)).branch()
    assert [m.text for m in branch] == ["Hello there", "Fine thanks.", "How are you", "Fine thanks."]
    assert branch[2].parent_id == first.reply_id
    # The request carried the system prompt and the whole branch (the stand-in counts words): 2 + 2 + 2 + 3.
    assert reply.numbers.prompt_tokens == 9


async def test_send_with_a_tree_written_to_since_reads_the_conversation_again(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_standin("--reply", "Ok.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        await collect(await engine.send(conv.id, "One"))
        stale = await store.load(conv.id)
        # Sent from another process: the held tree is old, and so is the one the engine kept.
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
        third = await engine.send(conv.id, "Three", tree=stale)
        await collect(third)
        reply = await third.wait()
        assert loads.calls == 1
    branch = (await store.load(conv.id)).branch()
    assert [m.text for m in branch] == ["One", "Ok.", "Two", "Ok.", "Three", "Ok."]
    assert branch[4].parent_id == newer.reply_id  # under the newest reply, not under the stale leaf
    assert reply.numbers.prompt_tokens == 5


async def test_send_with_a_tree_takes_settings_changed_since_from_the_stored_row(
    store: AsyncHistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_standin("--reply", "Ok.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        await collect(await engine.send(conv.id, "One"))
        tree = await store.load(conv.id)
        # A system prompt set after the tree was loaded (no message written): the request has it.
        await store.update_conversation(conv.id, system_prompt="Answer in French please.")
        loads = CountedLoads(store)
        monkeypatch.setattr(store, "load", loads)
        turn = await engine.send(conv.id, "Two", tree=tree)
        await collect(turn)
        reply = await turn.wait()
        assert loads.calls == 0
    assert reply.numbers.prompt_tokens == 4 + 3  # the system prompt's words, then One, Ok., Two


async def test_each_request_carries_its_own_branch_when_turns_alternate_and_edit(
    store: AsyncHistoryStore,
) -> None:
    # The engine reuses the last request's messages where the next one starts the same: a request of another
    # conversation, or an edited message, must not carry any of the last one's.
    with running_standin("--reply", "Ok.") as server:
        engine = ChatEngine(store, server.endpoint)
        one = await engine.new_conversation(system_prompt="Be brief.")
        two = await engine.new_conversation()
        numbers = []
        for conv, text in ((one, "alpha beta gamma"), (two, "delta"), (one, "epsilon")):
            turn = await engine.send(conv.id, text)
            await collect(turn)
            numbers.append((await turn.wait()).numbers.prompt_tokens)
        assert numbers == [2 + 3, 1, 2 + 3 + 1 + 1]  # (system) + the branch, words as the stand-in counts
        first = (await store.load(one.id)).branch()[0]  # "alpha beta gamma"
        edited = await engine.edit_and_resend(first.id, "zeta")
        await collect(edited)
        assert (await edited.wait()).numbers.prompt_tokens == 2 + 1


async def test_a_send_moves_what_lives_before_it_out_of_the_collectors_reach(
    store: AsyncHistoryStore,
) -> None:
    with running_standin("--reply", "Yes.") as server:
        engine = ChatEngine(store, server.endpoint)
        conv = await engine.new_conversation()
        gc.unfreeze()
        alive = [[n] for n in range(1000)]  # tracked objects alive before the send
        assert gc.get_freeze_count() == 0
        turn = await engine.send(conv.id, "Frozen?")
        frozen = gc.get_freeze_count()  # a full collection on the way to the first token would skip them
        await collect(turn)
        reply = await turn.wait()
        await engine.shutdown()
    gc.unfreeze()
    assert reply.text == "Yes."
    assert frozen > len(alive)


async def test_freezing_before_a_turn_keeps_no_garbage_for_good() -> None:
    """``gc.freeze`` also freezes the cycles that are garbage at that moment: without collecting the young
    generations first, every turn kept its leftover cycles for good."""
    import weakref

    from engine.chat.collector import freeze_long_lived

    class Node:
        pass

    gc.unfreeze()
    try:
        cycle = Node()
        cycle.self = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        del cycle  # garbage now, but only a collection can free a cycle
        kept = Node()
        kept.self = kept  # type: ignore[attr-defined]
        freeze_long_lived()
        assert gone() is None
        assert gc.get_freeze_count() > 0  # what lives is frozen
        assert gc.is_tracked(kept)
    finally:
        gc.unfreeze()
