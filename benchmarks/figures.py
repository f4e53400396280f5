"""One benchmark figure per process: ``python benchmarks/figures.py NAME JSON_PARAMS``.

Why a process per figure (and per repetition): the runtime is a process-wide singleton with a
background thread, a connection pool, SQLite files and a peak-RSS high-water mark. A figure
measured in a process that already ran another one inherits its warm caches, its grown heap
and its leftover threads, so every measurement starts from a fresh interpreter instead.

Each figure prints one line ``RESULT {json}`` on stdout; :mod:`run` collects it. Parameters
arrive as JSON (record counts, the fake API's URL, a scratch directory). Nothing here writes
outside that scratch directory.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

API_KEY = "hak_benchmark_0000000000000000"
Params = dict[str, Any]
Result = dict[str, Any]


def _configure(params: Params, **overrides: object) -> None:
    """Point the SDK at the fake API (or a closed port) with a private spool and ledger.

    Explicit paths keep benchmark records out of the user's real spool and ledger.
    """
    import revenium  # noqa: PLC0415 - every figure controls when the SDK is imported

    scratch = Path(params["scratch"])
    settings: dict[str, object] = {"spool_dir": scratch / "spool"}
    if params.get("base_url"):
        settings.update(api_key=API_KEY, base_url=params["base_url"])
    else:
        settings["ledger_path"] = scratch / "ledger.sqlite3"
    settings.update(overrides)
    revenium.configure(**settings)


def _tool_records(n: int) -> list[Any]:
    """``n`` realistic tool-event records, built before any clock starts.

    The metadata is what a ``session()`` with an organization, a subscriber and a trace gives,
    so the wire bodies are the size a real record has.
    """
    from revenium.attribution import parse_metadata  # noqa: PLC0415
    from revenium.records import ToolEventRecord, utc_now  # noqa: PLC0415

    metadata = parse_metadata(
        {"organization_name": "Acme", "subscriber": {"id": "u1"}, "trace_id": "t1"},
        origin="benchmark",
        strict=True,
    )
    return [
        ToolEventRecord(
            tool_id="customer-db",
            operation="lookup",
            timestamp=utc_now(),
            duration_ms=12.5,
            success=True,
            metadata=metadata,
        )
        for _ in range(n)
    ]


def _handoff() -> Callable[[Any], None]:
    """The process-wide hand-off that ``revenium.sink.submit`` ends in.

    It is ``revenium.runtime.submit``, or ``revenium.lifecycle.submit`` once the process-wide
    functions moved there; either way the same never-blocking deque append.
    """
    for name in ("revenium.lifecycle", "revenium.runtime"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        submit = getattr(module, "submit", None)
        if callable(submit):
            return submit  # type: ignore[no-any-return]
    raise RuntimeError("no revenium hand-off function found")


def _statistics() -> Result:
    import revenium  # noqa: PLC0415

    s = revenium.statistics()
    return {
        "delivered": s.delivered,
        "spooled": s.spooled,
        "dropped": s.dropped,
        "ledger_written": s.ledger_written,
        "restarts": s.restarts,
        "internal_errors": s.internal_errors,
        "retried": s.retried,
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --------------------------------------------------------------------- 1. hand-off cost


def handoff(params: Params) -> Result:
    """Per-record cost of ``runtime.submit`` and of the whole ``report_tool_call``.

    Timed in batches (one ``perf_counter`` pair per ``batch`` records, so the timer's own cost
    vanishes); between batches ``flush_sync`` empties the buffer, so every batch starts from
    the same idle runtime and the buffer never grows across batches. The destination is the
    local ledger: the hand-off does not depend on it, and it drains far faster than HTTP.
    The first record of each batch pays the loop wake-up; the ``idle`` figure isolates that
    case (one record, runtime asleep) because a light producer, one paid call now and then,
    pays it on every record.
    """
    _configure(params)
    import revenium  # noqa: PLC0415

    submit_one = _handoff()
    batch: int = params["batch"]
    batches: int = params["batches"]
    warmup = max(2, batches // 5)
    perf = time.perf_counter

    def time_submit() -> float:
        records = _tool_records(batch)
        submit = submit_one
        t0 = perf()
        for record in records:
            submit(record)
        elapsed = perf() - t0
        revenium.flush_sync(timeout=30)
        return elapsed / batch * 1e6

    def time_report(session: bool) -> float:
        report = revenium.report_tool_call
        scope = revenium.session(organization_name="Acme", subscriber={"id": "u1"}, trace_id="t1")
        if session:
            scope.__enter__()
        t0 = perf()
        for _ in range(batch):
            report("customer-db", operation="lookup", duration_ms=12.5)
        elapsed = perf() - t0
        if session:
            scope.__exit__(None, None, None)
        revenium.flush_sync(timeout=30)
        return elapsed / batch * 1e6

    def time_idle() -> float:
        record = _tool_records(1)[0]
        revenium.flush_sync(timeout=30)
        # Let the runtime thread go back to sleep in its selector, so the hand-off has to
        # wake it. Spin on sleep(0) rather than sleeping: it releases the GIL each time but
        # keeps this core busy, since a core left idle for milliseconds runs everything
        # several times slower at first (a machine effect, not the SDK's).
        until = perf() + 0.002
        while perf() < until:
            time.sleep(0)
        t0 = perf()
        submit_one(record)
        return (perf() - t0) * 1e6

    kinds: dict[str, Callable[[], float]] = {
        "submit": time_submit,
        "report": lambda: time_report(session=False),
        "report_session": lambda: time_report(session=True),
    }
    for _ in range(warmup):  # starts the runtime, loads every module, warms the allocator
        for fn in kinds.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(batches):  # interleaved, so drift hits every kind alike
        for name, fn in kinds.items():
            samples[name].append(fn())
    idle = [time_idle() for _ in range(params["idle"])]
    stats = _statistics()
    report = revenium.shutdown_sync(timeout=30)
    return {**samples, "idle": idle, "stats": stats, "ledger": report.ledger_written}


# --------------------------------------------------------------------- 2. throughput


def throughput(params: Params) -> Result:
    """Records/s from the first ``submit`` of ``n`` records to ``flush_sync`` returning.

    ``time.process_time`` counts every thread of the process, so CPU per record includes the
    runtime thread's encoding, HTTP and bookkeeping: the sender's whole cost.
    """
    _configure(params)
    import revenium  # noqa: PLC0415

    submit = _handoff()
    n, warmup = params["n"], params["warmup"]
    for record in _tool_records(warmup):  # opens the connections, loads httpx and friends
        submit(record)
    revenium.flush_sync(timeout=60)
    before = _statistics()
    records = _tool_records(n)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for record in records:
        submit(record)
    report = revenium.flush_sync(timeout=120)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    delivered = report.delivered - before["delivered"]
    stats = _statistics()
    revenium.shutdown_sync(timeout=30)
    return {
        "n": n,
        "delivered": delivered,
        "seconds": wall,
        "rate": delivered / wall,
        "cpu_us": cpu / n * 1e6,
        "completed": report.completed,
        "stats": stats,
    }


def raw_httpx(params: Params) -> Result:
    """The same POSTs through a plain ``httpx.AsyncClient`` at the same concurrency.

    Bodies are the runtime's own encoding of the same records (built before the clock), and
    the headers are the ones the sender sends, so the only difference is the client path.
    """
    import httpx  # noqa: PLC0415

    from revenium.wire import endpoint_for, to_wire  # noqa: PLC0415

    n, warmup, concurrency = params["n"], params["warmup"], params["concurrency"]
    sample = _tool_records(1)[0]
    body = json.dumps(to_wire(sample), separators=(",", ":"), ensure_ascii=False).encode()
    url = params["base_url"].rstrip("/") + "/meter" + endpoint_for(sample)
    keys = [r.idempotency_key for r in _tool_records(n + warmup)]

    async def post_all(client: httpx.AsyncClient, batch: list[str]) -> int:
        queue = iter(batch)
        ok = 0

        async def worker() -> None:
            nonlocal ok
            for key in queue:  # a shared iterator: each key is taken by one worker
                response = await client.post(
                    url,
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "accept": "application/json",
                        "x-api-key": API_KEY,
                        "idempotency-key": key,
                    },
                )
                ok += response.is_success

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok

    async def main() -> Result:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
            await post_all(client, keys[:warmup])
            cpu0, t0 = time.process_time(), time.perf_counter()
            ok = await post_all(client, keys[warmup:])
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        return {
            "n": n,
            "delivered": ok,
            "seconds": wall,
            "rate": ok / wall,
            "cpu_us": cpu / n * 1e6,
        }

    return asyncio.run(main())


# --------------------------------------------------------------------- 3. event-loop stall


def loop_stall(params: Params) -> Result:
    """Lateness of a 1 ms ticker on the caller's loop while it produces ``n`` records.

    Records come from ``report_tool_call`` in bursts of ``burst`` per ``asyncio.sleep(0)``,
    and the probe keeps ticking until ``await revenium.flush()`` reports them delivered, so
    it sees the whole delivery, not only the production. With ``control`` the records are
    built and handed to a no-op delivery instead: what the producer costs without a runtime.
    """
    _configure(params)
    import revenium  # noqa: PLC0415
    from revenium import sink  # noqa: PLC0415

    if params["control"]:
        sink.set_delivery(lambda _record: None)
    n, burst = params["n"], params["burst"]

    async def main() -> Result:
        stop = asyncio.Event()
        lateness: list[float] = []
        produce_end = 0

        async def probe() -> None:
            perf = time.perf_counter
            while not stop.is_set():
                t0 = perf()
                await asyncio.sleep(0.001)
                lateness.append(perf() - t0 - 0.001)

        # Warm-up: start the runtime and open connections before the probe watches.
        with revenium.session(organization_name="Acme", subscriber={"id": "u1"}, trace_id="t1"):
            for _ in range(burst):
                revenium.report_tool_call("customer-db", operation="lookup", duration_ms=12.5)
        if not params["control"]:
            await revenium.flush(timeout=30)
        before = _statistics()
        probe_task = asyncio.create_task(probe())
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        async with revenium.session(
            organization_name="Acme", subscriber={"id": "u1"}, trace_id="t1"
        ):
            for _ in range(n // burst):
                for _ in range(burst):
                    revenium.report_tool_call("customer-db", operation="lookup", duration_ms=12.5)
                await asyncio.sleep(0)
        produce_seconds = time.perf_counter() - t0
        produce_end = len(lateness)
        if params["control"]:
            delivered = 0  # the ticker keeps watching an idle loop: its own baseline lateness
            await asyncio.sleep(params.get("idle_seconds", 1.0))
        else:
            report = await revenium.flush(timeout=120)
            delivered = report.delivered - before["delivered"]
        total_seconds = time.perf_counter() - t0
        stop.set()
        await probe_task
        ms = [x * 1e3 for x in lateness]
        during = ms[:produce_end] or [0.0]
        return {
            "n": n,
            "delivered": delivered,
            "produce_seconds": produce_seconds,
            "total_seconds": total_seconds,
            "ticks": len(ms),
            "max_ms": max(ms),
            "p99_ms": _quantile(ms, 0.99),
            "p50_ms": _quantile(ms, 0.5),
            "produce_max_ms": max(during),
            "produce_p99_ms": _quantile(during, 0.99),
        }

    result = asyncio.run(main())
    result["stats"] = _statistics()
    if not params["control"]:
        revenium.shutdown_sync(timeout=30)
    return result


# --------------------------------------------------------------------- 4. memory, API down


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_down(params: Params) -> Result:
    """Peak RSS while ``n`` records meet an unreachable API, then ``shutdown_sync(30)``.

    Records are produced by ``report_tool_call`` in batches of ``batch``; with ``yield_gil``
    each batch ends in ``time.sleep(0)``, which only releases the GIL (no real sleep), as a
    producer doing any I/O between calls would. Without it the producer never lets go.
    """
    _configure(params)
    import revenium  # noqa: PLC0415

    n, batch = params["n"], params["batch"]
    t0 = time.perf_counter()
    with revenium.session(organization_name="Acme", subscriber={"id": "u1"}, trace_id="t1"):
        for _ in range(n // batch):
            for _ in range(batch):
                revenium.report_tool_call("customer-db", operation="lookup", duration_ms=12.5)
            if params["yield_gil"]:
                time.sleep(0)
    produce_seconds = time.perf_counter() - t0
    produced_rss = _peak_rss_mb()
    report = revenium.shutdown_sync(timeout=30)
    return {
        "n": n,
        "produce_seconds": produce_seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_rss_after_produce_mb": produced_rss,
        "spooled": report.spooled,
        "dropped": report.dropped,
        "delivered": report.delivered,
        "pending": report.pending,
        "shutdown_seconds": report.seconds,
        "completed": report.completed,
    }


def memory_idle(params: Params) -> Result:
    """The baseline: import, start the runtime with one record, settle, shut down."""
    _configure(params)
    import revenium  # noqa: PLC0415

    revenium.report_tool_call("customer-db", operation="lookup", duration_ms=12.5)
    revenium.flush_sync(timeout=2)
    report = revenium.shutdown_sync(timeout=2)
    return {"peak_rss_mb": _peak_rss_mb(), "spooled": report.spooled, "dropped": report.dropped}


# --------------------------------------------------------------------- 5. shutdown flush


def shutdown_flush(params: Params) -> Result:
    """Seconds for ``shutdown_sync`` to deliver ``n`` records produced just before it."""
    _configure(params)
    import revenium  # noqa: PLC0415

    n = params["n"]
    revenium.report_tool_call("customer-db", operation="lookup", duration_ms=12.5)
    revenium.flush_sync(timeout=30)  # warm-up: the runtime is up and the connections open
    with revenium.session(organization_name="Acme", subscriber={"id": "u1"}, trace_id="t1"):
        for _ in range(n):
            revenium.report_tool_call("customer-db", operation="lookup", duration_ms=12.5)
    t0 = time.perf_counter()
    report = revenium.shutdown_sync(timeout=params["timeout"])  # None: the configured default
    return {
        "n": n,
        "seconds": time.perf_counter() - t0,
        "delivered": report.delivered - 1,
        "spooled": report.spooled,
        "dropped": report.dropped,
        "pending": report.pending,
        "completed": report.completed,
    }


# --------------------------------------------------------------------- 6. import time


def import_time(params: Params) -> Result:
    """``import revenium`` and the first ``revenium.session(...)`` in a fresh interpreter."""
    t0 = time.perf_counter()
    import revenium  # noqa: PLC0415

    imported = time.perf_counter() - t0
    providers = sorted(
        m for m in ("openai", "anthropic", "google.genai", "httpx", "anyio") if m in sys.modules
    )
    t1 = time.perf_counter()
    with revenium.session(organization_name="Acme"):
        pass
    first_session = time.perf_counter() - t1
    del params
    return {"import_ms": imported * 1e3, "session_ms": first_session * 1e3, "loaded": providers}


FIGURES: dict[str, Callable[[Params], Result]] = {
    "handoff": handoff,
    "throughput": throughput,
    "raw_httpx": raw_httpx,
    "loop_stall": loop_stall,
    "memory_down": memory_down,
    "memory_idle": memory_idle,
    "shutdown_flush": shutdown_flush,
    "import_time": import_time,
}


def loaded_modules() -> list[str]:
    """The package's modules this process loaded: the code a figure actually measured."""
    return sorted(m for m in sys.modules if m == "revenium" or m.startswith("revenium."))


if __name__ == "__main__":
    figure = FIGURES[sys.argv[1]]
    result = figure(json.loads(sys.argv[2]))
    result["modules"] = loaded_modules()
    print("RESULT " + json.dumps(result), flush=True)
