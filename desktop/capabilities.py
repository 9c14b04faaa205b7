"""Capabilities only the Qt side can provide to the engine's command line (e.g. PDF rendering)."""

from __future__ import annotations

from pathlib import Path


def available() -> dict[str, object]:
    """Map capability name -> callable; looked up by engine CLI commands that need them."""
    caps: dict[str, object] = {"pdf": _write_pdf}
    return caps


def _write_pdf(html: str, out: Path) -> None:
    # Qt's GUI module is loaded only when a PDF is actually written.
    from desktop.export_pdf import write_pdf

    write_pdf(html, out)
