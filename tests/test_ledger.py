"""The local ledger's file format: what a summary reads, and files written by older versions."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from revenium.ledger import Ledger
from revenium.records import CompletionRecord

# The schema of the first release, before provider_model_id and cache_creation_tokens.
OLD_SCHEMA = """
CREATE TABLE records (
    idempotency_key TEXT PRIMARY KEY, recorded_at TEXT NOT NULL, kind TEXT NOT NULL,
    endpoint TEXT NOT NULL, model TEXT, provider TEXT, organization_name TEXT,
    product_name TEXT, subscriber TEXT, trace_id TEXT, input_tokens INTEGER,
    output_tokens INTEGER, total_tokens INTEGER, cache_read_tokens INTEGER,
    reasoning_tokens INTEGER, estimated INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL
);
INSERT INTO records VALUES ('old-1', '2026-11-01T00:00:00.000Z', 'completion', '/ai/completions',
    'gpt-4o', 'OPENAI', NULL, NULL, NULL, NULL, 1, 2, 3, NULL, NULL, 0, '{}');
"""


def _bedrock_record() -> CompletionRecord:
    return CompletionRecord(
        model="claude-sonnet-4-6",
        provider="AWS",
        provider_model_id="us.anthropic.claude-sonnet-4-6-v1:0",
        request_time=datetime(2026, 11, 27, tzinfo=UTC),
        request_duration_ms=10.0,
        input_token_count=10,
        output_token_count=5,
        cache_creation_token_count=300,
        cache_read_token_count=40,
    )


def _rows(path: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT idempotency_key, model, provider_model_id, cache_creation_tokens, "
            "cache_read_tokens FROM records ORDER BY recorded_at"
        ).fetchall()
    finally:
        db.close()


def test_a_ledger_from_an_older_version_gains_the_new_columns_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.commit()
    db.close()

    ledger = Ledger(path)
    record = _bedrock_record()
    assert ledger.write([(record, "/ai/completions", b"{}")]) == 1
    ledger.close()
    assert _rows(path) == [
        ("old-1", "gpt-4o", None, None, None),
        (
            record.idempotency_key,
            "claude-sonnet-4-6",
            "us.anthropic.claude-sonnet-4-6-v1:0",
            300,
            40,
        ),
    ]
    Ledger(path).close()  # opening it again changes nothing


def test_platform_model_ids_and_cache_writes_have_their_own_columns(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    ledger = Ledger(path)
    record = _bedrock_record()
    ledger.write([(record, "/ai/completions", b"{}"), (record, "/ai/completions", b"{}")])
    ledger.close()
    assert _rows(path) == [
        (
            record.idempotency_key,
            "claude-sonnet-4-6",
            "us.anthropic.claude-sonnet-4-6-v1:0",
            300,
            40,
        )
    ]
