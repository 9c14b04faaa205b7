"""MCP servers the user added: ``tools.toml`` in the config folder, secrets in the keychain.

A file of its own rather than a section of ``settings.toml``: the servers are added and removed from the CLI
while the window may be running, and a separate small file (written atomically under its own lock) keeps
that away from the settings loader; it has its own ``schema_version``.

Secret values never reach the file: an environment variable whose name looks secret (``*KEY*``,
``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ...) or that was given as secret, and every HTTP header, is kept
in the keychain as ``mcp:<server>:env:<NAME>`` / ``mcp:<server>:header:<NAME>``; the file lists only the
names.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import tomli_w
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import DeskError
from engine.secrets import SecretStore
from engine.server.profiles import ENV_NAME
from engine.tools.builtin import BUILTIN_NAMES

if TYPE_CHECKING:
    from engine.history.async_store import AsyncHistoryStore

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|AUTH|CREDENTIAL|COOKIE", re.IGNORECASE)
STDIO_WARNING = (
    "A stdio MCP server is a program that runs on this machine with your permissions: add only servers you "
    "trust."
)


class ToolsConfigInvalid(DeskError):
    title = "The tools settings cannot be read"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} cannot be used: {reason}")


class ServerNotFound(DeskError):
    title = "No such MCP server"

    def __init__(self, name: str) -> None:
        super().__init__(f"There is no MCP server named “{name}” (vllm-desk tools list shows them).")


class ServerNameTaken(DeskError):
    title = "This MCP server name is taken"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"There is already an MCP server named “{name}”: pick another name, or edit that one."
        )


class ServerNameBuiltin(DeskError):
    title = "This name is a built-in tool's"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"“{name}” is the name of a built-in tool: a chat could not tell an MCP server named so from it."
        )
        # What to do, for the page and the command line to say (not a Fix: the name is typed, no button).
        self.hint = (
            f"Pick another name for the MCP server (the built-in tools are {', '.join(BUILTIN_NAMES)})."
        )


def builtin_clash(name: str) -> ServerNameBuiltin | None:
    """Why an MCP server cannot have ``name`` (``None`` when it can): the built-in tools' names
    (:data:`engine.tools.builtin.BUILTIN_NAMES`) are theirs, in the chats' tool lists as in the model's."""
    return ServerNameBuiltin(name) if name in BUILTIN_NAMES else None


def unused_reason(name: str) -> str:
    """What the Tools page, ``tools list`` and a chat say of a server in tools.toml (written by an older
    version, or by hand) that has a built-in tool's name: it is never started, the built-in is used ('' for
    any other name)."""
    if builtin_clash(name) is None:
        return ""
    return (
        f"“{name}” is a built-in tool's name, so this MCP server is not used (the built-in tool is): rename "
        f"it in Preferences > Tools (Edit) or with vllm-desk tools edit-mcp {name} --name NEW"
    )


class NoStoredSecret(DeskError):
    title = "No stored value to keep"

    def __init__(self, server: str, what: str, name: str) -> None:
        super().__init__(
            f"{server} has no {what} “{name}” in the keychain to keep: give it a value, or remove the line."
        )


def env_key(server: str, name: str) -> str:
    return f"mcp:{server}:env:{name}"


def header_key(server: str, name: str) -> str:
    return f"mcp:{server}:header:{name}"


def looks_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def _shown(text: str) -> str:
    """``text`` with what is not UTF-8 written as escapes (bytes a command line gave, as ``\\xff``)."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


class McpServer(BaseModel):
    """One MCP server: a command run over stdio, or a streamable HTTP URL."""

    model_config = ConfigDict(extra="forbid")

    name: str
    transport: Literal["stdio", "http"]
    command: str = ""
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Plain values (not secret).")
    secret_env: list[str] = Field(default_factory=list, description="Names whose values are in the keychain.")
    url: str = ""
    secret_headers: list[str] = Field(
        default_factory=list, description="Header names; values in the keychain."
    )
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not SERVER_NAME.fullmatch(value):
            raise ValueError("a server name is letters, digits, '_', '.' or '-' (at most 64)")
        return value

    @field_validator("env")
    @classmethod
    def _valid_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"“{name}” is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _complete(self) -> McpServer:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio server needs a command")
        if self.transport == "http" and not re.match(r"https?://", self.url):
            raise ValueError("an HTTP server needs a URL starting with http:// or https://")
        texts = [("the command", self.command), *(("an argument", a) for a in self.args)]
        texts += [(f"{name}'s value", value) for name, value in self.env.items()]
        for what, text in [*texts, ("the URL", self.url)]:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                shown = _shown(text)
                raise ValueError(f"{what} “{shown}” is not UTF-8 text, which tools.toml holds") from None
        return self

    def describe(self) -> str:
        if self.transport == "http":
            return self.url
        return " ".join([self.command, *self.args])


class ToolsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    servers: list[McpServer] = Field(default_factory=list)

    def server(self, name: str) -> McpServer:
        for server in self.servers:
            if server.name == name:
                return server
        raise ServerNotFound(name)


def tools_file(config_dir: Path) -> Path:
    return config_dir / "tools.toml"


def load_tools_config(path: Path) -> ToolsConfig:
    """The file's servers (none when it does not exist); :class:`ToolsConfigInvalid` when it is damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ToolsConfig()
    except OSError as exc:
        raise ToolsConfigInvalid(path, str(exc)) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        return ToolsConfig.model_validate(data)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ToolsConfigInvalid(path, f"it is not valid TOML ({exc})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ToolsConfigInvalid(path, f"{where}: {first['msg']}") from exc


def save_tools_config(path: Path, config: ToolsConfig) -> None:
    """Write atomically (a temp file renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = tomli_w.dumps(config.model_dump(mode="json"))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tools-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_or_undo(path: Path, config: ToolsConfig, undo: Callable[[], object] | None) -> None:
    """:func:`save_tools_config`; ``undo`` (what was done for it beforehand) when it fails."""
    try:
        save_tools_config(path, config)
    except BaseException:
        if undo is not None:
            undo()
        raise


class ToolsSettings:
    """Add and remove MCP servers: the file and the keychain together (under the file's lock)."""

    def __init__(self, config_dir: Path, secrets: SecretStore | None = None) -> None:
        self.path = tools_file(config_dir)
        self.secrets = secrets or SecretStore()
        self._lock = FileLock(str(self.path) + ".lock")

    def load(self) -> ToolsConfig:
        return load_tools_config(self.path)

    def add(
        self,
        server: McpServer,
        *,
        secret_env: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> McpServer:
        """Add ``server``; refused with nothing changed for a name another server has
        (:class:`ServerNameTaken`: :meth:`update` changes a server) or a built-in tool's name
        (:class:`ServerNameBuiltin`). ``secret_env`` and ``headers`` values
        go to the keychain first, so a keychain that does not work
        (:class:`engine.secrets.KeychainUnavailable`) leaves the file as it was."""
        server = server.model_copy(
            update={
                "secret_env": sorted({*server.secret_env, *(secret_env or {})}),
                "secret_headers": sorted({*server.secret_headers, *(headers or {})}),
            }
        )
        clash = builtin_clash(server.name)
        if clash is not None:
            raise clash
        with self._lock:
            config = self.load()
            if any(s.name == server.name for s in config.servers):
                raise ServerNameTaken(server.name)  # before the keychain: that server's secrets stay its own
            for name, value in (secret_env or {}).items():
                self.secrets.set(env_key(server.name, name), value)
            for name, value in (headers or {}).items():
                self.secrets.set(header_key(server.name, name), value)
            save_tools_config(self.path, config.model_copy(update={"servers": [*config.servers, server]}))
        return server

    def update(
        self,
        name: str,
        server: McpServer,
        *,
        secret_env: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        keep_env: Sequence[str] = (),
        keep_headers: Sequence[str] = (),
        before_save: Callable[[McpServer], Callable[[], object] | None] | None = None,
    ) -> McpServer:
        """Change the server ``name`` into ``server`` in its place in the list (another name renames it).

        ``secret_env`` / ``headers``: new values, to the keychain; ``keep_env`` / ``keep_headers``: names
        whose stored values stay (moved under the new name on a rename); the old server's other secrets are
        forgotten. Refused, with nothing changed, for an unknown server (:class:`ServerNotFound`), a new
        name another server has (:class:`ServerNameTaken`), a built-in tool's name
        (:class:`ServerNameBuiltin`: a server that has one, from an older file, keeps its edit by a rename)
        or a name to keep that has no stored value (:class:`NoStoredSecret`); the keychain is written before
        the file, so a keychain that fails leaves the file as it was.

        ``before_save``, given the server about to be saved, runs after every check and the keychain, just
        before the file is written (under the file's lock): :func:`update_server` carries a rename over to
        the chats there, so that whoever sees the new file finds the chats renamed already. What it returns
        (if anything) is called when the file cannot be written, to undo it."""
        new_env, new_headers = dict(secret_env or {}), dict(headers or {})
        clash = builtin_clash(server.name)
        if clash is not None:
            raise clash
        with self._lock:
            config = self.load()
            old = config.server(name)
            if server.name != name and any(s.name == server.name for s in config.servers):
                raise ServerNameTaken(server.name)
            kept = {
                **{env_key(name, n): env_key(server.name, n) for n in keep_env if n not in new_env},
                **{
                    header_key(name, n): header_key(server.name, n)
                    for n in keep_headers
                    if n not in new_headers
                },
            }
            for missing in [n for n in keep_env if n not in new_env and n not in old.secret_env]:
                raise NoStoredSecret(name, "secret environment variable", missing)
            for missing in [n for n in keep_headers if n not in new_headers and n not in old.secret_headers]:
                raise NoStoredSecret(name, "header", missing)
            if server.name != name:
                for before, after in kept.items():
                    value = self.secrets.get(before)
                    if value is not None:
                        self.secrets.set(after, value)
            for env_name, value in new_env.items():
                self.secrets.set(env_key(server.name, env_name), value)
            for header, value in new_headers.items():
                self.secrets.set(header_key(server.name, header), value)
            server = server.model_copy(
                update={
                    "secret_env": sorted({*keep_env, *new_env}),
                    "secret_headers": sorted({*keep_headers, *new_headers}),
                    "enabled": old.enabled,
                }
            )
            servers = [server if s.name == name else s for s in config.servers]
            undo = before_save(server) if before_save is not None else None
            _save_or_undo(self.path, config.model_copy(update={"servers": servers}), undo)
        now = {env_key(server.name, n) for n in server.secret_env}
        now |= {header_key(server.name, n) for n in server.secret_headers}
        was = {env_key(name, n) for n in old.secret_env}
        was |= {header_key(name, n) for n in old.secret_headers}
        for key in was - now:  # renamed away or no longer named
            self.secrets.delete(key)
        return server

    def remove(self, name: str) -> McpServer:
        with self._lock:
            config = self.load()
            server = config.server(name)
            kept = [s for s in config.servers if s.name != name]
            save_tools_config(self.path, config.model_copy(update={"servers": kept}))
        for env_name in server.secret_env:
            self.secrets.delete(env_key(name, env_name))
        for header in server.secret_headers:
            self.secrets.delete(header_key(name, header))
        return server

    def resolved_env(self, server: McpServer) -> dict[str, str]:
        """The server's environment with the keychain's values (a missing secret is left out)."""
        env = dict(server.env)
        for name in server.secret_env:
            value = self.secrets.get(env_key(server.name, name))
            if value is not None:
                env[name] = value
        return env

    def resolved_headers(self, server: McpServer) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name in server.secret_headers:
            value = self.secrets.get(header_key(server.name, name))
            if value is not None:
                headers[name] = value
        return headers


class ChatsNotRenamed(DeskError):
    title = "Chats still name the old server"

    def __init__(self, old: str, new: str, reason: str) -> None:
        super().__init__(
            f"“{old}” is renamed to “{new}”, but the chats that used “{old}” could not be changed ({reason}):"
            f" tick “{new}” in their chat settings (Tools)."
        )


# What writing the chats' tools may raise: the history's own problems, SQLite's, the disk's.
CHATS_ERRORS = (DeskError, sqlite3.Error, OSError)


@dataclass(frozen=True)
class ServerUpdate:
    """What :func:`update_server` did: the saved server, the name it had, how many chats now name it
    (after a rename) and, when they could not be changed, why."""

    server: McpServer
    old_name: str
    chats: int = 0
    chats_problem: ChatsNotRenamed | None = None

    @property
    def renamed(self) -> bool:
        return self.server.name != self.old_name

    def describe(self) -> str:
        """One sentence on the rename for the user ('' when the name stayed)."""
        if not self.renamed:
            return ""
        if self.chats_problem is not None:
            return str(self.chats_problem)
        old, new = self.old_name, self.server.name
        if self.chats == 0:
            return f"Renamed “{old}” to “{new}”: no chat used “{old}”."
        if self.chats == 1:
            return f"Renamed “{old}” to “{new}”: 1 chat that used “{old}” now uses “{new}”."
        return f"Renamed “{old}” to “{new}”: {self.chats} chats that used “{old}” now use “{new}”."


def update_server(
    settings: ToolsSettings,
    history_db: Path,
    name: str,
    server: McpServer,
    *,
    secret_env: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    keep_env: Sequence[str] = (),
    keep_headers: Sequence[str] = (),
    busy_wait_s: float = 5.0,
    history: AsyncHistoryStore | None = None,
) -> ServerUpdate:
    """Change the MCP server ``name`` (:meth:`ToolsSettings.update`, refused with nothing changed as it
    says); a rename carries over to the chats: every conversation whose tools name ``name`` names the new
    one instead (:meth:`engine.history.store.HistoryStore.rename_tool`). The chats change first, then the
    file is written: an app that follows tools.toml (``desktop.window.tools_file``) and reads the chats when
    the file changes finds them renamed already. A file that cannot be written puts the chats back (a
    refused edit changes nothing). A history that cannot be written does not stop the rename: the result
    says so (:attr:`ServerUpdate.chats_problem`); nor does one that another process writes for longer than
    ``busy_wait_s``. Blocking: ``tools edit-mcp`` opens a store of its own; the Tools page, in a worker
    thread, passes the window's ``history``, whose own thread then changes the chats, in order with the
    window's writes (:meth:`AsyncHistoryStore.call_from_thread`)."""
    carried: list[ServerUpdate] = []

    def carry(saved: McpServer) -> Callable[[], None] | None:
        update, changed = _rename_chats(history_db, name, saved, busy_wait_s=busy_wait_s, history=history)
        carried.append(update)
        if not changed:
            return None
        return lambda: _undo_rename_chats(history_db, changed, busy_wait_s=busy_wait_s, history=history)

    saved = settings.update(
        name,
        server,
        secret_env=secret_env,
        headers=headers,
        keep_env=keep_env,
        keep_headers=keep_headers,
        before_save=carry,
    )
    update = carried[-1]
    return ServerUpdate(saved, name, update.chats, update.chats_problem)


def _rename_chats(
    history_db: Path,
    old_name: str,
    saved: McpServer,
    *,
    busy_wait_s: float,
    history: AsyncHistoryStore | None = None,
) -> tuple[ServerUpdate, dict[int, tuple[str, str]]]:
    """The chats' part of :func:`update_server` (through ``history``'s thread when given, else a short-lived
    store of its own), with what changed (for :func:`_undo_rename_chats`)."""
    if saved.name == old_name or (history is None and not history_db.exists()):
        return ServerUpdate(saved, old_name), {}  # not renamed, or no chat yet
    from engine.history.store import HistoryStore  # only a rename opens the history

    try:
        if history is not None:
            changed = history.call_from_thread(HistoryStore.rename_tool_undoably, old_name, saved.name)
        else:
            own = HistoryStore(history_db, busy_wait_s=busy_wait_s)
            try:
                changed = own.rename_tool_undoably(old_name, saved.name)
            finally:
                # The app's own store may be writing a reply in this process: that one stays streaming.
                own.close(purge=False, interrupt=False)
    except (*CHATS_ERRORS, RuntimeError) as exc:  # RuntimeError: the app's store closed (its thread gone)
        problem = ChatsNotRenamed(old_name, saved.name, str(exc))
        return ServerUpdate(saved, old_name, chats_problem=problem), {}
    return ServerUpdate(saved, old_name, len(changed)), changed


def _undo_rename_chats(
    history_db: Path,
    changed: dict[int, tuple[str, str]],
    *,
    busy_wait_s: float,
    history: AsyncHistoryStore | None = None,
) -> None:
    """The chats renamed for a file that could not be written, put back (through ``history``'s thread when
    given); a history that refuses now is logged (the file's own error is the one raised)."""
    from engine.history.store import HistoryStore

    try:
        if history is not None:
            history.call_from_thread(HistoryStore.undo_rename_tool, changed)
            return
        own = HistoryStore(history_db, busy_wait_s=busy_wait_s)
        try:
            own.undo_rename_tool(changed)
        finally:
            own.close(purge=False, interrupt=False)
    except (*CHATS_ERRORS, RuntimeError) as exc:
        log.warning("the chats renamed for an MCP server whose file could not be saved stay renamed: %s", exc)
