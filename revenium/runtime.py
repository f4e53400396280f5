"""The delivery runtime: one anyio task group on one background thread.

This is the only module that knows about threads and event loops. Everything above it calls
:func:`submit`, which is sync-coloured because it never blocks: it appends the record to a
bounded ``deque`` (thread-safe, a few hundred nanoseconds) and, only when the runtime is idle,
wakes its loop. A busy runtime is never woken per record, so a burst of records costs no
syscall each.

The task group hosts:

- the *drainer*, which turns records into wire envelopes, writes the local ledger, and queues
  envelopes for the senders (or for the spool when the in-memory queue is full or delivery is
  paused);
- the *senders* (``max_concurrency`` of them), which POST with retries (:mod:`revenium.delivery`);
- the *spool writer*, which batches undeliverable envelopes into SQLite;
- the *spool replayer*, which re-sends spooled envelopes (this process's or an earlier one's)
  and, while delivery is paused, probes the API with backoff until it answers again.

A task that dies is restarted by its supervisor and the failure shows in :func:`statistics`.
``flush`` and ``shutdown`` run *on* the runtime loop through a blocking portal; the async
variants wait for them from a worker thread, so they never block the caller's event loop.
Whatever is still pending at a deadline goes to the spool: nothing is dropped but records that
find the hand-off buffer itself full, and those are counted and reported loudly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs

from revenium._diagnostics import internal_error_count, logger, report_internal_error, warn_once
from revenium.config import Config, get_config
from revenium.delivery import Attempt, Sender, Verdict
from revenium.ledger import Ledger
from revenium.records import CompletionRecord, Record, ToolEventRecord
from revenium.reports import DeliveryReport, Statistics
from revenium.spool import ClaimedRow, Envelope, Spool, default_path
from revenium.summary import SummaryPrinter
from revenium.wire import endpoint_for, to_wire

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

__all__ = ["Runtime"]

MEMORY_QUEUE: Final = 10_000  # envelopes waiting for a sender; beyond that they go to the spool
IDLE_TICK: Final = 0.5  # the periodic drain: a record not worth a wake-up waits this long
# Waking a sleeping loop from another thread costs the caller about 20 us on a small VM (a
# syscall and a thread switch): more than all the rest of metering a call. Records are only
# worth a wake-up when many are waiting; otherwise the periodic drain picks them up.
WAKE_AT: Final = 1_000
# After a wake-up, let records gather for this long before draining: one drain (and one
# thread hop to the ledger or spool) per batch instead of per record, and no wake-up at all
# for the records that arrive meanwhile. Metering latency of 20 ms is invisible; the CPU
# saved is the caller's, on a busy two-core machine.
BATCH_WINDOW: Final = 0.02
DRAIN_BATCH: Final = 1_000
# The drainer waits for the spool writer beyond this many parked envelopes (~30 MB): a burst
# while the API is down is absorbed in memory, a sustained flood fills the hand-off buffer.
SPOOL_BACKPRESSURE: Final = 100_000
REPLAY_BATCH: Final = 50
REPLAY_TICK: Final = 2.0
LEASE_SECONDS: Final = 60.0
PROBE_CAP_SECONDS: Final = 60.0


Pending = Record | Callable[[], Record | None]
"""What callers hand over: a record, or a function that builds it (``sink.submit_later``)."""


def _encode(record: Record) -> Envelope:
    body = json.dumps(to_wire(record), separators=(",", ":"), ensure_ascii=False).encode()
    when = record.timestamp if isinstance(record, ToolEventRecord) else record.request_time
    return Envelope(record.idempotency_key, endpoint_for(record), body, when.timestamp())


class Runtime:
    """One process's delivery machinery; created on first use, replaced after shutdown or fork."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        config = get_config()
        self.closing = False
        self._buffer: deque[Pending] = deque()
        self._limit = config.queue_size
        self._wake_pending = False
        # Running totals, named as the fields of Statistics; mutated on the runtime thread
        # (but ``dropped``, under its lock).
        self._counts: Counter[str] = Counter()
        self._last_error: str | None = None
        self._drop_lock = threading.Lock()
        self._in_flight: dict[str, Envelope] = {}
        self._to_spool: list[tuple[Envelope, int]] = []
        self._ledger_retry: list[tuple[Record, str, bytes]] = []  # rows a failed write kept
        self._paused: str | None = None
        self._probe_delay = 1.0
        self._next_probe = 0.0
        self._fingerprint: tuple[object, ...] = ()
        self._spool: Spool | None = None
        self._ledgers: dict[Path, Ledger] = {}
        self._owner = f"{os.getpid()}-{id(self)}"
        self._summary: SummaryPrinter | None = None  # REVENIUM_PRINT_SUMMARY
        self._sender: Sender | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._portal_cm = anyio.from_thread.start_blocking_portal(
            "asyncio", name="revenium-runtime"
        )
        self._portal = self._portal_cm.__enter__()
        self._main_future, _ = self._portal.start_task(self._main, name="revenium-runtime")

    # ----------------------------------------------------------------- caller side

    def submit(self, record: Pending) -> None:
        """Hand a record over. Never blocks; drops (counted, loudly) only if the buffer is full."""
        if self.closing:  # a caller that fetched this runtime just before its shutdown
            from revenium import lifecycle  # noqa: PLC0415 - rare path

            lifecycle.submit(record)  # a fresh runtime takes it
            return
        if len(self._buffer) >= self._limit:
            self._drop(record)
            return
        self._buffer.append(record)
        if len(self._buffer) >= WAKE_AT and not self._wake_pending and self._loop is not None:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._wake_now)

    def spawn(self, name: str, task: Callable[[], Any]) -> concurrent.futures.Future[None]:
        """Run ``task`` in the runtime's task group until shutdown (the cost-control poller).

        Not restarted when it fails: its owner starts another when it needs one (a restart
        here as well would run two). The future fails if the runtime has stopped meanwhile.
        """
        loop = self._loop
        assert loop is not None

        async def run() -> None:
            try:
                await task()
            except Exception as exc:  # noqa: BLE001 - reported; the owner starts another
                self._last_error = f"{name}: {exc!r}"
                report_internal_error(exc, f"the runtime's {name} task", reraise=False)

        async def start() -> None:  # start_soon must be called from inside the loop's tasks
            self._task_group.start_soon(run, name=name)

        return asyncio.run_coroutine_threadsafe(start(), loop)

    def _drop(self, record: Pending) -> None:
        with self._drop_lock:
            self._counts["dropped"] += 1
            dropped = self._counts["dropped"]
        if dropped == 1 or dropped % 1000 == 0:
            logger.error(
                "revenium: the hand-off buffer is full (%d records); %d record(s) dropped so far "
                "(last: %s). Raise REVENIUM_METERING_QUEUE_SIZE or check why delivery is stuck.",
                self._limit,
                dropped,
                getattr(record, "idempotency_key", "a record not built yet"),
            )

    def statistics(self) -> Statistics:
        """A consistent-enough snapshot of the counters (read without locks)."""
        sender = self._sender
        return Statistics(
            **self._counts,
            last_error=self._last_error,
            queued=len(self._buffer) + len(self._to_spool) + self._queue_length(),
            in_flight=len(self._in_flight),
            retried=sender.retried if sender else 0,
            internal_errors=internal_error_count(),
            paused=self._paused,
        )

    def _queue_length(self) -> int:
        send = getattr(self, "_send_in", None)
        return 0 if send is None else send.statistics().current_buffer_used

    def flush(self, timeout: float) -> DeliveryReport:
        """Deliver (or spool) everything pending, within ``timeout`` seconds."""
        self._refuse_from_runtime_thread()
        return self._portal.call(self._flush, time.monotonic() + timeout)

    def shutdown(self, timeout: float) -> DeliveryReport:
        """Finalize open streams, flush within ``timeout``, spool the rest, stop the thread."""
        self._refuse_from_runtime_thread()
        self.closing = True
        started = time.monotonic()
        report = self._portal.call(self._shutdown, started + timeout)
        try:
            self._main_future.result(timeout=max(timeout, 1.0))
        except Exception as exc:  # noqa: BLE001 - contained and reported
            report_internal_error(exc, "stopping the runtime", reraise=False)
        self._portal_cm.__exit__(None, None, None)
        self._spool_leftovers()
        pending = self._close_stores()
        if self._summary is not None:
            try:
                self._summary.close()  # the totals by model
            except Exception as exc:  # noqa: BLE001 - a summary must never fail a shutdown
                report_internal_error(exc, "printing the summary", reraise=False)
        return attrs.evolve(
            self._report(started, completed=report.completed),
            pending=pending,
            seconds=time.monotonic() - started,
        )

    def _refuse_from_runtime_thread(self) -> None:
        if threading.get_ident() == self._thread_id:
            raise RuntimeError("revenium: flush/shutdown cannot be called from the runtime thread")

    # ----------------------------------------------------------------- runtime loop

    async def _main(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._thread_id = threading.get_ident()
        self._loop = asyncio.get_running_loop()
        config = get_config()
        self._sender = Sender(config)
        self._send_in, self._send_out = anyio.create_memory_object_stream[Envelope](MEMORY_QUEUE)
        self._wake = anyio.Event()
        self._spool_wake = anyio.Event()
        self._replay_wake = anyio.Event()
        self._progress = anyio.Event()  # set by a sender each time it settles an envelope
        self._drain_lock = anyio.Lock()
        self._spool_lock = anyio.Lock()
        self._store_lock = anyio.Lock()
        self._replay_lock = anyio.Lock()
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                tg.start_soon(self._supervise, "drainer", self._drain_loop)
                tg.start_soon(self._supervise, "spool writer", self._spool_loop)
                tg.start_soon(self._supervise, "spool replayer", self._replay_loop)
                for i in range(config.max_concurrency):
                    tg.start_soon(self._supervise, f"sender {i}", self._send_loop)
                task_status.started()
        finally:
            self._send_in.close()
            self._send_out.close()
            with anyio.CancelScope(shield=True):
                await self._sender.aclose()

    async def _supervise(self, name: str, task: Callable[[], Any]) -> None:
        delay = 0.05
        while True:
            try:
                await task()
            except Exception as exc:  # noqa: BLE001 - the supervisor's whole job
                self._counts["restarts"] += 1
                self._last_error = f"{name}: {exc!r}"
                report_internal_error(exc, f"the runtime's {name} task", reraise=False)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                return

    def _wake_now(self) -> None:
        self._wake.set()

    async def _drain_loop(self) -> None:
        while True:
            with anyio.move_on_after(IDLE_TICK):
                await self._wake.wait()
            if len(self._buffer) < DRAIN_BATCH:
                await anyio.sleep(BATCH_WINDOW)
            await self._drain_once()

    async def _drain_once(self) -> None:
        # One drain at a time: a flush must wait for the batch the drainer is writing, or it
        # would report "done" while records are still on their way to the ledger or queue.
        async with self._drain_lock:
            await self._drain_locked()

    async def _drain_locked(self) -> None:
        # Reset the flag *before* draining: a record appended after this point either is
        # drained now or wakes the next round; none can slip between the two.
        self._wake = anyio.Event()
        self._wake_pending = False
        config = get_config()
        await self._ledger_write(config)  # rows an earlier write could not store
        summary = self._summary_for(config)
        while self._buffer:
            records = [self._buffer.popleft() for _ in range(min(DRAIN_BATCH, len(self._buffer)))]
            envelopes: list[Envelope] = []
            ledger_rows: list[tuple[Record, str, bytes]] = []
            for item in records:
                built = self._materialize(item)
                if built is None:
                    continue
                record, envelope = built
                if isinstance(record, CompletionRecord) and record.estimated:
                    self._counts["estimated"] += 1
                if summary is not None:
                    self._print(summary, record)
                if config.ledger_file is not None:
                    ledger_rows.append((record, envelope.path, envelope.body))
                if config.api_key is not None:
                    envelopes.append(envelope)
            for envelope in envelopes:  # the API copies first: a ledger problem cannot hold them
                self._enqueue(envelope)
            self._ledger_retry.extend(ledger_rows)
            await self._ledger_write(config)
            if len(self._to_spool) > SPOOL_BACKPRESSURE:
                await self._write_spool()  # backpressure: the buffer fills instead of memory
            await anyio.lowlevel.checkpoint()

    async def _ledger_write(self, config: Config) -> None:
        """Write the rows waiting for the ledger; on failure (locked, full) keep them."""
        if config.ledger_file is None or not self._ledger_retry:
            return
        rows, self._ledger_retry = self._ledger_retry, []
        try:
            written = await anyio.to_thread.run_sync(self._write_ledger, config.ledger_file, rows)
        except Exception as exc:  # noqa: BLE001 - locked by another process, or full: retry
            self._ledger_retry = rows
            self._last_error = f"ledger: {exc!r}"
            report_internal_error(exc, "writing the ledger", reraise=False)
        else:
            self._counts["ledger_written"] += written

    @staticmethod
    def _print(summary: SummaryPrinter, record: Record) -> None:
        """A summary line; whatever goes wrong printing it, the record is still delivered."""
        try:
            summary.add(record)
        except Exception as exc:  # noqa: BLE001 - contained and reported
            report_internal_error(exc, "printing the summary", reraise=False)

    def _summary_for(self, config: Config) -> SummaryPrinter | None:
        """The terminal summary, when ``print_summary`` asks for one (printed off the caller)."""
        if config.print_summary == "off":
            return None
        if self._summary is None or self._summary.mode != config.print_summary:
            if self._summary is not None:
                self._summary.close()
            self._summary = SummaryPrinter(config.print_summary)
        return self._summary

    def _materialize(self, item: Pending) -> tuple[Record, Envelope] | None:
        """Build a deferred record (see ``sink.submit_later``) and encode it for the wire.

        A record that fails to build or encode is a bug in the SDK: reported, counted as
        dropped, and the rest of the batch goes on.
        """
        try:
            record = item() if callable(item) else item
            if record is None:
                return None
            return record, _encode(record)
        except Exception as exc:  # noqa: BLE001 - one bad record must not stop the rest
            self._counts["dropped"] += 1
            report_internal_error(exc, "building or encoding a record", reraise=False)
            return None

    def _write_ledger(self, path: Path, rows: list[tuple[Record, str, bytes]]) -> int:
        ledger = self._ledgers.get(path)
        if ledger is None:
            ledger = self._ledgers[path] = Ledger(path)
        return ledger.write(rows)

    def _enqueue(self, envelope: Envelope) -> None:
        if self._paused is not None:
            self._park(envelope)
            return
        try:
            self._send_in.send_nowait(envelope)
        except anyio.WouldBlock:
            self._park(envelope)

    def _park(self, envelope: Envelope, attempts: int = 0) -> None:
        self._to_spool.append((envelope, attempts))
        self._spool_wake.set()

    async def _send_loop(self) -> None:
        assert self._sender is not None
        while True:
            # Take what is queued without yielding first: a yield here lets several senders
            # race for the connection just freed, and httpcore's pool pays for each loser.
            try:
                envelope = self._send_out.receive_nowait()
            except anyio.WouldBlock:
                try:
                    envelope = await self._send_out.receive()
                except anyio.EndOfStream:
                    return
            except anyio.EndOfStream:
                return
            config = get_config()
            if self._paused is not None or config.api_key is None:
                self._park(envelope)
                self._notify_progress()
                continue
            self._in_flight[envelope.key] = envelope
            try:
                result = await self._sender.deliver(envelope, config)
            except BaseException:
                self._park(envelope)  # cancelled mid-request: the replay is deduplicated by key
                raise
            finally:
                self._in_flight.pop(envelope.key, None)
            await self._settle_live(envelope, result)
            self._notify_progress()

    def _notify_progress(self) -> None:
        """Wake every flush waiting for the queue to empty (several may wait at once)."""
        event, self._progress = self._progress, anyio.Event()
        event.set()

    async def _settle_live(self, envelope: Envelope, result: Attempt) -> None:
        if result.verdict is Verdict.DELIVERED:
            self._counts["delivered"] += 1
            if self._paused is not None:
                self._resume()
        elif result.verdict is Verdict.QUARANTINE:
            await self._quarantine(envelope, result)
        else:
            self._pause(result)
            self._park(envelope, result.attempts)

    async def _quarantine(self, envelope: Envelope, result: Attempt) -> None:
        spool = await self._spool_store()
        await anyio.to_thread.run_sync(
            lambda: spool.quarantine(envelope, status=result.status or 0, reason=result.reason)
        )
        self._counts["quarantined"] += 1
        warn_once(
            f"quarantine:{result.status}",
            "revenium: the metering API rejected a record with HTTP %s (%s); it is kept in "
            "quarantine in the spool, not retried (docs/lifecycle.md: quarantine)",
            result.status,
            result.reason[:200],
        )

    def _pause(self, result: Attempt) -> None:
        kind = "misconfigured" if result.verdict is Verdict.MISCONFIGURED else "unreachable"
        status = f"HTTP {result.status}: " if result.status is not None else ""
        self._last_error = f"{status}{result.reason[:200]}"
        if self._paused == kind:
            return
        self._paused = kind
        self._probe_delay = 1.0
        self._next_probe = time.monotonic() + self._probe_delay
        self._fingerprint = self._config_fingerprint()
        where = default_path(get_config().spool_directory)
        if self._spool is not None and self._spool.in_memory:
            where = Path("memory")
        if kind == "misconfigured":
            logger.error(
                "revenium: the metering API answered HTTP %s (%s): the API key or base URL is "
                "wrong. Delivery is paused and records are kept in the spool (%s); fix "
                "REVENIUM_METERING_API_KEY / REVENIUM_METERING_BASE_URL or call "
                "revenium.configure(...). Delivery resumes by itself once the API accepts them.",
                result.status,
                result.reason[:200],
                where,
            )
        else:
            logger.warning(
                "revenium: the metering API is unreachable (%s); records are kept in the spool "
                "(%s) and delivered when it answers again",
                self._last_error,
                where,
            )

    def _resume(self) -> None:
        logger.info("revenium: the metering API answers again; delivery resumed")
        self._paused = None
        self._replay_wake.set()

    @staticmethod
    def _config_fingerprint() -> tuple[object, ...]:
        config = get_config()
        return (config.api_key, config.meter_url)

    async def _spool_store(self) -> Spool:
        async with self._store_lock:  # opened once, however many tasks ask at the same time
            if self._spool is None:
                path = default_path(get_config().spool_directory)
                self._spool = await anyio.to_thread.run_sync(Spool, path)
            return self._spool

    async def _spool_loop(self) -> None:
        while True:
            with anyio.move_on_after(IDLE_TICK):
                await self._spool_wake.wait()
            self._spool_wake = anyio.Event()
            await self._write_spool()

    async def _write_spool(self) -> None:
        async with self._spool_lock:  # a flush waits for the batch being written
            batch, self._to_spool = self._to_spool, []
            if not batch:
                return
            try:
                spool = await self._spool_store()
                await anyio.to_thread.run_sync(self._add_to_spool, spool, batch)
            except Exception:
                # Another process holds the spool (or the write failed): keep the envelopes
                # for the next round rather than lose them; the supervisor logs the error.
                self._to_spool[:0] = batch
                raise

    def _add_to_spool(self, spool: Spool, batch: list[tuple[Envelope, int]]) -> None:
        by_attempts: dict[int, list[Envelope]] = {}
        for envelope, attempts in batch:
            by_attempts.setdefault(attempts, []).append(envelope)
        dropped_before = spool.dropped
        for attempts, envelopes in by_attempts.items():
            spool.add(envelopes, attempts=attempts)
        self._counts["spooled"] += len(batch)
        # A spool that fell back to memory evicts beyond its bound: those records are lost.
        self._counts["dropped"] += spool.dropped - dropped_before

    async def _replay_loop(self) -> None:
        while True:
            with anyio.move_on_after(REPLAY_TICK):
                await self._replay_wake.wait()
            self._replay_wake = anyio.Event()
            await self._replay_once(force=False)

    async def _replay_once(self, *, force: bool) -> None:
        # One pass at a time: a flush waits for the background pass's rows to settle instead
        # of reporting "done" while they are still in flight under this runtime's lease.
        async with self._replay_lock:
            await self._replay_locked(force=force)

    async def _replay_locked(self, *, force: bool) -> None:
        config = get_config()
        if config.api_key is None:
            return
        if self._paused is not None and not await self._probe(config, force=force):
            return
        spool = await self._spool_store()
        assert self._sender is not None
        sender = self._sender
        while self._paused is None:
            rows = await anyio.to_thread.run_sync(
                lambda: spool.claim(
                    REPLAY_BATCH, owner=self._owner, lease_seconds=LEASE_SECONDS, due_only=not force
                )
            )
            if not rows:
                return
            results: list[tuple[ClaimedRow, Attempt]] = []
            limiter = anyio.CapacityLimiter(config.max_concurrency)
            async with anyio.create_task_group() as tg:
                for row in rows:
                    tg.start_soon(_attempt_row, sender, config, row, limiter, results)
            await self._settle_replayed(spool, results)

    async def _probe(self, config: Config, *, force: bool) -> bool:
        """Try one spooled envelope while paused; True when delivery may resume."""
        changed = self._config_fingerprint() != self._fingerprint
        if not force and not changed and time.monotonic() < self._next_probe:
            return False
        assert self._sender is not None
        spool = await self._spool_store()
        # Probe with a row that is due, so a record the server keeps failing (it backs off)
        # cannot block the probe for everyone else; the oldest row only when none is due.
        rows = await anyio.to_thread.run_sync(
            lambda: spool.claim(1, owner=self._owner, lease_seconds=LEASE_SECONDS)
        ) or await anyio.to_thread.run_sync(
            lambda: spool.claim(1, owner=self._owner, lease_seconds=LEASE_SECONDS, due_only=False)
        )
        if not rows:
            self._paused = None  # nothing to probe with: the next live record is the probe
            return True
        result = await self._sender.attempt(rows[0].envelope, config)
        await self._settle_replayed(spool, [(rows[0], result)])
        if result.verdict is Verdict.DELIVERED:
            return True
        self._probe_delay = min(self._probe_delay * 2, PROBE_CAP_SECONDS)
        self._next_probe = time.monotonic() + self._probe_delay
        self._fingerprint = self._config_fingerprint()
        return False

    async def _settle_replayed(
        self, spool: Spool, results: list[tuple[ClaimedRow, Attempt]]
    ) -> None:
        delivered = [row.envelope.key for row, r in results if r.verdict is Verdict.DELIVERED]
        if delivered:
            await anyio.to_thread.run_sync(spool.delete, delivered)
            self._counts["delivered"] += len(delivered)
            self._counts["replayed"] += len(delivered)
            if self._paused is not None:
                self._resume()
        for row, result in results:
            if result.verdict is Verdict.QUARANTINE:
                await self._quarantine(row.envelope, result)
            elif result.verdict is not Verdict.DELIVERED:
                await anyio.to_thread.run_sync(self._release, spool, row, result)
                self._pause(result)

    def _release(self, spool: Spool, row: ClaimedRow, result: Attempt) -> None:
        backoff = min(2.0**row.attempts, 300.0)
        spool.release(
            row.envelope.key,
            owner=self._owner,
            next_attempt_at=time.time() + backoff,
            error=result.reason[:500],
        )

    # ----------------------------------------------------------------- flush and shutdown

    async def _flush(self, deadline: float) -> DeliveryReport:
        started = time.monotonic()
        completed = False
        pending = 0
        with anyio.move_on_after(max(deadline - time.monotonic(), 0.0)):
            try:
                await self._drain_once()
                while self._queue_length() or self._in_flight:
                    await self._progress.wait()
                await self._write_spool()
                await self._replay_once(force=True)
                await self._write_spool()
                completed = True
                if self._spool is not None:
                    spool = self._spool
                    pending = (await anyio.to_thread.run_sync(spool.counts)).pending
            except Exception as exc:  # noqa: BLE001 - a flush reports, it never raises
                self._last_error = f"flush: {exc!r}"
                report_internal_error(exc, "flushing", reraise=False)
        return attrs.evolve(self._report(started, completed=completed), pending=pending)

    async def _shutdown(self, deadline: float) -> DeliveryReport:
        # Keep a slice of the deadline for spooling what could not be delivered.
        reserve = min(0.5, max(deadline - time.monotonic(), 0.0) * 0.2)
        report = await self._flush(deadline - reserve)
        while True:  # what is still queued goes to the spool, not into the void
            try:
                self._park(self._send_out.receive_nowait())
            except anyio.WouldBlock:
                break
        self._send_in.close()
        self._task_group.cancel_scope.cancel()
        return report

    def _spool_leftovers(self) -> None:
        """After the loop stopped: records and envelopes still in memory go to disk."""
        config = get_config()
        leftovers = list(self._to_spool)
        self._to_spool.clear()
        ledger_rows: list[tuple[Record, str, bytes]] = []
        while self._buffer:
            built = self._materialize(self._buffer.popleft())
            if built is None:
                continue
            record, envelope = built
            summary = self._summary_for(config)
            if summary is not None:
                self._print(summary, record)
            if config.ledger_file is not None:
                ledger_rows.append((record, envelope.path, envelope.body))
            if config.api_key is not None:
                leftovers.append((envelope, 0))
        ledger_rows = self._ledger_retry + ledger_rows
        if ledger_rows and config.ledger_file is not None:
            try:
                self._counts["ledger_written"] += self._write_ledger(
                    config.ledger_file, ledger_rows
                )
            except Exception as exc:  # noqa: BLE001 - the process is stopping: count the loss
                self._counts["dropped"] += len(ledger_rows)
                report_internal_error(exc, "writing the ledger at shutdown", reraise=False)
        if leftovers:
            try:
                if self._spool is None:
                    self._spool = Spool(default_path(config.spool_directory))
                self._add_to_spool(self._spool, leftovers)
            except Exception as exc:  # noqa: BLE001 - the process is stopping: count the loss
                self._counts["dropped"] += len(leftovers)
                report_internal_error(exc, "spooling at shutdown", reraise=False)

    def _close_stores(self) -> int:
        pending = 0
        if self._spool is not None:
            pending = self._spool.counts().pending
            self._spool.close()
        for ledger in self._ledgers.values():
            ledger.close()
        return pending

    def _report(self, started: float, *, completed: bool) -> DeliveryReport:
        c = self._counts
        return DeliveryReport(
            delivered=c["delivered"],
            spooled=c["spooled"],
            quarantined=c["quarantined"],
            dropped=c["dropped"],
            ledger_written=c["ledger_written"],
            pending=0,
            seconds=time.monotonic() - started,
            completed=completed,
        )


async def _attempt_row(
    sender: Sender,
    config: Config,
    row: ClaimedRow,
    limiter: anyio.CapacityLimiter,
    results: list[tuple[ClaimedRow, Attempt]],
) -> None:
    async with limiter:  # with retries: one passing 503 must not pause the whole replay
        results.append((row, await sender.deliver(row.envelope, config)))
