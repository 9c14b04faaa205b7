"""Preferences > Tools: adding a stdio server warns first and keeps secrets in the keychain; Check starts the
real MCP server and lists its tools; the built-in tools are listed."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel

from desktop.preferences.tools_page import ToolsPage
from engine.paths import AppPaths
from engine.secrets import SERVICE, SecretStore
from engine.tools.builtin import BUILTIN_NAMES
from engine.tools.config import STDIO_WARNING, tools_file
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
    page.add_button.click()
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
    page.add_button.click()
    assert page.add_problem.isVisible()
    assert "http://" in page.add_problem.text()
    assert not tools_file(app_paths.config).exists()
    page.url_edit.setText("http://127.0.0.1:9/mcp")
    page.headers_edit.setPlainText("Authorization: Bearer abc123")
    page.add_button.click()
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
    page.add_button.click()
    page.check_button.click()
    qtbot.waitUntil(lambda: "failed" in page.server_detail.text(), timeout=30000)
    assert "/nonexistent/mcp-server" in page.server_detail.text()
    assert "failed" in page.server_list.item(0).text()
