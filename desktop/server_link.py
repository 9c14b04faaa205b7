"""The window's side of the supervisor: its events onto the status bar, the first-run panel, the log and the
problem banner; starting the chosen profile (installing the runtime first on a fresh machine); one-click
fixes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QObject

from desktop import errors
from desktop.operations import Operation
from engine.errors import Fix
from engine.profiles import ServerProfile, builtin_profile
from engine.runtime import Progress
from engine.supervisor import LogLine, ServerState, StartProgress, StateChange, Supervisor

if TYPE_CHECKING:
    from desktop.first_run import FirstRunPanel
    from desktop.main_window import MainWindow
    from engine.metrics import MetricsSample

log = logging.getLogger(__name__)
RuntimeEnsurer = Callable[[Callable[[Progress], object]], Awaitable[object]]

# Fixes that change one option of the profile and start again: action -> how to change it.
_PROFILE_FIXES: dict[str, Callable[[Fix], dict[str, Any]]] = {
    "set_option": lambda fix: dict(fix.params),
    "lower_gpu_memory_utilization": lambda fix: dict(fix.params),
    "pick_free_port": lambda fix: {"port": 0},
}
_RESTART_FIXES = ("retry", "restart_server", "start_server")


def tr(text: str) -> str:
    return QCoreApplication.translate("server", text)


def profile_with_fix(profile: ServerProfile, fix: Fix) -> ServerProfile | None:
    """The profile with ``fix`` applied, or ``None`` if the fix does not change the profile."""
    change = _PROFILE_FIXES.get(fix.action)
    if change is None:
        return None
    return ServerProfile.model_validate({**profile.model_dump(), **change(fix)})


class ServerLink(QObject):
    """Connects one supervisor to one window. ``ensure_runtime`` installs vLLM if needed (first start)."""

    def __init__(
        self,
        window: MainWindow,
        supervisor: Supervisor,
        first_run: FirstRunPanel,
        *,
        ensure_runtime: RuntimeEnsurer | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.supervisor = supervisor
        self.first_run = first_run
        self.ensure_runtime = ensure_runtime
        self.profile: ServerProfile | None = None
        self.starting = False  # from start() until the server is ready or failed
        status = window.server_status
        bridge = window.bridge
        bridge.connect_event(supervisor.state_changed, self._on_state)
        bridge.connect_event(supervisor.progress, self._on_progress)
        bridge.connect_event(supervisor.log_line, self._on_log_line)
        bridge.connect_event(supervisor.metrics, self._on_metrics)
        status.set_state(str(supervisor.state), self._state_words(supervisor.state))
        for action in _PROFILE_FIXES:
            window.fix_handlers[action] = self.apply_fix
        for action in (*_RESTART_FIXES, "install_runtime"):
            window.fix_handlers[action] = self.apply_fix
        window.fix_handlers["show_log"] = lambda _fix: window.show_server_log()

    # --- starting ------------------------------------------------------------------------------------

    def chosen_profile(self) -> ServerProfile:
        settings = self.window.settings.settings
        return self.profile or settings.default_profile() or builtin_profile()

    def start(self, profile: ServerProfile | None = None) -> None:
        """Start ``profile`` (default: the chosen one) in the background; problems go to the banner."""
        chosen = profile or self.chosen_profile()
        self.profile = chosen
        self.starting = True
        Operation(None, lambda: self._start(chosen)).failure(self._start_failed).run()

    def _start_failed(self, exc: BaseException) -> None:
        self.starting = False
        self.first_run.finish()
        if self.supervisor.state is not ServerState.FAILED:  # the supervisor did not report it already
            self.window.server_status.set_state("failed", tr("Failed to start"))
            errors.report(exc)

    async def _start(self, profile: ServerProfile) -> None:
        self.window.server_status.set_server(profile.name, profile.served_model_name)
        self.window.server_status.set_state("starting", tr("Checking the vLLM runtime…"))
        if self.ensure_runtime is not None:
            await self.ensure_runtime(self._on_runtime_progress)
        await self.supervisor.start(profile)

    def stop(self) -> None:
        Operation(None, self.supervisor.stop).run()

    def apply_fix(self, fix: Fix) -> None:
        profile = self.chosen_profile()
        changed = profile_with_fix(profile, fix)
        if changed is not None:
            self._save_profile(changed)
            self.start(changed)
        elif fix.action in (*_RESTART_FIXES, "install_runtime"):
            self.start(profile)

    def _save_profile(self, profile: ServerProfile) -> None:
        # Remember the fix in the settings when the profile is one of the user's.
        store = self.window.settings
        current = store.settings
        if current.profile(profile.name) is None:
            return
        profiles = [profile if p.name == profile.name else p for p in current.profiles]
        try:
            store.update(current.model_copy(update={"profiles": profiles}))
        except Exception as exc:  # noqa: BLE001 - any failure to save is shown, the fix still runs
            errors.report(exc)

    # --- events --------------------------------------------------------------------------------------

    @staticmethod
    def _state_words(state: ServerState) -> str:
        return {
            ServerState.STOPPED: tr("Server stopped"),
            ServerState.PREPARING: tr("Preparing…"),
            ServerState.STARTING: tr("Starting…"),
            ServerState.READY: tr("Ready"),
            ServerState.STOPPING: tr("Stopping…"),
            ServerState.FAILED: tr("Failed to start"),
        }[state]

    def _on_state(self, change: StateChange) -> None:
        state = change.state
        kind = "starting" if state in (ServerState.PREPARING, ServerState.STARTING) else str(state)
        status = self.window.server_status
        status.set_state(kind, self._state_words(state))
        if state is ServerState.READY:
            self.starting = False
            self.first_run.finish()
            if change.endpoint is not None:
                status.set_server(change.profile_name, change.endpoint.model)
            self.window.server_became_ready()
        elif state is ServerState.FAILED:
            self.starting = False
            self.first_run.finish()
            if change.problem is not None:
                status.set_state("failed", f"{self._state_words(state)}: {change.problem.title}")
                errors.report(change.problem)

    def _on_progress(self, progress: StartProgress) -> None:
        status = self.window.server_status
        status.set_state("starting", progress.label)
        status.set_progress(progress.fraction, progress.expected_s)
        if progress.label.startswith("Preparing the built-in model"):
            message = progress.label.split(":", 1)[-1].strip()
            self.first_run.show_step("model", message, progress.fraction)

    def _on_runtime_progress(self, progress: Progress) -> None:
        if progress.phase != "done":
            self.first_run.show_step("runtime", progress.message, progress.fraction)
        self.window.server_status.set_state("starting", tr("Installing the vLLM runtime…"))
        self.window.server_status.set_progress(progress.fraction)

    def _on_log_line(self, line: LogLine) -> None:
        dialog = self.window.log_dialog
        if dialog is not None:
            dialog.append_line(line.text)

    def _on_metrics(self, sample: MetricsSample) -> None:
        self.window.server_status.set_metrics(sample.kv_cache_usage, sample.running, sample.waiting)
