"""Reading a damaged settings file: keep every table and key that is valid, name each one that is not.

:func:`parse_leniently` parses TOML table by table when the whole file does not parse (a truncated file keeps
its readable tables); :func:`repair` validates against the settings model and drops what fails (so the
model's defaults take its place), saying by section and key what was dropped and why.
"""

from __future__ import annotations

import copy
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


def _remove_at(data: Any, loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Delete the item at ``loc`` (skipping loc parts that are union tags); return the path removed."""
    node = data
    path: list[int | str] = []
    parents: list[tuple[Any, int | str]] = []
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            parents.append((node, part))
            path.append(part)
            node = node[part]
    if parents:
        container, key = parents[-1]
        if isinstance(container, dict):
            container.pop(key, None)
        else:
            container[key] = None  # placeholder, compacted below so other indices stay valid
    return tuple(path)


def _compact(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _compact(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_compact(v) for v in data if v is not None]
    return data


def repair(data: dict[str, Any], model: type[M]) -> tuple[M, list[SettingsProblem]]:
    """Validate ``data``; drop what is invalid (defaults take its place) and say what was dropped."""
    data = copy.deepcopy(data)
    problems: list[SettingsProblem] = []
    for _ in range(200):  # each round removes at least one item, so this ends
        try:
            return model.model_validate(data), problems
        except ValidationError as exc:
            errors = exc.errors()
        removed_any = False
        for err in errors:
            loc = tuple(err["loc"])
            if err["type"] == "missing":
                # A required key is gone: the object holding it cannot stand alone.
                loc = loc[:-1]
            section, key = _loc_text(data, loc)
            removed = _remove_at(data, loc)
            if not removed:
                continue
            removed_any = True
            message = "unknown setting, ignored" if err["type"] == "extra_forbidden" else err["msg"]
            what = "entry removed" if isinstance(removed[-1], int) else "default used"
            if err["type"] != "extra_forbidden":
                value = err.get("input")
                shown = f" (was {value!r})" if isinstance(value, str | int | float | bool) else ""
                message = f"{message}{shown}; {what}"
            problems.append(SettingsProblem(section, key, message))
        data = _compact(data)
        if not removed_any:
            break
    problems.append(SettingsProblem("settings", "", "could not be repaired; all defaults used"))
    return model(), problems


def parse_leniently(text: str) -> tuple[dict[str, Any], list[SettingsProblem]]:
    """Parse TOML; if the whole file does not parse, keep every table that does on its own."""
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        whole_error = str(exc)
    chunks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.lstrip().startswith("["):
            chunks.append([])
        chunks[-1].append(line)
    merged: dict[str, Any] = {}
    problems: list[SettingsProblem] = []
    for chunk in chunks:
        body = "\n".join(chunk)
        if not body.strip():
            continue
        try:
            part = tomllib.loads(body)
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
