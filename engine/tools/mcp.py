"""MCP servers as Haystack tools, through ``mcp-haystack``'s ``MCPToolset`` (stdio and streamable HTTP).

Each configured server becomes an :class:`McpConnection` with a visible state (``stopped``, ``starting``,
``ready`` with its tools, ``failed`` with the reason). ``MCPToolset`` is synchronous (it runs the MCP session
on its own background loop), so connecting and closing run in a worker thread and never stall the app's loop.

Processes: the ``mcp`` SDK starts a stdio server in a new session (its own process group) and, when the
toolset closes, closes its stdin and then ends the whole group. We also note the group when the server starts
and end whatever of it is left after closing (the SDK's shutdown runs on a background loop that gives up after
a few seconds), so :meth:`McpManager.aclose` leaves no orphans. A stdio server's stderr goes to
``<logs>/mcp-<name>.log``, whose last lines explain a failed start.

An MCP tool's result is the JSON of the protocol's ``CallToolResult``; the model gets its text blocks
(``isError`` results arrive as a raised error, which the turn loop turns into an error result).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psutil

from engine.events import Event
from engine.tools.config import McpServer, ToolsSettings, unused_reason

if TYPE_CHECKING:
    from haystack.tools.tool import Tool

log = logging.getLogger(__name__)

Status = Literal["stopped", "starting", "ready", "failed"]
# One stdio start at a time: the new child process is found by comparing this process's children before and
# after.
_START_LOCK = threading.Lock()


@dataclass(frozen=True)
class ServerState:
    """What the Tools page and ``tools list`` show for one server."""

    name: str
    status: Status
    tools: tuple[str, ...] = ()
    reason: str = ""

    def describe(self) -> str:
        if self.status == "ready":
            return f"ready with {len(self.tools)} tool(s)"
        if self.status == "failed":
            return f"failed: {self.reason}"
        return self.status


def mcp_text(raw: Any) -> str:
    """The text of an MCP ``CallToolResult`` (JSON from ``MCPToolset``): its text blocks, one per line;
    structured content when there is no text; anything else as it came."""
    if not isinstance(raw, str):
        return json.dumps(raw, ensure_ascii=False, default=str)
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(data, dict) or "content" not in data:
        return raw
    parts: list[str] = []
    for block in data.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(f"[{block.get('type', 'content')} content left out]")
    if parts:
        return "\n".join(parts)
    structured = data.get("structuredContent")
    return json.dumps(structured, ensure_ascii=False) if structured is not None else ""


def _log_tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def _reason(exc: BaseException, log_path: Path | None, timeout_s: float) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    cause = exc.__cause__
    if isinstance(cause, TimeoutError) or isinstance(exc, TimeoutError):
        text += (
            f" (no MCP handshake within {timeout_s:g} s: it may not be an MCP server, or it writes something "
            "other than JSON-RPC to its output)"
        )
    elif cause is not None and str(cause) and str(cause) not in text:
        text += f" ({type(cause).__name__}: {' '.join(str(cause).split())[:300]})"
    tail = _log_tail(log_path) if log_path is not None else ""
    return f"{text}; the server said: {tail[-600:]}" if tail else text


class _NotingStream:
    """The transport's read stream, handing each thing that came instead of a JSON-RPC message (the SDK
    yields the parse error in its place, and the session only drops it) to ``note`` on its way."""

    def __init__(self, inner: Any, note: Callable[[Exception], None]) -> None:
        self._inner = inner
        self._note = note

    async def __aenter__(self) -> _NotingStream:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> Any:
        return await self._inner.__aexit__(*exc)

    def __aiter__(self) -> _NotingStream:
        return self

    async def __anext__(self) -> Any:
        item = await self._inner.__anext__()
        if isinstance(item, Exception):
            self._note(item)
        return item

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _ParseErrorFilter(logging.Filter):
    """The SDK logs a traceback per line that is not JSON-RPC; the server's state says it instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to parse JSONRPC message")


_PARSE_ERRORS = _ParseErrorFilter()


