"""One running vLLM Desk per data folder: a second launch hands its arguments over and exits.

Two copies would fight over the servers they start and over the history database. The first instance
listens on a local socket (``QLocalServer``) named after the data folder; a later launch connects, sends its
command line as one JSON line, waits for ``ok`` and exits 0, and the first instance brings its window to the
front (or opens a new chat, for ``--new-chat``).

Use (``desktop/app.py``)::

    instance = SingleInstance.for_paths(paths)
    if not instance.acquire(sys.argv[1:]):
        return 0  # the running copy took over
    instance.message_received.connect(on_handover)  # list[str]: the second launch's arguments
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QWidget

from engine.paths import AppPaths

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS = 1000
ACK_TIMEOUT_MS = 5000
_ACK = b"ok\n"


def socket_path(paths: AppPaths) -> str:
    """A socket path private to this user and this data folder (``$XDG_RUNTIME_DIR`` when there is one)."""
    digest = hashlib.sha256(str(paths.data.absolute()).encode()).hexdigest()[:12]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
    return str(base / f"vllm-desk-{os.getuid()}-{digest}.sock")


class SingleInstance(QObject):
    """The first instance's listener, or the client that hands a later launch over to it."""

    # The arguments of a later launch (e.g. ``["--new-chat"]``); emitted in the first instance.
    message_received = Signal(list)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server: QLocalServer | None = None

    @classmethod
    def for_paths(cls, paths: AppPaths, parent: QObject | None = None) -> SingleInstance:
        return cls(socket_path(paths), parent)

    @property
    def is_primary(self) -> bool:
        return self._server is not None and self._server.isListening()

    def acquire(self, args: list[str]) -> bool:
        """True: this is the first instance (now listening). False: a running one took ``args`` over."""
        if self._hand_over(args):
            return False
        # Nobody answered: a socket file left by a crashed run would make listen() fail.
        QLocalServer.removeServer(self.name)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            # Lost a race against a copy starting at the same moment: hand over to it instead. If even
            # that fails, run without the guard rather than refuse to start.
            log.warning("cannot listen on %s: %s", self.name, server.errorString())
            return not self._hand_over(args)
        server.newConnection.connect(self._on_new_connection)
        self._server = server
        return True

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _hand_over(self, args: list[str]) -> bool:
        """Send ``args`` to a running copy; False when none is listening."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
            return False
        socket.write(json.dumps({"argv": args}).encode() + b"\n")
        socket.flush()
        answer = b""
        while _ACK not in answer and socket.waitForReadyRead(ACK_TIMEOUT_MS):
            answer += bytes(socket.readAll().data())
        socket.disconnectFromServer()
        if _ACK not in answer:
            # Someone is listening but busy: still a running copy. Starting a second one (and taking its
            # socket away) would be worse than this launch doing nothing.
            log.warning("the running vLLM Desk did not answer the hand-over in time")
        return True

    def _on_new_connection(self) -> None:
        assert self._server is not None
        while (conn := self._server.nextPendingConnection()) is not None:
            conn.setParent(self)
            buffer = bytearray()

            def on_ready(conn: QLocalSocket = conn, buffer: bytearray = buffer) -> None:
                buffer.extend(bytes(conn.readAll().data()))
                if b"\n" not in buffer:
                    return
                line = bytes(buffer).split(b"\n", 1)[0]
                conn.write(_ACK)
                conn.flush()
                conn.disconnectFromServer()
                argv = _parse(line)
                if argv is not None:
                    self.message_received.emit(argv)

            conn.readyRead.connect(on_ready)
            conn.disconnected.connect(conn.deleteLater)


def _parse(line: bytes) -> list[str] | None:
    try:
        message = json.loads(line)
    except ValueError:
        log.warning("ignoring a malformed hand-over message")
        return None
    argv = message.get("argv") if isinstance(message, dict) else None
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        log.warning("ignoring a hand-over message without argv")
        return None
    return argv


def bring_to_front(window: QWidget) -> None:
    """Show a hidden or minimised window and ask the window manager to focus it."""
    if window.isMinimized():
        window.showNormal()
    window.show()
    window.raise_()
    window.activateWindow()
