"""Child process of the "UI under a stream" benchmark: one window, one long streamed reply, measured.

``python -m bench.ui_probe MODE --base-url URL --model M --api-key K --tokens N --out FILE [--cap S]``

MODE ``window``: the app's ``desktop.window.main_window.MainWindow`` (with ``ChatEngine`` and
``AsyncHistoryStore``,
as ``desktop.app`` wires them) sends a message and receives the reply. MODE ``naive``: the baseline, a
``QTextBrowser`` whose whole Markdown is rendered again and set with ``setHtml`` on every token (same
renderer, same stream). A 5 ms precise ``QTimer`` records how late each of its ticks is: the longest gap is
the longest event-loop stall. CPU time is this process's ``time.process_time()`` over the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

TICK_MS = 5
MISSING_EXIT = 3


class GcClock:
    """Every garbage collection during the probe: its generation, its time, and whether the GUI thread ran it.

    A collection runs in whichever thread's allocation triggers it, inside whatever that thread is doing: one
    started by PySide while Qt calls into Python (a paint, a signal) is counted in the GUI thread's own CPU
    time of that step and looks like time in Qt's C++ event loop to a Python stack sampler."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        # The GUI thread's CPU time in collections so far (the meter takes the difference per tick).
        self.gui_cpu_s = 0.0
        self.origin = time.perf_counter()
        self._gui = threading.get_ident()
        self._started: dict[int, tuple[float, float]] = {}

    def install(self) -> None:
        gc.callbacks.append(self)

    def remove(self) -> None:
        gc.callbacks.remove(self)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        me = threading.get_ident()
        if phase == "start":
            self._started[me] = (time.perf_counter(), time.thread_time())
            return
        begun = self._started.pop(me, None)
        if begun is None:
            return
        wall, cpu = time.perf_counter() - begun[0], time.thread_time() - begun[1]
        if me == self._gui:
            self.gui_cpu_s += cpu
        self.events.append({
            "at_s": round(begun[0] - self.origin, 4), "generation": info["generation"],
            "wall_ms": round(wall * 1000, 3), "cpu_ms": round(cpu * 1000, 3), "gui_thread": me == self._gui,
            "collected": info["collected"],
        })  # fmt: skip


class EventClock:
    """``QApplication.notify`` timed (``--trace``): every event whose delivery took over ``over_ms`` of the
    GUI thread's own CPU, its type, receiver and nesting depth: which of Qt's C++ steps a long one was."""

    def __init__(self, origin: float, over_ms: float = 15.0) -> None:
        self.origin = origin
        self.over_ms = over_ms
        self.long: list[dict[str, Any]] = []
        # Every resize of the transcript or of a message: a new width lays the reply's documents out again.
        self.resizes: list[dict[str, Any]] = []
        self.depth = 0

    def timed(self, deliver: Any, receiver: Any, event: Any) -> Any:
        kind = event.type()
        start, cpu = time.perf_counter(), time.thread_time()
        self.depth += 1
        try:
            return deliver(receiver, event)
        finally:
            self.depth -= 1
            spent = (time.thread_time() - cpu) * 1000
            if kind == event.Type.Resize and type(receiver).__name__ in ("TranscriptView", "MessageWidget"):
                self.resizes.append({
                    "at_s": round(start - self.origin, 4), "receiver": type(receiver).__name__,
                    "old": [event.oldSize().width(), event.oldSize().height()],
                    "new": [event.size().width(), event.size().height()], "cpu_ms": round(spent, 2),
                })  # fmt: skip
            if spent > self.over_ms:
                name = type(receiver).__name__
                with contextlib.suppress(Exception):
                    name += f"({receiver.objectName()})" if receiver.objectName() else ""
                self.long.append({
                    "at_s": round(start - self.origin, 4), "cpu_ms": round(spent, 2),
                    "wall_ms": round((time.perf_counter() - start) * 1000, 2), "event": str(kind),
                    "receiver": name, "depth": self.depth,
                })  # fmt: skip


class Steal:
    """The machine's steal time so far (ms, all CPUs): time a virtual machine's CPUs wanted to run and the
    host ran something else. ``/proc/stat``'s eighth field, in 10 ms ticks; 0 where it cannot be read."""

    def __init__(self) -> None:
        try:
            self._stat: Any = open("/proc/stat", "rb", buffering=0)  # noqa: SIM115 - reread at every tick
        except OSError:
            self._stat = None

    def ms(self) -> float:
        if self._stat is None:
            return 0.0
        self._stat.seek(0)
        fields = self._stat.read(256).split(b"\n", 1)[0].split()
        return int(fields[8]) * 10.0 if len(fields) > 8 else 0.0

    def close(self) -> None:
        if self._stat is not None:
            self._stat.close()