def _server_info(
    server: McpServer,
    secrets: dict[str, str],
    log_path: Path | None,
    on_bad_message: Callable[[Exception], None] = lambda _exc: None,
) -> Any:
    """``mcp-haystack``'s server info for ``server``, as subclasses whose clients (1) write a stdio server's
    stderr to its log file instead of ours and (2) close the HTTP client: ``mcp-haystack`` 2.1 hands one to
    the SDK's ``streamable_http_client``, which (mcp 2.x) leaves a client it was given open — a socket per
    connection left to the garbage collector."""
    from haystack_integrations.tools.mcp import (
        StdioClient,
        StdioServerInfo,
        StreamableHttpClient,
        StreamableHttpServerInfo,
    )
    from mcp import StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    class ClosingHttpClient(StreamableHttpClient):
        async def connect(self) -> Any:
            http = create_mcp_http_client(headers=self.headers, timeout=self.timeout)  # type: ignore[arg-type]
            await self.exit_stack.enter_async_context(http)
            transport = await self.exit_stack.enter_async_context(
                streamable_http_client(self.url, http_client=http)
            )
            return await self._initialize_session_with_transport(transport, f"HTTP server at {self.url}")

    class HttpInfo(StreamableHttpServerInfo):
        def create_client(self) -> Any:
            return ClosingHttpClient(server_info=self, max_retries=0)

    class LoggedStdioClient(StdioClient):
        async def connect(self) -> Any:
            params = StdioServerParameters(command=self.command, args=self.args, env=self.env)
            errlog: Any = sys.stderr
            if log_path is not None:
                errlog = self.exit_stack.enter_context(log_path.open("a", encoding="utf-8"))
            read, *rest = await self.exit_stack.enter_async_context(stdio_client(params, errlog=errlog))
            transport = (_NotingStream(read, on_bad_message), *rest)
            return await self._initialize_session_with_transport(transport, f"stdio server {self.command}")

    class StdioInfo(StdioServerInfo):
        def create_client(self) -> Any:
            return LoggedStdioClient(self.command, self.args, self.env, max_retries=0)

    logging.getLogger("mcp.client.stdio").addFilter(_PARSE_ERRORS)  # once: a filter is added only once
    if server.transport == "http":
        headers: dict[str, Any] = dict(secrets)
        return HttpInfo(url=server.url, headers=headers or None, max_retries=0)
    return StdioInfo(command=server.command, args=list(server.args), env=dict(secrets))


def resolved(server: McpServer, settings: ToolsSettings) -> dict[str, str]:
    """What the server is started with from the keychain too: a stdio server's environment, an HTTP server's
    headers (blocking: the keychain may take seconds)."""
    if server.transport == "http":
        return settings.resolved_headers(server)
    return settings.resolved_env(server)


def fingerprint(server: McpServer, secrets: dict[str, str]) -> str:
    """A digest of everything a server is started with (its settings and its keychain values), to tell
    whether a running server's settings changed without keeping the values themselves twice."""
    data = json.dumps([server.model_dump(mode="json"), secrets], sort_keys=True)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


