"""A fast stream reaches the transcript in batches (one per ~16 ms), with every token, in order; the engine's
events cost no Qt work per token."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop.window.turns import PieceBuffer
from engine.paths import AppPaths
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [pytest.mark.gui, pytest.mark.qt_log_ignore("This plugin does not support")]


def test_pieces_are_joined_per_run_in_arrival_order(qtbot) -> None:  # type: ignore[no-untyped-def]
    got: list[tuple[str, int | str, str]] = []
    buffer = PieceBuffer(lambda kind, reply_id, text: got.append((kind, reply_id, text)))
    buffer.add("reasoning", 1, "Let")
    assert got == [("reasoning", 1, "Let")]  # after a quiet spell, at once: the first token is not delayed
    stream = [("reasoning", 1, " me"), ("reasoning", 1, " think"), ("token", 1, "Hel"), ("token", 1, "lo")]
    stream += [("token", 2, "other"), ("token", 1, " world"), ("token", 1, "!")]
    for piece in stream:
        buffer.add(*piece)
    assert len(got) == 1  # the rest waits for the timer
    qtbot.waitUntil(lambda: len(got) > 1, timeout=1000)
    assert got[1:] == [
        ("reasoning", 1, " me think"),
        ("token", 1, "Hello"),
        ("token", 2, "other"),
        ("token", 1, " world!"),
    ]
    assert buffer.flushes == 2
    assert len(buffer) == 0


def test_a_flush_hands_on_what_is_buffered_at_once_and_only_once(qtbot) -> None:  # type: ignore[no-untyped-def]
    got: list[str] = []
    buffer = PieceBuffer(lambda _kind, _id, text: got.append(text))
    for i in range(1000):
        buffer.add("token", 7, f"{i} ")
    buffer.flush()
    assert "".join(got) == "".join(f"{i} " for i in range(1000))
    assert len(got) == 2  # the first piece at once, the other 999 in one go
    qtbot.wait(60)  # the timer that was running must not hand anything on again
    buffer.flush()
    assert len(got) == 2
    assert buffer.flushes == 2


@pytest.mark.usefixtures("qloop")
def test_a_fast_long_stream_arrives_whole_in_few_batches(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    words = [f"w{i}" for i in range(3000)]
    text = "Start.\n\n" + " ".join(words) + "\n\n`end`"
    with running_standin("--reply", text, "--tokens-per-second", "3000") as server:
        window = open_window(qtbot, app_paths, server.endpoint)
        try:
            window.composer.editor.setPlainText("Write a lot")
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(
                lambda: bool(replies(window)) and replies(window)[0].data.state == "complete", timeout=60000
            )
            reply = replies(window)[0]
            assert reply.data.text == text  # every token, in order, as the server sent it
            stored = run(qtbot, window.store.message(int(reply.data.id)))
            assert stored.text == text
            # Thousands of tokens, a handful of hand-overs to the transcript (one per timer tick at most).
            assert 0 < window.turns.pieces.flushes < 1000
        finally:
            close_window(qtbot, window)
