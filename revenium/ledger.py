"""The local ledger: usage recorded in a SQLite file when there is no Revenium account.

The SDK is useful before anyone signs up: without ``REVENIUM_METERING_API_KEY`` every record
lands here (the user data directory, or ``REVENIUM_LEDGER_PATH``), and ``revenium summary``
reads it. With a key the ledger is kept only when ``REVENIUM_LEDGER_PATH`` asks for it.

Rows are keyed by the record's idempotency key, so writing a record twice (a replay, a retry
of the write) never counts it twice. The columns that summaries group by are extracted; the
full wire body is kept beside them so nothing is lost. Each completion's local cost estimate
(:mod:`revenium.pricing`) is stored with its source, or the reason there is none. Only the
runtime writes here (from its worker threads, and from the stopping thread at shutdown),
serialized by a lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from revenium._diagnostics import logger, warn_once
from revenium.pricing import estimate
from revenium.records import CompletionRecord, Record, ToolEventRecord
from revenium.wire import format_timestamp

__all__ = ["Ledger"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS records (
    idempotency_key TEXT PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT,
    provider TEXT,
    organization_name TEXT,
    product_name TEXT,
    subscriber TEXT,
    trace_id TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    total_tokens INTEGER,
    cache_read_tokens INTEGER,
    reasoning_tokens INTEGER,
    estimated INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    provider_model_id TEXT,
    cache_creation_tokens INTEGER,
    cost_usd REAL,
    cost_source TEXT,
    cost_note TEXT
);
CREATE INDEX IF NOT EXISTS records_recorded_at ON records (recorded_at);
"""
_INSERT: Final = """
INSERT OR IGNORE INTO records (
    idempotency_key, recorded_at, kind, endpoint, model, provider, organization_name,
    product_name, subscriber, trace_id, input_tokens, output_tokens, total_tokens,
    cache_read_tokens, reasoning_tokens, estimated, body, provider_model_id, cache_creation_tokens,
    cost_usd, cost_source, cost_note
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

# Columns added after the first release, added to an older ledger file when it is opened.
_ADDED_COLUMNS: Final = (
    ("provider_model_id", "TEXT"),
    ("cache_creation_tokens", "INTEGER"),
    ("cost_usd", "REAL"),
    ("cost_source", "TEXT"),
    ("cost_note", "TEXT"),
)

_KINDS: Final = {
    "CompletionRecord": "completion",
    "ImageRecord": "image",
    "VideoRecord": "video",
    "AudioRecord": "audio",
    "ToolEventRecord": "tool",
}


def _row(record: Record, endpoint: str, body: bytes) -> tuple[object, ...]:
    md = record.metadata
    cost = estimate(record)  # local only: never part of the wire body
    subscriber = None
    if md.subscriber is not None:
        subscriber = md.subscriber.email or md.subscriber.id
    model_id = cache_writes = None
    if isinstance(record, ToolEventRecord):
        when, model, provider = record.timestamp, record.tool_id, None
    else:
        when, model, provider = record.request_time, record.model, record.provider
        model_id = record.provider_model_id
    tokens: tuple[int | None, ...] = (None, None, None, None, None)
    estimated = False
    if isinstance(record, CompletionRecord):
        total = record.total_token_count
        tokens = (
            record.input_token_count,
            record.output_token_count,
            total if total is not None else record.input_token_count + record.output_token_count,
            record.cache_read_token_count,
            record.reasoning_token_count,
        )
        estimated = record.estimated
        cache_writes = record.cache_creation_token_count
    return (
        record.idempotency_key,
        format_timestamp(when),
        _KINDS[type(record).__name__],
        endpoint,
        model,
        provider,
        md.organization_name,
        md.product_name,
        subscriber,
        md.trace_id,
        *tokens,
        int(estimated),
        body.decode("utf-8"),
        model_id,
        cache_writes,
        None if cost.usd is None else float(cost.usd),
        cost.source,
        cost.note,
    )


class Ledger:
    """Append-only usage table in SQLite (WAL); falls back to memory if the file is unusable."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self.path: Path | None = path
        try:
            self._db = self._open(path)
        except (sqlite3.Error, OSError) as exc:
            warn_once(
                f"ledger-open:{path}",
                "revenium: cannot use the ledger at %s (%s); keeping usage in memory for this "
                "process only",
                path,
                exc,
            )
            self.path = None
            self._db = self._open(None)
        else:
            logger.info("revenium: recording usage to the local ledger at %s", path)

    @staticmethod
    def _open(path: Path | None) -> sqlite3.Connection:
        if path is None:
            db = sqlite3.connect(":memory:", check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            db = sqlite3.connect(path, check_same_thread=False, timeout=5.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        present = {row[1] for row in db.execute("PRAGMA table_info(records)")}
        for name, kind in _ADDED_COLUMNS:
            if name not in present:
                try:
                    db.execute(f"ALTER TABLE records ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
        return db

    def write(self, batch: Sequence[tuple[Record, str, bytes]]) -> int:
        """Record ``(record, endpoint, body)`` rows; returns how many were new."""
        rows = [_row(record, endpoint, body) for record, endpoint, body in batch]
        with self._lock, self._db:
            before = self._db.total_changes
            self._db.executemany(_INSERT, rows)
            return self._db.total_changes - before

    def bodies(self) -> list[dict[str, object]]:
        """Every stored wire body, oldest first (tests and the CLI's raw export)."""
        with self._lock:
            cursor = self._db.execute("SELECT body FROM records ORDER BY recorded_at")
            return [json.loads(text) for (text,) in cursor.fetchall()]

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            self._db.close()
