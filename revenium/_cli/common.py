"""What the commands share: the one-line error, tables, JSON, read-only SQLite, times, masks."""

from __future__ import annotations

import argparse
import json
import sqlite3
import stat
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final, TextIO

__all__ = [
    "CliError",
    "format_age",
    "format_when",
    "mask_key",
    "mode_problem",
    "open_readonly",
    "parse_since",
    "render_table",
    "write",
    "write_json",
]

# The key prefixes of Revenium API keys (as revenium.config checks them).
KEY_PREFIXES: Final = ("hak_", "rev_")


class CliError(Exception):
    """A problem the user can fix: printed as one line on stderr, exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def write(out: TextIO, text: str = "") -> None:
    """One line (or several, joined by newlines) to ``out``."""
    out.write(text + "\n")


def write_json(out: TextIO, document: object) -> None:
    """One JSON document, indented for a human, parseable by ``jq``."""
    write(out, json.dumps(document, indent=2, ensure_ascii=False))


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    left: int = 1,
    indent: str = "",
) -> list[str]:
    """Columns two spaces apart: the first ``left`` columns aligned left, the others right."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def open_readonly(path: Path, what: str) -> sqlite3.Connection:
    """Open an existing SQLite file read-only, or raise a one-line :class:`CliError`.

    ``what`` names the file in the message ("ledger", "spool"). The file is never created,
    and a file that is not a database is reported as such before any query of the caller.
    """
    if not path.exists():
        raise CliError(f"no {what} at {path}")
    if not path.is_file():
        raise CliError(f"the {what} path {path} is not a file")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise CliError(f"cannot open the {what} at {path}: {exc}") from None
    try:
        db.execute("SELECT name FROM sqlite_master").fetchall()
    except sqlite3.Error as exc:
        db.close()
        raise CliError(f"cannot read the {what} at {path}: {exc}") from None
    return db


def table_columns(db: sqlite3.Connection, table: str) -> set[str]:
    """The columns of ``table`` (empty when there is no such table)."""
    return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")}


def mode_problem(path: Path) -> str | None:
    """Why the file's permissions are too open (usage data is private), or ``None``."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        return f"cannot stat: {exc.strerror or exc}"
    if mode & 0o077:
        return f"mode {mode:04o} lets other users read it (chmod 600 {path})"
    return None


def file_mode(path: Path) -> str:
    """``0600``: the permission bits, for display."""
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def parse_since(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO datetime (UTC unless it has an offset).

    Used as an argparse ``type``: a bad value is a usage error (exit 2).
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO datetime (2026-11-27T09:30:00Z)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def format_when(when: datetime | float) -> str:
    """``2026-11-27 09:30:00 UTC``."""
    moment = when if isinstance(when, datetime) else datetime.fromtimestamp(when, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_age(seconds: float) -> str:
    """``45s``, ``12m 5s``, ``3h 12m``, ``2d 4h``."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def mask_key(value: str) -> str:
    """``hak_…7f3a (36 chars)``: recognisable, useless to anyone who reads it.

    A short key shows no characters at all: four of eight would give too much away.
    """
    prefix = next((p for p in KEY_PREFIXES if value.startswith(p)), "")
    if len(value) - len(prefix) < 16:
        return f"{prefix}*** ({len(value)} chars)"
    return f"{prefix}…{value[-4:]} ({len(value)} chars)"
