"""The readiness probe's pieces: where a client connects, which endpoint a /v1/models answer gives."""

from __future__ import annotations

import socket

import pytest

from engine.server.readiness import client_host, endpoint_from, free_port
from engine.server.start_times import DURATIONS_FILE, StartTimes


@pytest.mark.parametrize(
    ("bound", "connect"),
    [
        ("0.0.0.0", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("::", "127.0.0.1"),
        ("::1", "[::1]"),
        ("10.0.0.5", "10.0.0.5"),
    ],
)
def test_client_host(bound: str, connect: str) -> None:
    assert client_host(bound) == connect


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 0 < port < 65536


def test_endpoint_from_models_answer() -> None:
    models = {"data": [{"id": "other"}, {"id": "mine", "max_model_len": 2048}]}
    endpoint = endpoint_from(models, "http://127.0.0.1:9", "key", "mine", "profile")
    assert endpoint.base_url == "http://127.0.0.1:9/v1"
    assert (endpoint.model, endpoint.max_model_len, endpoint.profile_name) == ("mine", 2048, "profile")
    assert endpoint_from({"data": [{"id": "mine"}]}, "http://h:1", "k", "mine", "p").max_model_len is None
    with pytest.raises(ValueError, match="'absent' is not among the served models"):
        endpoint_from(models, "http://127.0.0.1:9", "key", "absent", "profile")


def test_start_times_round_trip_and_a_damaged_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    times = StartTimes(tmp_path / "state")
    assert times.expected("p") is None
    times.record("p", 12.345)
    assert times.expected("p") == 12.35
    (tmp_path / "state" / DURATIONS_FILE).write_text("{not json")
    assert times.expected("p") is None
    times.record("q", 3)  # a damaged file is replaced, not a crash
    assert (times.expected("p"), times.expected("q")) == (None, 3.0)
