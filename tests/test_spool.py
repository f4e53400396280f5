"""The durable spool on real SQLite files: claims, leases, quarantine, restarts, processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from revenium.spool import (
    DEFAULT_FILENAME,
    ClaimedRow,
    Envelope,
    QuarantinedRow,
    Spool,
    SpoolCounts,
    default_path,
)


def envelope(n: int, created_at: float | None = None) -> Envelope:
    return Envelope(
        key=f"00000000-0000-4000-8000-{n:012d}",
        path="/v2/ai/completions",
        body=b'{"n":%d}' % n,
        created_at=float(n) if created_at is None else created_at,
    )


def keys(rows: list[ClaimedRow]) -> list[str]:
    return [r.envelope.key for r in rows]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool" / DEFAULT_FILENAME)
    yield opened
    opened.close()


def test_round_trip_oldest_first_with_exact_envelopes(spool: Spool) -> None:
    envs = [envelope(3), envelope(1), envelope(2)]
    assert spool.add(envs) == 3
    assert spool.counts(now=100) == SpoolCounts(pending=3, claimed=0, quarantined=0)

    claimed = spool.claim(10, owner="a", lease_seconds=30, now=100)
    assert claimed == [
        ClaimedRow(envelope(1), 0),
        ClaimedRow(envelope(2), 0),
        ClaimedRow(envelope(3), 0),
    ]
    assert spool.counts(now=100) == SpoolCounts(pending=3, claimed=3, quarantined=0)

    spool.delete([envelope(1).key, envelope(3).key])
    assert spool.counts(now=100) == SpoolCounts(pending=1, claimed=1, quarantined=0)
    assert spool.claim(10, owner="a", lease_seconds=30, now=131) == [ClaimedRow(envelope(2), 0)]
    assert spool.in_memory is False
    spool.close()


def test_claim_respects_the_limit_and_age(spool: Spool) -> None:
    spool.add([envelope(n) for n in range(10, 0, -1)])
    assert keys(spool.claim(3, owner="a", lease_seconds=30, now=100)) == [
        envelope(n).key for n in (1, 2, 3)
    ]
    assert keys(spool.claim(3, owner="a", lease_seconds=30, now=100)) == [
        envelope(n).key for n in (4, 5, 6)
    ]
    assert spool.claim(0, owner="a", lease_seconds=30, now=100) == []
    spool.close()


def test_adding_a_key_twice_keeps_one_row(spool: Spool) -> None:
    assert spool.add([envelope(1)]) == 1
    assert spool.add([envelope(1), envelope(2)]) == 1
    changed = Envelope(envelope(1).key, "/other", b"{}", 5.0)
    assert spool.add([changed]) == 0
    assert spool.counts(now=100) == SpoolCounts(pending=2, claimed=0, quarantined=0)
    assert spool.claim(10, owner="a", lease_seconds=30, now=100)[0].envelope == envelope(1)
    spool.close()


def test_claim_waits_for_next_attempt_at(spool: Spool) -> None:
    spool.add([envelope(1)], next_attempt_at=200.0)
    spool.add([envelope(2)])
    assert keys(spool.claim(10, owner="a", lease_seconds=30, now=199.9)) == [envelope(2).key]
    assert keys(spool.claim(10, owner="a", lease_seconds=30, now=200.0)) == [envelope(1).key]
    spool.close()


def test_a_lease_keeps_other_owners_out_until_it_expires(spool: Spool) -> None:
    spool.add([envelope(1)])
    assert keys(spool.claim(10, owner="a", lease_seconds=30, now=100)) == [envelope(1).key]
    assert spool.claim(10, owner="b", lease_seconds=30, now=129.9) == []
    assert spool.claim(10, owner="a", lease_seconds=30, now=130.0) == []  # claim_until == now
    assert spool.counts(now=130.0) == SpoolCounts(pending=1, claimed=1, quarantined=0)
    assert spool.counts(now=130.1) == SpoolCounts(pending=1, claimed=0, quarantined=0)
    assert keys(spool.claim(10, owner="b", lease_seconds=30, now=130.1)) == [envelope(1).key]
    # "a" lost the row: its release is ignored, "b" still holds it.
    spool.release(envelope(1).key, owner="a", next_attempt_at=0.0)
    assert spool.counts(now=131) == SpoolCounts(pending=1, claimed=1, quarantined=0)
    spool.close()


def test_release_counts_the_attempt_and_delays_the_row(spool: Spool) -> None:
    spool.add([envelope(1)], attempts=2)
    spool.claim(10, owner="a", lease_seconds=30, now=100)
    spool.release(envelope(1).key, owner="b", next_attempt_at=500.0, error="nope")
    assert spool.counts(now=100) == SpoolCounts(pending=1, claimed=1, quarantined=0)

    spool.release(envelope(1).key, owner="a", next_attempt_at=500.0, error="HTTP 503")
    assert spool.counts(now=100) == SpoolCounts(pending=1, claimed=0, quarantined=0)
    assert spool.claim(10, owner="a", lease_seconds=30, now=499.9) == []
    assert spool.claim(10, owner="a", lease_seconds=30, now=500.0) == [ClaimedRow(envelope(1), 3)]
    spool.close()


def test_quarantined_rows_are_kept_listed_requeued_and_purged(spool: Spool) -> None:
    spool.add([envelope(n) for n in (1, 2, 3)])
    spool.claim(10, owner="a", lease_seconds=30, now=100)
    spool.quarantine(envelope(1), status=400, reason="bad model", now=101)
    spool.quarantine(envelope(2), status=422, reason="x" * 5_000, now=102)
    spool.quarantine(envelope(9), status=400, reason="never spooled", now=103)

    assert spool.counts(now=100) == SpoolCounts(pending=1, claimed=1, quarantined=3)
    assert spool.claim(10, owner="b", lease_seconds=9_000, now=1_000) == [
        ClaimedRow(envelope(3), 0)
    ]
    assert spool.quarantined() == [
        QuarantinedRow(envelope(9), 400, "never spooled", 103.0),
        QuarantinedRow(envelope(2), 422, "x" * 2_000, 102.0),
        QuarantinedRow(envelope(1), 400, "bad model", 101.0),
    ]
    assert [q.envelope.key for q in spool.quarantined(limit=1)] == [envelope(9).key]
    assert all(type(q.quarantined_at) is float for q in spool.quarantined())
    # A quarantined row is not pending, so release by its old owner does nothing.
    spool.release(envelope(1).key, owner="a", next_attempt_at=0.0)
    assert spool.counts(now=100).quarantined == 3

    assert spool.requeue([envelope(1).key, envelope(3).key]) == 1  # 3 is not quarantined
    assert spool.claim(10, owner="c", lease_seconds=30, now=2_000) == [ClaimedRow(envelope(1), 0)]
    assert spool.purge([envelope(9).key]) == 1
    assert spool.counts(now=2_000) == SpoolCounts(pending=2, claimed=2, quarantined=1)
    assert spool.requeue() == 1
    spool.quarantine(envelope(2), status=400, reason="again", now=2_001)
    assert spool.purge() == 1
    assert spool.purge() == 0
    assert spool.counts(now=0) == SpoolCounts(pending=2, claimed=2, quarantined=0)
    spool.close()


def test_rows_survive_a_restart(tmp_path: Path) -> None:
    path = default_path(tmp_path)
    assert path == tmp_path / "spool.sqlite3"
    first = Spool(path)
    first.add([envelope(1), envelope(2)], attempts=1, error="API down")
    first.quarantine(envelope(3), status=400, reason="bad", now=5)
    first.close()
    first.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        first.counts()

    second = Spool(path)
    assert second.path == path
    assert second.claim(10, owner="next", lease_seconds=30) == [
        ClaimedRow(envelope(1), 1),
        ClaimedRow(envelope(2), 1),
    ]
    assert second.quarantined() == [QuarantinedRow(envelope(3), 400, "bad", 5.0)]
    second.close()


def claim_everything(path: str, start: Barrier, results: Queue[tuple[int, list[str]]]) -> None:
    """Child process: claim batches of 10 until nothing is left, report the keys."""
    spool = Spool(Path(path))
    start.wait()
    claimed: list[str] = []
    while rows := spool.claim(10, owner=str(os.getpid()), lease_seconds=600):
        claimed.extend(keys(rows))
    spool.close()
    results.put((os.getpid(), claimed))


def test_processes_sharing_a_file_never_claim_the_same_row(tmp_path: Path) -> None:
    path = tmp_path / DEFAULT_FILENAME
    spool = Spool(path)
    spool.add([envelope(n) for n in range(2_000)])
    spool.close()

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    results: Queue[tuple[int, list[str]]] = ctx.Queue()
    workers = [
        ctx.Process(target=claim_everything, args=(str(path), start, results)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    claimed = [key for _, got in reports for key in got]
    assert len(claimed) == 2_000
    assert sorted(claimed) == sorted(envelope(n).key for n in range(2_000))
    assert len({pid for pid, _ in reports}) == 4


def test_the_file_is_private_and_its_directory_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / DEFAULT_FILENAME
    Spool(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 & ~_umask()

    loose = tmp_path / "loose.sqlite3"
    loose.touch(mode=0o644)
    loose.chmod(0o644)
    spool = Spool(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    assert spool.in_memory is False
    spool.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fallback_warnings(caplog: pytest.LogCaptureFixture, path: Path) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "revenium" and r.levelno == logging.WARNING and str(path) in r.getMessage()
    ]


def _still_works(spool: Spool) -> None:
    assert spool.in_memory is True
    assert spool.path is None
    assert spool.add([envelope(1), envelope(2)]) == 2
    assert keys(spool.claim(10, owner="a", lease_seconds=30, now=100)) == [
        envelope(1).key,
        envelope(2).key,
    ]


def test_a_corrupted_file_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    path = tmp_path / DEFAULT_FILENAME
    path.write_bytes(bytes(range(256)) * 16)
    spool = Spool(path)
    (message,) = _fallback_warnings(caplog, path)
    assert "not a database" in message
    assert "in memory" in message
    _still_works(spool)
    spool.close()
    assert path.read_bytes() == bytes(range(256)) * 16  # left alone for a human to look at


@pytest.mark.parametrize("where", ["under_a_file", "a_directory", "newer_schema"])
def test_an_unusable_location_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    (tmp_path / "file.txt").write_text("not a directory")
    path = {
        "under_a_file": tmp_path / "file.txt" / DEFAULT_FILENAME,
        "a_directory": tmp_path,
        "newer_schema": tmp_path / "new.sqlite3",
    }[where]
    if where == "newer_schema":
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version = 2")
        conn.close()
    spool = Spool(path)
    assert len(_fallback_warnings(caplog, path)) == 1
    _still_works(spool)
    spool.close()


def test_a_failure_after_opening_moves_the_rows_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    path = tmp_path / DEFAULT_FILENAME
    spool = Spool(path)
    spool.add([envelope(1)])
    assert spool._conn is not None
    # A real "database or disk is full": the file may not grow by a single page.
    (pages,) = spool._conn.execute("PRAGMA page_count").fetchone()
    spool._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [Envelope(f"k{n}", "/p", b"x" * 1_000, 10.0 + n) for n in range(100)]
    assert spool.add(big) == 100
    (message,) = _fallback_warnings(caplog, path)
    assert "full" in message
    assert "not replayed" in message
    assert spool.in_memory is True
    assert spool.counts(now=0) == SpoolCounts(pending=100, claimed=0, quarantined=0)
    spool.close()


def test_memory_is_bounded_by_dropping_the_oldest(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    spool = Spool(None, max_memory_rows=100)
    assert spool.in_memory is True
    assert spool.add([envelope(n) for n in range(150)]) == 150
    assert spool.dropped == 50
    assert spool.counts(now=0) == SpoolCounts(pending=100, claimed=0, quarantined=0)
    claimed = spool.claim(1_000, owner="a", lease_seconds=30, now=0)
    assert keys(claimed) == [envelope(n).key for n in range(50, 150)]
    (message,) = [r.getMessage() for r in caplog.records]
    assert "DROPPED the 50 oldest" in message
    spool.close()


def test_a_large_batch_is_one_transaction(tmp_path: Path) -> None:
    spool = Spool(tmp_path / DEFAULT_FILENAME)
    assert spool.add([envelope(n) for n in range(50_000)]) == 50_000
    assert spool.counts(now=0) == SpoolCounts(pending=50_000, claimed=0, quarantined=0)
    assert len(spool.claim(50_000, owner="a", lease_seconds=30, now=0)) == 50_000
    assert spool.counts(now=0) == SpoolCounts(pending=50_000, claimed=50_000, quarantined=0)
    spool.close()
