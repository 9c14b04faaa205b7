"""Files to text, through Haystack's converters: one :class:`Converted` per file, or a :class:`FileRejected`.

- PDF: Haystack's ``PyPDFToDocument`` (pypdf); pages are separated by form feeds (``\\f``). Checked first with
  pypdf, so that an encrypted or damaged file says so; a PDF with no text layer (scanned pages) is refused
  as such: there is no OCR.
- DOCX: Haystack's ``DOCXToDocument`` (python-docx; tables as Markdown, page breaks as ``\\f``); paragraphs in
  a Heading/Title style are marked ``#`` so sections have names.
- PPTX and XLSX: :mod:`engine.documents.office` (the standard library's zip and XML; a slide per page, a
  sheet per ``#`` section with its rows as a Markdown table).
- HTML: :func:`html_to_markdown` on the standard library's parser (Haystack's ``HTMLToDocument`` needs
  trafilatura and a dozen packages, and its plain-text output drops the headings).
- Markdown, plain text, CSV and other text files: decoded by :func:`decode_text`, which refuses binary junk.

Everything here is blocking: callers run it in a thread.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from engine.errors import DeskError

# Bigger files are refused rather than read into memory: a 1 GB log or dump is not a document.
MAX_FILE_BYTES = 100 * 2**20

KINDS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".log": "text",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "text",
}


class FileRejected(DeskError):
    """One file that cannot be indexed, and why in words; the other files go on."""

    title = "A file could not be indexed"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Converted:
    """A file's text. ``paged``: pages are separated by ``\\f``; ``structured``: ``#`` lines are headings."""

    text: str
    kind: str
    paged: bool = False
    structured: bool = False

    @property
    def pages(self) -> int:
        return self.text.count("\f") + 1 if self.paged else 0


def kind_of(path: Path) -> str | None:
    """The converter for ``path`` by its extension, or None when the format is not supported."""
    return KINDS.get(path.suffix.lower())


def convert_bytes(path: Path, data: bytes) -> Converted:
    """Convert ``data`` (the bytes of ``path``) by the file's extension; raises :class:`FileRejected`."""
    kind = kind_of(path)
    if kind is None:
        raise FileRejected(path, f"the format {path.suffix or '(no extension)'} is not supported")
    if len(data) > MAX_FILE_BYTES:
        raise FileRejected(path, _too_big(len(data)))
    if kind == "pdf":
        converted = _pdf(path, data)
    elif kind == "docx":
        converted = _docx(path, data)
    elif kind in ("pptx", "xlsx"):
        converted = _office(path, data, kind)
    elif kind == "html":
        converted = Converted(html_to_markdown(decode_text(path, data)), kind, structured=True)
    else:
        converted = Converted(decode_text(path, data), kind, structured=kind == "markdown")
    if not converted.text.replace("\f", "").strip():
        if kind == "pdf":
            raise FileRejected(
                path,
                "the PDF has no text layer (scanned pages or images only); vLLM Desk does not read text "
                "from images (no OCR)",
            )
        raise FileRejected(path, "the file holds no text")
    return converted


def _office(path: Path, data: bytes, kind: str) -> Converted:
    from engine.documents.office import OfficeFileError, pptx_text, xlsx_text

    try:
        if kind == "pptx":
            return Converted(pptx_text(data), kind, paged=True)
        return Converted(xlsx_text(data), kind, structured=True)
    except OfficeFileError as exc:
        raise FileRejected(path, str(exc)) from exc


def _too_big(size: int) -> str:
    return (
        f"the file is {size / 2**20:,.0f} MB; files over {MAX_FILE_BYTES // 2**20} MB are not indexed "
        "(split it into smaller files)"
    )


def decode_text(path: Path, data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252; binary data is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise FileRejected(path, "the file claims to be UTF-16 text but is not") from exc
    if b"\x00" in data[:65536]:
        raise FileRejected(path, "the file is binary data, not text (despite its extension)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    replaced = sample.count("\ufffd")
    if sample and (controls + replaced) / len(sample) > 0.01:
        raise FileRejected(path, "the file is binary data, not text (despite its extension)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _pdf(path: Path, data: bytes) -> Converted:
    from haystack.components.converters import PyPDFToDocument
    from haystack.dataclasses import ByteStream
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        locked = reader.is_encrypted and not reader.decrypt("")
        pages = 0 if locked else len(reader.pages)
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise FileRejected(path, f"the PDF is damaged and cannot be read ({exc})") from exc
    if locked:
        raise FileRejected(path, "the PDF is encrypted (password-protected); save an unlocked copy")
    if reader.is_encrypted:
        # Only an owner password (no user password): the text is readable; Haystack's converter cannot
        # decrypt, so it gets the decrypted pages.
        text = "\f".join((page.extract_text() or "") for page in reader.pages)
        return Converted(text, "pdf", paged=True)
    result = PyPDFToDocument().run(sources=[ByteStream(data, meta={"file_path": str(path)})])
    documents = result["documents"]
    if not documents:
        raise FileRejected(path, "the PDF is damaged and cannot be read")
    text = documents[0].content or ""
    # Haystack separates pages with \f; an empty page adds none, so pad to the real count for page numbers.
    text += "\f" * max(0, pages - 1 - text.count("\f"))
    return Converted(text, "pdf", paged=True)


def _docx(path: Path, data: bytes) -> Converted:
    import docx
    from haystack.components.converters import DOCXToDocument
    from haystack.dataclasses import ByteStream

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zip, XML and KeyError alike for a damaged file
        raise FileRejected(path, f"the DOCX file is damaged and cannot be read ({exc})") from exc
    headings = []
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        level = _heading_level(style or "")
        if level and paragraph.text.strip():
            headings.append((level, paragraph.text))
    result = DOCXToDocument(table_format="markdown").run(sources=[ByteStream(data)])
    if not result["documents"]:
        raise FileRejected(path, "the DOCX file is damaged and cannot be read")
    text = result["documents"][0].content or ""
    return Converted(_mark_headings(text, headings), "docx", paged="\f" in text, structured=True)


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return min(int(match.group(1)), 6) if match else 0


def _mark_headings(text: str, headings: list[tuple[int, str]]) -> str:
    """Prefix the converter's lines that are the document's headings (in order) with ``#``."""
    lines = text.split("\n")
    want = iter(headings)
    current = next(want, None)
    for i, line in enumerate(lines):
        if current is not None and line.strip() == current[1].strip():
            lines[i] = "#" * current[0] + " " + line.strip()
            current = next(want, None)
    return "\n".join(lines)


_BLOCKS = {"p", "div", "section", "article", "li", "tr", "br", "pre", "blockquote", "table", "ul", "ol", "hr"}
_SKIP = {"script", "style", "noscript", "template", "svg", "head"}


class _MarkdownWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.heading = int(tag[1])
            self.out.append("\n\n" + "#" * self.heading + " ")
        elif tag in _BLOCKS:
            self.out.append("\n" if tag in ("br", "li", "tr") else "\n\n")
        elif tag in ("td", "th"):
            self.out.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self.heading = 0
            self.out.append("\n\n")
        elif tag in _BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        text = re.sub(r"\s+", " ", data)
        if self.heading:
            text = text.replace("\n", " ")
        self.out.append(text)


def html_to_markdown(html: str) -> str:
    """Readable text of an HTML page with its headings as ``#`` lines (scripts, styles and head dropped)."""
    writer = _MarkdownWriter()
    writer.feed(html)
    writer.close()
    text = "".join(writer.out)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n[ \t]+", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
