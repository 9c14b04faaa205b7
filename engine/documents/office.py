"""PowerPoint (.pptx) and Excel (.xlsx) files to text with the standard library.

Both are zip archives of XML (Office Open XML). Haystack's ``PPTXToDocument`` and ``XLSXToDocument`` would
need python-pptx, or pandas + openpyxl (~60 MB for spreadsheets alone); the text is a few XML elements away:

- PPTX: each slide's paragraphs (``a:p``, runs ``a:t`` joined), a slide per page (``\\f`` between them, so a
  passage's page is its slide number), slides in presentation order.
- XLSX: each sheet as a ``# Sheet name`` heading and its rows as a Markdown table (shared strings, inline
  strings, numbers as written), so a passage's section is its sheet.

A damaged, password-protected (an encrypted OOXML file is not a zip) or oversized archive is refused with
that reason. Blocking: callers run it in a thread.
"""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree

MAX_MEMBER_BYTES = 200 * 2**20  # an XML part unpacking to more than this is a zip bomb, not a document
MAX_ROWS = 100_000

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"


class OfficeFileError(Exception):
    """Why an Office file cannot be read, in words."""


def _archive(data: bytes, what: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise OfficeFileError(
            f"the {what} file is damaged or password-protected and cannot be read (save an unlocked copy)"
        ) from exc
    for info in archive.infolist():
        if info.file_size > MAX_MEMBER_BYTES:
            raise OfficeFileError(f"the {what} file unpacks to more than {MAX_MEMBER_BYTES // 2**20} MB")
    return archive


def _xml(archive: zipfile.ZipFile, name: str, what: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(archive.read(name))
    except KeyError as exc:
        raise OfficeFileError(f"the {what} file is damaged: it has no {name}") from exc
    except (ElementTree.ParseError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise OfficeFileError(f"the {what} file is damaged and cannot be read ({exc})") from exc


def _targets(archive: zipfile.ZipFile, rels: str, base: str, what: str) -> dict[str, str]:
    """Relationship id -> part name, from a ``_rels`` file whose targets are relative to ``base``."""
    out = {}
    for rel in _xml(archive, rels, what).iter(f"{_REL}Relationship"):
        target = rel.get("Target", "")
        out[rel.get("Id", "")] = target.lstrip("/") if target.startswith("/") else f"{base}/{target}"
    return out


def pptx_text(data: bytes) -> str:
    """The slides' text, one slide per page (``\\f`` between slides)."""
    archive = _archive(data, "PPTX")
    presentation = _xml(archive, "ppt/presentation.xml", "PPTX")
    targets = _targets(archive, "ppt/_rels/presentation.xml.rels", "ppt", "PPTX")
    slides = []
    for slide_id in presentation.iter(f"{_P}sldId"):
        part = targets.get(slide_id.get(f"{_R}id", ""))
        if part is None:
            continue
        root = _xml(archive, part, "PPTX")
        paragraphs = ["".join(t.text or "" for t in p.iter(f"{_A}t")) for p in root.iter(f"{_A}p")]
        slides.append("\n".join(p.strip() for p in paragraphs if p.strip()))
    return "\f".join(slides)


def xlsx_text(data: bytes) -> str:
    """Each sheet as ``# name`` and a Markdown table of its rows."""
    archive = _archive(data, "XLSX")
    workbook = _xml(archive, "xl/workbook.xml", "XLSX")
    targets = _targets(archive, "xl/_rels/workbook.xml.rels", "xl", "XLSX")
    shared: list[str] = []
    if "xl/sharedStrings.xml" in archive.namelist():
        for item in _xml(archive, "xl/sharedStrings.xml", "XLSX").iter(f"{_S}si"):
            shared.append("".join(t.text or "" for t in item.iter(f"{_S}t")))
    parts = []
    for sheet in workbook.iter(f"{_S}sheet"):
        part = targets.get(sheet.get(f"{_R}id", ""))
        if part is None:
            continue
        rows = _rows(_xml(archive, part, "XLSX"), shared)
        if rows:
            parts.append(f"# {sheet.get('name', 'Sheet')}\n\n{_table(rows)}")
    return "\n\n".join(parts)


def _rows(sheet: ElementTree.Element, shared: list[str]) -> list[list[str]]:
    rows = []
    for row in sheet.iter(f"{_S}row"):
        cells: dict[int, str] = {}
        for cell in row.iter(f"{_S}c"):
            value = _cell_value(cell, shared)
            if value:
                cells[_column(cell.get("r", ""), len(cells))] = value
        if cells:
            rows.append([cells.get(i, "") for i in range(max(cells) + 1)])
        if len(rows) >= MAX_ROWS:
            break
    return rows


def _cell_value(cell: ElementTree.Element, shared: list[str]) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter(f"{_S}t")).strip()
    value = cell.find(f"{_S}v")
    text = (value.text or "") if value is not None else ""
    if kind == "s":
        try:
            return shared[int(text)].strip()
        except (ValueError, IndexError):
            return ""
    return text.strip()


def _column(ref: str, fallback: int) -> int:
    """ "C7" -> 2 (0-based); a cell without a reference follows the one before."""
    letters = re.match(r"[A-Z]+", ref)
    if letters is None:
        return fallback
    number = 0
    for letter in letters.group(0):
        number = number * 26 + ord(letter) - 64
    return number - 1


def _table(rows: list[list[str]]) -> str:
    width = max(len(r) for r in rows)

    def line(cells: list[str]) -> str:
        padded = [c.replace("|", "\\|").replace("\n", " ") for c in cells] + [""] * (width - len(cells))
        return "| " + " | ".join(padded) + " |"

    head, *body = rows
    return "\n".join([line(head), "|" + "---|" * width, *(line(r) for r in body)])
