"""The window's side of the supervisor: its events onto the status bar, the first-run panel and the problem
banner; starting the chosen profile (installing the runtime first on a fresh machine); the server's one-click
fixes.

Every start and switch goes through :meth:`ServerLink.start`, wherever the user asked for it (the Server
menu, Preferences' "Restart server now", the tray or the Models menu, a fix): one place that installs the
runtime for local profiles (not for remote ones), runs in the background without disabling the window, and
says (:attr:`ServerLink.gave_up`) when a start ends without a server, so that the messages written meanwhile
are not lost.

It gets what it drives (the status bar, the first-run panel, the banner, the settings) and says what
happened through its signals; it never sees the window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from desktop import errors
from desktop.bridge import EventBridge
from desktop.errors import ErrorBanner, FixContext, Problem
from desktop.operations import Operation
from desktop.server_states import look_of
from desktop.widgets.status_bar import ServerStatusBar
from desktop.window.first_run import FirstRunPanel
from desktop.window.fix_actions import PROFILE_FIXES, RESTART_FIXES, FixRegistry
from engine.chat.errors import NoServer, ServerUnreachable
from engine.diagnosis.problems import ServerProblem, StartCancelled
from engine.errors import DeskError, Fix
from engine.runtime.install import Progress, RuntimeInstallFailed
from engine.runtime.locate import RuntimeBroken, RuntimeMissing
from engine.server.log_phases import Phase
from engine.server.profiles import ServerProfile, builtin_profile
from engine.server.remote import RemoteUnreachable, check_remote
from engine.server.supervisor import LogLine, ServerState, StartProgress, StateChange, Supervisor

if TYPE_CHECKING:
    from engine.server.metrics import MetricsSample
    from engine.settings.store import SettingsStore

log = logging.getLogger(__name__)
RuntimeEnsurer = Callable[[Callable[[Progress], object]], Awaitable[object]]

REMOTE_RECHECK_MS = 5000  # how often a remote server that stopped answering is asked again

# Problems that a server becoming ready answers (shown by a start that failed, or a send with no server).
SERVER_PROBLEMS = (
    ServerProblem,
    NoServer,
    ServerUnreachable,
    RemoteUnreachable,
    RuntimeMissing,
    RuntimeBroken,
    RuntimeInstallFailed,
)


def tr(text: str) -> str:
    return QCoreApplication.translate("server", text)


def profile_with_fix(profile: ServerProfile, fix: Fix) -> ServerProfile | None:
    """The profile with ``fix`` applied, or ``None`` if the fix does not change the profile."""
    if fix.action not in PROFILE_FIXES:
        return None
    change: dict[str, Any] = {"port": 0} if fix.action == "pick_free_port" else dict(fix.params)
    return ServerProfile.model_validate({**profile.model_dump(), **change})


class ServerLink(QObject):
    """Connects one supervisor to the window's status bar, first-run panel and banner. ``ensure_runtime``
    installs vLLM if needed (first start)."""

    ready = Signal()  # the server is ready: what waited for it may go
    gave_up = Signal(str)  # a start ended without a server; the words say how
    log_line = Signal(str)  # a line of the server's log

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        settings: SettingsStore,
        status: ServerStatusBar,
        first_run: FirstRunPanel,
        banner: ErrorBanner,
        bridge: EventBridge,
        ensure_runtime: RuntimeEnsurer | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.supervisor = supervisor
        self.settings = settings
        self.status = status
        self.first_run = first_run
        self.banner = banner
        self.ensure_runtime = ensure_runtime
        # The profile started last, from wherever; only its name counts while the settings hold it.
        self.active: ServerProfile | None = None
        self._task: asyncio.Task[None] | None = None  # the start (or stop) in flight
        self._stop_task: asyncio.Task[None] | None = None  # the stop in flight, which a start waits for
        self._failure: BaseException | None = None  # why the start in flight failed
        bridge.connect_event(supervisor.state_changed, self._on_state)
        bridge.connect_event(supervisor.progress, self._on_progress)
        bridge.connect_event(supervisor.log_line, self._on_log_line)
        bridge.connect_event(supervisor.metrics, self._on_metrics)
        initial = look_of(supervisor.state)
        status.set_state(initial.bar, initial.words)
        # A remote server that went away after it was reached: a send finds nothing answering (the
        # supervisor, which launched nothing, cannot see it go). Its check is made again, so the header and
        # status bar no longer say "Ready", and repeated quietly until the server answers.
        errors.reporter().problem.connect(self._on_problem)
        self._lost = QTimer(self)
        self._lost.setInterval(REMOTE_RECHECK_MS)
        self._lost.timeout.connect(self._recheck_lost)
        self._rechecking: asyncio.Task[None] | None = None
        self._lost_name = ""  # the remote profile that stopped answering after it was reached
        self._closed = False

    async def aclose(self) -> None:
        """The window shuts down: no lost remote server is asked again, and the app-wide reporter no longer
        calls this link."""
        self._lost.stop()
        if not self._closed:
            self._closed = True
            errors.reporter().problem.disconnect(self._on_problem)
        if self._rechecking is not None and not self._rechecking.done():
            self._rechecking.cancel()
            await asyncio.gather(self._rechecking, return_exceptions=True)

    def register_fixes(self, registry: FixRegistry) -> None:
        """The server's fixes change the profile that failed and start it again."""
        registry.register((*PROFILE_FIXES, *RESTART_FIXES, "install_runtime"), self.apply_fix)

    # --- starting ------------------------------------------------------------------------------------

    @property
    def starting(self) -> bool:
        """A start is under way: the runtime check or install before the supervisor, or the supervisor's
        own preparing and loading (whoever asked for it)."""
        task = self._task
        in_flight = task is not None and not task.done() and task is not self._stop_task
        return in_flight or self.supervisor.state in (ServerState.PREPARING, ServerState.STARTING)

    def chosen_profile(self) -> ServerProfile:
        """The profile to (re)start: the one started last as the settings hold it now (Preferences may have
        changed it since), else the default one."""
        settings = self.settings.settings
        if self.active is not None:
            return settings.profile(self.active.name) or self.active
        return settings.default_profile() or builtin_profile()

    def start(self, profile: ServerProfile | None = None) -> asyncio.Task[None]:
        """Start ``profile`` (default: the chosen one) in the background, stopping what runs or starts;
        problems go to the banner. Returns the start's task."""
        chosen = profile or self.chosen_profile()
        self.active = chosen
        prior = self._task
        return self._track(
            Operation(None, lambda: self._start(chosen, prior))
            .failure(lambda exc: self._start_failed(exc, chosen.name))
            .run()
        )

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        # Starts and stops run one after the other: each waits for the one before (see _start, stop).
        self._failure = None
        self._task = task
        task.add_done_callback(self._start_ended)
        return task

    def _start_failed(self, exc: BaseException, name: str) -> None:
        if asyncio.current_task() is self._task:  # not a start that a newer one replaced
            self._failure = exc
        self.first_run.finish()
        if isinstance(exc, StartCancelled):  # the user stopped it: nothing to report
            return
        if self.supervisor.state is not ServerState.FAILED:  # the supervisor did not report it already
            failed = look_of("failed")
            self.status.set_state(failed.bar, failed.words)
            errors.report(exc, FixContext(profile=name))

    def _start_ended(self, task: asyncio.Task[None]) -> None:
        if task is not self._task:
            return  # a newer start replaced it and carries on with what waits for the server
        self._task = None
        if self.supervisor.state is ServerState.READY:
            return  # the ready state already sent what was queued
        self.first_run.finish()
        if task is self._stop_task or task.cancelled() or isinstance(self._failure, StartCancelled):
            self.gave_up.emit(tr("The server was stopped before it was ready"))
        else:
            self.gave_up.emit(tr("The server did not start"))

    def clear_stale_problems(self) -> None:
        """A server is ready: the banner of an earlier failed start (or of a send that found no server) is
        history; any other problem stays."""
        problem = self.banner.problem
        if problem is not None and isinstance(problem.error, SERVER_PROBLEMS):
            self.banner.dismiss()

    async def _start(self, profile: ServerProfile, prior: asyncio.Task[None] | None) -> None:
        if prior is not None and not prior.done():
            # A start still in flight: cancelling it stops that launch; a stop is let finish. Wait for it.
            if prior is not self._stop_task:
                prior.cancel()
            await asyncio.wait([prior])
        status = self.status
        if profile.kind == "remote":  # the supervisor checks and connects; no local vLLM is needed
            status.set_server(profile.name, profile.served_name or profile.base_url)
            status.set_state("starting", tr("Connecting to {url}…").format(url=profile.base_url))
        else:
            status.set_server(profile.name, profile.served_model_name)
            status.set_state("starting", tr("Checking the vLLM runtime…"))
            if self.ensure_runtime is not None:
                await self.ensure_runtime(self._on_runtime_progress)
        await self.supervisor.start(profile)

    def stop(self) -> asyncio.Task[None]:
        """Stop the server, or the start in flight (also while the runtime is being installed)."""
        prior = self._task

        async def stop() -> None:
            if prior is not None and not prior.done():
                if prior is not self._stop_task:  # a start: cancelled; a stop already under way: awaited
                    prior.cancel()
                await asyncio.wait([prior])
            await self.supervisor.stop()

        task = Operation(None, stop).run()
        self._stop_task = task
        return self._track(task)

    def failed_profile(self, context: FixContext) -> ServerProfile:
        """The profile a server problem's fix is for: the one that failed (``context.profile``), as the
        settings hold it now (else the chosen one, for a problem that names none)."""
        name = context.profile
        if not name:
            return self.chosen_profile()
        if self.active is not None and self.active.name == name:
            return self.chosen_profile()
        builtin = builtin_profile()
        return (
            self.settings.settings.profile(name)
            or (builtin if builtin.name == name else None)
            or self.chosen_profile()
        )

    def apply_fix(self, fix: Fix, context: FixContext) -> None:
        profile = self.failed_profile(context)
        changed = profile_with_fix(profile, fix)
        if changed is not None:
            self._save_profile(changed)
            self.start(changed)
        elif fix.action in (*RESTART_FIXES, "install_runtime"):
            self.start(profile)

    def _save_profile(self, profile: ServerProfile) -> None:
        # Remember the fix in the settings when the profile is one of the user's.
        store = self.settings
        current = store.settings
        if current.profile(profile.name) is None:
            return
        profiles = [profile if p.name == profile.name else p for p in current.profiles]
        try:
            store.update(current.model_copy(update={"profiles": profiles}))
        except Exception as exc:  # noqa: BLE001 - any failure to save is shown, the fix still runs
            errors.report(exc)

    # --- events --------------------------------------------------------------------------------------

    def _on_state(self, change: StateChange) -> None:
        state = change.state
        look = look_of(change)  # a remote server that does not answer: "Not reachable"
        status = self.status
        status.set_state(look.bar, look.words)
        if state is ServerState.READY:
            self.first_run.finish()
            self.clear_stale_problems()
            if change.endpoint is not None:
                status.set_server(change.profile_name, change.endpoint.model)
            self.ready.emit()
        elif state is ServerState.FAILED:
            self.first_run.finish()
            if change.problem is not None:
                status.set_state(look.bar, f"{look.words}: {change.problem.title}")
                errors.report(change.problem, FixContext(profile=change.profile_name))
            if isinstance(change.problem, RemoteUnreachable) and change.profile_name == self._lost_name:
                self._lost.start()  # asked again until it answers
        if state is not ServerState.FAILED:
            self._lost.stop()
        if state in (ServerState.READY, ServerState.STOPPED):
            self._lost_name = ""

    def _on_problem(self, problem: Problem) -> None:
        """A send found nothing answering at the ready remote server: check it again through the supervisor
        (it fails with the address's problem and fix, or is ready again if it was a blip)."""
        active = self.active
        if (
            isinstance(problem.error, ServerUnreachable)
            and active is not None
            and active.kind == "remote"
            and self.supervisor.state is ServerState.READY
            and not self.starting
        ):
            self._lost_name = active.name
            self.start(self.chosen_profile())

    def _recheck_lost(self) -> None:
        if self._rechecking is None or self._rechecking.done():
            self._rechecking = asyncio.ensure_future(self._ask_lost())

    async def _ask_lost(self) -> None:
        profile = self.chosen_profile()
        if (
            profile.name != self._lost_name
            or self.supervisor.state is not ServerState.FAILED
            or self.starting
        ):
            self._lost.stop()
            return
        try:
            await check_remote(profile.base_url, timeout_s=5.0)
        except RemoteUnreachable:
            return  # still nothing: asked again at the next tick
        except DeskError as answered:  # it answers (a key or model problem is the start's to report)
            log.debug("the lost remote server answers again: %s", answered)
        if self.supervisor.state is ServerState.FAILED and not self.starting:
            self._lost.stop()
            self.start(profile)

    def _on_progress(self, progress: StartProgress) -> None:
        status = self.status
        if progress.phase is Phase.RUNTIME_CHECK and self.active is not None and self.active.kind == "remote":
            # No vLLM runtime or model here to check: the supervisor is asking the remote server.
            status.set_state("starting", tr("Connecting to {url}…").format(url=self.active.base_url))
            return
        status.set_state("starting", progress.label)
        status.set_progress(progress.fraction, progress.expected_s)
        if progress.label.startswith("Preparing the built-in model"):
            message = progress.label.split(":", 1)[-1].strip()
            self.first_run.show_step("model", message, progress.fraction)

    def _on_runtime_progress(self, progress: Progress) -> None:
        if progress.phase != "done":
            self.first_run.show_step("runtime", progress.message, progress.fraction)
        self.status.set_state("starting", tr("Installing the vLLM runtime…"))
        self.status.set_progress(progress.fraction)

    def _on_log_line(self, line: LogLine) -> None:
        self.log_line.emit(line.text)

    def _on_metrics(self, sample: MetricsSample) -> None:
        self.status.set_metrics(sample.kv_cache_usage, sample.running, sample.waiting)
