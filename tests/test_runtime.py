"""The delivery runtime against a real loopback HTTP server standing in for the Revenium API."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import anyio
import pytest

import revenium
from revenium import runtime
from revenium.spool import Spool, default_path

sys.path.insert(0, str(Path(__file__).parent))
from metering_server import MeteringServer, Response

KEY = "hak_integration_0123456789"


@pytest.fixture
def server() -> Iterator[MeteringServer]:
    with MeteringServer() as running:
        yield running


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def configured(server: MeteringServer, spool_dir: Path) -> MeteringServer:
    revenium.configure(api_key=KEY, base_url=server.url, spool_dir=spool_dir, max_retries=2)
    return server


def _spool_rows(spool_dir: Path) -> tuple[int, int]:
    spool = Spool(default_path(spool_dir))
    try:
        counts = spool.counts()
        return counts.pending, counts.quarantined
    finally:
        spool.close()


def test_records_arrive_with_the_exact_body_and_headers(configured: MeteringServer) -> None:
    with revenium.session(organization_name="Acme", trace_id="t-1"):
        record = revenium.report_tool_call("db", operation="lookup", duration_ms=12)
    report = revenium.flush_sync(timeout=10)
    assert report.completed
    assert report.delivered == 1
    (request,) = configured.requests
    assert request.path == "/meter/v2/tool/events"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["idempotency-key"] == record.idempotency_key
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("revenium-python/")
    from revenium.wire import to_wire

    assert request.body == to_wire(record)


def test_a_503_and_429_storm_loses_nothing_and_duplicates_nothing(
    configured: MeteringServer,
) -> None:
    configured.fail_next(6, 503)
    configured.fail_next(4, 429, **{"Retry-After": "0"})
    keys = {revenium.report_tool_call(f"t{i}", duration_ms=1).idempotency_key for i in range(40)}
    revenium.flush_sync(timeout=20)
    revenium.flush_sync(timeout=20)  # a second pass replays anything the storm spooled
    assert set(configured.accepted) == keys
    sent_keys = [r.headers["idempotency-key"] for r in configured.requests]
    assert set(sent_keys) == keys
    assert len(sent_keys) >= 50  # the failed attempts were retried with the same key
    stats = revenium.statistics()
    assert stats.delivered == 40
    assert stats.dropped == 0


def test_retry_after_holds_the_sender_back(configured: MeteringServer) -> None:
    configured.fail_next(1, 429, **{"Retry-After": "1"})
    revenium.report_tool_call("t", duration_ms=1)
    report = revenium.flush_sync(timeout=10)
    assert report.delivered == 1
    assert report.seconds >= 0.9
    assert revenium.statistics().retried == 1


def test_a_server_that_is_down_for_a_while_loses_nothing(
    configured: MeteringServer, spool_dir: Path
) -> None:
    url = configured.url
    configured.stop()
    keys = {revenium.report_tool_call(f"t{i}", duration_ms=1).idempotency_key for i in range(25)}
    report = revenium.flush_sync(timeout=20)
    assert report.completed
    assert report.delivered == 0
    assert report.spooled == 25
    assert revenium.statistics().paused == "unreachable"
    port = int(url.rsplit(":", 1)[1])
    with MeteringServer(port=port) as back:
        report = revenium.flush_sync(timeout=20)
        assert set(back.accepted) == keys
        assert report.delivered == 25
        assert revenium.statistics().paused is None
    assert _spool_rows(spool_dir) == (0, 0)


def test_400s_are_quarantined_with_the_servers_reason(
    configured: MeteringServer, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    configured.responder = lambda r: (
        Response(400, {"message": "traceType is invalid"})
        if r.body.get("toolId") == "bad"
        else None
    )
    revenium.report_tool_call("bad", duration_ms=1)
    revenium.report_tool_call("good", duration_ms=1)
    report = revenium.flush_sync(timeout=10)
    assert (report.delivered, report.quarantined) == (1, 1)
    spool = Spool(default_path(spool_dir))
    (row,) = spool.quarantined()
    spool.close()
    assert row.status == 400
    assert "traceType is invalid" in row.reason
    assert json.loads(row.envelope.body)["toolId"] == "bad"
    assert sum("rejected a record with HTTP 400" in r.getMessage() for r in caplog.records) == 1


def test_401_pauses_delivery_loudly_and_heals_when_the_key_works(
    configured: MeteringServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="revenium")
    configured.responder = lambda r: (
        Response(401, {"message": "invalid api key"})
        if r.headers.get("x-api-key") != "hak_rotated_key_0001"
        else None
    )
    keys = {revenium.report_tool_call(f"t{i}", duration_ms=1).idempotency_key for i in range(5)}
    report = revenium.flush_sync(timeout=10)
    assert report.delivered == 0
    assert revenium.statistics().paused == "misconfigured"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "HTTP 401" in errors[0].getMessage()
    assert KEY not in caplog.text
    revenium.configure(api_key="hak_rotated_key_0001")
    revenium.flush_sync(timeout=10)
    assert set(configured.accepted) == keys
    assert revenium.statistics().paused is None
    assert "delivery resumed" in caplog.text


def test_records_without_an_api_key_go_to_the_local_ledger(tmp_path: Path) -> None:
    revenium.configure(ledger_path=tmp_path / "ledger.db")
    with revenium.session(organization_name="Acme"):
        record = revenium.report_tool_call("t", duration_ms=5)
    report = revenium.flush_sync(timeout=10)
    assert report.ledger_written == 1
    db = sqlite3.connect(tmp_path / "ledger.db")
    rows = db.execute(
        "SELECT idempotency_key, kind, organization_name, body FROM records"
    ).fetchall()
    db.close()
    assert rows[0][:3] == (record.idempotency_key, "tool", "Acme")
    assert json.loads(rows[0][3])["toolId"] == "t"


def test_with_a_key_and_a_ledger_path_records_go_to_both(
    configured: MeteringServer, tmp_path: Path
) -> None:
    revenium.configure(ledger_path=tmp_path / "both.db")
    revenium.report_tool_call("t", duration_ms=5)
    report = revenium.flush_sync(timeout=10)
    assert (report.delivered, report.ledger_written) == (1, 1)


def test_shutdown_reports_and_a_later_record_starts_a_fresh_runtime(
    configured: MeteringServer,
) -> None:
    revenium.report_tool_call("a", duration_ms=1)
    report = revenium.shutdown_sync(timeout=10)
    assert (report.delivered, report.dropped, report.pending) == (1, 0, 0)
    assert report.ok
    revenium.report_tool_call("b", duration_ms=1)  # not lost: a new runtime takes it
    revenium.flush_sync(timeout=10)
    assert len(configured.accepted) == 2


async def test_async_flush_and_shutdown_do_not_block_the_event_loop(
    configured: MeteringServer,
) -> None:
    configured.fail_next(1, 429, **{"Retry-After": "1"})
    revenium.report_tool_call("t", duration_ms=1)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    report = await revenium.flush()
    task.cancel()
    assert report.delivered == 1
    assert ticks >= 20  # the loop kept running during the ~1 s Retry-After wait
    final = await revenium.shutdown()
    assert final.dropped == 0


async def test_a_thousand_tasks_and_eight_threads_deliver_every_record_once(
    configured: MeteringServer,
) -> None:
    revenium.configure(max_concurrency=16)
    keys: set[str] = set()
    lock = threading.Lock()

    def produce(n: int) -> None:
        for i in range(n):
            key = revenium.report_tool_call(f"thread-{i}", duration_ms=1).idempotency_key
            with lock:
                keys.add(key)

    async def task(i: int) -> None:
        async with revenium.session(trace_id=f"t{i}"):
            await anyio.lowlevel.checkpoint()
            key = revenium.report_tool_call("task", duration_ms=1).idempotency_key
            with lock:
                keys.add(key)

    threads = [threading.Thread(target=produce, args=(100,)) for _ in range(8)]
    for t in threads:
        t.start()
    await asyncio.gather(*(task(i) for i in range(1000)))
    for t in threads:
        t.join()
    report = await revenium.flush(timeout=60)
    assert report.completed
    assert len(keys) == 1800
    assert set(configured.accepted) == keys
    assert len(configured.requests) == 1800  # once each: no duplicate deliveries


def test_a_full_hand_off_buffer_drops_counts_and_reports_loudly(
    configured: MeteringServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    revenium.configure(queue_size=100)
    release = threading.Event()
    original = runtime.Runtime._drain_locked

    async def stuck(self: runtime.Runtime) -> None:
        await anyio.to_thread.run_sync(release.wait)
        await original(self)

    monkeypatch.setattr(runtime.Runtime, "_drain_locked", stuck)
    for i in range(150):
        revenium.report_tool_call(f"t{i}", duration_ms=1)
    assert revenium.statistics().dropped == 50
    assert "hand-off buffer is full" in caplog.text
    release.set()
    report = revenium.flush_sync(timeout=20)
    assert report.delivered == 100
    assert report.dropped == 50
    assert not report.ok


def test_a_runtime_task_that_dies_is_restarted_and_the_failure_is_visible(
    configured: MeteringServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = runtime.Runtime._drain_loop
    calls = {"n": 0}

    async def flaky(self: runtime.Runtime) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("drainer crashed")
        await original(self)

    monkeypatch.setattr(runtime.Runtime, "_drain_loop", flaky)
    revenium.report_tool_call("t", duration_ms=1)
    report = revenium.flush_sync(timeout=10)
    assert report.delivered == 1
    stats = revenium.statistics()
    assert stats.restarts == 1
    assert stats.last_error == "drainer: RuntimeError('drainer crashed')"


def test_debug_logging_shows_payloads_with_secrets_masked(
    configured: MeteringServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="revenium")
    revenium.report_tool_call(
        "t", duration_ms=1, usage_metadata={"note": "used sk-proj-abcdefghijklmnop1234567890"}
    )
    revenium.flush_sync(timeout=10)
    posts = [r.getMessage() for r in caplog.records if "POST http" in r.getMessage()]
    assert len(posts) == 1
    assert '"toolId":"t"' in posts[0]
    assert "abcdefghijklmnop1234567890" not in caplog.text
    assert KEY not in caplog.text


def _child_produces(url: str, spool: str, count: int) -> None:
    revenium.configure(api_key=KEY, base_url=url, spool_dir=spool)
    for i in range(count):
        revenium.report_tool_call(f"child-{i}", duration_ms=1)
    # no explicit flush: the process-exit hook must deliver


def test_a_forked_child_delivers_its_own_records_and_not_the_parents(
    configured: MeteringServer, spool_dir: Path
) -> None:
    parent_keys = {revenium.report_tool_call("parent", duration_ms=1).idempotency_key}
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_produces, args=(configured.url, str(spool_dir), 5))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    revenium.flush_sync(timeout=10)
    tools = [b["toolId"] for b in configured.accepted.values()]
    assert sorted(tools) == ["child-0", "child-1", "child-2", "child-3", "child-4", "parent"]
    assert len(configured.requests) == 6
    assert parent_keys <= set(configured.accepted)


_PRODUCER = """
import os, revenium
revenium.configure(
    api_key="{key}", base_url="{url}", spool_dir={spool!r}, shutdown_timeout_seconds=2
)
for i in range({count}):
    revenium.report_tool_call("t%d" % i, duration_ms=1)
