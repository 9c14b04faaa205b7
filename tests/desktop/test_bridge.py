"""Engine events arrive as Qt signals in the GUI thread, also when emitted from a worker thread."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QThread

from desktop.bridge import EventBridge
from engine.events import Event

pytestmark = pytest.mark.gui


def test_events_from_a_worker_thread_reach_slots_in_the_gui_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    event: Event[int] = Event("numbers")
    bridge = EventBridge()
    received: list[tuple[int, bool]] = []
    gui_thread = QThread.currentThread()
    bridge.connect_event(event, lambda value: received.append((value, QThread.currentThread() is gui_thread)))

    def emit_all() -> None:
        for i in range(5):
            event.emit(i)

    worker = threading.Thread(target=emit_all)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(received) == 5, timeout=2000)
    assert received == [(i, True) for i in range(5)]


def test_close_drops_every_subscription(qtbot) -> None:  # type: ignore[no-untyped-def]
    event: Event[str] = Event("words")
    bridge = EventBridge()
    received: list[str] = []
    bridge.connect_event(event, received.append)
    event.emit("before")
    bridge.close()
    event.emit("after")
    qtbot.wait(50)
    assert received == ["before"]
    assert not event.has_subscribers


def test_events_emitted_in_the_gui_thread_run_the_slot_at_once(qtbot) -> None:  # type: ignore[no-untyped-def]
    # The chat engine emits one event per token on the qasync loop (the GUI thread): no signal, no queue.
    event: Event[int] = Event("tokens")
    bridge = EventBridge()
    received: list[int] = []
    bridge.connect_event(event, received.append)
    for i in range(3):
        event.emit(i)
        assert received[-1] == i  # before any event processing
    assert received == [0, 1, 2]
    bridge.close()
