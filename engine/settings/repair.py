"""Reading a damaged settings file: keep every table and key that is valid, name each one that is not.

:func:`parse_leniently` parses TOML table by table when the whole file does not parse (a truncated file keeps
its readable tables); :func:`repair` validates against the settings model and drops what fails (so the
model's defaults take its place), saying by section and key what was dropped and why.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class SettingsProblem:
    """One thing wrong in the settings file; ``key`` is dotted (``profiles[0].port``)."""

    section: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"[{self.section}] {self.key}" if self.key else f"[{self.section}]"
        return f"{where}: {self.message}"


def _loc_text(data: Any, loc: tuple[int | str, ...]) -> tuple[str, str]:
    """``("profiles", 'Qwen.port')`` for a loc into ``data``; list items are named by their ``name``."""
    section = str(loc[0]) if loc else "settings"
    key = ""
    node = data.get(section) if isinstance(data, dict) else None
    for part in loc[1:]:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            key += f"[{name!r}]" if isinstance(name, str) and name else f"[{part}]"
            node = item
        else:
            key += f".{part}" if key else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return section, key


def _resolve(data: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The part of ``loc`` that names items in ``data`` (loc parts that are union tags are skipped)."""
    node = data
    path: list[int | str] = []
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
    return tuple(path)


def _remove_at(data: Any, path: tuple[int | str, ...]) -> None:
    """Delete the item at ``path`` (from :func:`_resolve`)."""
    node = data
    for part in path[:-1]:
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = None  # placeholder, compacted below so other indices stay valid


def _compact(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _compact(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_compact(v) for v in data if v is not None]
    return data


def repair(data: dict[str, Any], model: type[M]) -> tuple[M, list[SettingsProblem]]:
    """Validate ``data``; drop what is invalid (defaults take its place) and say what was dropped."""
    try:
        data = copy.deepcopy(data)
    except RecursionError:
        return model(), [SettingsProblem("settings", "", "nested too deeply to read; all defaults used")]
    problems: list[SettingsProblem] = []
    for _ in range(200):  # each round removes at least one item, so this ends
        try:
            return model.model_validate(data), problems
        except ValidationError as exc:
            errors = exc.errors()
        except RecursionError:
            break
        removed_any = False
        removed_now: list[tuple[int | str, ...]] = []
        for err in errors:
            loc = tuple(err["loc"])
            if err["type"] == "missing":
                # A required key is gone: the object holding it cannot stand alone.
                loc = loc[:-1]
            removed = _resolve(data, loc)
            if not removed:
                continue
            if any(done[: len(removed)] == removed for done in removed_now):
                # Another branch of the same union error, whose item is already gone: removing what holds
                # it would throw away a whole profile for one bad field. The next round re-checks.
                continue
            section, key = _loc_text(data, removed)
            _remove_at(data, removed)
            removed_now.append(removed)
            removed_any = True
            message = "unknown setting, ignored" if err["type"] == "extra_forbidden" else redact(err["msg"])
            what = "entry removed" if isinstance(removed[-1], int) else "default used"
            if err["type"] != "extra_forbidden":
                message = f"{message}{_was(err.get('input'))}; {what}"
            problems.append(SettingsProblem(section, key, message))
        data = _compact(data)
        if not removed_any:
            break
    problems.append(SettingsProblem("settings", "", "could not be repaired; all defaults used"))
    return model(), problems


# A value that looks like a secret (an API key in extra arguments, a token) is never repeated in a report.
_SECRET = re.compile(r"api[-_]?key|token|secret|passw|bearer|\bsk-|\bhf_", re.IGNORECASE)
_SHOWN_CHARS = 60
# Real settings files hold a few dozen tables; a file of thousands is not worth salvaging table by table.
MAX_TABLES = 1000


_SECRET_WORD = re.compile(
    r"\S*(?:api[-_]?key|token|secret|passw)\S*=\S+|\b(?:sk|hf)[-_][A-Za-z0-9_-]{6,}", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with words that look like secrets (``--api-key=...``, ``sk-...``) replaced by ``***``."""
    return _SECRET_WORD.sub("***", text)


def _was(value: object) -> str:
    if isinstance(value, bool | int | float):
        return f" (was {value!r})"
    if not isinstance(value, str):
        return ""
    if _SECRET.search(value):
        return " (was a value that looks like a secret; not shown)"
    if len(value) > _SHOWN_CHARS:
        return f" (was {value[:_SHOWN_CHARS]!r}…)"
    return f" (was {value!r})"


def parse_leniently(text: str) -> tuple[dict[str, Any], list[SettingsProblem]]:
    """Parse TOML; if the whole file does not parse, keep every table that does on its own.

    Never raises: a value nested too deeply for the parser, or a file of thousands of broken tables, gives
    defaults and a problem."""
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        whole_error = str(exc)
    except RecursionError:
        return {}, [SettingsProblem("settings", "", "nested too deeply to read; all defaults used")]
    chunks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.lstrip().startswith("["):
            chunks.append([])
            if len(chunks) > MAX_TABLES:
                return {}, [
                    SettingsProblem(
                        "settings",
                        "",
                        f"unreadable ({whole_error}) and too large to salvage; all defaults used",
                    )
                ]
        chunks[-1].append(line)
    merged: dict[str, Any] = {}
    problems: list[SettingsProblem] = []
    for chunk in chunks:
        body = "\n".join(chunk)
        if not body.strip():
            continue
        try:
            part = tomllib.loads(body)
        except RecursionError:
            problems.append(SettingsProblem("settings", "", "a value is nested too deeply to read"))
            continue
        except tomllib.TOMLDecodeError as exc:
            header = chunk[0].strip().strip("[]") if chunk[0].lstrip().startswith("[") else "settings"
            problems.append(SettingsProblem(header.split(".")[0] or "settings", "", f"unreadable ({exc})"))
            continue
        _merge(merged, part)
    if not problems:  # the chunks parse but the whole does not (e.g. a key defined twice)
        problems.append(SettingsProblem("settings", "", f"unreadable ({whole_error}); all defaults used"))
        return {}, problems
    return merged, problems


def _merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, list) and isinstance(into.get(key), list):
            into[key].extend(value)  # successive [[profiles]] chunks
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