"""


def test_a_process_that_exits_while_the_api_is_down_leaves_records_for_the_next_one(
    server: MeteringServer, spool_dir: Path
) -> None:
    url = server.url
    server.stop()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENIUM_")}
    code = textwrap.dedent(_PRODUCER.format(key=KEY, url=url, spool=str(spool_dir), count=30))
    done = subprocess.run([sys.executable, "-c", code], env=env, timeout=60, check=False,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wait in the spool for the next run" in done.stderr
    assert _spool_rows(spool_dir) == (30, 0)
    port = int(url.rsplit(":", 1)[1])
    with MeteringServer(port=port) as back:
        # A second process that produces nothing itself still delivers the leftovers.
        flush_only = (
            f"import revenium\nrevenium.configure(api_key='{KEY}', base_url='{url}', "
            f"spool_dir={str(spool_dir)!r})\nprint(revenium.shutdown_sync(timeout=20))"
        )
        done = subprocess.run([sys.executable, "-c", flush_only], env=env, timeout=60,
                              check=False, capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert len(back.accepted) == 30
        assert sorted(b["toolId"] for b in back.accepted.values()) == sorted(
            f"t{i}" for i in range(30)
        )
    assert _spool_rows(spool_dir) == (0, 0)


def test_atexit_flushes_a_process_that_never_called_shutdown(
    server: MeteringServer, spool_dir: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENIUM_")}
    code = textwrap.dedent(
        _PRODUCER.format(key=KEY, url=server.url, spool=str(spool_dir), count=10)
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, timeout=60, check=False,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(server.accepted) == 10


_SIGTERM_VICTIM = """
import sys, threading, revenium
revenium.configure(api_key="{key}", base_url="{url}", spool_dir={spool!r})
for i in range(7):
    revenium.report_tool_call("t%d" % i, duration_ms=1)
