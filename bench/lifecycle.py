"""Server lifecycle: launch → ready by phase, /health 200 → the app noticing, stop → last process gone.

App: ``engine.server.supervisor.Supervisor`` launching the real vLLM on the CPU (built-in model), its
``progress``
events giving the phases. A separate thread polls ``/health`` every 5 ms to see when the server really
answers; the delay to the supervisor's ``ready`` state is how late the app notices. Stop: ``await stop()``
until every process of the launch's session is gone. Stop with an open stream uses the stand-in (a stream
that never ends keeps uvicorn waiting, the case that needs SIGKILL after the grace period).
Baselines: ``vllm serve`` launched directly and polled every 100 ms, stopped with SIGTERM/SIGKILL to its group
(:mod:`bench.servers`); for the stand-in, the same stop with no stream open.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import psutil

from bench.context import BenchContext
from bench.result import BenchResult, Metric, SubjectMissing
from bench.servers import free_port, prepare_real_vllm, real_vllm, vllm_paths


class HealthWatch:
    """Polls ``/health`` every 5 ms from another thread; notes when it first answers 200."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/health"
        self.first_ok: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=0.5, trust_env=False) as client:
            while not self._stop.is_set() and self.first_ok is None:
                try:
                    if client.get(self.url).status_code == 200:
                        self.first_ok = time.monotonic()
                except httpx.TransportError:
                    pass
                self._stop.wait(0.005)


def _gone_after(procs: list[psutil.Process], start: float) -> float:
    """Seconds from ``start`` until every process in ``procs`` is gone (zombies count as gone)."""
    while True:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.Error:
                continue
        if not alive:
            return time.monotonic() - start
        time.sleep(0.005)


async def _supervised_real(ctx: BenchContext, runtime: Any) -> dict[str, Any]:
    from engine.paths import AppPaths
    from engine.server.profiles import ServerProfile
    from engine.server.supervisor import ServerState, Supervisor

    models_home = vllm_paths()
    # The built-in model from the shared cache; logs and state of this launch in the scratch folder.
    paths = AppPaths(
        config=ctx.work_dir / "sup" / "config", data=models_home.data, cache=ctx.work_dir / "sup" / "cache",
        state=ctx.work_dir / "sup" / "state",
    )  # fmt: skip
    paths.state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    profile = ServerProfile(name="bench", source="builtin", port=port, max_model_len=2048)
    sup = Supervisor(paths, runtime)
    phases: list[tuple[str, float]] = []
    ready_at: list[float] = []
    sup.progress.connect(lambda p: phases.append((str(getattr(p.phase, "value", p.phase)), p.elapsed_s)))
    sup.state_changed.connect(
        lambda c: ready_at.append(time.monotonic()) if c.state == ServerState.READY else None
    )
    with HealthWatch(port) as watch:
        began = time.monotonic()
        await sup.start(profile)
    members = sup.processes()
    stop_began = time.monotonic()
    await sup.stop()
    stopped = time.monotonic() - stop_began
    gone = await asyncio.to_thread(_gone_after, members, stop_began)
    await sup.shutdown()
    if watch.first_ok is None or not ready_at:
        raise RuntimeError("the supervisor reported ready but /health never answered 200")
    return {
        "ready_s": ready_at[0] - began,
        "health_s": watch.first_ok - began,
        "notice_ms": (ready_at[0] - watch.first_ok) * 1000,
        "stop_returned_s": stopped,
        "gone_s": gone,
        "processes": len(members),
        "phases": phases,
    }


def _raw_real(ctx: BenchContext) -> dict[str, Any]:
    with real_vllm(ctx, ctx.work_dir / "vllm-lifecycle-raw.log") as server:
        ready = server.ready_at - server.launched_at
    return {"ready_s": ready, "gone_s": server.gone_s}


