"""Preferences > Tools: adding a stdio server warns first and keeps secrets in the keychain; Check starts the
real MCP server and lists its tools; the built-in tools are listed."""

from __future__ import annotations

import sys
import threading
import tomllib
from pathlib import Path
from typing import ClassVar

import keyring.errors
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel

from desktop import operations
from desktop.preferences.tools_page import ToolsPage
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.secrets import SERVICE, SecretStore
from engine.tools.builtin import BUILTIN_NAMES
from engine.tools.config import STDIO_WARNING, McpServer, tools_file
from tests.support.memory_keyring import MemoryKeyring
from tests.support.qasync_loop import (
    qloop,  # noqa: F401
    run,
)

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
SERVER = str(Path(__file__).parents[2] / "engine" / "tools" / "mcp_server.py")


@pytest.fixture
def keys() -> MemoryKeyring:
    """A keychain of this test's own (the class keeps its store per class)."""
    fresh: type[MemoryKeyring] = type("TestKeys", (MemoryKeyring,), {"_store": {}})
    return fresh()


@pytest.fixture
def page(qtbot, app_paths: AppPaths, keys: MemoryKeyring):  # type: ignore[no-untyped-def]
    page = ToolsPage(app_paths, SecretStore(backend=keys))
    qtbot.addWidget(page)
    page.show()
    yield page
    run(qtbot, page.aclose())


def save(qtbot, page: ToolsPage) -> None:  # type: ignore[no-untyped-def]
    """Click the form's button and wait until its save (in a worker thread) has ended, refused or not."""
    before = page.saving
    page.add_button.click()
    if page.saving is not before:  # a form that cannot be read is refused at once, nothing to wait for
        task = page.saving
        assert task is not None
        qtbot.waitUntil(task.done, timeout=10000)


def test_adding_a_stdio_server_warns_it_runs_code_here_and_keeps_secrets_out_of_the_file(  # type: ignore[no-untyped-def]
    qtbot, page: ToolsPage, app_paths: AppPaths, keys: MemoryKeyring
) -> None:
    labels = [w.text() for w in page.findChildren(QLabel) if w.isVisible()]
    assert any(name in text for text in labels for name in BUILTIN_NAMES)
    assert page.warning.isVisible()
    assert page.warning.text() == STDIO_WARNING
    assert not page.add_button.isEnabled()  # not before the user says they trust the program
    page.name_edit.setText("desk")
    page.command_edit.setText(sys.executable)
    page.args_edit.setText(f"{SERVER} stdio")
    page.env_edit.setPlainText("PLAIN=visible\nMY_API_TOKEN=s3cret-env")
    page.secret_env_edit.setPlainText("PASSPHRASE_X=hidden-value")
    page.trust.click()  # (below the scroll area's fold: a click at its position would miss)
    assert page.add_button.isEnabled()
    save(qtbot, page)
    assert not page.add_problem.isVisible(), page.add_problem.text()
    text = tools_file(app_paths.config).read_text(encoding="utf-8")
    assert "s3cret-env" not in text
    assert "hidden-value" not in text
    saved = tomllib.loads(text)["servers"][0]
    assert saved["env"] == {"PLAIN": "visible"}
    assert sorted(saved["secret_env"]) == ["MY_API_TOKEN", "PASSPHRASE_X"]
    assert keys.get_password(SERVICE, "mcp:desk:env:MY_API_TOKEN") == "s3cret-env"
    assert keys.get_password(SERVICE, "mcp:desk:env:PASSPHRASE_X") == "hidden-value"
    assert page.server_list.count() == 1
    assert "not started" in page.server_list.item(0).text()

    # Check starts the real server: ready, with its tools named.
    page.check_button.click()
    qtbot.waitUntil(lambda: "ready with" in page.server_detail.text(), timeout=30000)
    assert "add" in page.server_detail.text()
    assert "echo" in page.server_detail.text()
    assert "ready with" in page.server_list.item(0).text()


