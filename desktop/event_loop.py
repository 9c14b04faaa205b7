"""The asyncio loop inside Qt's (qasync), with what qasync leaves out: asyncio's async-generator hooks.

``asyncio``'s own loops install ``sys.set_asyncgen_hooks`` while they run, so an async generator dropped
before its end (a cancelled chat stream: openai's ``AsyncStream`` → httpx → httpcore) is closed in a task.
qasync's loop never installs them: such a generator is then finalised by the garbage collector, outside any
task, and httpcore's cleanup fails there ("unknown async library, or not in async context") and leaves its
connection half-closed. Installing the hooks gives the loop the standard behaviour.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import qasync
from PySide6.QtCore import QCoreApplication


def make_event_loop(app: QCoreApplication, *, already_running: bool = False) -> qasync.QEventLoop:
    """A qasync loop for ``app`` with asyncio's async-generator hooks installed for this thread."""
    loop = qasync.QEventLoop(app, already_running=already_running)
    install_asyncgen_hooks(loop)
    return loop


def install_asyncgen_hooks(loop: qasync.QEventLoop) -> Callable[[], None]:
    """Let ``loop`` close dropped async generators in a task; returns what puts the previous hooks back."""
    previous = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(
        firstiter=loop._asyncgen_firstiter_hook,  # noqa: SLF001 - asyncio's own hooks, as run_forever installs
        finalizer=loop._asyncgen_finalizer_hook,  # noqa: SLF001
    )

    def restore() -> None:
        sys.set_asyncgen_hooks(*previous)

    return restore
