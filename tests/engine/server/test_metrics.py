"""/metrics parsing and polling only while someone listens."""

from __future__ import annotations

import asyncio

import pytest

from engine.server.metrics import ListenedEvent, MetricsPoller, fetch_metrics, parse_metrics
from tests.support.standin.launch import running_standin

VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 2.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 120.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 456.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="m"} 0.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 4.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 0.5
"""


def test_parse_vllm_metrics() -> None:
    sample = parse_metrics(VLLM_METRICS)
    assert (sample.running, sample.waiting) == (3, 2)
    assert sample.kv_cache_usage == 0.25
    assert (sample.prompt_tokens, sample.generation_tokens) == (120, 456)
    assert (sample.ttft_count, sample.ttft_sum_s) == (4, 0.5)


def test_older_gauge_name_and_two_engines_sum() -> None:
    text = (
        "# TYPE vllm:gpu_cache_usage_perc gauge\n"
        'vllm:gpu_cache_usage_perc{engine="0"} 0.5\n'
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0"} 1\n'
        'vllm:num_requests_running{engine="1"} 2\n'
    )
    sample = parse_metrics(text)
    assert sample.kv_cache_usage == 0.5
    assert sample.running == 3


def test_listened_event_reports_first_and_last_subscriber() -> None:
    calls: list[bool] = []
    event: ListenedEvent[int] = ListenedEvent("x", calls.append)
    off_a = event.connect(lambda _v: None)
    off_b = event.connect(lambda _v: None)
    off_a()
    assert calls == [True]
    off_b()
    assert calls == [True, False]


@pytest.mark.asyncio
async def test_poller_reads_the_server_only_while_listened_to() -> None:
    with running_standin("--reply-tokens", "7", model="m") as srv:
        endpoint = srv.endpoint()
        first = await fetch_metrics(endpoint)
        assert first.generation_tokens == 0
        poller = MetricsPoller(interval=0.05)
        poller.set_endpoint(endpoint)
        assert not poller.polling  # nobody listens yet
        got: list[object] = []
        off = poller.metrics.connect(got.append)
        assert poller.polling
        await asyncio.sleep(0.3)
        off()
        assert not poller.polling
        count = poller.polls
        assert count >= 2
        await asyncio.sleep(0.2)
        assert poller.polls == count
        await poller.aclose()
