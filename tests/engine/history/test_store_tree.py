"""Property tests of the message tree: regenerate, edit and switch lose nothing and keep one branch shown."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.history.records import ConversationTree
from engine.history.store import HistoryStore

# (operation, which existing message it picks, as a fraction of the list)
operations = st.lists(
    st.tuples(st.sampled_from(["send", "regenerate", "edit", "switch"]), st.floats(0, 0.999)),
    min_size=1,
    max_size=15,
)


def _check_invariants(tree: ConversationTree, expected_count: int) -> None:
    assert len(tree.messages) == expected_count  # nothing destroyed
    shown = tree.branch()
    if expected_count:
        assert shown, "a conversation with messages shows a branch"
        assert tree.children(shown[-1].id) == [], "the shown branch ends at a leaf"
        assert shown[0].parent_id is None
    for parent, child in itertools.pairwise(shown):
        assert child.parent_id == parent.id
    for message in tree.messages:
        siblings = tree.siblings(message.id)
        assert message.id in siblings
        assert siblings == sorted(siblings)
        assert all(tree.message(s).parent_id == message.parent_id for s in siblings)
        path = tree.branch(message.id)  # every message reaches a root without a cycle
        assert path[-1].id == message.id
        assert path[0].parent_id is None
        # user and assistant alternate along every path
        assert all(a.role != b.role for a, b in itertools.pairwise(path))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_tree_operations_keep_every_message_and_a_consistent_shown_branch(
    ops: list[tuple[str, float]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(Path(tmp) / "h.sqlite3")
        try:
            conv = store.create_conversation()
            count = 0
            for op, pick in ops:
                tree = store.load(conv.id)
                users = [m for m in tree.messages if m.role == "user"]
                replies = [m for m in tree.messages if m.role == "assistant"]
                if op == "send" or not users:
                    leaf = tree.shown_leaf()
                    user = store.add_message(conv.id, leaf, "user", f"q{count}")
                    reply = store.add_message(conv.id, user.id, "assistant", f"a{count}")
                    count += 2
                    assert store.load(conv.id).shown_leaf() == reply.id
                elif op == "regenerate" and replies:
                    old = replies[int(pick * len(replies))]
                    new = store.add_message(conv.id, old.parent_id, "assistant", "again")
                    count += 1
                    after = store.load(conv.id)
                    assert after.siblings(new.id)[-1] == new.id
                    assert old.id in after.siblings(new.id)
                    assert after.shown_leaf() == new.id
                elif op == "edit":
                    old = users[int(pick * len(users))]
                    edited = store.add_message(conv.id, old.parent_id, "user", "edited")
                    store.add_message(conv.id, edited.id, "assistant", "reply to edit")
                    count += 2
                    after = store.load(conv.id)
                    assert old.id in after.siblings(edited.id)
                    assert edited.id in [m.id for m in after.branch()]
                else:
                    target = tree.messages[int(pick * len(tree.messages))]
                    leaf = store.switch_branch(target.id)
                    after = store.load(conv.id)
                    shown = [m.id for m in after.branch()]
                    assert target.id in shown
                    assert shown[-1] == leaf
                    # the newest descendant: every step down took the most recent child
                    below = shown[shown.index(target.id) :]
                    for parent, child in itertools.pairwise(below):
                        assert after.children(parent)[-1] == child
                _check_invariants(store.load(conv.id), count)
        finally:
            store.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_export_then_import_gives_the_same_tree(ops: list[tuple[str, float]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(Path(tmp) / "a.sqlite3")
        other = HistoryStore(Path(tmp) / "b.sqlite3")
        try:
            conv = store.create_conversation(title="t")
            for i, (op, pick) in enumerate(ops):
                tree = store.load(conv.id)
                if op == "switch" and tree.messages:
                    store.switch_branch(tree.messages[int(pick * len(tree.messages))].id)
                    continue
                parent = tree.shown_leaf()
                if op in ("regenerate", "edit") and tree.messages:
                    parent = tree.messages[int(pick * len(tree.messages))].parent_id
                role = "user" if parent is None or tree.message(parent).role == "assistant" else "assistant"
                store.add_message(conv.id, parent, role, f"m{i}")
            source = store.export_tree(conv.id)
            copy = other.export_tree(other.import_tree(source))

            def shape(tree: ConversationTree) -> list[tuple[str, str | None]]:
                ids = sorted(m.id for m in tree.messages)
                pos = {mid: n for n, mid in enumerate(ids)}

                def text_of(mid: int | None) -> str | None:
                    return None if mid is None else tree.message(mid).text

                return [(tree.message(i).text, text_of(tree.message(i).parent_id)) for i in sorted(pos)]

            assert shape(copy) == shape(source)
            assert [m.text for m in copy.branch()] == [m.text for m in source.branch()]
        finally:
            store.close()
            other.close()