def test_an_http_server_keeps_its_headers_in_the_keychain_and_a_bad_form_says_why(  # type: ignore[no-untyped-def]
    qtbot, page: ToolsPage, app_paths: AppPaths, keys: MemoryKeyring
) -> None:
    page.transport.setCurrentIndex(page.transport.findData("http"))
    assert not page.warning.isVisible()
    assert page.add_button.isEnabled()
    page.name_edit.setText("web")
    page.url_edit.setText("ftp://nope")
    save(qtbot, page)
    assert page.add_problem.isVisible()
    assert "http://" in page.add_problem.text()
    assert not tools_file(app_paths.config).exists()
    page.url_edit.setText("http://127.0.0.1:9/mcp")
    page.headers_edit.setPlainText("Authorization: Bearer abc123")
    save(qtbot, page)
    assert not page.add_problem.isVisible()
    assert "abc123" not in tools_file(app_paths.config).read_text(encoding="utf-8")
    assert keys.get_password(SERVICE, "mcp:web:header:Authorization") == "Bearer abc123"
    page.remove_button.click()
    qtbot.waitUntil(lambda: page.server_list.count() == 0, timeout=5000)
    assert keys.get_password(SERVICE, "mcp:web:header:Authorization") is None


def test_a_server_that_cannot_start_shows_failed_with_the_reason(qtbot, page: ToolsPage) -> None:  # type: ignore[no-untyped-def]
    page.name_edit.setText("missing")
    page.command_edit.setText("/nonexistent/mcp-server")
    page.trust.click()
    save(qtbot, page)
    page.check_button.click()
    qtbot.waitUntil(lambda: "failed" in page.server_detail.text(), timeout=30000)
    assert "/nonexistent/mcp-server" in page.server_detail.text()
    assert "failed" in page.server_list.item(0).text()


def _saved(app_paths: AppPaths) -> list[dict[str, object]]:
    return list(tomllib.loads(tools_file(app_paths.config).read_text(encoding="utf-8"))["servers"])


