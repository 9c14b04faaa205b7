"""The vLLM server supervisor: launch a profile, follow its start, know when it is ready, stop all of it.

States (published on :attr:`Supervisor.state_changed`): stopped → preparing → starting → ready → stopping →
stopped, and failed (with a typed problem from :mod:`engine.diagnosis.problems`). vLLM runs in its own
session; exit is
noticed by polling the leader (never by pipes closing: orphaned children keep them open), readiness by polling
``GET /health`` then ``/v1/models``; stopping signals the whole session and verifies nothing is left.

Split out: :mod:`engine.server.events` (the published types, re-exported here), :mod:`engine.server.readiness`
(the health probe, free ports), :mod:`engine.server.start_times` (expected start time),
:mod:`engine.server.processes`
(process sessions and strays).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from engine.diagnosis.gpu import name_gpu_holders
from engine.diagnosis.problems import (
    ProcessesLeft,
    ServerDied,
    ServerFailed,
    StartCancelled,
    StartTimedOut,
    describe_exit,
)
from engine.diagnosis.rules import diagnose
from engine.endpoint import Endpoint
from engine.errors import DeskError
from engine.events import Event
from engine.models.builtin import (
    ModelState,
    builtin_model_state,
    builtin_reference,
    prepare_builtin_model_async,
)
from engine.models.golden import (
    BuiltinModelAnswersWrong,
    GoldenRecords,
    GoldenResult,
    ask_golden,
    machine_fingerprint,
    record_key,
    runtime_identity,
)
from engine.paths import AppPaths
from engine.runtime.locate import VllmRuntime, child_environ, locate_runtime
from engine.secrets import HF_TOKEN, SecretStore
from engine.server.events import LogLine, ServerState, ServeRuntime, StartProgress, StateChange
from engine.server.fit import gpu_launch_profile
from engine.server.gpu_shares import Reservation, reserve_async
from engine.server.log_phases import PHASE_LABELS, Phase, parse_line
from engine.server.metrics import MetricsPoller, MetricsSample
from engine.server.processes import (
    STRAY_PREFIX,
    SessionProcess,
    StopOutcome,
    StrayProcess,
    clean_up_strays,
    find_strays,
    session_members,
)
from engine.server.profiles import (
    ServerProfile,
    build_serve_args,
    launch_api_key,
    model_argument,
    quiet_probes_supported,
)
from engine.server.readiness import SERVER_KEEP_ALIVE_S, free_port, poll_ready
from engine.server.remote import connect_profile
from engine.server.start_times import StartTimes
from engine.server.watchdog import Silence, StartWatch

__all__ = [
    "LogLine",
    "ServeRuntime",
    "ServerState",
    "StartProgress",
    "StateChange",
    "Supervisor",
    "free_port",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# The stops running to their end in their own tasks: referenced here so none is garbage-collected while a
# cancelled caller no longer awaits it.
_STOPS: set[asyncio.Task[Any]] = set()


async def _to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` (a stop) in its own task that cancelling the caller does not interrupt.

    A stop cut short after its SIGTERM would leave a server that ignores it running (nothing would send
    the SIGKILL) and would leave its leader unreaped. So a cancellation of the caller waits for the stop to
    end and is raised then: the caller never goes on (or lets its event loop close, which would cancel a
    stop left running in the background) while the server may still be there. The wait is bounded by the
    stop itself: the grace period, 5 s for SIGKILL, 5 s to reap.
    """
    task = asyncio.ensure_future(work)
    _STOPS.add(task)
    task.add_done_callback(_STOPS.discard)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})  # a shield: a cancel of this caller is not passed on to the task
        except asyncio.CancelledError:
            cancelled = True  # keep waiting; raised once the stop has ended
    if cancelled:
        if not task.cancelled() and task.exception() is not None:  # the cancellation is what goes on
            log.warning("a stop failed after its caller was cancelled: %s", task.exception())
        raise asyncio.CancelledError()
    return task.result()


@dataclass
class _Launch:
    """One ``vllm serve`` process tree and what belongs to it."""

    profile: ServerProfile
    port: int
    api_key: str
    lines: deque[LogLine]
    exited: asyncio.Future[int]
    process: SessionProcess | None = None
    stopping: bool = False
    stopped_by_user: bool = False
    finished: bool = False
    engine_pids: set[int] = field(default_factory=set)
    monitor: asyncio.Task[None] | None = None
    watch: StartWatch | None = None
    # Its share of the GPU, held while it runs (engine.server.gpu_shares); None on the CPU.
    reservation: Reservation | None = None

    @property
    def sid(self) -> int:
        assert self.process is not None
        return self.process.sid

    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


