"""Conversation files: export to JSON (ours, lossless), Markdown, HTML (and PDF via the desktop); import of
our JSON (any version) and ChatGPT's ``conversations.json``. See docs/export-format.md."""

from engine.transfer.errors import (
    ExportFailed,
    ImportRejected,
    PdfUnavailable,
    TransferError,
)
from engine.transfer.exporter import EXPORT_FORMATS, ExportSummary, export_from_store, write_conversations
from engine.transfer.importer import (
    IMPORT_FORMATS,
    ImportLimits,
    ImportSummary,
    import_path,
    read_conversations,
)
from engine.transfer.model import ExportedConversation, ExportedMessage

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "ExportFailed",
    "ExportSummary",
    "ExportedConversation",
    "ExportedMessage",
    "ImportLimits",
    "ImportRejected",
    "ImportSummary",
    "PdfUnavailable",
    "TransferError",
    "export_from_store",
    "import_path",
    "read_conversations",
    "write_conversations",
]
