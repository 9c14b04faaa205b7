"""``vllm-desk`` as a user runs it: ``python -m engine.cli`` in a process of its own, on a data folder.

Use from tests::

    done = run_cli(home, "chat", "--base-url", server.root_url, "Hi")
    assert done.returncode == 0, done.stderr
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from engine.history.records import ConversationTree
from engine.history.store import HistoryStore
from tests.support.standin.launch import REPO_ROOT


def cli_command(home: Path, *args: str) -> list[str]:
    """The command line of ``vllm-desk --data-dir HOME ARGS...`` (for a test that starts it itself)."""
    return [sys.executable, "-m", "engine.cli", "--data-dir", str(home), *args]


def run_cli(
    home: Path,
    *args: str,
    stdin: str = "",
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run ``vllm-desk --data-dir HOME ARGS...`` to its end from the repository root, with this process's
    environment and ``env`` on top; its output as text. ``stdin``: what it reads, an empty pipe by default
    (never the terminal's, so a message read from stdin or a prompt cannot wait for the test). ``timeout``
    bounds a hung command."""
    return subprocess.run(
        cli_command(home, *args),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        input=stdin,
        timeout=timeout,
        check=False,
    )


def saved_conversation(home: Path, conversation_id: int = 1) -> ConversationTree:
    """A conversation as the commands saved it, read back from the history under ``home``."""
    store = HistoryStore(home / "data" / "history.sqlite3")
    try:
        return store.load(conversation_id)
    finally:
        store.close()