class LatenessMeter:
    """A precise timer that notes how late each tick fires (a stall shows as one late tick).

    Between two ticks it also notes the GUI thread's own CPU time, and of it: the kernel's part (``sys_ms``:
    page faults, system calls), the minor page faults, the garbage collections, and the machine's steal time,
    so that a long step says whether it was the app's own work or what the machine did to it."""

    def __init__(self, gc_clock: GcClock | None = None) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.late_ms: list[float] = []
        self.at_s: list[float] = []
        # CPU time the GUI thread itself used between two ticks: a stall of our own making, whatever other
        # processes do to the wall clock (it leaves out waits: for the GIL, for the kernel to run us).
        self.cpu_ms: list[float] = []
        # Of that, the GUI thread's time in garbage collections (0 for every tick without a gc_clock).
        self.gc_ms: list[float] = []
        self.gc_clock = gc_clock
        self.sys_ms: list[float] = []
        self.faults: list[int] = []
        self.steal_ms: list[float] = []
        self._steal = Steal()
        self._last = 0.0
        self._last_cpu = 0.0
        self._last_gc = 0.0
        self._last_usage = resource.getrusage(resource.RUSAGE_THREAD)
        self._last_steal = 0.0
        self._start = 0.0

    def start(self) -> None:
        self._start = self._last = time.perf_counter()
        self._last_cpu = time.thread_time()
        self._last_gc = self.gc_clock.gui_cpu_s if self.gc_clock else 0.0
        self._last_usage = resource.getrusage(resource.RUSAGE_THREAD)
        self._last_steal = self._steal.ms()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        self._tick()
        self._steal.close()

    @property
    def started_at(self) -> float:
        """When the measured stretch began (``perf_counter``)."""
        return self._start

    @property
    def last_tick(self) -> float:
        """When the timer last fired (``perf_counter``); 0 before the start."""
        return self._last

    def _tick(self) -> None:
        now = time.perf_counter()
        cpu = time.thread_time()
        self.late_ms.append(max(0.0, (now - self._last) * 1000 - TICK_MS))
        self.cpu_ms.append((cpu - self._last_cpu) * 1000)
        in_gc = self.gc_clock.gui_cpu_s if self.gc_clock else 0.0
        self.gc_ms.append((in_gc - self._last_gc) * 1000)
        self._last_gc = in_gc
        usage, steal = resource.getrusage(resource.RUSAGE_THREAD), self._steal.ms()
        self.sys_ms.append((usage.ru_stime - self._last_usage.ru_stime) * 1000)
        self.faults.append(usage.ru_minflt - self._last_usage.ru_minflt)
        self.steal_ms.append(steal - self._last_steal)
        self._last_usage, self._last_steal = usage, steal
        self.at_s.append(now - self._start)
        self._last, self._last_cpu = now, cpu