print("ready", flush=True)
threading.Event().wait(60)  # a server waiting for work, until SIGTERM
"""


def test_the_opt_in_sigterm_handler_flushes_then_chains_to_the_default(
    server: MeteringServer, spool_dir: Path
) -> None:
    import signal

    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENIUM_")}
    env["REVENIUM_INSTALL_SIGNAL_HANDLERS"] = "true"
    code = textwrap.dedent(_SIGTERM_VICTIM.format(key=KEY, url=server.url, spool=str(spool_dir)))
    with subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM  # the default action still ran
    assert len(server.accepted) == 7


def test_several_event_loops_in_several_threads_at_once(configured: MeteringServer) -> None:
    keys: list[str] = []
    outcomes: list[bool] = []
    lock = threading.Lock()

    async def loop_body(name: str) -> None:
        for i in range(50):
            async with revenium.session(agent=name):
                key = revenium.report_tool_call(f"{name}-{i}", duration_ms=1).idempotency_key
            with lock:
                keys.append(key)
            await asyncio.sleep(0)
        report = await revenium.flush(timeout=20)  # awaited from each loop; blocks neither
        outcomes.append(report.completed and report.dropped == 0)

    threads = [
        threading.Thread(target=asyncio.run, args=(loop_body(f"loop{n}"),)) for n in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    revenium.flush_sync(timeout=20)
    assert outcomes == [True, True, True]  # concurrent flushes each finish, none times out
    assert len(keys) == 150
    assert set(configured.accepted) == set(keys)
    agents = {body["agent"] for body in configured.accepted.values()}
    assert agents == {"loop0", "loop1", "loop2"}


def test_a_ledger_locked_by_another_process_keeps_the_records_for_the_next_write(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger.db"
    revenium.configure(ledger_path=ledger)
    revenium.report_tool_call("warm", duration_ms=1)
    revenium.flush_sync(timeout=10)  # the ledger file exists now
    holder = sqlite3.connect(ledger, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the timeout
    for i in range(5):
        revenium.report_tool_call(f"t{i}", duration_ms=1)
    first = revenium.flush_sync(timeout=15)
    holder.execute("ROLLBACK")
    holder.close()
    second = revenium.flush_sync(timeout=15)
    assert first.ledger_written == 1  # only the warm-up: the five waited, not lost
    assert second.ledger_written == 6
    assert second.dropped == 0
    with closing(sqlite3.connect(ledger)) as db:
        assert db.execute("SELECT COUNT(*) FROM records").fetchone() == (6,)


def test_a_spool_locked_by_another_process_keeps_the_envelopes_and_stays_on_disk(
    server: MeteringServer, spool_dir: Path
) -> None:
    url = server.url
    server.stop()
    revenium.configure(api_key=KEY, base_url=url, spool_dir=spool_dir, max_retries=0)
    revenium.report_tool_call("first", duration_ms=1)
    revenium.flush_sync(timeout=10)  # spooled: the spool file exists now
    holder = sqlite3.connect(default_path(spool_dir), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    for i in range(4):
        revenium.report_tool_call(f"t{i}", duration_ms=1)
    revenium.flush_sync(timeout=15)
    holder.execute("ROLLBACK")
    holder.close()
    report = revenium.shutdown_sync(timeout=15)
    assert report.dropped == 0
    assert _spool_rows(spool_dir) == (5, 0)  # all on disk: the spool never fell back to memory