async def _standin_stop(ctx: BenchContext, open_stream: bool) -> float:
    from engine.paths import AppPaths
    from engine.server.profiles import ServerProfile
    from engine.server.supervisor import Supervisor
    from tests.support.standin.launch import StandinRuntime

    paths = AppPaths.under(ctx.work_dir / f"standin-stop-{open_stream}").ensure()
    sup = Supervisor(paths, StandinRuntime(["--tokens-per-second", "20", "--reply-tokens", "100000"]))
    endpoint = await sup.start(ServerProfile(name="standin", source="hf_cache", model="org/standin"))
    reader: asyncio.Task[None] | None = None
    if open_stream:
        started = asyncio.Event()

        async def stream() -> None:
            body = {"model": endpoint.model, "messages": [{"role": "user", "content": "x"}], "stream": True}
            async with (
                httpx.AsyncClient(timeout=60, trust_env=False) as client,
                client.stream(
                    "POST",
                    f"{endpoint.base_url}/chat/completions",
                    json=body,
                    headers=endpoint.auth_headers(),
                ) as response,
            ):
                async for _line in response.aiter_lines():
                    started.set()

        reader = asyncio.create_task(stream())
        await asyncio.wait_for(started.wait(), 10)
    members = sup.processes()
    began = time.monotonic()
    await sup.stop()
    gone = await asyncio.to_thread(_gone_after, members, began)
    if reader is not None:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    await sup.shutdown()
    return gone


def run(ctx: BenchContext) -> BenchResult:
    try:
        import engine.server.supervisor  # noqa: F401
    except ImportError as exc:
        raise SubjectMissing(f"engine/server/supervisor.py cannot be imported: {exc}") from exc
    result = BenchResult("lifecycle", "Server lifecycle")
    ctx.say("stand-in: stop with and without an open stream")
    with_stream = asyncio.run(_standin_stop(ctx, open_stream=True))
    idle = asyncio.run(_standin_stop(ctx, open_stream=False))
    label = "stand-in: stop → last process gone, stream open"
    result.add(Metric("standin_stop_stream_s", label, with_stream, "s", idle, "same stop, no stream"))
    if not ctx.real_vllm:
        result.skip_part("real vLLM", "--no-vllm was given")
        return result
    try:
        runtime, _model = prepare_real_vllm(ctx)
    except SubjectMissing as missing:
        result.skip_part("real vLLM", str(missing))
        return result
    ctx.say("real vLLM through the supervisor")
    app = asyncio.run(_supervised_real(ctx, runtime))
    raw = ctx.shared.get("raw_vllm")
    if raw is None:
        ctx.say("real vLLM launched directly (baseline)")
        raw = _raw_real(ctx)
    else:
        result.notes.append("Baseline launch: the direct `vllm serve` of the streaming benchmark, same run.")
    result.add(Metric("ready_s", "real vLLM: launch → ready", app["ready_s"], "s", raw["ready_s"],
                      "vllm serve directly, /health polled"))  # fmt: skip
    result.add(Metric("notice_ms", "real vLLM: /health 200 → app notices", app["notice_ms"], "ms"))
    result.add(Metric("gone_s", "real vLLM: stop → last process gone", app["gone_s"], "s", raw["gone_s"],
                      "SIGTERM to the group directly"))  # fmt: skip
    phase_start: dict[str, float] = {}
    for name, elapsed in app["phases"]:
        phase_start.setdefault(name, elapsed)
    ordered = sorted(phase_start.items(), key=lambda kv: kv[1])
    spans = []
    for (name, start), nxt in zip(ordered, [*ordered[1:], ("end", app["ready_s"])], strict=True):
        spans.append(f"{name} {nxt[1] - start:.1f} s")
    result.notes.append("Phases (from the supervisor's progress events): " + ", ".join(spans) + ".")
    result.notes.append(
        "The supervisor polls /health every 0.2 s and then asks /v1/models; "
        f"the launch had {app['processes']} processes; stop() returned after {app['stop_returned_s']:.2f} s."
    )
    result.series["phases"] = {
        "kind": "bars",
        "title": "Real vLLM launch (CPU): time spent in each phase",
        "ylabel": "s",
        "data": {name: {"seconds": nxt[1] - start} for (name, start), nxt in
                 zip(ordered, [*ordered[1:], ("end", app["ready_s"])], strict=True)},
    }  # fmt: skip
    return result