def test_edit_changes_a_server_in_place_keeps_its_secrets_in_the_keychain_and_a_bad_input_loses_nothing(  # type: ignore[no-untyped-def]
    qtbot, page: ToolsPage, app_paths: AppPaths, keys: MemoryKeyring
) -> None:
    settings = page.settings
    settings.add(
        McpServer(
            name="desk", transport="stdio", command=sys.executable, args=[SERVER, "stdio"], env={"PLAIN": "a"}
        ),
        secret_env={"MY_API_TOKEN": "s3cret", "OLD_TOKEN": "old"},
    )
    settings.add(
        McpServer(name="web", transport="http", url="http://127.0.0.1:9/mcp"),
        headers={"Authorization": "Bearer abc"},
    )
    history = HistoryStore(app_paths.history_db)  # chats that use it, and one that does not
    uses = history.create_conversation(title="uses", settings={"tools": ["current_time", "desk"]})
    other = history.create_conversation(title="other", settings={"tools": ["web"]})
    history.close()
    page.refresh()
    page.server_list.setCurrentRow(0)
    page.check_button.click()  # running with the old settings: an edit stops it
    qtbot.waitUntil(lambda: "ready with" in page.server_detail.text(), timeout=30000)

    page.edit_button.click()
    assert page.form_box.title() == "Edit the MCP server “desk”"
    assert page.add_button.text() == "Save changes"
    assert page.cancel_button.isVisible()
    assert page.secret_help.isVisible()
    assert page.name_edit.text() == "desk"
    assert page.command_edit.text() == sys.executable
    assert page.args_edit.text() == f"{SERVER} stdio"
    assert page.env_edit.toPlainText() == "PLAIN=a"
    assert page.secret_env_edit.toPlainText() == "MY_API_TOKEN\nOLD_TOKEN"  # names only, never the values
    assert page.trust.isChecked()  # said when it was added
    shown = " ".join(w.text() for w in page.findChildren(QLabel)) + page.secret_env_edit.toPlainText()
    assert "s3cret" not in shown

    before = tools_file(app_paths.config).read_text(encoding="utf-8")
    bad_inputs = [
        (page.args_edit.setText, f"{SERVER} 'stdio", "Not saved: The arguments cannot be read"),
        (
            page.secret_env_edit.setPlainText,
            "MY_API_TOKEN\nNEW_TOKEN",
            "desk has no secret environment variable “NEW_TOKEN”",
        ),
        (page.env_edit.setPlainText, "PLAIN", "Not saved: Environment: line 1 is not NAME=VALUE"),
        (page.name_edit.setText, "web", "There is already an MCP server named “web”"),
        (page.name_edit.setText, "a b", "Not saved: a server name is letters"),
    ]
    for set_text, value, said in bad_inputs:
        good = (
            page.name_edit.text(),
            page.args_edit.text(),
            page.env_edit.toPlainText(),
            page.secret_env_edit.toPlainText(),
        )
        set_text(value)
        save(qtbot, page)
        assert page.add_problem.isVisible()
        assert said in page.add_problem.text()
        assert tools_file(app_paths.config).read_text(encoding="utf-8") == before  # nothing changed
        assert page.form_box.title() == "Edit the MCP server “desk”"  # still editing, the input kept
        assert value in (
            page.name_edit.text(),
            page.args_edit.text(),
            page.env_edit.toPlainText(),
            page.secret_env_edit.toPlainText(),
        )
        page.name_edit.setText(good[0])
        page.args_edit.setText(good[1])
        page.env_edit.setPlainText(good[2])
        page.secret_env_edit.setPlainText(good[3])
    assert keys.get_password(SERVICE, "mcp:desk:env:MY_API_TOKEN") == "s3cret"

    # Another program is trusted anew.
    page.command_edit.clear()
    qtbot.keyClicks(page.command_edit, "python3")
    assert not page.trust.isChecked()
    assert not page.add_button.isEnabled()
    page.command_edit.setText(sys.executable)
    page.trust.click()

    # Renamed, one secret kept (moved to the new name), one new, one dropped; the old process stopped.
    page.name_edit.setText("notes")
    page.args_edit.setText(f"{SERVER} stdio --quiet")
    page.env_edit.setPlainText("PLAIN=b")
    page.secret_env_edit.setPlainText("MY_API_TOKEN\nOTHER_KEY=v2")
    save(qtbot, page)
    assert not page.add_problem.isVisible(), page.add_problem.text()
    assert [s["name"] for s in _saved(app_paths)] == ["notes", "web"]  # in its place
    notes = _saved(app_paths)[0]
    assert notes["args"] == [SERVER, "stdio", "--quiet"]
    assert notes["env"] == {"PLAIN": "b"}
    assert notes["secret_env"] == ["MY_API_TOKEN", "OTHER_KEY"]
    assert keys.get_password(SERVICE, "mcp:notes:env:MY_API_TOKEN") == "s3cret"
    assert keys.get_password(SERVICE, "mcp:notes:env:OTHER_KEY") == "v2"
    for name in ("MY_API_TOKEN", "OLD_TOKEN"):
        assert keys.get_password(SERVICE, f"mcp:desk:env:{name}") is None
    assert page.form_box.title() == "Add an MCP server"
    assert page.name_edit.text() == ""
    assert page.selected() == "notes"
    # The chat that used "desk" uses "notes" now (changed within the save, off the GUI thread, before the
    # file), and the page says so.
    said = "Renamed “desk” to “notes”: 1 chat that used “desk” now uses “notes”."
    assert said in page.server_detail.text()
    history = HistoryStore(app_paths.history_db)
    try:
        assert history.conversation(uses.id).settings == {"tools": ["current_time", "notes"]}
        assert history.conversation(other.id).settings == {"tools": ["web"]}
    finally:
        history.close()
    # "desk" stopped. Bounded by the stop's own timeouts (the SDK's 2 s, then 3 s grace, TERM 2 s, KILL 2 s),
    # which a CI machine busy with a real vLLM can stretch past 10 s.
    qtbot.waitUntil(lambda: not operations.running(), timeout=30000)
    assert not page.manager.connections
    assert said in page.server_detail.text()  # still said

    # An HTTP server: its header kept by name while the URL changes; Cancel changes nothing.
    page._select("web")
    page.edit_button.click()
    assert page.headers_edit.toPlainText() == "Authorization"
    page.url_edit.setText("http://127.0.0.1:10/mcp")
    save(qtbot, page)
    assert not page.add_problem.isVisible(), page.add_problem.text()
    assert _saved(app_paths)[1]["url"] == "http://127.0.0.1:10/mcp"
    assert keys.get_password(SERVICE, "mcp:web:header:Authorization") == "Bearer abc"
    page.edit_button.click()
    page.name_edit.setText("elsewhere")
    page.cancel_button.click()
    assert [s["name"] for s in _saved(app_paths)] == ["notes", "web"]
    assert page.form_box.title() == "Add an MCP server"
    assert not page.cancel_button.isVisible()