@dataclass
class McpConnection:
    """One server's toolset, its state and (stdio) its process group."""

    server: McpServer
    settings: ToolsSettings
    logs: Path | None = None
    connect_timeout_s: float = 30.0
    call_timeout_s: float = 60.0
    state: ServerState = field(init=False)
    tools: list[Tool] = field(default_factory=list, init=False)
    pgid: int | None = field(default=None, init=False)
    started_with: str = field(default="", init=False)  # fingerprint() of what the last connect used
    # What the server last sent that is not JSON-RPC (stdio; "": nothing since the last call began).
    bad_message: str = field(default="", init=False)
    _toolset: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.state = ServerState(self.server.name, "stopped")

    @property
    def log_path(self) -> Path | None:
        if self.logs is None or self.server.transport != "stdio":
            return None
        return self.logs / f"mcp-{self.server.name}.log"

    def connect(self) -> ServerState:
        """Start (stdio) or reach (HTTP) the server and load its tools; blocking — call from a thread."""
        from haystack_integrations.tools.mcp import MCPToolset

        self.state = ServerState(self.server.name, "starting")
        log_path = self.log_path
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("", encoding="utf-8")  # this start's lines only
        me = psutil.Process()
        with _START_LOCK:
            before = {p.pid for p in me.children(recursive=True)}
            try:
                secrets = resolved(self.server, self.settings)
                self.started_with = fingerprint(self.server, secrets)
                info = _server_info(self.server, secrets, log_path, self._note_bad_message)
                toolset = MCPToolset(
                    info,
                    connection_timeout=self.connect_timeout_s,
                    invocation_timeout=self.call_timeout_s,
                    eager_connect=True,
                )
            except Exception as exc:  # noqa: BLE001 - every failure to start is a state with its reason
                self._note_group(me, before)
                self._end_group()
                self.state = ServerState(
                    self.server.name, "failed", reason=_reason(exc, log_path, self.connect_timeout_s)
                )
                return self.state
            self._note_group(me, before)
        self._toolset = toolset
        self.tools = [self._text_tool(tool) for tool in toolset]
        self.state = ServerState(self.server.name, "ready", tuple(t.name for t in self.tools))
        return self.state

    def _text_tool(self, tool: Tool) -> Tool:
        """The same tool, answering with the text of the MCP result; a call that fails because the server
        process is gone marks the server failed."""
        from haystack.tools.tool import Tool

        original: Callable[..., Any] = tool.invoke

        def call(**kwargs: Any) -> str:
            self.bad_message = ""
            try:
                return mcp_text(original(**kwargs))
            except Exception as exc:
                if self.bad_message:
                    # It broke the protocol: no answer will come on this connection; said, not "timed out".
                    reason = (
                        f"it sent something that is not JSON-RPC during a call of {tool.name} "
                        f"({self.bad_message})"
                    )
                    self.state = ServerState(self.server.name, "failed", reason=reason)
                    raise RuntimeError(f"The MCP server {self.server.name} failed: {reason}.") from exc
                if self.pgid is not None and _gone_soon(self.pgid):
                    reason = "the server stopped during a call of " + tool.name
                    tail = _log_tail(self.log_path) if self.log_path is not None else ""
                    self.state = ServerState(
                        self.server.name, "failed", reason=f"{reason}; {tail}" if tail else reason
                    )
                raise

        return Tool(name=tool.name, description=tool.description, parameters=tool.parameters, function=call)

    def _note_bad_message(self, exc: Exception) -> None:
        lines = str(exc).splitlines()
        self.bad_message = f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__

    def _note_group(self, me: psutil.Process, before: set[int]) -> None:
        if self.server.transport != "stdio":
            return
        for child in me.children(recursive=True):
            if child.pid in before:
                continue
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(child.pid) == child.pid:  # the SDK starts it as the leader of a new session
                    self.pgid = child.pid
                    return

    def close(self, grace_s: float = 3.0) -> None:
        """Close the session and end the server's process group (blocking — call from a thread)."""
        toolset, self._toolset = self._toolset, None
        if toolset is not None:
            with contextlib.suppress(Exception):
                toolset.close()
        self._end_group(grace_s)
        self.tools = []
        if self.state.status != "failed":
            self.state = ServerState(self.server.name, "stopped")

    def _end_group(self, grace_s: float = 3.0) -> None:
        pgid, self.pgid = self.pgid, None
        if pgid is None:
            return
        deadline = time.monotonic() + grace_s
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not _group_alive(pgid):
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
            end = time.monotonic() + 2.0
            while _group_alive(pgid) and time.monotonic() < end:
                time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A leader that exited but was not reaped yet is a zombie: not alive for our purpose.
    for proc in psutil.process_iter(["pid"]):
        try:
            if _pgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            continue  # gone while we looked
    return False


def _gone_soon(pgid: int, wait_s: float = 1.0) -> bool:
    """Whether the group ends within ``wait_s`` (a server that failed a call may be exiting right now)."""
    deadline = time.monotonic() + wait_s
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


