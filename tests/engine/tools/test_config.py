"""tools.toml: MCP servers added and removed, secrets only in the keychain, a damaged file said in words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.secrets import KeychainUnavailable, SecretStore
from engine.tools.config import (
    McpServer,
    NoStoredSecret,
    ServerNameBuiltin,
    ServerNameTaken,
    ServerNotFound,
    ServerUpdate,
    ToolsConfig,
    ToolsConfigInvalid,
    ToolsSettings,
    builtin_clash,
    env_key,
    header_key,
    looks_secret,
    save_tools_config,
    unused_reason,
    update_server,
)


def test_servers_are_added_refused_for_a_name_in_use_and_removed_with_their_secrets(tmp_path: Path) -> None:
    settings = ToolsSettings(tmp_path, SecretStore())
    server = McpServer(
        name="files", transport="stdio", command="mcp-files", args=["--root", "/tmp"], env={"A": "1"}
    )
    settings.add(server, secret_env={"FILES_TOKEN": "t0ken"})
    settings.add(
        McpServer(name="web", transport="http", url="https://example.test/mcp"), headers={"X-Key": "h"}
    )
    text = settings.path.read_text()
    assert "t0ken" not in text
    assert '"h"' not in text
    loaded = settings.load()
    assert [s.name for s in loaded.servers] == ["files", "web"]
    files = loaded.server("files")
    assert files.secret_env == ["FILES_TOKEN"]
    assert settings.resolved_env(files) == {"A": "1", "FILES_TOKEN": "t0ken"}
    assert settings.resolved_headers(loaded.server("web")) == {"X-Key": "h"}
    # A name in use is refused, never replaced unseen: the file and that server's keychain values stay.
    before = settings.path.read_text()
    with pytest.raises(ServerNameTaken, match=r"“files”.*edit that one"):
        settings.add(server.model_copy(update={"args": []}), secret_env={"FILES_TOKEN": "new"})
    assert settings.path.read_text() == before
    assert SecretStore().get(env_key("files", "FILES_TOKEN")) == "t0ken"
    settings.remove("files")
    assert SecretStore().get(env_key("files", "FILES_TOKEN")) is None
    settings.remove("web")
    assert SecretStore().get(header_key("web", "X-Key")) is None
    with pytest.raises(ServerNotFound, match="nope"):
        settings.remove("nope")


def test_a_server_is_edited_in_place_and_renamed_with_its_kept_secrets(tmp_path: Path) -> None:
    settings = ToolsSettings(tmp_path, SecretStore())
    settings.add(McpServer(name="first", transport="stdio", command="one"))
    settings.add(
        McpServer(name="files", transport="stdio", command="mcp-files"),
        secret_env={"FILES_TOKEN": "t0ken", "OLD_KEY": "gone"},
    )
    settings.add(
        McpServer(name="web", transport="http", url="https://example.test/mcp"), headers={"X-Key": "h"}
    )
    # Renamed, the command changed, one secret kept (moved to the new name), one new, one dropped.
    edited = settings.update(
        "files",
        McpServer(name="notes", transport="stdio", command="mcp-notes", args=["--ro"], env={"A": "1"}),
        secret_env={"NEW_TOKEN": "n3w"},
        keep_env=["FILES_TOKEN"],
    )
    assert edited.secret_env == ["FILES_TOKEN", "NEW_TOKEN"]
    loaded = settings.load()
    assert [s.name for s in loaded.servers] == ["first", "notes", "web"]  # in its place
    notes = loaded.server("notes")
    assert (notes.command, notes.args) == ("mcp-notes", ["--ro"])
    assert settings.resolved_env(notes) == {"A": "1", "FILES_TOKEN": "t0ken", "NEW_TOKEN": "n3w"}
    for name in ("FILES_TOKEN", "OLD_KEY"):
        assert SecretStore().get(env_key("files", name)) is None  # nothing left under the old name
    assert "t0ken" not in settings.path.read_text()
    # Same name, the header kept; then replaced by a new value.
    settings.update(
        "web", McpServer(name="web", transport="http", url="https://b.test/mcp"), keep_headers=["X-Key"]
    )
    assert settings.resolved_headers(settings.load().server("web")) == {"X-Key": "h"}
    settings.update(
        "web", McpServer(name="web", transport="http", url="https://b.test/mcp"), headers={"X-Key": "h2"}
    )
    assert settings.resolved_headers(settings.load().server("web")) == {"X-Key": "h2"}


def test_an_edit_that_cannot_be_made_changes_nothing(tmp_path: Path) -> None:
    settings = ToolsSettings(tmp_path, SecretStore())
    settings.add(McpServer(name="files", transport="stdio", command="c"), secret_env={"FILES_TOKEN": "t"})
    settings.add(McpServer(name="web", transport="http", url="https://example.test/mcp"))
    before = settings.path.read_text()
    with pytest.raises(ServerNameTaken, match="“web”"):
        settings.update(
            "files", McpServer(name="web", transport="stdio", command="c2"), keep_env=["FILES_TOKEN"]
        )
    with pytest.raises(NoStoredSecret, match="“OTHER_TOKEN”"):
        settings.update(
            "files", McpServer(name="files", transport="stdio", command="c2"), keep_env=["OTHER_TOKEN"]
        )
    with pytest.raises(ServerNotFound, match="nope"):
        settings.update("nope", McpServer(name="nope", transport="stdio", command="c2"))
    assert settings.path.read_text() == before
    assert SecretStore().get(env_key("files", "FILES_TOKEN")) == "t"


def test_a_keychain_that_does_not_work_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    from keyring.backends.fail import Keyring as FailKeyring

    settings = ToolsSettings(tmp_path, SecretStore(backend=FailKeyring()))
    with pytest.raises(KeychainUnavailable):
        settings.add(McpServer(name="x", transport="stdio", command="c"), secret_env={"API_KEY": "k"})
    assert not settings.path.exists()
    settings.add(McpServer(name="x", transport="stdio", command="c"))  # nothing for the keychain
    before = settings.path.read_text()
    with pytest.raises(KeychainUnavailable):
        settings.update(
            "x", McpServer(name="y", transport="stdio", command="c2"), secret_env={"API_KEY": "k"}
        )
    assert settings.path.read_text() == before


def test_bad_servers_and_damaged_files_are_refused_in_words(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs a command"):
        McpServer(name="x", transport="stdio")
    with pytest.raises(ValidationError, match="http:// or https://"):
        McpServer(name="x", transport="http", url="ftp://x")
    with pytest.raises(ValidationError, match="server name"):
        McpServer(name="a b", transport="stdio", command="c")
    path = tmp_path / "tools.toml"
    path.write_text("servers = [ {")
    with pytest.raises(ToolsConfigInvalid, match="not valid TOML"):
        ToolsSettings(tmp_path).load()
    path.write_text('[[servers]]\nname = "x"\ntransport = "carrier-pigeon"\n')
    with pytest.raises(ToolsConfigInvalid, match=r"servers\.0\.transport"):
        ToolsSettings(tmp_path).load()


def test_secret_looking_names() -> None:
    assert looks_secret("OPENAI_API_KEY")
    assert looks_secret("GITHUB_TOKEN")
    assert looks_secret("DB_PASSWORD")
    assert not looks_secret("WORKSPACE_PATH")


def test_a_rename_carries_over_to_the_chats_that_named_the_server(tmp_path: Path) -> None:
    from engine.history.store import HistoryStore

    history_db = tmp_path / "history.db"
    settings = ToolsSettings(tmp_path, SecretStore())
    settings.add(McpServer(name="desk", transport="stdio", command="c"), secret_env={"DESK_TOKEN": "t"})
    # No history yet: renamed, nothing to carry (and no database made for it).
    first = update_server(
        settings,
        history_db,
        "desk",
        McpServer(name="notes", transport="stdio", command="c"),
        keep_env=["DESK_TOKEN"],
    )
    assert (first.renamed, first.chats, first.chats_problem) == (True, 0, None)
    assert not history_db.exists()
    assert first.describe() == "Renamed “desk” to “notes”: no chat used “desk”."

    store = HistoryStore(history_db)
    try:
        used = store.create_conversation(title="used", settings={"tools": ["notes", "current_time"]})
        unused = store.create_conversation(title="unused", settings={"tools": ["current_time"]})
    finally:
        store.close()
    update = update_server(
        settings,
        history_db,
        "notes",
        McpServer(name="journal", transport="stdio", command="c"),
        keep_env=["DESK_TOKEN"],
    )
    assert (update.server.name, update.old_name, update.chats) == ("journal", "notes", 1)
    assert update.describe() == "Renamed “notes” to “journal”: 1 chat that used “notes” now uses “journal”."
    assert settings.resolved_env(settings.load().server("journal")) == {"DESK_TOKEN": "t"}
    store = HistoryStore(history_db)
    try:
        assert store.conversation(used.id).settings == {"tools": ["journal", "current_time"]}
        assert store.conversation(unused.id).settings == {"tools": ["current_time"]}
    finally:
        store.close()

    # The same name: nothing to carry; a refused edit changes no chat either.
    same = update_server(
        settings, history_db, "journal", McpServer(name="journal", transport="stdio", command="d")
    )
    assert (same.renamed, same.chats, same.describe()) == (False, 0, "")
    settings.add(McpServer(name="web", transport="http", url="https://example.test/mcp"))
    with pytest.raises(ServerNameTaken):
        update_server(settings, history_db, "journal", McpServer(name="web", transport="stdio", command="d"))


def test_the_chats_are_renamed_before_the_file_is_written_and_put_back_when_it_cannot_be(
    tmp_path: Path,
) -> None:
    from engine.history.store import HistoryStore

    history_db = tmp_path / "history.db"
    store = HistoryStore(history_db)
    try:
        used = store.create_conversation(title="used", settings={"tools": ["desk", "current_time"]})
    finally:
        store.close()
    settings = ToolsSettings(tmp_path, SecretStore())
    settings.add(McpServer(name="desk", transport="stdio", command="c"))
    before = settings.path.read_text()

    # What runs before the save sees every check passed and the old file; what it returns undoes it.
    seen: list[tuple[str, str, list[str]]] = []
    with pytest.raises(ServerNameBuiltin):  # refused: never called
        settings.update(
            "desk",
            McpServer(name="current_time", transport="stdio", command="c"),
            before_save=lambda s: seen.append(("refused", "", [])),
        )
    assert seen == []
    # A server no validator lets through (bytes that are not UTF-8): the real write fails.
    unwritable = McpServer.model_construct(name="notes", transport="stdio", command="c", args=["\udcff"])
    with pytest.raises(UnicodeEncodeError):
        settings.update(
            "desk",
            unwritable,
            before_save=lambda s: (
                seen.append((s.name, settings.path.read_text(), stored_tools(history_db, used.id))) or None
            ),
        )
    assert seen == [("notes", before, ["desk", "current_time"])]

    # update_server: the chats are renamed first, then the file fails: the chats are put back.
    with pytest.raises(UnicodeEncodeError):
        update_server(settings, history_db, "desk", unwritable)
    assert settings.path.read_text() == before
    assert stored_tools(history_db, used.id) == ["desk", "current_time"]
    # ... and the same rename, writable, changes both.
    update = update_server(
        settings, history_db, "desk", McpServer(name="notes", transport="stdio", command="c")
    )
    assert (update.chats, update.chats_problem) == (1, None)
    assert stored_tools(history_db, used.id) == ["notes", "current_time"]
    assert [s.name for s in settings.load().servers] == ["notes"]


def test_the_file_waits_for_the_chats_rename(tmp_path: Path) -> None:
    """Whoever sees the new tools.toml (the window follows it) finds the chats renamed already: while
    another process holds the history, the command waits with the old file in place."""
    import threading
    import time

    from filelock import FileLock, Timeout

    done: list[ServerUpdate] = []
    threads: list[threading.Thread] = []
    try:
        with desk_and_a_held_history(tmp_path) as (settings, history_db, used):
            before = settings.path.read_text()
            notes = McpServer(name="notes", transport="stdio", command="c")
            threads.append(
                threading.Thread(
                    target=lambda: done.append(
                        update_server(settings, history_db, "desk", notes, busy_wait_s=60)
                    )
                )
            )
            threads[0].start()
            probe = FileLock(str(settings.path) + ".lock")
            deadline = time.monotonic() + 30
            while True:  # until the command holds the tools file's lock (its checks passed)
                try:
                    with probe.acquire(timeout=0):
                        pass
                except Timeout:
                    break
                assert time.monotonic() < deadline, "the edit never took the tools file's lock"
                time.sleep(0.01)
            time.sleep(0.5)  # a file written before the chats would be written by now
            assert settings.path.read_text() == before
    finally:
        for thread in threads:
            thread.join(timeout=70)
    assert not threads[0].is_alive()
    assert [s.name for s in settings.load().servers] == ["notes"]
    (update,) = done
    assert (update.chats, update.chats_problem) == (1, None)
    assert stored_tools(history_db, used) == ["notes"]


def test_text_that_is_not_utf8_is_refused_in_words() -> None:
    words = "an argument “\\xff” is not UTF-8 text, which tools.toml holds"
    with pytest.raises(ValidationError, match=re.escape(words)):
        McpServer(name="desk", transport="stdio", command="c", args=["\udcff"])  # argv's byte 0xff
    with pytest.raises(ValidationError, match=re.escape("A's value “\\ud800” is not UTF-8 text")):
        McpServer(name="desk", transport="stdio", command="c", env={"A": "\ud800"})
    assert McpServer(name="desk", transport="stdio", command="c", args=["é ✓"]).args == ["é ✓"]


def test_a_history_that_cannot_be_written_leaves_the_rename_and_says_what_to_do(tmp_path: Path) -> None:
    history_db = tmp_path / "history.db"
    history_db.write_bytes(b"not a database, " * 64)
    settings = ToolsSettings(tmp_path, SecretStore())
    settings.add(McpServer(name="desk", transport="stdio", command="c"))
    update = update_server(
        settings, history_db, "desk", McpServer(name="notes", transport="stdio", command="c")
    )
    assert [s.name for s in settings.load().servers] == ["notes"]
    assert update.chats_problem is not None
    assert update.describe().startswith(
        "“desk” is renamed to “notes”, but the chats that used “desk” could not"
    )
    assert update.describe().endswith("tick “notes” in their chat settings (Tools).")


@contextmanager
def desk_and_a_held_history(tmp_path: Path) -> Iterator[tuple[ToolsSettings, Path, int]]:
    """tools.toml with the server "desk", a history whose one chat uses it (its id yielded), and another
    process holding the history's write lock until the block ends."""
    import sqlite3

    from engine.history.store import HistoryStore

    history_db = tmp_path / "history.db"
    store = HistoryStore(history_db)
    used = store.create_conversation(title="used", settings={"tools": ["desk"]})
    store.close()
    settings = ToolsSettings(tmp_path, SecretStore())
    settings.add(McpServer(name="desk", transport="stdio", command="c"))
    writer = sqlite3.connect(history_db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        yield settings, history_db, used.id
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def stored_tools(history_db: Path, conversation_id: int) -> list[str]:
    from engine.history.store import HistoryStore

    store = HistoryStore(history_db)
    try:
        return list(store.conversation(conversation_id).settings["tools"])
    finally:
        store.close(purge=False, interrupt=False)


def test_a_history_another_process_keeps_writing_is_waited_for_briefly_and_said(tmp_path: Path) -> None:
    with desk_and_a_held_history(tmp_path) as (settings, history_db, used):
        update = update_server(
            settings,
            history_db,
            "desk",
            McpServer(name="notes", transport="stdio", command="c"),
            busy_wait_s=0.3,
        )
    assert update.renamed
    assert update.chats_problem is not None
    assert "could not be changed" in update.describe()
    assert stored_tools(history_db, used) == ["desk"]  # as it was: nothing half-done


def test_a_built_in_tools_name_is_refused_for_a_server_and_nothing_changes(tmp_path: Path) -> None:
    from engine.tools.builtin import BUILTIN_NAMES

    settings = ToolsSettings(tmp_path, SecretStore())
    assert len(BUILTIN_NAMES) >= 3  # every name the built-in registry lists, not a copy of it
    for name in BUILTIN_NAMES:
        with pytest.raises(ServerNameBuiltin, match=f"“{name}” is the name of a built-in tool") as refused:
            settings.add(McpServer(name=name, transport="stdio", command="c"), secret_env={"A_TOKEN": "t"})
        assert refused.value.hint.startswith("Pick another name for the MCP server")
        assert SecretStore().get(env_key(name, "A_TOKEN")) is None  # refused before the keychain
    assert not settings.path.exists()
    settings.add(McpServer(name="desk", transport="stdio", command="c"), secret_env={"A_TOKEN": "t"})
    before = settings.path.read_text()
    for name in BUILTIN_NAMES:
        with pytest.raises(ServerNameBuiltin, match=f"“{name}”"):
            settings.update(
                "desk", McpServer(name=name, transport="stdio", command="c"), keep_env=["A_TOKEN"]
            )
    assert settings.path.read_text() == before
    assert SecretStore().get(env_key("desk", "A_TOKEN")) == "t"
    assert builtin_clash("desk") is None
    assert unused_reason("desk") == ""


@pytest.mark.asyncio
async def test_a_server_with_a_built_in_tools_name_from_an_older_file_loads_and_is_never_started(
    tmp_path: Path,
) -> None:
    from engine.tools.mcp import McpManager

    settings = ToolsSettings(tmp_path, SecretStore())
    clashing = McpServer(name="current_time", transport="stdio", command="c")  # as an older version wrote
    save_tools_config(settings.path, ToolsConfig(servers=[clashing]))
    assert [s.name for s in settings.load().servers] == ["current_time"]
    manager = McpManager(settings)
    (state,) = manager.states()
    assert state.status == "failed"
    assert state.reason == unused_reason("current_time")
    assert "built-in tool's name, so this MCP server is not used (the built-in tool is)" in state.reason
    assert "vllm-desk tools edit-mcp current_time --name NEW" in state.reason
    started = await manager.start("current_time")
    assert started == state
    assert manager.connections == {}  # its command was never run
    assert manager.tools(["current_time"]) == ([], {})
    # Kept only by a rename: an edit under the same name is refused, one that renames it is saved.
    with pytest.raises(ServerNameBuiltin):
        settings.update("current_time", McpServer(name="current_time", transport="stdio", command="d"))
    settings.update("current_time", McpServer(name="clock", transport="stdio", command="d"))
    assert [s.name for s in settings.load().servers] == ["clock"]
    assert unused_reason("clock") == ""


@pytest.mark.asyncio
async def test_update_server_renames_the_chats_through_the_apps_own_store_first(tmp_path: Path) -> None:
    """The Tools page's save: in a worker thread, the chats changed on the window's store's thread before
    the file, put back there when the file cannot be written."""
    import asyncio

    from engine.history.async_store import AsyncHistoryStore

    settings = ToolsSettings(tmp_path, SecretStore())
    settings.add(McpServer(name="desk", transport="stdio", command="c"))
    before = settings.path.read_text()
    store = await AsyncHistoryStore.open(tmp_path / "history.db")
    try:
        used = await store.create_conversation(title="used", settings={"tools": ["desk"]})
        unwritable = McpServer.model_construct(name="notes", transport="stdio", command="c", args=["\udcff"])
        with pytest.raises(UnicodeEncodeError):
            await asyncio.to_thread(
                update_server, settings, tmp_path / "none.db", "desk", unwritable, history=store
            )
        assert settings.path.read_text() == before
        assert (await store.conversation(used.id)).settings == {"tools": ["desk"]}
        notes = McpServer(name="notes", transport="stdio", command="c")
        update = await asyncio.to_thread(
            update_server, settings, tmp_path / "none.db", "desk", notes, history=store
        )
        assert (update.renamed, update.chats, update.chats_problem) == (True, 1, None)
        assert (await store.conversation(used.id)).settings == {"tools": ["notes"]}
        assert [s.name for s in settings.load().servers] == ["notes"]
    finally:
        await store.close()
