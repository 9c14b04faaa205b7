"""Reading conversation files (ours or ChatGPT's, plain or zipped) and adding them to the history.

Everything is read, parsed and validated before the first write, so a malformed, truncated, oversized or
hostile file changes nothing. Importing the same file twice adds nothing the second time: each conversation
carries a stable identity (its uid, or ``chatgpt:<id>``) and the store skips the ones it already has.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import pydantic_core

from engine.history.store import HistoryStore
from engine.transfer import history_adapter
from engine.transfer.chatgpt_import import looks_like_chatgpt, parse_chatgpt
from engine.transfer.errors import ImportRejected
from engine.transfer.json_format import from_dict, from_many, is_many, is_ours
from engine.transfer.model import ExportedConversation

ImportFormat = Literal["auto", "vllm-desk", "chatgpt"]
IMPORT_FORMATS: tuple[str, ...] = ("auto", "vllm-desk", "chatgpt")
Progress = Callable[[int, int], None]

_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class ImportLimits:
    """Sizes above which a file is refused before it is parsed (a ChatGPT export of years fits easily)."""

    max_bytes: int = 512 * 2**20
    max_files: int = 10_000


@dataclass
class ImportSummary:
    """What an import did: ids of the new conversations, and of those that were already there."""

    imported: list[int] = field(default_factory=list)
    already_present: list[int] = field(default_factory=list)

    def sentence(self) -> str:
        new = len(self.imported)
        old = len(self.already_present)
        text = f"Imported {new} conversation{'s' if new != 1 else ''}"
        if old:
            text += f"; {old} {'was' if old == 1 else 'were'} already in the history"
        return text + "."


def read_conversations(
    path: Path, fmt: ImportFormat = "auto", limits: ImportLimits | None = None
) -> list[ExportedConversation]:
    """Every conversation in ``path`` (a file, a zip, or a folder of exported files), validated.

    Raises :class:`ImportRejected` naming the file and the place in it.
    """
    limits = limits or ImportLimits()
    if not str(path).strip():
        raise ImportRejected("no file was named")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".zip") and p.is_file())
        if not files:
            raise ImportRejected("the folder holds no .json or .zip files").at(path)
        if len(files) > limits.max_files:
            raise ImportRejected(f"the folder holds more than {limits.max_files:,} files").at(path)
        out: list[ExportedConversation] = []
        for file in files:
            out += read_conversations(file, fmt, limits)
        return _unique(out)
    try:
        found = path.stat()
        # Only a regular file: a FIFO would wait forever, /dev/zero would never end.
        if not stat.S_ISREG(found.st_mode):
            raise ImportRejected("it is not a regular file (a pipe, device or socket)").at(path)
        size = found.st_size
        if size > limits.max_bytes:
            raise ImportRejected(_too_big(size, limits)).at(path)
        with path.open("rb") as handle:
            raw = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ImportRejected(f"the file cannot be read ({exc.strerror or exc})").at(path) from exc
    if len(raw) > limits.max_bytes:
        raise ImportRejected(_too_big(len(raw), limits)).at(path)
    try:
        if raw.startswith(_ZIP_MAGIC):
            return _unique(_read_zip(raw, fmt, limits))
        return parse_bytes(raw, fmt)
    except ImportRejected as problem:
        raise problem.at(path) from None


def parse_bytes(raw: bytes, fmt: ImportFormat = "auto", where: str = "$") -> list[ExportedConversation]:
    """Parse one JSON document; refuse what is not valid JSON, too deep, or neither of our formats."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected("the file is not UTF-8 text", f"byte {exc.start}") from None
    try:
        data = pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        message, _, place = str(exc).partition(" at line ")
        if "recursion limit" in message:
            message = "the JSON is nested too deeply to be a conversation file"
        else:
            message = f"the file is not valid JSON ({message}); it may be truncated or damaged"
        raise ImportRejected(message, f"line {place}" if place else "") from None
    if fmt == "chatgpt" or (fmt == "auto" and looks_like_chatgpt(data)):
        return _unique(parse_chatgpt(data, where))
    if is_many(data) and fmt in ("auto", "vllm-desk"):
        return _unique(from_many(data, where))
    if fmt == "vllm-desk" or is_ours(data):
        return [from_dict(data, where)]
    raise ImportRejected(
        "the file is neither a vLLM Desk conversation nor a ChatGPT export (conversations.json)", where
    )