def test_adding_a_name_in_use_is_refused_rather_than_replacing_it(
    qtbot, page: ToolsPage, app_paths: AppPaths
) -> None:  # type: ignore[no-untyped-def]
    page.settings.add(McpServer(name="web", transport="http", url="http://127.0.0.1:9/mcp"))
    page.refresh()
    page.transport.setCurrentIndex(page.transport.findData("http"))
    page.name_edit.setText("web")
    page.url_edit.setText("http://127.0.0.1:10/mcp")
    save(qtbot, page)
    assert page.add_problem.text().startswith("Not added: There is already an MCP server named “web”")
    assert _saved(app_paths)[0]["url"] == "http://127.0.0.1:9/mcp"
    assert page.url_edit.text() == "http://127.0.0.1:10/mcp"  # the input kept


def test_a_built_in_tools_name_is_refused_and_one_from_an_older_file_is_shown_as_not_used(
    qtbot, page: ToolsPage, app_paths: AppPaths
) -> None:  # type: ignore[no-untyped-def]
    from engine.tools.config import ToolsConfig, save_tools_config

    page.transport.setCurrentIndex(page.transport.findData("http"))
    for name in BUILTIN_NAMES:
        page.name_edit.setText(name)
        page.url_edit.setText("http://127.0.0.1:9/mcp")
        save(qtbot, page)
        assert page.add_problem.isVisible()
        assert page.add_problem.text() == (
            f"Not added: “{name}” is the name of a built-in tool: a chat could not tell an MCP server"
            " named so from it. Pick another name for the MCP server (the built-in tools are current_time,"
            " search_history, search_documents)."
        )
        assert page.name_edit.text() == name  # the input kept
    assert not tools_file(app_paths.config).exists()

    # A tools.toml an older version wrote: the page opens, the server is listed as not used and why.
    clashing = McpServer(name="search_history", transport="http", url="http://127.0.0.1:9/mcp")
    save_tools_config(tools_file(app_paths.config), ToolsConfig(servers=[clashing]))
    page.refresh()
    assert page.server_list.item(0).text().startswith("search_history — not used: a built-in tool's name")
    assert page.server_detail.text().startswith(
        "search_history: “search_history” is a built-in tool's name, so this MCP server is not used"
    )
    assert not page.check_button.isEnabled()  # never started
    # Edit: saving it under the same name is refused; a new name is saved.
    page.edit_selected()
    page.url_edit.setText("http://127.0.0.1:10/mcp")
    save(qtbot, page)
    assert page.add_problem.text().startswith("Not saved: “search_history” is the name of a built-in tool")
    assert _saved(app_paths)[0]["url"] == "http://127.0.0.1:9/mcp"
    page.name_edit.setText("chats")
    save(qtbot, page)
    assert not page.add_problem.isVisible(), page.add_problem.text()
    assert [s["name"] for s in _saved(app_paths)] == ["chats"]
    assert page.check_button.isEnabled()


def _renaming_page(qtbot, app_paths: AppPaths, keys: MemoryKeyring, history) -> ToolsPage:  # type: ignore[no-untyped-def]
    """A page over the window's history store, with "desk" that one chat uses, being renamed "notes"."""
    page = ToolsPage(app_paths, SecretStore(backend=keys), history=history)
    qtbot.addWidget(page)
    page.show()
    page.settings.add(McpServer(name="desk", transport="http", url="http://127.0.0.1:9/mcp"))
    page.refresh()
    page.edit_selected()
    page.name_edit.setText("notes")
    return page


