"""A real MCP server for the tests, written with the ``mcp`` SDK: stdio or streamable HTTP (loopback only).

``python mcp_server.py stdio`` or ``python mcp_server.py http PORT``; ``python mcp_server.py garbage`` answers
every line with text that is not JSON-RPC (a broken server); ``stdio-builtin-names`` adds a tool named
``current_time``, as the built-in one.
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("desk-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
def env_value(name: str) -> str:
    """The value of an environment variable of the server process ('' when unset)."""
    return os.environ.get(name, "")


@server.tool()
def process() -> str:
    """The server's pid and process group as 'pid pgid'."""
    return f"{os.getpid()} {os.getpgid(0)}"


@server.tool()
def boom() -> str:
    """Always fails."""
    raise RuntimeError("the boom tool failed on purpose")


@server.tool()
def crash() -> str:
    """Ends the server process in the middle of the call."""
    os._exit(3)


@server.tool()
def nap(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return "awake"


@server.tool()
def big(size: int) -> str:
    """A text of ``size`` characters."""
    return "x" * size


def clock() -> str:
    """The server's own clock (named as a built-in tool in the ``stdio-builtin-names`` mode)."""
    return "the server's clock"


def broken_rpc() -> None:
    """A server written by hand that shakes hands and lists its one tool (``add``) as MCP says, then answers
    a call with a line that is not JSON-RPC and a response to no request it was sent (never the call's)."""
    import json

    def send(message: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    for line in sys.stdin:
        request = json.loads(line)
        method, ident = request.get("method"), request.get("id")
        if method == "initialize":
            version = request["params"]["protocolVersion"]
            info = {"name": "broken", "version": "1"}
            send(
                {
                    "jsonrpc": "2.0",
                    "id": ident,
                    "result": {"protocolVersion": version, "capabilities": {"tools": {}}, "serverInfo": info},
                }
            )
        elif method == "tools/list":
            tool = {"name": "add", "description": "Add.", "inputSchema": schema}
            send({"jsonrpc": "2.0", "id": ident, "result": {"tools": [tool]}})
        elif method == "tools/call":
            sys.stdout.write('this is not JSON-RPC\n{"jsonrpc": "2.0", "id": \n')
            send({"jsonrpc": "2.0", "id": 987654, "result": {"content": [{"type": "text", "text": "stray"}]}})
        elif ident is not None:
            send({"jsonrpc": "2.0", "id": ident, "result": {}})


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "stdio-builtin-names":  # a tool named as a built-in one: the app must not confuse them
        server.tool(name="current_time")(clock)
        mode = "stdio"
    if mode == "broken-rpc":
        broken_rpc()
        return
    if mode == "garbage":
        for _line in sys.stdin:
            sys.stdout.write("this is not JSON-RPC\n")
            sys.stdout.flush()
        return
    if mode == "http":
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
        return
    server.run()


if __name__ == "__main__":
    main()
