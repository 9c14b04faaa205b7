"""The first message of a session, sent right after the first keystroke started the Haystack import: the send
waits for that one import (never a second one on another thread), and a failed import is reported in words and
tried again by the next message."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.app import warm_on_first_edit
from engine.chat.engine import ChatEngine
from engine.chat.warm_imports import CHAT_MODULES, ImportGate
from engine.history.async_store import AsyncHistoryStore
from engine.paths import AppPaths
from engine.settings.store import SettingsStore
from tests.support.fresh_window import run_offscreen, window_script
from tests.support.main_window import close_window, replies
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.qt_log_ignore("This plugin does not support"),
]

# In a fresh interpreter (Haystack not imported yet): record which thread imports each module of the chat's
# libraries (and huggingface_hub, which Preferences need), type two letters, open Preferences, send 5 ms
# later, wait for the reply.
FIRST_MESSAGE = """
import importlib.abc, os
from engine.chat.engine import ChatEngine
from engine.endpoint import Endpoint
from engine.settings.store import SettingsStore
from desktop.app import warm_on_first_edit
from tests.support.main_window import replies

importers = {}

class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("haystack", "openai", "huggingface_hub"):
            importers.setdefault(threading.current_thread().name, set()).add(name)
        return None

sys.meta_path.insert(0, Recorder())
endpoint = Endpoint(base_url=os.environ["STANDIN_URL"], model="standin", kind="remote")
window.attach(chat=ChatEngine(store, lambda: endpoint), settings=SettingsStore.open(paths.settings_file))
print("haystack before typing", "haystack" in sys.modules)
warm_on_first_edit(window.composer.editor)
window.composer.editor.insertPlainText("H")
window.composer.editor.insertPlainText("i")
preferences = window.open_preferences()  # its models page needs huggingface_hub: also from the one thread
await asyncio.sleep(0.005)
window.composer.send_button.click()
for _ in range(1200):
    await asyncio.sleep(0.05)
    shown = replies(window)
    if shown and shown[0].data.state not in ("streaming", "queued"):
        break
preferences.reject()
reply = replies(window)[0]
print("reply", reply.data.state, reply.data.text, "|", reply.stats_label.text())
print("importing threads", sorted(importers))
print("on the main thread", sorted(importers.get("MainThread", ())))
"""


@pytest.mark.slow
def test_the_first_message_sent_right_after_the_first_keystroke_is_answered(tmp_path: Path) -> None:
    # Before the one import thread this failed every time: "_DeadlockError ... streaming_chunk" on the
    # warm-up thread, and the reply said the connection broke although nothing had been sent.
    with running_standin("--reply", "Hello back") as server:
        for attempt in range(3):
            data = tmp_path / f"run{attempt}"
            code = f"import os\nos.environ['STANDIN_URL'] = {server.base_url!r}\n" + window_script(
                data, FIRST_MESSAGE
            )
            lines = run_offscreen(code, timeout=180)
            assert lines[0] == "haystack before typing False", lines
            assert lines[1].startswith("reply complete Hello back |"), (attempt, lines)
            # Haystack and openai, including what openai imports at its first request, come from one thread.
            one_thread = ["importing threads ['lazy-imports']", "on the main thread []"]
            assert lines[2:] == one_thread, (attempt, lines)


class FlakyImports:
    """Python's importer, which fails while ``failing`` is set, slowed so that a send overlaps an import;
    records the thread of every import."""

    def __init__(self) -> None:
        self.failing = False
        self.threads: list[str] = []

    def __call__(self, name: str) -> object:
        if name == CHAT_MODULES[0]:  # one entry per import attempt
            self.threads.append(threading.current_thread().name)
            time.sleep(0.3)
        if self.failing:
            raise ImportError(f"No module named 'openai' (while importing {name})")
        import importlib

        return importlib.import_module(name)


def _window(qtbot, app_paths: AppPaths, gate: ImportGate, endpoint):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QSettings

    from desktop.window.main_window import MainWindow

    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    window = MainWindow(
        store=store,
        chat=ChatEngine(store, lambda: endpoint, imports=gate),
        settings=SettingsStore.open(app_paths.settings_file),
        ui_state=QSettings(str(app_paths.config / "window.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    window.show()
    run(qtbot, window.restore())
    warm_on_first_edit(window.composer.editor, gate)
    return window


def _type_and_send(qtbot, window, text: str) -> None:  # type: ignore[no-untyped-def]
    window.composer.editor.setFocus()
    qtbot.keyClicks(window.composer.editor, text)
    qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)


def _settled(window, count: int) -> bool:  # type: ignore[no-untyped-def]
    shown = replies(window)
    return len(shown) == count and shown[-1].data.state in ("complete", "error")


@pytest.mark.usefixtures("qloop")
def test_a_send_during_the_warm_up_import_waits_for_it_repeatedly(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--reply", "Hello back") as server:
        for attempt in range(3):
            importer = FlakyImports()
            gate = ImportGate(importer)
            window = _window(qtbot, app_paths, gate, server.endpoint())
            try:
                window.new_chat()
                _type_and_send(qtbot, window, "Hi")  # Enter milliseconds after the first keystroke
                qtbot.waitUntil(lambda w=window: _settled(w, 1), timeout=20000)
                reply = replies(window)[0]
                assert (reply.data.state, reply.data.text) == ("complete", "Hello back"), attempt
                assert importer.threads == ["lazy-imports"], attempt  # one import, on the import thread
            finally:
                close_window(qtbot, window)


@pytest.mark.usefixtures("qloop")
def test_a_failed_warm_up_import_is_reported_and_the_next_message_works(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    importer = FlakyImports()
    importer.failing = True
    gate = ImportGate(importer)
    with running_standin("--reply", "Hello back") as server:
        window = _window(qtbot, app_paths, gate, server.endpoint())
        try:
            window.composer.editor.setFocus()
            qtbot.keyClicks(window.composer.editor, "H")  # the warm-up import starts, and fails
            qtbot.waitUntil(lambda: importer.threads == ["lazy-imports"] and not gate.busy(), timeout=5000)
            qtbot.keyClicks(window.composer.editor, "i")
            qtbot.keyClick(window.composer.editor, Qt.Key.Key_Return)
            qtbot.waitUntil(lambda: _settled(window, 1), timeout=20000)
            failed = replies(window)[0]
            assert failed.data.state == "error"
            said = failed.stats_label.text()
            assert "could not be loaded" in said, said
            assert "No module named 'openai'" in said, said
            assert "connection" not in said.lower(), said
            assert failed.regenerate_button.text() == "Retry"

            importer.failing = False  # e.g. the package was repaired: the next message imports again
            _type_and_send(qtbot, window, "Hi again")
            qtbot.waitUntil(lambda: _settled(window, 2), timeout=20000)
            assert replies(window)[-1].data.state == "complete"
            assert replies(window)[-1].data.text == "Hello back"
            QApplication.processEvents()
            assert importer.threads == ["lazy-imports"] * 3
        finally:
            close_window(qtbot, window)
