"""The stray-process offer at start, against real leftover processes these tests create (and only those)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import psutil
import pytest
from PySide6.QtCore import Qt

from desktop import errors
from desktop.window.strays import StraysDialog, find_strays, format_age, format_memory, offer_stray_cleanup
from engine.diagnosis.problems import ProcessesLeft
from engine.server.processes import StrayProcess
from tests.support.procs import is_alive
from tests.support.qasync_loop import qloop  # noqa: F401
from tests.support.standin.launch import Standin, start_standin

# Showing a top-level dialog offscreen makes Qt warn that the plugin cannot propagate size hints.
pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),
]


@pytest.fixture
def crashed() -> Iterator[tuple[Standin, int]]:
    """A stand-in server whose leader was SIGKILLed: its ``VLLM::EngineCore`` child is left running."""
    server = start_standin("--fork-child")
    try:
        child = psutil.Process(server.proc.pid).children()[0]
        deadline = time.monotonic() + 10
        while not child.name().startswith("VLLM::"):
            assert time.monotonic() < deadline, "the child never renamed itself"
            time.sleep(0.02)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        yield server, child.pid
    finally:
        server.stop()  # the whole session of this test's own server, whatever the test did


def only(pid: int):  # type: ignore[no-untyped-def]
    """The engine's real search, narrowed to this test's process: others' processes are never touched."""

    async def find() -> list[StrayProcess]:
        return [s for s in await find_strays() if s.pid == pid]

    return find


def offer(qtbot, find) -> list[StraysDialog]:  # type: ignore[no-untyped-def]
    shown: list[StraysDialog] = []
    task = offer_stray_cleanup(None, find, shown=shown.append)
    qtbot.waitUntil(task.done, timeout=10_000)
    for dialog in shown:
        qtbot.addWidget(dialog)
    return shown


def test_strays_are_listed_and_stopped(qtbot, crashed) -> None:  # type: ignore[no-untyped-def]
    _server, pid = crashed
    [dialog] = offer(qtbot, only(pid))
    assert dialog.isVisible()
    assert not dialog.isModal()
    [row] = dialog.rows()
    assert row[0] == str(pid)
    assert row[1].startswith("VLLM::EngineCore")
    assert row[2].endswith(" s")
    assert row[3].endswith("MiB")
    with qtbot.waitSignal(dialog.stopped, timeout=15_000) as stopped:
        qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    assert stopped.args == [[pid]]
    assert not is_alive(pid)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)


def test_leave_them_keeps_the_processes(qtbot, crashed) -> None:  # type: ignore[no-untyped-def]
    _server, pid = crashed
    [dialog] = offer(qtbot, only(pid))
    qtbot.mouseClick(dialog.leave_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert is_alive(pid)


def test_a_running_server_is_no_stray_and_nothing_is_shown(qtbot) -> None:  # type: ignore[no-untyped-def]
    server = start_standin("--fork-child")
    try:
        child = psutil.Process(server.proc.pid).children()[0]
        assert offer(qtbot, only(child.pid)) == []
    finally:
        server.stop()


def test_a_failed_stop_reaches_the_error_renderer_and_keeps_the_list(qtbot, crashed) -> None:  # type: ignore[no-untyped-def]
    _server, pid = crashed

    async def stuck(strays: list[StrayProcess]) -> list[int]:
        # A process that survives SIGKILL cannot be made on purpose; this stands in for the kernel's refusal.
        await asyncio.sleep(0)
        raise ProcessesLeft([s.pid for s in strays])

    shown: list[StraysDialog] = []
    task = offer_stray_cleanup(None, only(pid), stop=stuck, shown=shown.append)
    qtbot.waitUntil(task.done, timeout=10_000)
    [dialog] = shown
    qtbot.addWidget(dialog)
    before = len(errors.reporter().reported)
    stop = dialog.stop_them()
    qtbot.waitUntil(stop.done, timeout=5000)
    [problem] = errors.reporter().reported[before:]
    assert problem.title == ProcessesLeft.title
    assert str(pid) in problem.message
    assert dialog.isVisible()
    qtbot.waitUntil(dialog.buttons.isEnabled, timeout=2000)


def test_a_failed_search_reaches_the_error_renderer(qtbot) -> None:  # type: ignore[no-untyped-def]
    async def broken() -> list[StrayProcess]:
        raise ProcessesLeft([1])

    before = len(errors.reporter().reported)
    assert offer(qtbot, broken) == []
    assert [p.title for p in errors.reporter().reported[before:]] == [ProcessesLeft.title]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0 s"), (59, "59 s"), (61, "1 min"), (7300, "2 h"), (200_000, "2 d")]
)
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_format_memory() -> None:
    assert format_memory(300 << 20) == "300 MiB"
    assert format_memory(3 << 29) == "1.5 GiB"
