"""The process's lazy imports of heavy modules (Haystack, openai, the engine's own), all on one thread.

Python's import system is not safe for two threads importing the same package tree at once: each module has
a lock, and two threads that take them in different orders stop with ``_DeadlockError``. The first message
of a session failed this way when the warm-up import started by the first keystroke met the send's own
import of Haystack, and the half-done import left every later message failing until a restart.

So nobody imports these modules on their own thread: :data:`IMPORTS` is the one gate.
:meth:`ImportGate.submit` queues module names for the one import thread (started when there is work, ended
when idle) and returns a ``concurrent.futures.Future``; ``await IMPORTS.ready(*names)`` waits for them without
blocking the event loop.
A warm-up and a send that ask for the same modules share one import. A failed import is not remembered: the
next request tries again.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

log = logging.getLogger(__name__)

#: What a chat turn needs: Haystack's generator, openai and httpx (through ``engine.chat.generator``), and the
#: parts of openai its client imports only at the first request (``client.chat.completions`` ...).
CHAT_MODULES = (
    "engine.chat.generator",
    "openai.resources.chat.chat",
    "openai.resources.chat.completions.completions",
    "openai.resources.completions",
    "openai.resources.models",
)
THREAD_NAME = "lazy-imports"

Importer = Callable[[str], object]


class ImportGate:
    """Imports modules one request at a time on one thread; every caller waits for the same import."""

    def __init__(self, importer: Importer = importlib.import_module) -> None:
        self._importer = importer
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, ...], Future[None]] = {}
        self._queue: deque[tuple[tuple[str, ...], Future[None]]] = deque()
        self._thread: threading.Thread | None = None

    def submit(self, *names: str) -> Future[None]:
        """Import ``names`` (in order) on the import thread; the same future for the same names until one
        fails, then a new attempt."""
        with self._lock:
            future = self._requests.get(names)
            if future is not None and not (future.done() and future.exception() is not None):
                return future
            future = Future()
            self._requests[names] = future
            self._queue.append((names, future))
            if self._thread is None:
                # A daemon thread, not an executor's: quitting must not wait for (or destroy) it mid-import.
                self._thread = threading.Thread(target=self._work, name=THREAD_NAME, daemon=True)
                self._thread.start()
            return future

    async def ready(self, *names: str) -> None:
        """Wait until ``names`` are imported (raises what the import raised)."""
        await asyncio.wrap_future(self.submit(*names))

    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None  # the next submit starts a new thread
                    return
                names, future = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                for name in names:
                    self._importer(name)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiter, never lost on this thread
                log.warning("importing %s failed: %s: %s", ", ".join(names), type(exc).__name__, exc)
                future.set_exception(exc)
            else:
                future.set_result(None)


#: The one gate of the process (imports are process-wide).
IMPORTS = ImportGate()