def test_a_rename_changes_the_chats_before_the_file_off_the_gui_thread_while_another_process_writes(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, keys: MemoryKeyring
) -> None:
    """As ``tools edit-mcp`` does: the window, which reads the chats when tools.toml changes, finds them
    renamed already; the wait for another process's write is the store's, the GUI runs meanwhile."""
    import sqlite3

    from filelock import FileLock, Timeout

    from engine.history.async_store import AsyncHistoryStore

    seed = HistoryStore(app_paths.history_db)
    uses = seed.create_conversation(title="uses", settings={"tools": ["desk"]})
    seed.close()
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))  # the window's (it waits up to 60 s)
    writer = sqlite3.connect(app_paths.history_db, isolation_level=None)
    try:
        page = _renaming_page(qtbot, app_paths, keys, store)
        before = tools_file(app_paths.config).read_text(encoding="utf-8")
        writer.execute("BEGIN IMMEDIATE")  # another process is writing the history
        page.add_button.click()  # returns at once: the chats wait on the store's thread
        saving = page.saving
        assert saving is not None
        probe = FileLock(str(tools_file(app_paths.config)) + ".lock")

        def file_lock_held() -> bool:  # the save's checks passed: it is past them, at the chats
            try:
                with probe.acquire(timeout=0):
                    return False
            except Timeout:
                return True

        qtbot.waitUntil(file_lock_held, timeout=10000)
        qtbot.wait(500)  # the GUI runs meanwhile; a file written before the chats would be written by now
        assert not saving.done()
        assert tools_file(app_paths.config).read_text(encoding="utf-8") == before
        said = "Renaming “desk” to “notes”: changing the chats that used “desk” first…"
        assert said in page.server_detail.text()
        with qtbot.waitSignal(page.servers_changed, timeout=10000) as changed:
            writer.execute("COMMIT")
        assert changed.args == ["desk", "notes"]  # the shown chat's tick moves
        assert [s["name"] for s in _saved(app_paths)] == ["notes"]
        assert run(qtbot, store.conversation(uses.id)).settings == {"tools": ["notes"]}
        said = "Renamed “desk” to “notes”: 1 chat that used “desk” now uses “notes”."
        assert said in page.server_detail.text()
        assert "Renaming" not in page.server_detail.text()
    finally:
        writer.close()
        run(qtbot, store.close())


def test_a_refused_rename_touches_no_chat_and_a_failed_write_puts_the_chats_back(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, keys: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from engine.history.async_store import AsyncHistoryStore

    seed = HistoryStore(app_paths.history_db)
    uses = seed.create_conversation(title="uses", settings={"tools": ["desk"]})
    seed.close()
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db))
    try:
        page = _renaming_page(qtbot, app_paths, keys, store)
        page.settings.add(McpServer(name="mail", transport="http", url="http://127.0.0.1:10/mcp"))
        tools = tools_file(app_paths.config)
        before = tools.read_text(encoding="utf-8")
        seen: list[dict[str, object]] = []

        # Refused (another server's name): the chats are never touched.
        page.name_edit.setText("mail")
        save(qtbot, page)
        assert "Not saved: " in page.add_problem.text()
        assert "“mail”" in page.add_problem.text()
        assert tools.read_text(encoding="utf-8") == before
        assert run(qtbot, store.conversation(uses.id)).settings == {"tools": ["desk"]}

        # A disk that refuses the file (full): the chats, renamed first, are put back.
        real_replace = os.replace

        def full_disk(src: object, dst: object) -> None:
            if Path(str(dst)) == tools:
                look = HistoryStore(app_paths.history_db)  # what the chats say at the file's write
                try:
                    seen.append(look.conversation(uses.id).settings)
                finally:
                    look.close(purge=False, interrupt=False)
                raise OSError(errno.ENOSPC, "No space left on device")
            real_replace(src, dst)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "replace", full_disk)
        page.name_edit.setText("notes")
        save(qtbot, page)
        assert seen == [{"tools": ["notes"]}]  # the chats were renamed before the file's write
        assert "Not saved: " in page.add_problem.text()
        assert "No space left on device" in page.add_problem.text()
        assert tools.read_text(encoding="utf-8") == before
        assert run(qtbot, store.conversation(uses.id)).settings == {"tools": ["desk"]}
        assert page.name_edit.text() == "notes"  # the form as it was, to try again
        assert "Renam" not in page.server_detail.text()

        monkeypatch.setattr(os, "replace", real_replace)
        save(qtbot, page)
        assert not page.add_problem.isVisible(), page.add_problem.text()
        assert [s["name"] for s in _saved(app_paths)] == ["notes", "mail"]
        assert run(qtbot, store.conversation(uses.id)).settings == {"tools": ["notes"]}
    finally:
        run(qtbot, store.close())


