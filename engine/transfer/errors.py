"""Problems of exporting and importing conversation files, in words a user understands."""

from __future__ import annotations

from pathlib import Path

from engine.errors import DeskError, Fix


class TransferError(DeskError):
    title = "Export or import failed"


class ImportRejected(TransferError):
    """A file that cannot be imported. ``what`` is the problem, ``where`` the place in the file.

    Raised before anything is written, so the history is exactly as it was.
    """

    title = "The file cannot be imported"

    def __init__(self, what: str, where: str = "", path: Path | None = None) -> None:
        self.what = what
        self.where = where
        self.path = path
        super().__init__(
            self._sentence(),
            fix=Fix(
                action="choose_import_file",
                label="Choose another file",
                hint="Nothing was imported. Check that the file is a vLLM Desk or ChatGPT export "
                "and that it was copied completely.",
            ),
        )

    def _sentence(self) -> str:
        name = f"{self.path.name}: " if self.path is not None else ""
        place = f" (at {self.where})" if self.where else ""
        return f"{name}{self.what}{place}. Nothing was imported."

    def at(self, path: Path) -> ImportRejected:
        """The same problem, naming the file it came from."""
        self.path = path
        self.message = self._sentence()
        self.args = (self.message,)
        return self


class ExportFailed(TransferError):
    title = "The export could not be written"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"vLLM Desk could not write {path} ({reason}).",
            fix=Fix(
                action="choose_export_path", label="Choose another place", hint="Export to another folder."
            ),
        )
        self.path = path


class PdfUnavailable(TransferError):
    title = "PDF export is not available"

    def __init__(self) -> None:
        super().__init__(
            "PDF export needs Qt's PDF writer, which comes with the desktop part of vLLM Desk (PySide6).",
            fix=Fix(
                action="install_desktop",
                label="Install PySide6",
                hint="Install vLLM Desk with its desktop part (PySide6), or export HTML and print it.",
            ),
        )
