"""The exported HTML opened in a real browser (headless Debian Chromium) with hostile model output:
no script runs and no request leaves the page. A control page without our protections proves the harness
sees both."""

from __future__ import annotations

import html
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.transfer.html_format import render_html
from tests.engine.transfer_trees import EXPORTED_AT, hostile_conversation

pytestmark = pytest.mark.tools

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # silence the default stderr log
        del format, args


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Recorder,), {"requests": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _open_in_chromium(page: Path, profile: Path) -> str:
    """The DOM after the page loaded and its scripts (if any) had 3 s of virtual time."""
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_control_page_shows_the_harness_detects_script_and_requests(
    tmp_path: Path, recorder: tuple[str, list[str]]
) -> None:
    base, seen = recorder
    page = tmp_path / "control.html"
    page.write_text(
        f"<html><head><title>control</title></head><body><script>document.title='PWNED-control'</script>"
        f'<img src="{base}/control.png"></body></html>',
        encoding="utf-8",
    )
    dom = _open_in_chromium(page, tmp_path / "profile")
    assert "<title>PWNED-control</title>" in dom
    assert "/control.png" in seen


def test_hostile_export_runs_nothing_and_loads_nothing(
    tmp_path: Path, recorder: tuple[str, list[str]]
) -> None:
    base, seen = recorder
    page = tmp_path / "export.html"
    page.write_text(render_html(hostile_conversation(base), exported_at=EXPORTED_AT), encoding="utf-8")
    all_branches = tmp_path / "all.html"
    all_branches.write_text(
        render_html(hostile_conversation(base), all_branches=True, exported_at=EXPORTED_AT), encoding="utf-8"
    )
    for path in (page, all_branches):
        dom = _open_in_chromium(path, tmp_path / "profile")
        title = dom.split("<title>", 1)[1].split("</title>", 1)[0]
        # Unchanged: every attack would have replaced it with "PWNED-<which>".
        assert html.unescape(title) == hostile_conversation(base).title
        # No element the attacks tried to smuggle in exists in the live DOM (they are escaped text).
        for tag in ("<script", "<img", "<iframe", "<svg", "<link"):
            assert tag not in dom, tag
        # The hostile text is there, as text: the page rendered rather than failing to load.
        assert "onerror=" in dom
        assert "a real link" in dom
    assert seen == []
