"""PowerPoint and Excel files (made by python-pptx and openpyxl: tests/engine/fixtures/documents/) to text:
a slide per page, a sheet per section with its rows as a table; damaged and oversized archives refused; and
indexed into passages that know their slide or sheet."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from engine.documents import office
from engine.documents.convert import FileRejected, convert_bytes
from engine.documents.embedder import Embedder
from engine.documents.index import Indexer
from engine.documents.retrieval import Retriever
from engine.documents.store import DocumentStore

FIXTURES = Path(__file__).parents[1] / "fixtures" / "documents"


def test_a_pptx_gives_a_page_per_slide_in_order() -> None:
    converted = convert_bytes(Path("review.pptx"), (FIXTURES / "review.pptx").read_bytes())
    assert converted.kind == "pptx"
    assert converted.pages == 2
    first, second = converted.text.split("\f")
    assert first.splitlines() == [
        "Quarterly review",
        "Revenue grew by 12 percent.",
        "Exports drove most of it.",
    ]
    assert second.splitlines() == ["Lighthouses", "The keeper of the Kelvar lighthouse is Maren Holt."]


def test_an_xlsx_gives_each_sheet_as_a_section_with_a_table() -> None:
    converted = convert_bytes(Path("prices.xlsx"), (FIXTURES / "prices.xlsx").read_bytes())
    assert converted.kind == "xlsx"
    assert converted.structured
    assert converted.text == (
        "# Prices\n\n"
        "| Fruit | Price | Origin |\n|---|---|---|\n| Apples | 3 | Normandy |\n"
        "| Pears | 5.5 | Anjou \\| Loire |"
        "\n\n# Stock\n\n"
        "| Item |  | Count |\n|---|---|---|\n| Lamps |  | 42 |"
    )


@pytest.mark.parametrize("name", ["review.pptx", "prices.xlsx"])
def test_damaged_or_locked_office_files_are_refused_in_words(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    with pytest.raises(FileRejected, match="damaged or password-protected"):
        convert_bytes(Path(name), data[: len(data) // 2])  # cut short: no central directory
    # An encrypted Office file is an OLE compound file, not a zip.
    with pytest.raises(FileRejected, match="damaged or password-protected"):
        convert_bytes(Path(name), b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000))


def test_an_archive_that_unpacks_to_too_much_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(FileRejected, match="unpacks to more than"):
        convert_bytes(Path("review.pptx"), (FIXTURES / "review.pptx").read_bytes())


def test_a_zip_that_is_not_a_presentation_says_what_is_missing() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(FileRejected, match=r"it has no ppt/presentation\.xml"):
        convert_bytes(Path("fake.pptx"), buffer.getvalue())


def test_slides_and_sheets_are_indexed_with_their_page_and_section(
    tmp_path: Path, doc_store: DocumentStore, embedder: Embedder
) -> None:
    folder = tmp_path / "office"
    folder.mkdir()
    for name in ("review.pptx", "prices.xlsx"):
        (folder / name).write_bytes((FIXTURES / name).read_bytes())
    report = Indexer(doc_store, embedder).add("office", [folder])
    assert report.ok, report.failed
    retriever = Retriever(doc_store, embedder)
    [keeper] = retriever.search("Kelvar keeper", ["office"], top_k=1, mode="keyword")
    assert (Path(keeper.file).name, keeper.page) == ("review.pptx", 2)
    [lamps] = retriever.search("Lamps", ["office"], top_k=1, mode="keyword")
    assert (Path(lamps.file).name, lamps.section) == ("prices.xlsx", "Stock")
