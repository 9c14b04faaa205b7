"""Single instance: a second launch hands its arguments to the running copy and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtNetwork import QLocalSocket
from PySide6.QtWidgets import QMainWindow
from pytestqt.qtbot import QtBot

from desktop.single_instance import SingleInstance, bring_to_front, socket_path
from engine.paths import AppPaths

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parents[2]

# A second launch, as its own process (the hand-over blocks until the first instance answers).
SECOND_LAUNCH = textwrap.dedent(
    """
    import sys
    from PySide6.QtCore import QCoreApplication
    from desktop.single_instance import SingleInstance
    app = QCoreApplication([])
    instance = SingleInstance(sys.argv[1])
    sys.exit(0 if not instance.acquire(sys.argv[2:]) else 3)
    """
)


def launch_second(name: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", SECOND_LAUNCH, name, *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def primary(qtbot: QtBot, app_paths: AppPaths):  # type: ignore[no-untyped-def]
    instance = SingleInstance.for_paths(app_paths)
    assert instance.acquire([]) is True
    yield instance
    instance.close()


def test_socket_lives_in_the_runtime_dir_and_depends_on_the_data_folder(isolated_dirs: Path) -> None:
    one = socket_path(AppPaths.under(isolated_dirs / "a"))
    two = socket_path(AppPaths.under(isolated_dirs / "b"))
    assert one != two
    assert Path(one).parent == isolated_dirs / "run"


def test_first_launch_becomes_primary(primary: SingleInstance) -> None:
    assert primary.is_primary
    assert Path(primary.name).exists()


def test_second_launch_hands_over_and_exits_zero(qtbot: QtBot, primary: SingleInstance) -> None:
    with qtbot.waitSignal(primary.message_received, timeout=20000) as blocker:
        proc = launch_second(primary.name, "--new-chat")
        # Serve the event loop until the second process has its answer.
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=20000)
    output, _ = proc.communicate()
    assert proc.returncode == 0, output
    assert blocker.args == [["--new-chat"]]


def test_without_a_running_copy_the_launch_is_primary(qtbot: QtBot, app_paths: AppPaths) -> None:
    name = socket_path(app_paths)
    proc = launch_second(name, "--tray")
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 3, output


def test_a_stale_socket_file_from_a_crash_is_replaced(qtbot: QtBot, app_paths: AppPaths) -> None:
    name = socket_path(app_paths)
    Path(name).write_text("left over by a crashed run")
    instance = SingleInstance(name)
    try:
        assert instance.acquire([]) is True
        assert instance.is_primary
    finally:
        instance.close()


def test_a_malformed_message_is_answered_and_ignored(qtbot: QtBot, primary: SingleInstance) -> None:
    received: list[list[str]] = []
    primary.message_received.connect(received.append)
    client = QLocalSocket()
    client.connectToServer(primary.name)
    qtbot.waitUntil(lambda: client.state() == QLocalSocket.LocalSocketState.ConnectedState)
    client.write(b'{"argv": "not a list"}\n')
    answer = bytearray()
    client.readyRead.connect(lambda: answer.extend(bytes(client.readAll().data())))
    qtbot.waitUntil(lambda: b"ok\n" in answer)
    assert received == []


# The offscreen platform cannot raise windows and says so; a desktop session can.
@pytest.mark.qt_log_ignore("This plugin does not support raise")
def test_bring_to_front_shows_a_hidden_or_minimised_window(qtbot: QtBot) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    window.hide()
    bring_to_front(window)
    assert window.isVisible()
    window.showMinimized()
    bring_to_front(window)
    assert not window.isMinimized()


def test_a_busy_running_copy_keeps_its_socket(qtbot: QtBot, app_paths: AppPaths) -> None:
    from PySide6.QtNetwork import QLocalServer

    name = socket_path(app_paths)
    busy = QLocalServer()
    assert busy.listen(name)  # accepts connections but never answers, like a copy stuck in a long task
    try:
        proc = launch_second(name, "--new-chat")
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output  # no second copy started
        assert "did not answer" in output
        assert Path(name).exists()  # and the running copy's socket was left alone
    finally:
        busy.close()