def _read_zip(raw: bytes, fmt: ImportFormat, limits: ImportLimits) -> list[ExportedConversation]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as exc:
        raise ImportRejected(f"the zip file is damaged ({exc})") from None
    with archive:
        members = [i for i in archive.infolist() if not i.is_dir() and i.filename.lower().endswith(".json")]
        # A ChatGPT data export is a zip with conversations.json next to other files we do not need.
        chatgpt = [i for i in members if i.filename.rsplit("/", 1)[-1] == "conversations.json"]
        if chatgpt and fmt != "vllm-desk":
            members, fmt = chatgpt[:1], "chatgpt"
        if not members:
            raise ImportRejected("the zip file holds no .json files")
        if len(members) > limits.max_files:
            raise ImportRejected(f"the zip file holds more than {limits.max_files:,} files")
        # Sizes are checked before anything is inflated: the directory's sizes (and a ratio no real export
        # reaches: a zip bomb) first; then, as those can lie, what is actually inflated, in bounded pieces.
        declared = sum(info.file_size for info in members)
        if declared > limits.max_bytes:
            raise ImportRejected(
                f"the zip's contents ({declared / 2**20:,.1f} MiB) are larger than the limit of "
                f"{limits.max_bytes // 2**20} MiB"
            )
        for info in members:
            if info.file_size > _MAX_RATIO * max(info.compress_size, 1) + 2**20:
                raise ImportRejected(
                    "the zip's contents inflate far more than any conversation file does (a zip bomb?)",
                    info.filename,
                )
        budget = limits.max_bytes
        out: list[ExportedConversation] = []
        for info in members:
            try:
                with archive.open(info) as member:
                    data = _read_at_most(member, min(budget, info.file_size))
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ImportRejected(f"the zip file is damaged ({exc})", info.filename) from None
            if len(data) > min(budget, info.file_size):
                raise ImportRejected(
                    f"the zip's contents are larger than the limit of {limits.max_bytes // 2**20} MiB",
                    info.filename,
                )
            budget -= len(data)
            out += parse_bytes(data, fmt, where=f"{info.filename}: $")
        return out


_MAX_RATIO = 200  # JSON compresses about 5-20 times; far beyond that is a zip bomb


def _read_at_most(member: IO[bytes], limit: int) -> bytes:
    """Up to ``limit + 1`` bytes, read in pieces so a lying member never inflates far past the limit."""
    pieces: list[bytes] = []
    got = 0
    while got <= limit:
        piece = member.read(min(1 << 20, limit + 1 - got))
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


def import_conversations(
    store: HistoryStore, conversations: list[ExportedConversation], progress: Progress | None = None
) -> ImportSummary:
    """Add validated conversations to the history in one transaction; those already present (same identity)
    are skipped, and one found in the bin (deleted, not yet purged) is brought back rather than duplicated.

    All or nothing: if any write fails, or the process dies midway, the history is exactly as it was.
    """
    trees = [history_adapter.to_tree(c) for c in conversations]
    summary = ImportSummary()
    for result in store.import_trees(trees, progress):
        if result.outcome == "imported":
            summary.imported.append(result.conversation_id)
        else:
            summary.already_present.append(result.conversation_id)
    return summary


def import_path(
    store: HistoryStore,
    path: Path,
    fmt: ImportFormat = "auto",
    *,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Read, validate, then add every conversation in ``path``; nothing is written if anything is wrong."""
    return import_conversations(store, read_conversations(path, fmt, limits), progress)


def _unique(conversations: list[ExportedConversation]) -> list[ExportedConversation]:
    seen: dict[str, ExportedConversation] = {}
    for conv in conversations:
        seen.setdefault(conv.source_id, conv)
    return list(seen.values())


def _too_big(size: int, limits: ImportLimits) -> str:
    return f"the file is {size / 2**20:,.1f} MiB, more than the limit of {limits.max_bytes / 2**20:,.0f} MiB"
