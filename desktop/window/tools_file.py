"""Noticing that ``tools.toml`` changed on disk: ``vllm-desk tools add-mcp / edit-mcp / remove`` write it from
another process while the window is open (and the Tools page writes it from this one).

:class:`ToolsFileWatcher` watches the file's folder — the file is replaced, not rewritten
(:func:`engine.tools.config.save_tools_config` renames a temporary file over it), so a watch on the file
alone ends with its first change — and the file itself, for an editor that writes it in place. Events come
in bursts (the temporary file, the rename, the lock file), so they settle for ``settle_ms`` before the file is
looked at; :attr:`ToolsFileWatcher.changed` fires once the file is another one than before (another inode,
size or modification time). A rewrite with the same text still counts: ``edit-mcp`` may have changed only a
secret, which lives in the keychain.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

Stamp = tuple[int, int, int] | None


def _stamp(path: Path) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None  # not there (yet), or gone
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ToolsFileWatcher(QObject):
    """:attr:`changed` fires (in the GUI thread) when ``path`` was written, replaced, made or removed."""

    changed = Signal()

    def __init__(self, path: Path, parent: QObject | None = None, settle_ms: int = 150) -> None:
        super().__init__(parent)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)  # a folder that is not there cannot be watched
        self._watcher = QFileSystemWatcher(self)
        self._watcher.addPath(str(path.parent))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(settle_ms)
        self._timer.timeout.connect(self._settled)
        self._watcher.directoryChanged.connect(lambda _path: self._timer.start())
        self._watcher.fileChanged.connect(lambda _path: self._timer.start())
        self._seen = _stamp(path)
        self._follow_file()

    def _follow_file(self) -> None:
        # A replaced file is dropped from the watch: the new one is watched again.
        if self._seen is not None and str(self.path) not in self._watcher.files():
            self._watcher.addPath(str(self.path))

    def _settled(self) -> None:
        now = _stamp(self.path)
        if now == self._seen:
            return  # another file of the folder (the lock, another settings file)
        self._seen = now
        self._follow_file()
        self.changed.emit()

    def close(self) -> None:
        """Stop watching (the owner is closing)."""
        self._timer.stop()
        paths = self._watcher.files() + self._watcher.directories()
        if paths:
            self._watcher.removePaths(paths)
