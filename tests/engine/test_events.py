"""The engine's publish/subscribe primitive: order, unsubscribing (also mid-emit), broken subscribers."""

from __future__ import annotations

import logging

import pytest

from engine.events import Event


def test_subscribers_get_every_value_in_order_until_they_unsubscribe() -> None:
    event: Event[int] = Event("numbers")
    first: list[int] = []
    second: list[int] = []
    event.connect(first.append)
    unsubscribe = event.connect(second.append)
    event.emit(1)
    unsubscribe()
    event.emit(2)
    assert first == [1, 2]
    assert second == [1]
    assert event.has_subscribers


def test_a_subscriber_that_unsubscribes_during_an_emit_does_not_disturb_the_others() -> None:
    event: Event[str] = Event("words")
    seen: list[str] = []

    def once(value: str) -> None:
        seen.append(f"once {value}")
        unsubscribe()

    unsubscribe = event.connect(once)
    event.connect(lambda value: seen.append(f"always {value}"))
    event.emit("a")
    event.emit("b")
    assert seen == ["once a", "always a", "always b"]


def test_a_failing_subscriber_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    event: Event[int] = Event("ticks")
    got: list[int] = []

    def broken(_value: int) -> None:
        raise ValueError("boom")

    event.connect(broken)
    event.connect(got.append)
    with caplog.at_level(logging.ERROR, logger="engine.events"):
        event.emit(5)
    assert got == [5]
    assert "subscriber of ticks failed" in caplog.text