def test_a_rename_whose_chats_cannot_be_changed_says_so_and_stays(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths, keys: MemoryKeyring
) -> None:
    import sqlite3

    from engine.history.async_store import AsyncHistoryStore

    seed = HistoryStore(app_paths.history_db)
    uses = seed.create_conversation(title="uses", settings={"tools": ["desk"]})
    seed.close()
    store = run(qtbot, AsyncHistoryStore.open(app_paths.history_db, busy_wait_s=0.3))
    writer = sqlite3.connect(app_paths.history_db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # held throughout: longer than the store waits
    try:
        page = _renaming_page(qtbot, app_paths, keys, store)
        save(qtbot, page)
        text = page.server_detail.text()
        assert "“desk” is renamed to “notes”, but the chats that used “desk” could not be changed (" in text
        assert text.endswith("tick “notes” in their chat settings (Tools).")
        assert [s["name"] for s in _saved(app_paths)] == ["notes"]  # the rename stays
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert run(qtbot, store.conversation(uses.id)).settings == {"tools": ["desk"]}
    # A store that fails otherwise (closed under the page) is said the same way, not raised.
    run(qtbot, store.close())
    page.edit_selected()
    page.name_edit.setText("journal")
    save(qtbot, page)
    assert "“notes” is renamed to “journal”, but the chats that used “notes” could not be changed (" in (
        page.server_detail.text()
    )


class SlowKeys(MemoryKeyring):
    """A Secret Service that takes its time (as one waiting to be unlocked does), or refuses."""

    _store: ClassVar[dict[tuple[str, str], str]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.writers: list[int] = []  # the threads that wrote
        self.refuse = False

    def set_password(self, service: str, username: str, password: str) -> None:
        self.writers.append(threading.get_ident())
        self.release.wait(20)  # on the GUI thread, this would freeze the window for as long
        if self.refuse:
            raise keyring.errors.KeyringError("the keychain is locked")
        super().set_password(service, username, password)


def test_saving_to_a_slow_keychain_keeps_the_gui_running_and_a_refusal_loses_nothing(  # type: ignore[no-untyped-def]
    qtbot, app_paths: AppPaths
) -> None:
    keys = SlowKeys()
    page = ToolsPage(app_paths, SecretStore(backend=keys))
    qtbot.addWidget(page)
    page.show()
    try:
        page.transport.setCurrentIndex(page.transport.findData("http"))
        page.name_edit.setText("web")
        page.url_edit.setText("http://127.0.0.1:9/mcp")
        page.headers_edit.setPlainText("Authorization: Bearer abc123")
        page.add_button.click()  # returns while the keychain still works
        saving = page.saving
        assert saving is not None
        qtbot.waitUntil(lambda: bool(keys.writers), timeout=5000)
        assert keys.writers[0] != threading.get_ident()  # the keychain is written off the GUI thread
        ticks: list[int] = []
        timer = QTimer(page)
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start(20)
        qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=5000)  # the GUI runs meanwhile
        timer.stop()
        assert not saving.done()
        assert not page.form_box.isEnabled()  # held: what is saved is what it shows
        assert not tools_file(app_paths.config).exists()  # the keychain first, then the file
        keys.release.set()
        qtbot.waitUntil(saving.done, timeout=10000)
        assert not page.add_problem.isVisible(), page.add_problem.text()
        assert [s["name"] for s in _saved(app_paths)] == ["web"]
        assert keys.get_password(SERVICE, "mcp:web:header:Authorization") == "Bearer abc123"
        assert page.form_box.isEnabled()
        assert page.name_edit.text() == ""
        assert page.server_list.count() == 1

        # A keychain that refuses: nothing saved, the form as it was, the reason said.
        keys.refuse = True
        before = tools_file(app_paths.config).read_text(encoding="utf-8")
        page.transport.setCurrentIndex(page.transport.findData("http"))
        page.name_edit.setText("mail")
        page.url_edit.setText("http://127.0.0.1:10/mcp")
        page.headers_edit.setPlainText("Authorization: Bearer xyz")
        save(qtbot, page)
        assert page.add_problem.isVisible()
        assert page.add_problem.text().startswith("Not added: ")
        assert "the keychain is locked" in page.add_problem.text()
        assert tools_file(app_paths.config).read_text(encoding="utf-8") == before
        assert (page.name_edit.text(), page.url_edit.text()) == ("mail", "http://127.0.0.1:10/mcp")
        assert page.headers_edit.toPlainText() == "Authorization: Bearer xyz"
        assert page.form_box.isEnabled()
        assert page.add_button.isEnabled()
    finally:
        keys.release.set()
        run(qtbot, page.aclose())
