"""The UI probe's account of a long GUI-thread step: garbage collections by thread, and the bench's note."""

from __future__ import annotations

import gc
import threading

import pytest

from bench.ui_probe import GcClock, Steal
from bench.ui_stream import long_step_note


def test_a_collection_counts_for_the_gui_thread_only_when_that_thread_ran_it() -> None:
    clock = GcClock()  # made on this thread: this is the "GUI thread" here
    clock.install()
    try:
        worker = threading.Thread(target=gc.collect)
        worker.start()
        worker.join()
        gc.collect()
    finally:
        clock.remove()
    full = [e for e in clock.events if e["generation"] == 2]
    assert [e["gui_thread"] for e in full] == [False, True]
    assert full[0]["cpu_ms"] > 0.0
    # Young collections may also have run on either thread: the GUI thread's total is its own, no more.
    own = sum(e["cpu_ms"] for e in clock.events if e["gui_thread"]) / 1000
    assert clock.gui_cpu_s == pytest.approx(own, abs=1e-5)
    assert clock.gui_cpu_s >= full[1]["cpu_ms"] / 1000 - 1e-6


def test_the_long_step_note_names_what_was_in_the_longest_step() -> None:
    run = {
        "cpu_ms": [4.0, 96.5, 12.0],
        "at_s": [0.005, 6.2, 6.3],
        "gc_ms": [0.0, 88.0, 0.0],
        "sys_ms": [0.0, 3.0, 1.0],
        "faults": [0, 120, 4],
        "steal_ms": [0.0, 10.0, 0.0],
    }
    assert long_step_note(run) == (
        "a step of 96.5 ms of the GUI thread's own CPU at 6.20 s; of it: in garbage collection 88.0 ms, "
        "in the kernel 3.0 ms, page faults 120, the machine's steal time 10.0 ms"
    )


def test_no_note_below_the_goal_and_a_plain_one_from_an_older_probe() -> None:
    assert long_step_note({"cpu_ms": [4.0, 30.0], "gc_ms": [0.0, 20.0]}) is None
    # A probe from before the breakdown: the step alone, said as such.
    assert long_step_note({"cpu_ms": [50.0], "at_s": [1.0]}) == (
        "a step of 50.0 ms of the GUI thread's own CPU at 1.00 s"
    )


def test_steal_time_reads_as_a_count_that_never_goes_back() -> None:
    steal = Steal()
    try:
        first = steal.ms()
        gc.collect()
        assert steal.ms() >= first >= 0.0
    finally:
        steal.close()
