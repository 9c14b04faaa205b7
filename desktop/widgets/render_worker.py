"""A streamed reply's closed pieces turned into HTML on a background thread, in the order they closed.

Parsing (markdown-it) and highlighting (Pygments) are pure Python: a 150-line code block that closes takes
20–30 ms, a frame and a half, and on the GUI thread that was the longest stall of a long reply. Here the
GUI thread only hands the piece over (:meth:`PieceRenderer.submit`, when the splitter closes it) and later
inserts the finished HTML; the QTextDocument work stays on the GUI thread, as Qt wants.

One daemon thread serves every message, first in first out, so a message's pieces are rendered in order and
each numbers its code blocks on from the piece before (:class:`PieceRenderer` counts them on that thread).
The thread starts with the first piece and ends after half a minute without work (starting a thread
mid-stream waits for it to run). Python's GIL still runs one thread at a time, but it switches every few
milliseconds: a long highlight on the worker is interleaved with the GUI thread's work instead of blocking
it, and the worker runs while Qt paints (Qt's C++ releases the GIL).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from desktop.widgets.markdown_view import MarkdownRenderer, Rendered

IDLE_EXIT_S = 30.0  # the thread ends after this long without work (a new piece starts it again)
THREAD_NAME = "markdown-render"


class RenderThread:
    """Runs submitted calls one after the other on one daemon thread; each gets a ``Future``."""

    def __init__(self, idle_exit_s: float = IDLE_EXIT_S) -> None:
        self._idle_exit_s = idle_exit_s
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._waiting = 0  # calls queued and not yet taken by the thread

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            self._waiting += 1
            self._queue.put((future, call))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()
        return future

    def _run(self) -> None:
        while True:
            try:
                future, call = self._queue.get(timeout=self._idle_exit_s)
            except queue.Empty:
                with self._lock:
                    if self._waiting == 0:  # nothing slipped in since the wait ended: stop
                        self._thread = None
                        return
                continue
            with self._lock:
                self._waiting -= 1
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for the piece
                future.set_exception(exc)


RENDER_THREAD = RenderThread()


class PieceRenderer:
    """One streamed message's closed pieces, rendered in order on :data:`RENDER_THREAD`.

    ``renderer`` is the palette the reply streams in; it is only read, so the GUI thread may render the
    open tail with it at the same time.
    """

    def __init__(self, renderer: MarkdownRenderer, thread: RenderThread = RENDER_THREAD) -> None:
        self._renderer = renderer
        self._thread = thread
        self._code_blocks = 0  # code blocks in the pieces rendered so far (touched on the worker only)

    def submit(self, text: str) -> Future[Rendered]:
        """Render ``text`` after the pieces submitted before it, numbering its code blocks on from theirs."""
        return self._thread.submit(lambda: self._render(text))

    def _render(self, text: str) -> Rendered:
        rendered = self._renderer.render(text, first_code_index=self._code_blocks)
        self._code_blocks += len(rendered.code_blocks)
        return rendered