class StallSampler:
    """Where the GUI thread is during a stall: another thread samples its stack while a tick is overdue."""

    def __init__(self, meter: LatenessMeter, overdue_ms: float = 20.0) -> None:
        import collections
        import threading

        self.meter = meter
        self.overdue_ms = overdue_ms
        self.samples: collections.Counter[str] = collections.Counter()
        self._main = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[tuple[str, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples.most_common(8)

    def _run(self) -> None:
        import traceback

        while not self._stop.wait(0.01):
            last = self.meter.last_tick
            if last and (time.perf_counter() - last) * 1000 > self.overdue_ms:
                # The documented way to read another thread's stack.
                frame = sys._current_frames().get(self._main)  # noqa: SLF001
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-8:]
                    self.samples[
                        " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
                    ] += 1


def _renderer() -> Any:
    from desktop.widgets.markdown_view import MarkdownRenderer

    return MarkdownRenderer()


async def _window(args: argparse.Namespace, endpoint: Any, meter: LatenessMeter) -> dict[str, Any]:
    try:
        from desktop.window.main_window import MainWindow
        from engine.chat.engine import ChatEngine
        from engine.history.async_store import AsyncHistoryStore
        from engine.settings.store import SettingsStore
    except ImportError as exc:
        print(f"missing: the main window or an engine module cannot be imported: {exc}", file=sys.stderr)
        sys.exit(MISSING_EXIT)
    scratch = Path(tempfile.mkdtemp(prefix="ui-probe-"))
    store = await AsyncHistoryStore.open(scratch / "history.sqlite3")
    chat = ChatEngine(store, lambda: endpoint)
    window = MainWindow(store=store, chat=chat, settings=SettingsStore.open(scratch / "settings.toml"))
    window.show()
    await window.restore()
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def finished(event: Any) -> None:
        if not done.done():
            done.set_result(event)

    window.turn_finished.connect(finished)
    # The app warms the chat up at the first keystroke (Haystack imported, the TLS context loaded and the
    # endpoint's client built, off the GUI thread): a one-time cost before the message, not the stream's.
    await chat.warm_up()

    await asyncio.sleep(0.3)  # let the first paint settle before measuring
    meter.start()
    cpu = time.process_time()
    wall = time.perf_counter()
    window.send_message("Please write the long answer.")
    event = await asyncio.wait_for(done, timeout=args.cap + 600)
    # The reply's end is shown a slice per tick after the turn finished: measured until it is all in.
    while any(getattr(w, "finishing", False) for w in window.transcript.messages()):  # noqa: ASYNC110 - a widget's state, no event
        await asyncio.sleep(0.005)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    meter.stop()
    reply = await store.message(event.reply_id)
    await window.shutdown()
    window.close()
    await store.close()
    return {
        "tokens": len(_tokens(reply.text)),
        "state": event.state,
        "cpu_s": cpu,
        "wall_s": wall,
        "capped": False,
        "renders": sum(getattr(w, "renders", 0) for w in window.transcript.messages()),
    }


def _tokens(text: str) -> list[str]:
    from bench.markdown_reply import tokens

    return tokens(text)


async def _naive(args: argparse.Namespace, endpoint: Any, meter: LatenessMeter) -> dict[str, Any]:
    import httpx
    from PySide6.QtWidgets import QMainWindow, QTextBrowser

    renderer = _renderer()
    window = QMainWindow()
    browser = QTextBrowser(window)
    window.setCentralWidget(browser)
    window.resize(1100, 760)
    window.show()
    await asyncio.sleep(0.3)
    body = {
        "model": endpoint.model,
        "messages": [{"role": "user", "content": "Please write the long answer."}],
        "stream": True,
    }
    text = ""
    count = 0
    capped = False
    checkpoints: list[tuple[int, float]] = []
    meter.start()
    cpu = time.process_time()
    wall = time.perf_counter()
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(120, connect=5)) as client,
        client.stream(
            "POST", f"{endpoint.base_url}/chat/completions", json=body, headers=endpoint.auth_headers()
        ) as response,
    ):
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                piece = choice.get("delta", {}).get("content")
                if piece:
                    text += piece
                    count += 1
                    # The naive way: the whole message again, on every token, following the end.
                    browser.setHtml(renderer.render(text).html)
                    bar = browser.verticalScrollBar()
                    bar.setValue(bar.maximum())
                    if count % 50 == 0:
                        checkpoints.append((count, time.process_time() - cpu))
            if time.perf_counter() - wall > args.cap:
                capped = True
                break
            # Give the loop a turn like a signal-driven app would between network reads.
            await asyncio.sleep(0)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    meter.stop()
    window.close()
    return {"tokens": count, "state": "capped" if capped else "complete", "cpu_s": cpu, "wall_s": wall,
            "capped": capped, "renders": count, "checkpoints": checkpoints}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["window", "naive"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cap", type=float, default=600.0, help="stop the naive baseline after S seconds")
    parser.add_argument(
        "--trace", action="store_true", help="also time every Qt event's delivery (slower; for a hunt)"
    )
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from desktop.event_loop import make_event_loop
    from engine.endpoint import Endpoint

    endpoint = Endpoint(base_url=args.base_url, model=args.model, api_key=args.api_key, max_model_len=2048)
    gc_clock = GcClock()
    events = EventClock(gc_clock.origin) if args.trace else None
    if events is not None:
        clock = events

        class TracedApplication(QApplication):
            def notify(self, receiver: Any, event: Any) -> bool:
                return bool(clock.timed(super().notify, receiver, event))

        app: QApplication = TracedApplication(sys.argv[:1])
    else:
        app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # closing the window at the end must not stop the loop early
    loop = make_event_loop(app)  # the app's loop: qasync with asyncio's async-generator hooks
    asyncio.set_event_loop(loop)
    gc_clock.install()
    meter = LatenessMeter(gc_clock)
    runner = _window if args.mode == "window" else _naive
    sampler = StallSampler(meter)
    sampler.start()
    with loop:
        outcome = loop.run_until_complete(runner(args, endpoint, meter))
    outcome["stall_stacks"] = sampler.stop()
    outcome["late_ms"] = meter.late_ms
    outcome["cpu_ms"] = meter.cpu_ms
    outcome["at_s"] = meter.at_s
    outcome["gc_ms"] = meter.gc_ms
    outcome["sys_ms"] = meter.sys_ms
    outcome["faults"] = meter.faults
    outcome["steal_ms"] = meter.steal_ms
    gc_clock.remove()
    # The collections of the measured stretch (at_s from the meter's start), young ones only when over 1 ms.
    start = meter.started_at - gc_clock.origin
    outcome["gc_events"] = [
        {**e, "at_s": round(e["at_s"] - start, 4)}
        for e in gc_clock.events
        if e["at_s"] >= start and (e["generation"] == 2 or e["cpu_ms"] >= 1.0)
    ]
    outcome["gc_counts"] = [
        sum(1 for e in gc_clock.events if e["at_s"] >= start and e["generation"] == g) for g in range(3)
    ]
    if events is not None:
        outcome["long_events"] = [{**e, "at_s": round(e["at_s"] - start, 4)} for e in events.long]
        outcome["resizes"] = [{**e, "at_s": round(e["at_s"] - start, 4)} for e in events.resizes]
    args.out.write_text(json.dumps(outcome), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
