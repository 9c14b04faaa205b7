"""Operations: the control is disabled while the engine call runs, failures reach the one renderer."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtWidgets import QPushButton

from desktop import errors
from desktop.operations import Operation, running
from engine.errors import DeskError, Fix
from tests.support.qasync_loop import qloop, run  # noqa: F401

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("qloop")]


class Broken(DeskError):
    title = "Broken"


def test_control_is_disabled_while_running_and_success_gets_the_result(qtbot) -> None:  # type: ignore[no-untyped-def]
    button = QPushButton("Go")
    qtbot.addWidget(button)
    gate = asyncio.Event()
    results: list[int] = []

    async def work() -> int:
        await gate.wait()
        return 42

    task = Operation(button, work).success(results.append).run()
    assert not button.isEnabled()
    assert task in running()
    gate.set()
    qtbot.waitUntil(task.done, timeout=2000)
    assert results == [42]
    # Re-enabled by the task's done callback, which the loop runs just after the task ends.
    qtbot.waitUntil(button.isEnabled, timeout=2000)
    assert task not in running()


def test_a_desk_error_goes_to_the_renderer_and_the_control_comes_back(qtbot) -> None:  # type: ignore[no-untyped-def]
    button = QPushButton("Go")
    qtbot.addWidget(button)
    shown: list[errors.Problem] = []
    errors.reporter().problem.connect(shown.append)
    try:

        async def fail() -> None:
            raise Broken("It broke, in words.", fix=Fix("retry", "Try again"))

        task = Operation(button, fail).run()
        qtbot.waitUntil(task.done, timeout=2000)
        assert task.exception() is None  # handled, not left for sys.excepthook
        qtbot.waitUntil(button.isEnabled, timeout=2000)
        assert shown[-1].message == "It broke, in words."
        assert shown[-1].fix is not None
        assert shown[-1].fix.label == "Try again"
    finally:
        errors.reporter().problem.disconnect(shown.append)


def test_failure_callback_takes_the_error_instead(qtbot) -> None:  # type: ignore[no-untyped-def]
    seen: list[BaseException] = []
    shown: list[errors.Problem] = []
    errors.reporter().problem.connect(shown.append)
    try:

        async def fail() -> None:
            raise Broken("handled by the caller")

        task = Operation(None, fail).failure(seen.append).run()
        qtbot.waitUntil(task.done, timeout=2000)
        assert [str(e) for e in seen] == ["handled by the caller"]
        assert shown == []
    finally:
        errors.reporter().problem.disconnect(shown.append)


def test_cancelling_re_enables_the_control(qtbot) -> None:  # type: ignore[no-untyped-def]
    button = QPushButton("Go")
    qtbot.addWidget(button)
    task = Operation(button, lambda: asyncio.sleep(30)).run()
    assert not button.isEnabled()
    task.cancel()
    qtbot.waitUntil(task.done, timeout=2000)
    assert task.cancelled()
    qtbot.waitUntil(button.isEnabled, timeout=2000)