class Supervisor:
    """Owns the local vLLM server(s) this app starts. Qt-free; drive it from asyncio.

    ``runtime``: the vLLM to launch (default: :func:`engine.runtime.install.locate_runtime` at each start).
    ``grace_s``: how long a SIGTERM may take before SIGKILL. ``ready_timeout_s``: give up a start after this.
    """

    def __init__(
        self,
        paths: AppPaths,
        runtime: ServeRuntime | None = None,
        *,
        runtime_path: str | None = None,
        grace_s: float = 5.0,
        ready_timeout_s: float = 900.0,
        health_interval_s: float = 0.2,
        log_buffer_lines: int = 2000,
        secrets: SecretStore | None = None,
        metrics_interval_s: float = 1.0,
    ) -> None:
        self.paths = paths
        self._runtime = runtime
        self._runtime_path = runtime_path
        self.grace_s = grace_s
        self.ready_timeout_s = ready_timeout_s
        self.health_interval_s = health_interval_s
        self.log_buffer_lines = log_buffer_lines
        self._secrets = secrets
        self.state_changed: Event[StateChange] = Event("state_changed")
        self.progress: Event[StartProgress] = Event("progress")
        self.log_line: Event[LogLine] = Event("log_line")
        self._metrics = MetricsPoller(metrics_interval_s)
        self._state = ServerState.STOPPED
        self._profile_name = ""
        self._endpoint: Endpoint | None = None
        self._launch: _Launch | None = None
        self._launches: list[_Launch] = []
        self._last: _Launch | None = None  # for its log after it ended
        self._start_times = StartTimes(paths.state)
        self.problem: DeskError | None = None
        self.last_stop: StopOutcome | None = None
        # The built-in model's golden check: its last verdict, and whether a recorded pass is asked again.
        self.last_answer_check: GoldenResult | None = None
        self.recheck_answers = False
        # The current (or last) start's phases as they happened, for a timeline.
        self.start_phases: list[StartProgress] = []
        self.progress.connect(self._remember_phase)
        # The start() in progress before anything runs (runtime check, model preparation, a remote check):
        # a stop() then cancels it, as it stops a process that is loading.
        self._preparing: tuple[asyncio.Task[Any], asyncio.Event] | None = None

    # -- public state -----------------------------------------------------------------------------
    @property
    def state(self) -> ServerState:
        return self._state

    @property
    def endpoint(self) -> Endpoint | None:
        """Where the ready server is (with its key); ``None`` unless :attr:`state` is ready."""
        return self._endpoint

    @property
    def metrics(self) -> Event[MetricsSample]:
        """Live ``/metrics`` readings; polled only while this has subscribers and the server is ready."""
        return self._metrics.metrics

    @property
    def pid(self) -> int | None:
        return self._launch.sid if self._launch else None

    @property
    def log_path(self) -> Path | None:
        """The complete log file of the current or last launch."""
        return self._last.process.log_path if self._last and self._last.process else None

    def log_tail(self) -> list[LogLine]:
        """The in-memory (bounded) log of the current or last launch."""
        return list(self._last.lines) if self._last else []

    def processes(self) -> list[psutil.Process]:
        """Every live process of the current launch (by session id)."""
        return session_members(self._launch.sid) if self._launch else []

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self, profile: ServerProfile) -> Endpoint:
        """Launch ``profile`` and return its endpoint once ready; raise a :class:`ServerProblem` otherwise.

        A server already running (or starting) is stopped first; a ``remote`` profile is checked and
        connected to instead of launched. Cancelling the call stops the launch.
        """
        if self._launch is not None or self._preparing is not None:
            await self.stop()
        self._profile_name = profile.name
        self.problem = None
        self.start_phases = []
        began = time.monotonic()
        self._set_state(ServerState.PREPARING)
        expected = self._start_times.expected(profile.name)
        if profile.kind == "local":  # a remote server has no runtime or model of ours to check
            self.progress.emit(
                StartProgress(Phase.RUNTIME_CHECK, PHASE_LABELS[Phase.RUNTIME_CHECK], 0.0, expected)
            )
        task = asyncio.current_task()
        assert task is not None
        left_preparing = asyncio.Event()
        self._preparing = (task, left_preparing)
        try:
            if profile.kind == "remote":
                endpoint = (await connect_profile(profile, self._secrets)).endpoint
                self._became_ready(endpoint, began, expected)
                return endpoint
            argv, env, port, key, reservation = await self._prepare(profile, began, expected)
            launch = self._spawn(profile, argv, env, port, key, began, reservation)
        except asyncio.CancelledError as cancelled:
            if self._state is ServerState.STOPPING:  # stop() while preparing: not a failure
                task.uncancel()  # that cancellation was ours, and it ends here
                raise StartCancelled() from cancelled
            self._set_state(ServerState.STOPPED)
            raise
        except DeskError as problem:
            self._fail(problem)
            raise
        finally:
            self._preparing = None
            left_preparing.set()
        self._set_state(ServerState.STARTING)
        try:
            endpoint = await self._await_ready(launch)
            await self._check_answers(profile, endpoint, argv, began, expected)
        except asyncio.CancelledError:
            try:
                await self._stop_launch(launch)  # to its end even if cancelled again meanwhile
            finally:
                self._set_state(ServerState.STOPPED)
            raise
        except DeskError as problem:
            if launch.stopped_by_user:  # stop() during the start: not a failure
                raise StartCancelled() from problem
            try:
                await self._stop_launch(launch)
            finally:
                self._fail(problem)
            raise
        await asyncio.to_thread(self._start_times.record, profile.name, time.monotonic() - began)
        self._became_ready(endpoint, began, expected)
        return endpoint

    def _became_ready(self, endpoint: Endpoint, began: float, expected: float | None) -> None:
        elapsed = time.monotonic() - began
        self._endpoint = endpoint
        self.progress.emit(StartProgress(Phase.READY, PHASE_LABELS[Phase.READY], elapsed, expected, 1.0))
        self._set_state(ServerState.READY)
        self._metrics.set_endpoint(endpoint)

    async def stop(self) -> None:
        """SIGTERM to the server's session, the grace period, SIGKILL; nothing of it is left afterwards.

        Once begun, the stop runs to its end: cancelling the caller is raised only after it.
        """
        if self._nothing_to_stop():
            await self._stop(None)  # it signals nothing and awaits nothing: no task of its own
            return
        await _to_the_end(self._stop(asyncio.current_task()))

    def _nothing_to_stop(self) -> bool:
        return self._launch is None and self._preparing is None

    async def _stop(self, caller: asyncio.Task[Any] | None) -> None:
        launch = self._launch
        if launch is None:
            if self._preparing is not None and self._preparing[0] is not caller:
                task, left_preparing = self._preparing
                self._set_state(ServerState.STOPPING)
                task.cancel()  # its start() raises StartCancelled to its own caller
                await left_preparing.wait()
            if self._state is not ServerState.STOPPED:
                self._set_state(ServerState.STOPPED)
            return
        launch.stopped_by_user = True
        self._set_state(ServerState.STOPPING)
        outcome = await self._stop_launch(launch)
        if outcome.left:
            problem = ProcessesLeft(outcome.left)
            self._fail(problem)
            raise problem
        self._set_state(ServerState.STOPPED)

    async def switch(self, profile: ServerProfile) -> Endpoint:
        """Stop the running server (if any) and start ``profile``."""
        await self.stop()
        return await self.start(profile)

    async def shutdown(self) -> None:
        """Stop every server this supervisor started (quitting the app); never raises for a stuck one.

        Once begun, it runs to its end: cancelling the caller (a signal while a command stops its server)
        is raised only after every server is stopped.
        """
        if self._nothing_to_stop() and all(launch.finished for launch in self._launches):
            await self._shutdown()  # as when nothing was started: no task of its own to leave behind
            return
        await _to_the_end(self._shutdown())

    async def _shutdown(self) -> None:
        try:
            await self.stop()
        except ProcessesLeft as problem:
            log.warning("at shutdown: %s", problem)  # already published as a failed state
        for launch in list(self._launches):
            if not launch.finished:
                await self._stop_launch(launch)
        await self._metrics.aclose()

    # -- strays -----------------------------------------------------------------------------------
    @staticmethod
    async def find_strays() -> list[StrayProcess]:
        """``VLLM::`` processes left by an earlier crash (their server leader is gone)."""
        return await asyncio.to_thread(find_strays)

    @staticmethod
    async def clean_up_strays(strays: list[StrayProcess]) -> list[int]:
        """Stop the given strays (and their sessions); returns pids that survived."""
        return await clean_up_strays(strays)

    # -- internals --------------------------------------------------------------------------------
    def _remember_phase(self, progress: StartProgress) -> None:
        # A new phase (or the first), not every progress tick within one: a timeline has one row a phase.
        if not self.start_phases or self.start_phases[-1].phase is not progress.phase:
            self.start_phases.append(progress)

    def _set_state(self, state: ServerState) -> None:
        previous, self._state = self._state, state
        if state is not ServerState.READY:
            self._endpoint = None
            self._metrics.set_endpoint(None)
        self.state_changed.emit(
            StateChange(state, previous, self._profile_name, self._endpoint, self.problem)
        )

    def _fail(self, problem: DeskError) -> None:
        self.problem = problem
        self._set_state(ServerState.FAILED)

    async def _runtime_for(self) -> ServeRuntime:
        if self._runtime is None:
            runtime: VllmRuntime = await asyncio.to_thread(locate_runtime, self.paths, self._runtime_path)
            self._runtime = runtime
        return self._runtime

    async def _prepare(
        self, profile: ServerProfile, began: float, expected: float | None
    ) -> tuple[list[str], dict[str, str], int, str, Reservation | None]:
        runtime = await self._runtime_for()
        if profile.source == "builtin" and builtin_model_state(self.paths) is not ModelState.READY:
            if not isinstance(runtime, VllmRuntime):
                raise ServerFailed("the built-in model is not prepared", None)

            def relay(p: object) -> None:
                label = f"Preparing the built-in model: {getattr(p, 'message', '')}"
                fraction = getattr(p, "fraction", None)
                elapsed = time.monotonic() - began
                self.progress.emit(StartProgress(Phase.RUNTIME_CHECK, label, elapsed, expected, fraction))

            await prepare_builtin_model_async(self.paths, runtime, relay)
        model = model_argument(profile, self.paths)
        if getattr(runtime, "is_gpu", False):  # built-in model, embedders: a memory share sized to them
            profile = await asyncio.to_thread(gpu_launch_profile, profile, self.paths)
        port = profile.port or free_port(profile.host)
        key = launch_api_key(profile, self._secrets)
        quiet = quiet_probes_supported(str(getattr(runtime, "version", "")))
        argv = runtime.serve_command(
            build_serve_args(profile, model, port, cpu=runtime.is_cpu, quiet_probes=quiet)
        )
        env = child_environ()  # from a frozen bundle: the user's library path, not the bundle's
        env.update(runtime.env(offline=not profile.needs_network, kv_cache_gib=profile.cpu_kv_cache_gib))
        env.update(profile.env)  # CUDA_VISIBLE_DEVICES, NCCL_P2P_DISABLE, ... (never the key: set below)
        env["VLLM_API_KEY"] = key  # never on the command line, where `ps` shows it
        env["VLLM_HTTP_TIMEOUT_KEEP_ALIVE"] = str(SERVER_KEEP_ALIVE_S)  # the endpoint says it to the clients
        # Gated repos need the user's Hugging Face token; like the key, only ever in the environment.
        hf_token = await asyncio.to_thread((self._secrets or SecretStore()).get, HF_TOKEN)
        if hf_token:
            env["HF_TOKEN"] = hf_token
        env["PYTHONUNBUFFERED"] = "1"  # lines as they happen, for progress
        # Last, with nothing after it that can fail but the spawn: on a GPU its share must fit beside what
        # the card holds and what our other server (chat model or embedder) is about to take; refused here,
        # before vLLM spends a minute finding out.
        reservation = await reserve_async(profile) if getattr(runtime, "is_gpu", False) else None
        return argv, env, port, key, reservation

    def _spawn(
        self,
        profile: ServerProfile,
        argv: list[str],
        env: dict[str, str],
        port: int,
        key: str,
        began: float,
        reservation: Reservation | None = None,
    ) -> _Launch:
        try:
            launch = self._spawn_process(profile, argv, env, port, key, began)
        except BaseException:
            if reservation is not None:
                reservation.release()  # never started: its share is free again
            raise
        launch.reservation = reservation
        if reservation is not None:
            reservation.sid = launch.sid  # from now on NVML shows what it holds
        return launch

    def _spawn_process(
        self, profile: ServerProfile, argv: list[str], env: dict[str, str], port: int, key: str, began: float
    ) -> _Launch:
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^\w.-]+", "-", profile.name).strip("-") or "server"
        log_path = self.paths.logs / f"{slug}-{datetime.now():%Y%m%d-%H%M%S-%f}.log"
        loop = asyncio.get_running_loop()
        launch = _Launch(profile, port, key, deque(maxlen=self.log_buffer_lines), loop.create_future())
        launch.watch = StartWatch(
            timeout_s=self.ready_timeout_s, tensor_parallel_size=profile.tensor_parallel_size
        )
        try:
            launch.process = SessionProcess(
                argv, env, self.paths.state, log_path, lambda line: self._on_line(launch, line), began
            )
        except OSError as exc:
            raise ServerFailed(f"{argv[0]} could not be run ({exc.strerror or exc})", None) from exc
        self._launch = self._last = launch
        self._launches.append(launch)
        launch.monitor = loop.create_task(self._monitor(launch))
        return launch

    def _on_line(self, launch: _Launch, line: LogLine) -> None:
        launch.lines.append(line)
        if launch.watch is not None:
            launch.watch.heard(line.text)
        if launch is self._launch:
            self.log_line.emit(line)
        if launch is not self._launch or self._state is not ServerState.STARTING:
            return
        hit = parse_line(line.text)
        if hit is None or hit.phase is Phase.READY:
            return  # ready is announced once /health and /v1/models agree
        expected = self._start_times.expected(launch.profile.name)
        self.progress.emit(
            StartProgress(
                hit.phase,
                PHASE_LABELS[hit.phase],
                line.elapsed_s,
                expected,
                hit.fraction,
                hit.bytes_done,
                hit.bytes_total,
                hit.kv_cache_gib,
                hit.kv_cache_tokens,
            )
        )

    async def _monitor(self, launch: _Launch) -> None:
        """Poll the leader (and the ``VLLM::`` engine processes) so a death is noticed at once."""
        tick = 0
        while not launch.finished:
            code = launch.process.poll() if launch.process else None
            if code is not None:
                if not launch.exited.done():
                    launch.exited.set_result(code)
                if not launch.stopping and self._state is ServerState.READY and launch is self._launch:
                    await self._died(launch, f"The server exited ({describe_exit(code)})", code)
                return
            tick += 1
            # Only once ready: during a start vLLM's helper processes come and go on purpose.
            if tick % 5 == 0 and self._state is ServerState.READY and launch is self._launch:
                await self._check_engine(launch)
            await asyncio.sleep(0.1)

    async def _check_engine(self, launch: _Launch) -> None:
        members = await asyncio.to_thread(session_members, launch.sid)
        names: dict[int, str] = {}
        for proc in members:
            with contextlib.suppress(psutil.Error):
                names[proc.pid] = (
                    proc.name() if proc.name().startswith(STRAY_PREFIX) else " ".join(proc.cmdline())
                )
        alive = {pid for pid, name in names.items() if name.startswith(STRAY_PREFIX)}
        gone = launch.engine_pids - alive
        launch.engine_pids |= alive
        if gone and not launch.stopping and self._state is ServerState.READY and launch is self._launch:
            await self._died(launch, f"The engine process (pid {min(gone)}) died", None)

    async def _died(self, launch: _Launch, what: str, code: int | None) -> None:
        launch.stopping = True
        await asyncio.sleep(0.2)  # let the last lines of the log arrive
        problem = diagnose(launch.texts(), exit_code=code, port=launch.port)
        if isinstance(problem, ServerFailed):
            problem = ServerDied(what, details=problem.details)
        await self._stop_launch(launch)
        self._fail(problem)

    async def _await_ready(self, launch: _Launch) -> Endpoint:
        profile = launch.profile
        ready = asyncio.ensure_future(
            poll_ready(
                profile.host,
                launch.port,
                launch.api_key,
                profile.served_model_name,
                profile.name,
                self.health_interval_s,
            )
        )
        waiters: set[asyncio.Future[Any]] = {ready, launch.exited}
        watch = launch.watch
        try:
            while True:  # the watch leaves downloads out of the time limit and reports long silences
                wait_s = (
                    min(max(0.0, watch.remaining_s()), watch.silence_s / 4, 5.0)
                    if watch
                    else self.ready_timeout_s
                )
                done, _ = await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
                if done or watch is None or watch.timed_out():
                    break
                if (quiet := watch.silence()) is not None:
                    self._report_silence(launch, quiet)
        finally:
            if not ready.done():
                ready.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ready
        if ready in done and not ready.cancelled() and ready.exception() is None:
            return ready.result()
        if launch.exited.done():
            await asyncio.sleep(0.2)  # let the reader threads hand over the last lines
            code = launch.exited.result()
            raise name_gpu_holders(diagnose(launch.texts(), exit_code=code, port=launch.port))
        hint = watch.last_silence.hint if watch is not None and watch.last_silence is not None else ""
        raise StartTimedOut(self.ready_timeout_s, details="\n".join(launch.texts()[-60:]), hint=hint)

    def _report_silence(self, launch: _Launch, quiet: Silence) -> None:
        """A start that has printed nothing for a while: said in the progress label, with a hint."""
        log.warning("start of %s: %s", launch.profile.name, quiet.message)
        phase = quiet.phase or Phase.STARTING
        elapsed = time.monotonic() - launch.process.started if launch.process else 0.0
        expected = self._start_times.expected(launch.profile.name)
        self.progress.emit(
            StartProgress(phase, f"{PHASE_LABELS[phase]} — {quiet.message}", elapsed, expected)
        )

    async def _check_answers(
        self,
        profile: ServerProfile,
        endpoint: Endpoint,
        argv: list[str],
        began: float,
        expected: float | None,
    ) -> None:
        """The built-in model's golden check (engine/models/golden.py), once per runtime, machine and
        dtype."""
        if profile.source != "builtin" or profile.kind != "local":
            return
        reference = await asyncio.to_thread(builtin_reference, self.paths)
        runtime = await self._runtime_for()
        if reference is None:
            return
        dtype = argv[argv.index("--dtype") + 1] if "--dtype" in argv else "auto"
        runtime_id = runtime_identity(runtime)
        machine = await asyncio.to_thread(machine_fingerprint)
        key = record_key(runtime_id, machine, dtype, reference.model_id)
        records = GoldenRecords(self.paths.state)
        known = await asyncio.to_thread(records.get, key)
        if known is not None and known.passed and not self.recheck_answers:
            self.last_answer_check = known
            return
        label = PHASE_LABELS[Phase.ANSWER_CHECK]
        self.progress.emit(StartProgress(Phase.ANSWER_CHECK, label, time.monotonic() - began, expected))
        try:
            result = await ask_golden(
                endpoint,
                reference.prompt,
                reference.answer,
                reference.keyword,
                dtype=dtype,
                runtime=runtime_id,
            )
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise ServerFailed(f"the model did not answer its check question ({exc})", None) from exc
        await asyncio.to_thread(records.put, key, result)
        self.last_answer_check = result
        if not result.passed:
            raise BuiltinModelAnswersWrong(result, cpu=runtime.is_cpu)

    async def _stop_launch(self, launch: _Launch) -> StopOutcome:
        """Stop ``launch``'s whole session; it runs to its end even if the caller is cancelled."""
        return await _to_the_end(self._stop_launch_now(launch, asyncio.current_task()))

    async def _stop_launch_now(self, launch: _Launch, caller: asyncio.Task[Any] | None) -> StopOutcome:
        launch.stopping = True
        assert launch.process is not None
        try:
            outcome = await launch.process.stop(self.grace_s)
        finally:
            if launch.reservation is not None:  # anything left over holds memory NVML shows from now on
                launch.reservation.release()
        self.last_stop = outcome
        launch.finished = True
        if launch.monitor is not None and launch.monitor is not caller:
            launch.monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await launch.monitor
        if not launch.exited.done():
            code = launch.process.poll()
            launch.exited.set_result(code if code is not None else -9)
        if launch is self._launch:
            self._launch = None
        if launch in self._launches and not outcome.left:
            self._launches.remove(launch)
        return outcome