class McpManager:
    """The configured MCP servers: start the ones a conversation uses, hand out their tools, stop them all."""

    def __init__(
        self,
        settings: ToolsSettings,
        *,
        logs: Path | None = None,
        connect_timeout_s: float = 30.0,
        call_timeout_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self.logs = logs
        self.connect_timeout_s = connect_timeout_s
        self.call_timeout_s = call_timeout_s
        self.connections: dict[str, McpConnection] = {}
        self.state_changed: Event[ServerState] = Event("state_changed")

    def states(self) -> list[ServerState]:
        config = self.settings.load()
        out = []
        for server in config.servers:
            conn = self.connections.get(server.name)
            if unused_reason(server.name):
                out.append(ServerState(server.name, "failed", reason=unused_reason(server.name)))
            else:
                out.append(conn.state if conn is not None else ServerState(server.name, "stopped"))
        return out

    async def start(self, name: str) -> ServerState:
        """Start one server (again, if it failed); its state says how it went (never raises for a failed
        start; :class:`engine.tools.config.ServerNotFound` for an unknown name). A server with a built-in
        tool's name (an older tools.toml) is never started: failed, saying why."""
        server = self.settings.load().server(name)
        if unused_reason(name):
            state = ServerState(name, "failed", reason=unused_reason(name))
            self.state_changed.emit(state)
            return state
        conn = self.connections.get(name)
        if conn is not None and conn.state.status == "ready":
            return conn.state
        if conn is not None:
            await asyncio.to_thread(conn.close)
        conn = McpConnection(server, self.settings, self.logs, self.connect_timeout_s, self.call_timeout_s)
        self.connections[name] = conn
        self.state_changed.emit(ServerState(name, "starting"))
        state = await asyncio.to_thread(conn.connect)
        self.state_changed.emit(state)
        return state

    def tools(self, names: list[str]) -> tuple[list[Tool], dict[str, str]]:
        """The tools of these ready servers, and which server each tool belongs to. A tool name two servers
        share is given as ``<server>_<tool>`` for the later one, and a built-in tool's name always is: the
        model and the cards never confuse a server's tool with the built-in one."""
        from haystack.tools.tool import Tool

        from engine.tools.builtin import BUILTIN_NAMES

        tools: list[Tool] = []
        owners: dict[str, str] = {}
        for name in names:
            conn = self.connections.get(name)
            if conn is None or conn.state.status != "ready":
                continue
            for tool in conn.tools:
                if tool.name in owners or tool.name in BUILTIN_NAMES:
                    tool = Tool(
                        name=f"{name}_{tool.name}"[:64],
                        description=tool.description,
                        parameters=tool.parameters,
                        function=tool.function,
                    )
                tools.append(tool)
                owners[tool.name] = name
        return tools, owners

    async def stop(self, name: str) -> None:
        conn = self.connections.pop(name, None)
        if conn is not None:
            await asyncio.to_thread(conn.close)
            self.state_changed.emit(ServerState(name, "stopped"))

    async def reload(self) -> list[str]:
        """The tools file changed (``vllm-desk tools add-mcp / edit-mcp / remove`` from another process, or
        the Tools page): stop every server running with settings that are not the file's now — removed,
        changed, or with other keychain values — so its next use starts it anew; the names stopped. A
        server still starting is left to finish (the next change, or an edit, stops it)."""
        config = await asyncio.to_thread(self.settings.load)
        now = {server.name: server for server in config.servers}
        stale: list[tuple[str, McpConnection]] = []
        for name, conn in list(self.connections.items()):
            server = now.get(name)
            if conn.state.status == "starting":
                continue
            if server is None or server != conn.server or unused_reason(name):
                stale.append((name, conn))
                continue
            secrets = await asyncio.to_thread(resolved, server, self.settings)
            if fingerprint(server, secrets) != conn.started_with:
                stale.append((name, conn))
        for name, conn in stale:
            if self.connections.get(name) is conn:  # not started anew meanwhile
                await self.stop(name)
        return [name for name, _conn in stale]

    async def aclose(self) -> None:
        """Stop every server (the app's shutdown): no server process is left behind."""
        for name in list(self.connections):
            await self.stop(name)
