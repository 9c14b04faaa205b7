"""Converters: real PDF, DOCX, HTML, Markdown and text files in, text with pages and headings out; bad files
refused with a reason in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.documents.convert import FileRejected, convert_bytes, html_to_markdown, kind_of
from tests.engine.documents.files import pdf_bytes, write_docx, write_encrypted_pdf, write_pdf


def convert(path: Path):  # type: ignore[no-untyped-def]
    return convert_bytes(path, path.read_bytes())


def test_pdf_pages_are_kept_including_an_empty_one(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "report.pdf", [["Revenue grew (a lot)."], [], ["Costs fell on page three."]])
    converted = convert(pdf)
    assert converted.paged
    assert converted.pages == 3
    pages = converted.text.split("\f")
    assert "Revenue grew (a lot)." in pages[0]
    assert pages[1].strip() == ""
    assert "Costs fell on page three." in pages[2]


def test_encrypted_pdf_says_so(tmp_path: Path) -> None:
    pdf = write_encrypted_pdf(tmp_path / "locked.pdf", [["secret text"]])
    with pytest.raises(FileRejected, match="encrypted"):
        convert(pdf)


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path) -> None:
    pdf = write_encrypted_pdf(tmp_path / "protected.pdf", [["open to read"], ["page two"]], password="")
    converted = convert(pdf)
    assert converted.pages == 2
    assert "open to read" in converted.text.split("\f")[0]
    assert "page two" in converted.text.split("\f")[1]


def test_pdf_without_a_text_layer_says_so_and_does_not_pretend_to_ocr(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "scan.pdf", [[], []])
    with pytest.raises(FileRejected, match=r"no text layer.*no OCR"):
        convert(pdf)


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\nnot really a pdf\n" * 20, pdf_bytes([["text"]])[:150], b""],
    ids=["garbage", "truncated", "empty"],
)
def test_damaged_pdf_says_so(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    with pytest.raises(FileRejected, match="damaged"):
        convert(path)


def test_docx_headings_become_a_section_path(tmp_path: Path) -> None:
    docx = write_docx(
        tmp_path / "manual.docx",
        [
            ("Title", "Manual"),
            ("", "Intro text."),
            ("Heading 1", "Install"),
            ("Heading 2", "Linux"),
            ("", "apt"),
        ],
    )
    converted = convert(docx)
    assert converted.structured
    assert converted.text.splitlines() == ["# Manual", "Intro text.", "# Install", "## Linux", "apt"]


def test_damaged_docx_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is no zip")
    with pytest.raises(FileRejected, match="DOCX file is damaged"):
        convert(path)


def test_html_keeps_headings_and_drops_scripts_and_styles() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<h1>Guide</h1><p>Hello&nbsp;<b>world</b> &amp; friends.</p><script>alert(1)</script>"
        "<h2>More\n details</h2><ul><li>one</li><li>two</li></ul></body></html>"
    )
    text = html_to_markdown(html)
    assert "# Guide" in text.splitlines()
    assert "## More details" in text.splitlines()
    assert "Hello world & friends." in text
    assert "alert" not in text
    assert "color" not in text
    assert "T\n" not in text
    assert "one" in text
    assert "two" in text


def test_markdown_is_kept_as_written(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nSome *text*.\r\n", encoding="utf-8")
    converted = convert(path)
    assert converted.structured
    assert converted.text == "# Notes\n\nSome *text*.\n"


def test_text_encodings_utf8_bom_utf16_and_windows_1252(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes("\ufeffKöln".encode())
    (tmp_path / "b.txt").write_bytes("Köln".encode("utf-16"))
    (tmp_path / "c.txt").write_bytes("Köln – café".encode("cp1252"))
    assert convert(tmp_path / "a.txt").text == "Köln"
    assert convert(tmp_path / "b.txt").text == "Köln"
    assert convert(tmp_path / "c.txt").text == "Köln – café"


def test_binary_junk_with_a_text_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(FileRejected, match="binary data, not text"):
        convert(path)
    noisy = tmp_path / "noisy.md"
    noisy.write_bytes(b"text " + b"\x01\x02\x03\x04\x05" * 200)
    with pytest.raises(FileRejected, match="binary data"):
        convert(noisy)


def test_empty_and_unsupported_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "blank.txt").write_text("   \n\n")
    with pytest.raises(FileRejected, match="holds no text"):
        convert(tmp_path / "blank.txt")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(FileRejected, match=r"format \.jpg is not supported"):
        convert(tmp_path / "photo.jpg")


def test_kinds_by_extension() -> None:
    assert kind_of(Path("A.PDF")) == "pdf"
    assert kind_of(Path("x.htm")) == "html"
    assert kind_of(Path("data.csv")) == "csv"
    assert kind_of(Path("binary.exe")) is None
