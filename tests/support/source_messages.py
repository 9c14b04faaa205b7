"""The messages a Python source file can print, as patterns: so a test can prove that a log line we diagnose
is one the installed vLLM (or PyTorch, Triton) really writes, in today's wording.

Every string the file builds is turned into a regular expression: adjacent literals and f-strings are joined
(Python's parser already does that), ``a + b`` is followed, and each placeholder (``{x}``, ``{}``, ``%s``,
``%.2f``) becomes "any text".
"""

from __future__ import annotations

import ast
import os
import re
from functools import cache
from pathlib import Path

ANY = "\x00"  # stands for a placeholder while the literal text is escaped
_PRINTF = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?[sdifgxr]")
_FORMAT = re.compile(r"\{[^{}]*\}")


def _pieces(node: ast.AST) -> str | None:
    """The text of a string expression, placeholders as :data:`ANY`; ``None`` for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _FORMAT.sub(ANY, _PRINTF.sub(ANY, node.value))
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                out.append(part.value)
            else:
                out.append(ANY)
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pieces(node.left), _pieces(node.right)
        if left is not None or right is not None:
            return (left if left is not None else ANY) + (right if right is not None else ANY)
    return None


@cache
def message_patterns(path: Path) -> tuple[re.Pattern[str], ...]:
    """Every string of ten characters or more in ``path``, as a pattern that matches its printed forms."""
    patterns = []
    for text in _whole_strings(ast.parse(path.read_text(encoding="utf-8"))):
        if len(text.replace(ANY, "").strip()) < 10:
            continue
        parts = [re.escape(p) for p in text.strip().split(ANY)]
        patterns.append(re.compile(".*?".join(parts) + r"\s*", re.DOTALL))
    return tuple(patterns)


def _whole_strings(node: ast.AST) -> list[str]:
    """Each outermost string expression once (never a literal piece of a larger one on its own)."""
    text = _pieces(node)
    if text is not None:
        return [text]
    found: list[str] = []
    for child in ast.iter_child_nodes(node):
        found += _whole_strings(child)
    return found


# What may come before a message on its line: vLLM's log header, an exception's name, pydantic's prefix.
_PREFIX = re.compile(
    r"(?:\(\w+ pid=\d+\) )?(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) [\d-]+ [\d:]+ \[[\w.]+:\d+\] )?"
    r"(?:[\w.]+(?:Error|Exception|Warning): )?(?:\s*Value error, )?"
)


def printed_by(line: str, path: Path) -> bool:
    """Whether ``line`` (after a log header or exception name) is, whole, one message ``path`` builds: its
    literal text word for word, any text where the source has a placeholder."""
    body = line.strip()
    starts = {m.end() for m in [_PREFIX.match(body)] if m} | {0}
    return any(p.fullmatch(body, start) for p in message_patterns(path) for start in starts)


def find_site_packages(package: str) -> Path | None:
    """The ``site-packages`` of a runtime that has ``package``: ``$VLLM_SOURCE_SITE_PACKAGES``, else the test
    cache's managed runtime for today's pins (tests/support/vllm_fixtures.py builds it there)."""
    from tests.support.vllm_fixtures import cache_dir

    explicit = os.environ.get("VLLM_SOURCE_SITE_PACKAGES")
    roots = [Path(explicit)] if explicit else []
    roots += sorted(cache_dir().glob("home/data/runtime/lib/python3*/site-packages"))
    for root in roots:
        if (root / package).is_dir():
            return root
    return None
