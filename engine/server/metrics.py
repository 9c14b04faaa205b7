"""Live server metrics: ``/metrics`` parsed into a small sample, polled only while someone listens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine.endpoint import Endpoint
from engine.events import Event

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class MetricsSample:
    """One reading of a server's load. Counters are totals since the server started."""

    running: int
    waiting: int
    kv_cache_usage: float  # 0..1
    prompt_tokens: int
    generation_tokens: int
    at: float  # time.monotonic() of the reading
    # Time to first token: the histogram's running sum (seconds) and count of requests.
    ttft_sum_s: float = 0.0
    ttft_count: int = 0


def parse_metrics(text: str) -> MetricsSample:
    """Sum each metric of interest over its label sets (one per engine/model)."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)

    def get(*names: str) -> float:
        return next((values[n] for n in names if n in values), 0.0)

    return MetricsSample(
        running=int(get("vllm:num_requests_running")),
        waiting=int(get("vllm:num_requests_waiting")),
        # vLLM 0.10 renamed gpu_cache_usage_perc to kv_cache_usage_perc; accept both.
        kv_cache_usage=get("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        prompt_tokens=int(get("vllm:prompt_tokens_total", "vllm:prompt_tokens")),
        generation_tokens=int(get("vllm:generation_tokens_total", "vllm:generation_tokens")),
        at=time.monotonic(),
        ttft_sum_s=get("vllm:time_to_first_token_seconds_sum"),
        ttft_count=int(get("vllm:time_to_first_token_seconds_count")),
    )


def metrics_client(endpoint: Endpoint) -> httpx.AsyncClient:
    """A client for ``endpoint``'s ``/metrics`` (a local server's bypasses the environment's proxy)."""
    return httpx.AsyncClient(timeout=5, trust_env=endpoint.uses_env_proxy)


async def fetch_metrics(endpoint: Endpoint, client: httpx.AsyncClient | None = None) -> MetricsSample:
    """One reading of ``endpoint``'s ``/metrics``; a given ``client`` must fit (:func:`metrics_client`)."""
    url = f"{endpoint.root_url}/metrics"
    if client is None:
        async with metrics_client(endpoint) as own:
            resp = await own.get(url, headers=endpoint.auth_headers())
    else:
        resp = await client.get(url, headers=endpoint.auth_headers())
    resp.raise_for_status()
    return parse_metrics(resp.text)


class ListenedEvent(Event[T]):
    """An :class:`Event` that reports when its first subscriber arrives and its last one leaves."""

    def __init__(self, name: str, on_listened: Callable[[bool], None]) -> None:
        super().__init__(name)
        self._on_listened = on_listened

    def connect(self, callback: Callable[[T], object]) -> Callable[[], None]:
        first = not self.has_subscribers
        unsubscribe = super().connect(callback)
        if first:
            self._on_listened(True)
        return unsubscribe

    def disconnect(self, callback: Callable[[T], object]) -> None:
        had = self.has_subscribers
        super().disconnect(callback)
        if had and not self.has_subscribers:
            self._on_listened(False)


class MetricsPoller:
    """Polls an endpoint's ``/metrics`` every ``interval`` seconds while :attr:`metrics` has subscribers.

    Subscribing starts polling (on the running asyncio loop), the last unsubscribe stops it; while no endpoint
    is set (server not ready) nothing is polled.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.metrics: ListenedEvent[MetricsSample] = ListenedEvent("metrics", self._listened)
        self._endpoint: Endpoint | None = None
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    @property
    def polling(self) -> bool:
        return self._task is not None and not self._task.done()

    def set_endpoint(self, endpoint: Endpoint | None) -> None:
        self._endpoint = endpoint
        self._update()

    def _listened(self, _listening: bool) -> None:
        self._update()

    def _update(self) -> None:
        want = self._endpoint is not None and self.metrics.has_subscribers
        if want and not self.polling:
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif not want and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        # One client per proxy choice, kept across polls: the endpoint may change (local to remote) meanwhile.
        async with contextlib.AsyncExitStack() as clients:
            by_proxy: dict[bool, httpx.AsyncClient] = {}
            while (endpoint := self._endpoint) is not None:
                client = by_proxy.get(endpoint.uses_env_proxy)
                if client is None:
                    client = by_proxy[endpoint.uses_env_proxy] = await clients.enter_async_context(
                        metrics_client(endpoint)
                    )
                try:
                    sample = await fetch_metrics(endpoint, client)
                except (httpx.HTTPError, ValueError) as exc:
                    log.debug("metrics poll failed: %s", exc)
                else:
                    self.polls += 1
                    self.metrics.emit(sample)
                await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        self._endpoint = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
