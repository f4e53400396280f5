"""The durable spool: usage records that could not be delivered yet, kept in SQLite.

Why a file: a record that cannot reach the metering API now (the API is down, retries ran
out, the in-memory queue overflowed, the process is exiting) is usage that must still be
counted. It is written here and replayed later, by this process or by the next process that
opens the same file.

Why SQLite from the standard library: several processes may share one spool file, and a claim
must be atomic across them. Every write runs under ``BEGIN IMMEDIATE``, so the write lock is
taken *before* anything is read: two processes claiming at once queue on the lock (up to
``busy_timeout``) and can never both take the same row. WAL lets readers run next to a writer,
and one transaction per batch makes a 100k-row ``add`` a fraction of a second.

Why it never raises on a broken disk: the spool is the last resort of the delivery path. A
corrupted, unwritable or full file gives one WARNING naming the path and the reason, and the
spool carries on in an in-memory database with the same code, bounded by ``max_memory_rows``
so a long outage cannot exhaust memory (the oldest records are dropped, loudly).

Records the server rejected for good (a 400) are *quarantined*: kept with the HTTP status and
the server's reason, never claimed again, and listable, requeueable and purgeable.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Generator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs

from revenium._diagnostics import logger, warn_once

__all__ = [
    "DEFAULT_FILENAME",
    "ClaimedRow",
    "Envelope",
    "QuarantinedRow",
    "Spool",
    "SpoolCounts",
    "default_path",
]

DEFAULT_FILENAME: Final = "spool.sqlite3"
_SCHEMA_VERSION: Final = 1
_MAX_REASON: Final = 2_000
_T = TypeVar("_T")

# One table; ``quarantined`` splits it in two. The claim index finds unleased rows in created_at
# order under its (0, NULL) prefix and expired leases by a range on claim_until, so rows under a
# live lease are never scanned: claiming 100k rows in batches stays linear, not quadratic.
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS records (
        key TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        body BLOB NOT NULL,
        created_at REAL NOT NULL,
        quarantined INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        claimed_by TEXT,
        claim_until REAL,
        http_status INTEGER,
        quarantined_at REAL
    )""",
    (
        "CREATE INDEX IF NOT EXISTS records_claim"
        " ON records (quarantined, claim_until, created_at, next_attempt_at)"
    ),
    "CREATE INDEX IF NOT EXISTS records_quarantine ON records (quarantined, quarantined_at)",
)
_CLAIM: Final = """
UPDATE records SET claimed_by = :owner, claim_until = :until
WHERE key IN (
    SELECT key FROM (
        SELECT * FROM (
            SELECT key, created_at FROM records
            WHERE quarantined = 0 AND claim_until IS NULL AND next_attempt_at <= :due
            ORDER BY created_at LIMIT :limit)
        UNION ALL
        SELECT * FROM (
            SELECT key, created_at FROM records
            WHERE quarantined = 0 AND claim_until < :now AND next_attempt_at <= :due
            ORDER BY created_at LIMIT :limit)
    ) ORDER BY created_at LIMIT :limit)
RETURNING key, path, body, created_at, attempts
"""
_ADD: Final = (
    "INSERT OR IGNORE INTO records (key, path, body, created_at, attempts, next_attempt_at,"
    " last_error) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_RELEASE: Final = (
    "UPDATE records SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
    " claimed_by = NULL, claim_until = NULL WHERE key = ? AND claimed_by = ? AND quarantined = 0"
)
_QUARANTINE: Final = """
INSERT INTO records (key, path, body, created_at, quarantined, last_error, http_status,
                     quarantined_at)
VALUES (?, ?, ?, ?, 1, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET quarantined = 1, last_error = excluded.last_error,
    http_status = excluded.http_status, quarantined_at = excluded.quarantined_at,
    claimed_by = NULL, claim_until = NULL
"""
_REQUEUE: Final = (
    "UPDATE records SET quarantined = 0, attempts = 0, next_attempt_at = 0, http_status = NULL,"
    " quarantined_at = NULL, claimed_by = NULL, claim_until = NULL WHERE quarantined = 1"
)
_PURGE: Final = "DELETE FROM records WHERE quarantined = 1"


@attrs.frozen
class Envelope:
    """One record ready to send: its Idempotency-Key, endpoint path and JSON body."""

    key: str
    path: str
    body: bytes
    created_at: float


@attrs.frozen
class ClaimedRow:
    """A row leased to one owner, with the delivery attempts made so far."""

    envelope: Envelope
    attempts: int


@attrs.frozen
class QuarantinedRow:
    """A record the server rejected for good: kept for a human, never retried on its own."""

    envelope: Envelope
    status: int
    reason: str
    quarantined_at: float


@attrs.frozen
class SpoolCounts:
    """``pending`` includes ``claimed`` (rows under an unexpired lease)."""

    pending: int
    claimed: int
    quarantined: int


