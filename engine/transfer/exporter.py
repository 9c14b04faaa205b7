"""Writing conversations to files: one conversation to a file, several to a folder, a zip or (JSON) one file.

JSON, Markdown and HTML are rendered here; PDF is drawn by a renderer the desktop package provides
(Qt's PDF writer), passed in as ``pdf`` so that the engine never imports Qt.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from engine.errors import DeskError
from engine.history.store import HistoryStore
from engine.transfer import history_adapter
from engine.transfer.errors import ExportFailed, PdfUnavailable
from engine.transfer.html_format import render_html
from engine.transfer.json_format import dumps, write_many
from engine.transfer.markdown_format import render_markdown
from engine.transfer.model import ExportedConversation

ExportFormat = Literal["json", "md", "html", "pdf"]
EXPORT_FORMATS: tuple[str, ...] = ("json", "md", "html", "pdf")
# (print-ready HTML, output file) -> writes a PDF there.
PdfRenderer = Callable[[str, Path], None]
Progress = Callable[[int, int], None]


@dataclass
class ExportSummary:
    files: list[Path] = field(default_factory=list)
    target: Path | None = None
    # Conversations a damaged history file would not give back (the rest are exported all the same).
    unreadable: list[int] = field(default_factory=list)

    def sentence(self) -> str:
        n = len(self.files)
        text = f"Exported {n} conversation{'s' if n != 1 else ''} to {self.target}."
        if self.unreadable:
            ids = " ".join(str(i) for i in self.unreadable[:20]) + (" …" if len(self.unreadable) > 20 else "")
            text += f" {len(self.unreadable)} could not be read from the damaged history file: {ids}."
        return text


def render_text(
    conv: ExportedConversation,
    fmt: ExportFormat,
    *,
    all_branches: bool = False,
    exported_at: datetime | None = None,
) -> str:
    """JSON, Markdown or HTML of one conversation (JSON always holds every branch)."""
    if fmt == "json":
        return dumps(conv, exported_at=exported_at) + "\n"
    if fmt == "md":
        return render_markdown(conv, all_branches=all_branches, exported_at=exported_at)
    if fmt == "html":
        return render_html(conv, all_branches=all_branches, exported_at=exported_at)
    raise ValueError(f"not a text format: {fmt}")


def file_name(conv: ExportedConversation, fmt: ExportFormat, number: int | None = None) -> str:
    """``2026-11-26-sorting-dicts-in-python.md``: date, title, and a number when names would collide."""
    ascii_title = unicodedata.normalize("NFKD", conv.title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].rstrip("-") or "conversation"
    suffix = f"-{number}" if number is not None else ""
    return f"{conv.created.astimezone(UTC):%Y-%m-%d}-{slug}{suffix}.{fmt}"


def write_conversations(
    conversations: Sequence[ExportedConversation],
    target: Path,
    fmt: ExportFormat,
    *,
    all_branches: bool = False,
    pdf: PdfRenderer | None = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """One conversation -> ``target`` (a file, or a new file in ``target`` if it is a folder);
    several -> a zip if ``target`` ends in ``.zip``, else a folder with one file per conversation."""
    if fmt == "pdf" and pdf is None:
        raise PdfUnavailable()
    suffix = target.suffix.lower().lstrip(".")
    if len(conversations) > 1 and suffix == "json" and fmt == "json" and not target.is_dir():
        return _write_many_json(conversations, target, progress)
    if len(conversations) > 1 and suffix in EXPORT_FORMATS and not target.is_dir():
        raise ExportFailed(
            target,
            f"several conversations go to a folder or a .zip file, not to one .{suffix} file "
            "(only JSON holds many conversations in one file)",
        )
    summary = ExportSummary(target=target)
    names = _unique_names(conversations, fmt)
    single = len(conversations) == 1 and target.suffix.lower() != ".zip" and not target.is_dir()
    try:
        if target.suffix.lower() == ".zip":
            target.parent.mkdir(parents=True, exist_ok=True)
            with _atomic(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for number, (conv, name) in enumerate(zip(conversations, names, strict=True), 1):
                    archive.writestr(name, _payload(conv, fmt, all_branches, pdf))
                    summary.files.append(target / name)
                    _tick(progress, number, len(conversations))
            return summary
        folder = target.parent if single else target
        folder.mkdir(parents=True, exist_ok=True)
        for number, (conv, name) in enumerate(zip(conversations, names, strict=True), 1):
            out = target if single else folder / name
            with _atomic(out) as tmp:
                tmp.write_bytes(_payload(conv, fmt, all_branches, pdf))
            summary.files.append(out)
            _tick(progress, number, len(conversations))
    except OSError as exc:
        raise ExportFailed(Path(exc.filename or target), exc.strerror or str(exc)) from exc
    return summary


def _write_many_json(
    conversations: Sequence[ExportedConversation], target: Path, progress: Progress | None
) -> ExportSummary:
    """Every conversation in one JSON document (``vllm-desk.conversations``), written atomically."""

    def counted() -> Iterator[ExportedConversation]:
        for number, conv in enumerate(conversations, 1):
            yield conv
            _tick(progress, number, len(conversations))

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _atomic(target) as tmp, tmp.open("w", encoding="utf-8") as out:
            write_many(counted(), out)
    except OSError as exc:
        raise ExportFailed(Path(exc.filename or target), exc.strerror or str(exc)) from exc
    return ExportSummary(files=[target] * len(conversations), target=target)


def export_from_store(
    store: HistoryStore,
    conversation_ids: Sequence[int] | None,
    target: Path,
    fmt: ExportFormat,
    *,
    all_branches: bool = False,
    pdf: PdfRenderer | None = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """Export the given conversations, or the whole history when ``conversation_ids`` is None."""
    ids = list(conversation_ids) if conversation_ids is not None else all_conversation_ids(store)
    conversations: list[ExportedConversation] = []
    unreadable: list[int] = []
    for conversation_id in ids:
        try:
            conversations.append(history_adapter.from_tree(store.export_tree(conversation_id)))
        except sqlite3.DatabaseError as exc:
            # A damaged page of the file loses that conversation, not the backup of all the others.
            if isinstance(exc, DeskError) or (conversation_ids is not None and len(ids) == 1):
                raise
            unreadable.append(conversation_id)
    summary = write_conversations(
        conversations, target, fmt, all_branches=all_branches, pdf=pdf, progress=progress
    )
    summary.unreadable = unreadable
    return summary


def all_conversation_ids(store: HistoryStore) -> list[int]:
    """Every conversation not in the bin, newest first (the sidebar's order)."""
    ids: list[int] = []
    page = store.list_conversations(limit=500)
    ids += [c.id for c in page.items]
    while page.next_cursor is not None:
        page = store.list_conversations(limit=500, after=page.next_cursor)
        ids += [c.id for c in page.items]
    return ids


def _payload(
    conv: ExportedConversation, fmt: ExportFormat, all_branches: bool, pdf: PdfRenderer | None
) -> bytes:
    if fmt != "pdf":
        return render_text(conv, fmt, all_branches=all_branches).encode("utf-8")
    assert pdf is not None  # checked by the caller
    with tempfile.TemporaryDirectory(prefix="vllm-desk-pdf-") as tmp:
        out = Path(tmp) / "out.pdf"
        pdf(render_html(conv, all_branches=all_branches, for_print=True), out)
        return out.read_bytes()


def check_target(target: Path) -> None:
    """Refuse a target that exists and is not a regular file: the export would replace a symbolic link
    (not write where it points), a FIFO (or hang on it) or a device node (as root, ``/dev/full``)."""
    try:
        found = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ExportFailed(target, exc.strerror or str(exc)) from exc
    if stat.S_ISREG(found.st_mode):
        return
    kind = _KINDS.get(stat.S_IFMT(found.st_mode), "special file")
    raise ExportFailed(target, f"it is a {kind}, not a regular file; nothing was written")


_KINDS = {
    stat.S_IFLNK: "symbolic link",
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFCHR: "device",
    stat.S_IFBLK: "device",
    stat.S_IFSOCK: "socket",
    stat.S_IFDIR: "folder",
}


class _atomic:
    """Write to a temporary sibling, then rename: a failed export never leaves half a file behind, and only
    a new path or a regular file is ever replaced (:func:`check_target`, before writing and again before the
    rename)."""

    def __init__(self, target: Path) -> None:
        check_target(target)
        self.target = target
        fd, name = tempfile.mkstemp(prefix=f".{target.name[:100]}.", dir=target.parent)
        os.close(fd)
        self.tmp = Path(name)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                check_target(self.target)
            except ExportFailed:
                self.tmp.unlink(missing_ok=True)
                raise
            try:  # a replaced file keeps its permissions
                mode = stat.S_IMODE(os.stat(self.target).st_mode)
            except FileNotFoundError:
                mode = 0o644
            self.tmp.chmod(mode)
            os.replace(self.tmp, self.target)
        else:
            self.tmp.unlink(missing_ok=True)


def _unique_names(conversations: Sequence[ExportedConversation], fmt: ExportFormat) -> list[str]:
    names: list[str] = []
    used: set[str] = set()
    for conv in conversations:
        name = file_name(conv, fmt)
        number = 2
        while name in used:
            name = file_name(conv, fmt, number)
            number += 1
        used.add(name)
        names.append(name)
    return names


def _tick(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)
