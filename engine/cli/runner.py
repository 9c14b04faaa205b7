"""Running a command's coroutine so that a signal stops what it started.

:func:`run_command` replaces ``asyncio.run`` for every command that starts a server (a vLLM server, the
embedder, MCP tool servers). Without it, SIGTERM and SIGHUP (a terminal closing, ``kill``, a test runner's
timeout) kill the process outright: no ``async with`` / ``AsyncExitStack`` cleanup runs, and the server,
in its own session, is left running as an orphan. Here SIGTERM, SIGHUP and SIGINT cancel the command's
coroutine instead, so every cleanup runs (the supervisor stops the server's whole session), and then
:class:`StoppedBySignal` tells :func:`engine.cli.main` to exit with 128 + the signal's number.

A command that gives Ctrl-C a meaning of its own for a while (``chat``: stop the reply; ``docs add``: stop
indexing) says so with :func:`interrupt_means`; SIGTERM and SIGHUP still stop the command then.

A signal that comes again while the command is stopping is ignored: the cleanup is what stops the servers
(a stuck server is killed after the supervisor's grace period). A first signal that comes while the command
is already stopping its server on its own cancels that stop's caller, not the stop: the supervisor's stops
run to their end (SIGTERM, the grace, SIGKILL of the whole session, reaped) and the cancellation goes on
after them, so :class:`StoppedBySignal` is raised only once no server is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class StoppedBySignal(Exception):
    """The command was stopped by ``signum``; what it started has been stopped."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by signal {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _Stopper:
    """Cancels the command's task on the first stop signal; remembers which signal it was."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.received: int | None = None

    def __call__(self, signum: int) -> None:
        if self.received is not None:
            return  # already stopping: let the cleanup finish
        self.received = signum
        self.task.cancel()


_current: ContextVar[_Stopper | None] = ContextVar("engine_cli_runner_stopper", default=None)


async def _guarded(main: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stopper = _Stopper(task)
    installed: list[signal.Signals] = []
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}  # a test runner's own, say: put back
    if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stopper, sig)
            installed.append(sig)
    token = _current.set(stopper)
    try:
        result = await main
    except asyncio.CancelledError:
        if stopper.received is not None:
            raise StoppedBySignal(stopper.received) from None
        raise
    finally:
        _current.reset(token)
        for sig in installed:
            loop.remove_signal_handler(sig)
            handler = previous[sig]
            if handler is not None:
                signal.signal(sig, handler)
    if stopper.received is not None:  # the command caught the cancel and ended on its own
        raise StoppedBySignal(stopper.received)
    return result


def run_command(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with SIGTERM, SIGHUP and SIGINT cancelling ``main`` (its cleanups run) and
    then raising :class:`StoppedBySignal`."""
    return asyncio.run(_guarded(main))


@contextlib.contextmanager
def interrupt_means(callback: Callable[[], object]) -> Iterator[None]:
    """While inside, Ctrl-C (SIGINT) calls ``callback`` instead of stopping the command; afterwards it
    stops the command again. Call it inside :func:`run_command`'s coroutine."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, callback)
    try:
        yield
    finally:
        stopper = _current.get()
        if stopper is not None:
            loop.add_signal_handler(signal.SIGINT, stopper, signal.SIGINT)
        else:
            loop.remove_signal_handler(signal.SIGINT)


def say_stopped(stopped: StoppedBySignal) -> int:
    """Tell stderr (when it can still be written: after SIGHUP the terminal may be gone); the exit code."""
    with contextlib.suppress(OSError, ValueError):
        print(f"{stopped}.", file=sys.stderr, flush=True)
    return stopped.exit_code