def default_path(directory: Path) -> Path:
    """The spool file inside ``directory`` (normally ``Config.spool_directory``)."""
    return directory / DEFAULT_FILENAME


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _is_storage_failure(exc: BaseException) -> bool:
    """A broken file or disk, as opposed to a bug in what we passed (integrity, bindings).

    "Locked" and "busy" are not failures of the file: another process sharing the spool
    holds its lock. They are raised to the runtime, which keeps the rows and tries again,
    instead of moving this process to memory for good.
    """
    if isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in ("locked", "busy")
    ):
        return False
    return isinstance(exc, OSError) or type(exc) in {
        sqlite3.DatabaseError,  # not a database, corrupt
        sqlite3.OperationalError,  # full, I/O error, read-only, cannot open
        sqlite3.InternalError,
    }


@contextmanager
def _write(conn: sqlite3.Connection) -> Generator[None, None, None]:
    """A write transaction that holds the lock from its first read (cross-process atomicity)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _create_schema(conn: sqlite3.Connection) -> None:
    with _write(conn):
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {version} is from a newer revenium")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")


def _open_file(path: Path) -> sqlite3.Connection:
    """Create the file 0o600 ourselves, so no umask ever leaves usage data world-readable."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        try:
            path.chmod(0o600)
        except OSError as exc:
            warn_once(f"spool-mode:{path}", "revenium: cannot chmod 0600 %s (%s)", path, exc)
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        _create_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _open_memory() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    _create_schema(conn)
    return conn


def _envelope(row: Any) -> Envelope:
    return Envelope(key=row[0], path=row[1], body=bytes(row[2]), created_at=float(row[3]))


