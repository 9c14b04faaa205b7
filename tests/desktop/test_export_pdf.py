"""PDF export through Qt's PDF writer: a valid PDF, the text findable by pdftotext, code wrapped, pages
numbered; and the same from the command line through the capability the desktop registers."""

from __future__ import annotations

import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from desktop.capabilities import available
from desktop.export_pdf import write_pdf
from desktop.main import main
from engine.transfer.html_format import render_html
from engine.transfer.model import ExportedMessage
from tests.engine.transfer_trees import T0, sample_conversation

pytestmark = [pytest.mark.gui, pytest.mark.tools]
CHATGPT = Path(__file__).parents[1] / "engine" / "fixtures" / "chatgpt_conversations.json"


def _text(pdf: Path, *pages: int) -> str:
    args = ["pdftotext", "-layout"]
    if pages:
        args += ["-f", str(pages[0]), "-l", str(pages[-1])]
    return subprocess.run(
        [*args, str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def _pages(pdf: Path) -> int:
    info = subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1])


def test_pdf_is_valid_with_text_wrapped_code_and_page_numbers(qapp: Any, tmp_path: Path) -> None:
    conv = sample_conversation()
    long_line = "x = '" + "WRAP" * 60 + "'"
    long = ExportedMessage(
        "6", "5", "assistant", f"```python\n{long_line}\n```\n\n" + "Filler text. " * 900, T0
    )
    conv = replace(conv, messages=(*conv.messages, long), shown_leaf="6")
    out = tmp_path / "chat.pdf"
    write_pdf(render_html(conv, for_print=True), out)

    assert out.read_bytes().startswith(b"%PDF-")
    pages = _pages(out)
    assert pages >= 2
    text = _text(out)
    assert "Reversing lists" in text
    assert "How do I reverse a list in Python?" in text
    assert "print(items[::-1])" in text
    # The 250-character code line is wrapped onto several lines, and none of it is lost.
    wrap_lines = [line for line in text.splitlines() if "WRAP" in line]
    assert len(wrap_lines) >= 2
    assert "".join(line.strip() for line in wrap_lines).count("WRAP") == 60
    # Qt numbers every page at its foot.
    for page in range(1, pages + 1):
        last = [line.strip() for line in _text(out, page).splitlines() if line.strip()][-1]
        assert last == str(page)


def test_cli_exports_pdf_through_the_desktop_capability(
    qapp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "pdf" in available()
    home = str(tmp_path / "home")
    assert main(["--data-dir", home, "import", str(CHATGPT)]) == 0
    capsys.readouterr()
    target = tmp_path / "pdfs.zip"
    assert main(["--data-dir", home, "export", "--all", "--format", "pdf", "-o", str(target)]) == 0
    assert "Exported 2 conversations" in capsys.readouterr().out
    with zipfile.ZipFile(target) as archive:
        names = sorted(archive.namelist())
        assert all(name.endswith(".pdf") for name in names)
        archive.extractall(tmp_path / "unzipped")
    texts = [_text(tmp_path / "unzipped" / name) for name in names]
    assert any("British Shorthair" in t for t in texts)
    assert any("Sorting dicts in Python" in t for t in texts)
