"""PDF export through Qt's own PDF writer, from the print variant of the HTML export.

``QTextDocument.print_`` paginates the document and numbers the pages; the print HTML wraps code blocks
(``white-space: pre-wrap``) so that no line runs off the page. It needs a ``QGuiApplication``: inside the app
there is one; from the command line an offscreen one is made (no display is needed to write a PDF).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMarginsF
from PySide6.QtGui import QFont, QGuiApplication, QPageLayout, QPageSize, QPdfWriter, QTextDocument

from engine import APP_NAME, __version__
from engine.transfer.errors import ExportFailed

_app: QGuiApplication | None = None


def print_document(html: str) -> QTextDocument:
    """The document :func:`write_pdf` lays out on pages (also to look at it, e.g. in tests)."""
    _ensure_app()
    document = QTextDocument()
    document.setDefaultFont(QFont("DejaVu Sans", 10))
    # No remote or local resource may load while laying out untrusted text (the HTML has none, by design).
    document.setMetaInformation(QTextDocument.MetaInformation.DocumentUrl, "")
    document.setHtml(html)
    return document


def write_pdf(html: str, out: Path) -> None:
    """Render ``html`` (``render_html(..., for_print=True)``) to an A4 PDF at ``out``."""
    document = print_document(html)
    writer = QPdfWriter(str(out))
    writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
    writer.setPageMargins(QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter)
    writer.setTitle(document.metaInformation(QTextDocument.MetaInformation.DocumentTitle))
    writer.setCreator(f"{APP_NAME} {__version__}")
    # print_ lays the document out on pages and draws the page number at the foot of each.
    document.print_(writer)
    del writer  # the file is finished when the writer goes away
    if not out.exists() or out.stat().st_size == 0:
        raise ExportFailed(out, "Qt's PDF writer produced no file")


def _ensure_app() -> None:
    global _app
    if QGuiApplication.instance() is None:
        _app = QGuiApplication(["vllm-desk", "-platform", "offscreen"])