class Spool:
    """Undelivered records on disk (or in memory), shared safely by threads and processes.

    Every method takes one lock around one connection: the runtime calls it from worker
    threads, and SQLite serialises the processes. Methods raise ``RuntimeError`` after
    :meth:`close`; a storage failure never raises, it moves the spool to memory.
    """

    def __init__(self, path: Path | None, *, max_memory_rows: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._path = path
        self._max_memory_rows = max_memory_rows
        self.dropped = 0
        """Records lost to the in-memory bound since this spool was opened."""
        self._conn: sqlite3.Connection | None
        if path is None:
            self._conn = _open_memory()
            return
        try:
            self._conn = _open_file(path)
        except (sqlite3.Error, OSError) as exc:
            warn_once(
                f"spool-open:{path}:{_reason(exc)}",
                "revenium: cannot use the spool file %s (%s); undelivered usage records are "
                "kept in memory instead and are lost if this process exits",
                path,
                _reason(exc),
            )
            self._path = None
            self._conn = _open_memory()

    @property
    def path(self) -> Path | None:
        """The file in use; ``None`` when the spool is in memory."""
        return self._path

    @property
    def in_memory(self) -> bool:
        """Whether records are only in this process (asked for, or after a storage failure)."""
        return self._path is None

    def _run(self, where: str, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``operation``; on a storage failure move to memory and run it again there."""
        with self._lock:
            if self._conn is None:
                raise RuntimeError("the revenium spool is closed")
            try:
                return operation(self._conn)
            except Exception as exc:
                if self._path is None or not _is_storage_failure(exc):
                    raise
                warn_once(
                    f"spool-fail:{self._path}:{where}:{type(exc).__name__}",
                    "revenium: the spool file %s failed in %s (%s); switching to an in-memory "
                    "spool. Records already in that file are not replayed by this process, and "
                    "records spooled from now on are lost if it exits",
                    self._path,
                    where,
                    _reason(exc),
                )
                with suppress(sqlite3.Error):
                    self._conn.close()
                self._path = None
                self._conn = _open_memory()
                return operation(self._conn)

    def _enforce_bound(self, conn: sqlite3.Connection) -> None:
        """In memory, drop the oldest pending rows (then quarantined ones) past the bound."""
        if self._path is not None:
            return
        (total,) = conn.execute("SELECT COUNT(*) FROM records").fetchone()
        excess = total - self._max_memory_rows
        if excess <= 0:
            return
        dropped = conn.execute(
            "DELETE FROM records WHERE key IN "
            "(SELECT key FROM records ORDER BY quarantined, created_at LIMIT ?)",
            (excess,),
        ).rowcount
        self.dropped += dropped
        logger.warning(
            "revenium: the in-memory spool is full (%d rows): DROPPED the %d oldest undelivered "
            "usage records (%d dropped since start); these records are lost",
            self._max_memory_rows,
            dropped,
            self.dropped,
        )

    def _write_rows(
        self, where: str, sql: str, rows: Sequence[tuple[object, ...]], *, bound: bool = False
    ) -> int:
        """Run ``sql`` once per row in one write transaction; how many rows it changed."""

        def operation(conn: sqlite3.Connection) -> int:
            with _write(conn):
                changed = conn.executemany(sql, rows).rowcount
                if bound:
                    self._enforce_bound(conn)
            return changed

        return self._run(where, operation) if rows else 0

    def add(
        self,
        envelopes: Sequence[Envelope],
        *,
        attempts: int = 0,
        next_attempt_at: float | None = None,
        error: str | None = None,
    ) -> int:
        """Spool a batch in one transaction; a key already present is kept as it is.

        Returns how many rows were inserted. ``next_attempt_at=None`` means due now.
        """
        due = 0.0 if next_attempt_at is None else next_attempt_at
        reason = None if error is None else error[:_MAX_REASON]
        rows = [(e.key, e.path, e.body, e.created_at, attempts, due, reason) for e in envelopes]
        return self._write_rows("add", _ADD, rows, bound=True)

    def claim(
        self,
        limit: int,
        *,
        owner: str,
        lease_seconds: float,
        now: float | None = None,
        due_only: bool = True,
    ) -> list[ClaimedRow]:
        """Lease up to ``limit`` due rows to ``owner``, oldest first, in one atomic statement.

        ``due_only=False`` also takes rows still in their retry backoff (an explicit flush);
        rows under another owner's live lease are never taken.
        """
        at = time.time() if now is None else now
        due = at if due_only else 1e308
        params = {
            "owner": owner,
            "until": at + lease_seconds,
            "now": at,
            "due": due,
            "limit": limit,
        }

        def operation(conn: sqlite3.Connection) -> list[ClaimedRow]:
            with _write(conn):
                rows = conn.execute(_CLAIM, params).fetchall()
            claimed = [ClaimedRow(_envelope(r), r[4]) for r in rows]
            return sorted(claimed, key=lambda c: c.envelope.created_at)

        return self._run("claim", operation) if limit > 0 else []

    def release(
        self, key: str, *, owner: str, next_attempt_at: float, error: str | None = None
    ) -> None:
        """Record a failed attempt and give the row back, due at ``next_attempt_at``.

        Does nothing unless ``owner`` still holds the row: after its lease expired another
        owner may have taken it, and that owner's bookkeeping wins.
        """
        reason = None if error is None else error[:_MAX_REASON]
        self._write_rows("release", _RELEASE, [(next_attempt_at, reason, key, owner)])

    def delete(self, keys: Sequence[str]) -> None:
        """Forget delivered records (whatever their status)."""
        self._write_rows("delete", "DELETE FROM records WHERE key = ?", [(k,) for k in keys])

    def quarantine(
        self, envelope: Envelope, *, status: int, reason: str, now: float | None = None
    ) -> None:
        """Keep a record the server rejected for good; inserted if it was never spooled."""
        e, at = envelope, time.time() if now is None else now
        row = (e.key, e.path, e.body, e.created_at, reason[:_MAX_REASON], status, at)
        self._write_rows("quarantine", _QUARANTINE, [row], bound=True)

    def counts(self, now: float | None = None) -> SpoolCounts:
        """How many rows wait, how many of those are leased now, how many are quarantined."""
        at = time.time() if now is None else now

        def operation(conn: sqlite3.Connection) -> SpoolCounts:
            pending, claimed, quarantined = conn.execute(
                "SELECT COALESCE(SUM(quarantined = 0), 0), "
                "COALESCE(SUM(quarantined = 0 AND claim_until >= ?), 0), "
                "COALESCE(SUM(quarantined = 1), 0) FROM records",
                (at,),
            ).fetchone()
            return SpoolCounts(pending=pending, claimed=claimed, quarantined=quarantined)

        return self._run("counts", operation)

    def quarantined(self, limit: int = 100) -> list[QuarantinedRow]:
        """The quarantined records, newest first."""

        def operation(conn: sqlite3.Connection) -> list[QuarantinedRow]:
            rows = conn.execute(
                "SELECT key, path, body, created_at, http_status, last_error, quarantined_at "
                "FROM records WHERE quarantined = 1 "
                "ORDER BY quarantined_at DESC, created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [QuarantinedRow(_envelope(r), r[4], r[5] or "", float(r[6])) for r in rows]

        return self._run("quarantined", operation)

    def requeue(self, keys: Sequence[str] | None = None) -> int:
        """Make quarantined records pending again (due now, attempts 0); ``None`` means all."""
        return self._by_keys("requeue", _REQUEUE, keys)

    def purge(self, keys: Sequence[str] | None = None) -> int:
        """Delete quarantined records for good; ``None`` means all of them."""
        return self._by_keys("purge", _PURGE, keys)

    def _by_keys(self, where: str, sql: str, keys: Sequence[str] | None) -> int:
        if keys is None:
            return self._write_rows(where, sql, [()])
        return self._write_rows(where, f"{sql} AND key = ?", [(k,) for k in keys])

    def close(self) -> None:
        """Close the database (idempotent); later calls raise ``RuntimeError``."""
        with self._lock:
            if self._conn is not None:
                with suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
