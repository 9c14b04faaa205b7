"""Compare a SQLite database before and after an operation that must leave it untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def database_rows(db: Path) -> list[str]:
    """Every row of every table (FTS shadow tables included), read through a separate connection."""
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()
