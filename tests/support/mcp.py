"""The test MCP server (tests/engine/tools/mcp_server.py, written with the mcp SDK) as tools.toml names it.
No Qt here: the engine's tests use it too."""

from __future__ import annotations

import sys

from engine.tools.config import McpServer
from tests.support.standin.launch import REPO_ROOT

MCP_SERVER = str(REPO_ROOT / "tests" / "engine" / "tools" / "mcp_server.py")


def stdio_test_server(name: str = "desk", *args: str) -> McpServer:
    """The test server over stdio, named ``name``; ``args``: its mode and options (default: ``stdio``, the
    plain one; see the server's ``main`` for the others)."""
    return McpServer(
        name=name, transport="stdio", command=sys.executable, args=[MCP_SERVER, *(args or ("stdio",))]
    )
