"""``vllm-desk list``, ``vllm-desk search QUERY`` and ``vllm-desk show ID``: the chat history, read-only."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from engine.history.records import Conversation, StoredMessage
from engine.history.store import HistoryStore, PageCursor, damaged
from engine.history.times import local_text
from engine.paths import AppPaths


def register(subparsers: Any) -> None:
    listing = subparsers.add_parser("list", help="list saved conversations (pinned first, newest first)")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="how many (default 50; 0: all)")
    listing.add_argument("--folder", metavar="NAME", help="only this folder")
    listing.add_argument("--tag", metavar="TAG", help="only conversations with this tag")
    listing.add_argument("--json", action="store_true", help="JSON output")
    listing.set_defaults(func=run_list)

    search = subparsers.add_parser("search", help="search titles and messages (accents ignored)")
    search.add_argument("query", help="words to find; the last may be the start of a word")
    search.add_argument("--limit", type=int, default=20, metavar="N", help="how many results (default 20)")
    search.add_argument("--json", action="store_true", help="JSON output")
    search.set_defaults(func=run_search)

    show = subparsers.add_parser("show", help="print a conversation (the branch it shows)")
    show.add_argument("id", type=int, help="conversation id (see `vllm-desk list`)")
    show.add_argument("--json", action="store_true", help="JSON output with every branch and all numbers")
    show.set_defaults(func=run_show)


def _open(args: argparse.Namespace) -> HistoryStore:
    return open_history(args)


def say_waiting() -> None:
    """What a command prints when another process (an import) is writing the history."""
    print("Waiting for another vLLM Desk process to finish writing the history…", file=sys.stderr, flush=True)


def open_history(args: argparse.Namespace) -> HistoryStore:
    """The history of ``--data-dir`` for a command: waits for another process's write, saying so."""
    return HistoryStore(AppPaths.resolve(args.data_dir).ensure().history_db, on_wait=say_waiting)


# C0 controls but newline and tab, DEL, and C1 controls: printed raw, ESC sequences can retitle the
# terminal, move the cursor or set the clipboard (OSC 52); a carriage return overwrites the line. The bidi
# marks, embeddings, overrides and isolates reorder what is shown (a name or an argument that reads as
# another). All are shown escaped instead.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw of those (it escapes C0 itself).
_CONTROLS_IN_JSON = re.compile(r"[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, *, lines: bool = True) -> str:
    """``text`` safe for a terminal: control and bidi characters as ``\\x1b``/``\\u202e``-style escapes
    (``lines=False``: newlines and tabs too, for one-line fields such as titles). Everything a model, a tool
    or an MCP server said goes through it before it is printed."""
    escaped = _CONTROLS.sub(_escape, text)
    if not lines:
        escaped = escaped.replace("\n", "\\n").replace("\t", "\\t")
    return escaped


def printable_json(data: Any, **dumps: Any) -> str:
    """``json.dumps(data, ensure_ascii=False)`` safe for a terminal, the same JSON: the controls and bidi
    characters it leaves raw as ``\\u`` escapes."""
    return _CONTROLS_IN_JSON.sub(
        lambda m: f"\\u{ord(m.group()):04x}", json.dumps(data, ensure_ascii=False, **dumps)
    )


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _when(ts: float) -> str:
    return local_text(ts)


def history_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command over the history: a damaged file is reported in words (:class:`HistoryDamaged`)."""

    @functools.wraps(run)
    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except sqlite3.DatabaseError as exc:
            path = AppPaths.resolve(args.data_dir).history_db
            raise damaged(path, exc) from exc

    return guarded


@history_errors
def run_list(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        items: list[Conversation] = []
        cursor: PageCursor | None = None
        while True:
            page_size = 200 if args.limit <= 0 else min(200, args.limit - len(items))
            page = store.list_conversations(limit=page_size, after=cursor, folder=args.folder, tag=args.tag)
            items += page.items
            cursor = page.next_cursor
            if cursor is None or (args.limit > 0 and len(items) >= args.limit):
                break
    finally:
        store.close()
    if args.json:
        print(json.dumps([c.to_dict() for c in items], indent=2))
        return 0
    if not items:
        print("No conversations yet.", file=sys.stderr)
    for c in items:
        pin = "*" if c.pinned else " "
        extra = f"  [{printable(c.folder, lines=False)}]" if c.folder else ""
        extra += "".join(f" #{printable(t, lines=False)}" for t in c.tags)
        title = printable(c.title, lines=False) or "(untitled)"
        print(f"{c.id:>6} {pin} {_when(c.updated_at)}  {title}{extra}")
    return 0


@history_errors
def run_search(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        hits = store.search(args.query, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
        return 0
    if not hits:
        print(f"Nothing matches {printable(args.query, lines=False)!r}.", file=sys.stderr)
        return 1
    for h in hits:
        where = f"{h.conversation_id}" + (f"#{h.message_id}" if h.message_id is not None else "")
        title, snippet = printable(h.title, lines=False), printable(h.snippet, lines=False)
        print(f"{where:>12}  {title}\n              {snippet}")
    return 0


def _message_dict(m: StoredMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "parent_id": m.parent_id,
        "role": m.role,
        "text": m.text,
        "reasoning": m.reasoning,
        "state": m.state,
        "model": m.model,
        "finish_reason": m.finish_reason,
        "numbers": vars(m.numbers),
        "error": m.error,
        "created_at": m.created_at,
        "content": m.content,
    }


@history_errors
def run_show(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        tree = store.load(args.id)
    finally:
        store.close()
    if args.json:
        out = {
            "conversation": tree.conversation.to_dict(),
            "shown": [m.id for m in tree.branch()],
            "messages": [_message_dict(m) for m in tree.messages],
        }
        print(json.dumps(out, indent=2))
        return 0
    conv = tree.conversation
    title = printable(conv.title, lines=False) or "(untitled)"
    print(f"# {title}  (conversation {conv.id}, {_when(conv.created_at)})")
    if conv.system_prompt:
        print(f"\n[system] {printable(conv.system_prompt)}")
    for m in tree.branch():
        siblings = tree.siblings(m.id)
        alt = f" ({siblings.index(m.id) + 1}/{len(siblings)})" if len(siblings) > 1 else ""
        state = "" if m.state == "complete" else f" [{m.state}]"
        print(f"\n[{m.role}{alt}{state}] {printable(m.text)}")
        if m.error:
            print(f"  ! {printable(m.error)}")
    return 0
