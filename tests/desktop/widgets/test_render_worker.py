"""The render thread: calls run in order on one daemon thread, errors reach the waiter, the thread ends when
idle and a later call starts it again; a message's pieces number their code blocks on in order."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from desktop.widgets.markdown_view import MarkdownRenderer
from desktop.widgets.render_worker import THREAD_NAME, PieceRenderer, RenderThread


def test_calls_run_in_order_on_one_thread_that_ends_when_idle_and_starts_again() -> None:
    thread = RenderThread(idle_exit_s=0.05)
    seen: list[tuple[int, str]] = []

    def note(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i

    futures = [thread.submit(functools.partial(note, i)) for i in range(50)]
    assert [f.result(5) for f in futures] == list(range(50))
    assert seen == [(i, THREAD_NAME) for i in range(50)]
    deadline = time.monotonic() + 5
    while thread._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert thread._thread is None  # idle: gone, no thread left waiting forever
    failing = thread.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(5)
    assert thread.submit(lambda: "again").result(5) == "again"


def test_pieces_number_their_code_blocks_on_in_the_order_they_closed() -> None:
    pieces = PieceRenderer(MarkdownRenderer(), RenderThread(idle_exit_s=0.05))
    texts = ["```py\na = 1\n```\n", "Text.\n\n", "```py\nb = 2\n```\n\n```py\nc = 3\n```\n"]
    rendered = [f.result(5) for f in [pieces.submit(t) for t in texts]]
    assert [r.code_blocks for r in rendered] == [["a = 1\n"], [], ["b = 2\n", "c = 3\n"]]
    assert "desk-copy:0" in rendered[0].html
    assert "desk-copy:1" in rendered[2].html
    assert "desk-copy:2" in rendered[2].html
