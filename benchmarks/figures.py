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
import gc
import importlib
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API_KEY = "hak_benchmark_0000000000000000"
Params = dict[str, Any]
Result = dict[str, Any]
Mock = Callable[[], Any]  # makes an ``httpx2`` client over the in-process transport


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


# --------------------------------------------------------------------- 7-9, 12-13. wrapped calls

CHAT_MODEL = "gpt-4o-mini"
CHAT_MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer briefly."}]
OPENAI_URL = "https://api.openai.com/v1"  # labelled OPENAI: the adapter's usual path
STREAM_OPTIONS = {"include_usage": True}  # asked by the caller, so both sides send the same
ANTHROPIC_MODEL = "claude-sonnet-4-6"
ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_MAX_TOKENS = 64
GOOGLE_MODEL = "gemini-2.5-flash"
GOOGLE_CONTENTS = CHAT_MESSAGES[0]["content"]  # a plain string: the SDK's usual call


def _chat_body() -> bytes:
    """A realistic ``chat.completion`` body, built once: the stand-in server's own answer."""
    from revenium.providers._openai_standin import Backend  # noqa: PLC0415

    request = json.dumps({"model": CHAT_MODEL, "messages": CHAT_MESSAGES}).encode()
    return Backend().handle("POST", "/v1/chat/completions", {}, request).body


def _message_body() -> bytes:
    """A realistic Anthropic ``message`` body, built once: the Anthropic stand-in's answer."""
    from revenium.providers._anthropic_standin import AnthropicBackend  # noqa: PLC0415

    request = json.dumps(
        {"model": ANTHROPIC_MODEL, "max_tokens": ANTHROPIC_MAX_TOKENS, "messages": CHAT_MESSAGES}
    ).encode()
    return AnthropicBackend().handle("POST", "/v1/messages", {}, request).body


def _gemini_body() -> bytes:
    """A realistic Gemini ``generateContent`` body, built once: the Google stand-in's answer."""
    from revenium.providers._google_standin import GoogleBackend  # noqa: PLC0415

    request = json.dumps({"contents": [{"role": "user", "parts": [{"text": GOOGLE_CONTENTS}]}]})
    path = f"/v1beta/models/{GOOGLE_MODEL}:generateContent"
    return GoogleBackend().handle("POST", path, {}, request.encode()).body


def _http_client(sync: Mock, aio: Mock, is_async: bool) -> dict[str, Any]:
    """OpenAI's and Anthropic's SDKs take one ``http_client``, sync or async like the client."""
    return {"http_client": aio() if is_async else sync()}


def _close(client: Any, is_async: bool) -> Any:
    """``client.close()``; on an async client, a coroutine to await."""
    del is_async
    return client.close()


@dataclass(frozen=True)
class _Provider:
    """What differs between two providers' non-streamed calls; the bench around them is one.

    ``endpoint`` finds, on a client (sync or async), the object whose ``method`` a call invokes
    (resolved once a block, as a caller holding ``client.chat.completions`` would); ``read``
    takes from the answer what a caller reads (its text), so a lazily parsed answer is parsed
    on both sides. ``transport`` gives the client's keywords that route it through the
    in-process transport, from the makers of a sync and an async ``httpx2`` client over it.
    """

    classes: tuple[Any, Any]  # the SDK's sync and async client classes
    options: dict[str, Any]
    endpoint: Callable[[Any, bool], Any]
    kwargs: dict[str, Any]
    read: Callable[[Any], Any]
    body: Callable[[], bytes]
    headers: dict[str, str]
    method: str = "create"
    transport: Callable[[Mock, Mock, bool], dict[str, Any]] = _http_client
    close: Callable[[Any, bool], Any] = _close


def _google_transport(sync: Mock, aio: Mock, is_async: bool) -> dict[str, Any]:
    """``google-genai`` takes both ``httpx2`` clients in its ``HttpOptions``.

    Without the async one, ``client.aio`` would go through aiohttp (when it is installed);
    one attempt, as ``max_retries=0`` for the others.
    """
    from google.genai import types  # noqa: PLC0415

    del is_async
    options = types.HttpOptions(
        httpx_client=sync(),
        httpx_async_client=aio(),
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return {"http_options": options}


def _google_close(client: Any, is_async: bool) -> Any:
    """``genai.Client`` closes its sync side with ``close()``, ``client.aio`` with ``aclose()``."""
    return client.aio.aclose() if is_async else client.close()


def _provider(name: str) -> _Provider:
    if name == "google":
        from google import genai  # noqa: PLC0415

        return _Provider(
            classes=(genai.Client, genai.Client),  # one client; ``client.aio`` is the async side
            options={"api_key": "AIza-bench", "vertexai": False},  # the Gemini API
            endpoint=lambda client, aio: client.aio.models if aio else client.models,
            method="generate_content",
            kwargs={"model": GOOGLE_MODEL, "contents": GOOGLE_CONTENTS},
            read=lambda response: response.text,
            body=_gemini_body,
            headers={"content-type": "application/json; charset=UTF-8"},
            transport=_google_transport,
            close=_google_close,
        )
    if name == "anthropic":
        import anthropic  # noqa: PLC0415

        return _Provider(
            classes=(anthropic.Anthropic, anthropic.AsyncAnthropic),
            options={"api_key": "sk-ant-bench", "base_url": ANTHROPIC_URL, "max_retries": 0},
            endpoint=lambda client, _aio: client.messages,
            kwargs={
                "model": ANTHROPIC_MODEL,
                "max_tokens": ANTHROPIC_MAX_TOKENS,
                "messages": CHAT_MESSAGES,
            },
            read=lambda message: message.content[0].text,
            body=_message_body,
            headers={"content-type": "application/json", "request-id": "req_bench"},
        )
    import openai  # noqa: PLC0415

    return _Provider(
        classes=(openai.OpenAI, openai.AsyncOpenAI),
        options={"api_key": "sk-bench", "base_url": OPENAI_URL, "max_retries": 0},
        endpoint=lambda client, _aio: client.chat.completions,
        kwargs={"model": CHAT_MODEL, "messages": CHAT_MESSAGES},
        read=lambda completion: completion.choices[0].message.content,
        body=_chat_body,
        headers={"content-type": "application/json", "x-request-id": "req_bench"},
    )


def _stream_frames(chunks: int) -> list[bytes]:
    """SSE frames of a chat stream asked with ``include_usage``, one frame per event.

    ``chunks`` content chunks (the first one also carries the role), the finish chunk, the
    usage chunk (``choices == []``), then ``[DONE]``: what OpenAI sends.
    """
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_bench",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], "usage": None}

    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": chunks + 12}
    events = [
        chunk({"role": "assistant", "content": "w0 "}),
        *(chunk({"content": f"w{i} "}) for i in range(1, chunks)),
        chunk({}, "stop"),
        {**base, "choices": [], "usage": usage},
    ]
    frames = [f"data: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events]
    return [*frames, b"data: [DONE]\n\n"]


def _mock_http_client(params: Params, provider: _Provider, *, is_async: bool) -> Any:
    """An ``httpx2`` client whose transport answers in-process with pre-built bytes.

    The handler does no work per request beyond building the response object, so its cost
    is the same for every call, wrapped or not. With ``yield_loop`` (async only) it first
    awaits ``asyncio.sleep(0)``, as a real transport waiting on a socket gives the loop back,
    so that concurrent calls interleave on the caller's loop.
    """
    import httpx2  # noqa: PLC0415

    if params["kind"] == "stream":
        frames = _stream_frames(params["chunks"])

        class Frames(httpx2.SyncByteStream, httpx2.AsyncByteStream):
            def __iter__(self) -> Any:
                return iter(frames)

            async def __aiter__(self) -> Any:
                for frame in frames:
                    yield frame

        stream_headers = {"content-type": "text/event-stream", "x-request-id": "req_bench"}

        def handler(_request: Any) -> Any:
            return httpx2.Response(200, headers=stream_headers, stream=Frames())

    elif params.get("yield_loop"):
        body, headers = provider.body(), provider.headers

        async def handler(_request: Any) -> Any:
            await asyncio.sleep(0)
            return httpx2.Response(200, headers=headers, content=body)

    else:
        body, headers = provider.body(), provider.headers

        def handler(_request: Any) -> Any:
            return httpx2.Response(200, headers=headers, content=body)

    transport = httpx2.MockTransport(handler)
    if is_async:
        return httpx2.AsyncClient(transport=transport)
    return httpx2.Client(transport=transport)


class _Delivery:
    """Where the wrapped calls' records go, and the untimed step between two timed blocks.

    ``ledger``: the runtime runs and writes every record to a local ledger, as a user without
    a metering key has it; ``flush`` between blocks, so every block starts with an idle
    runtime and only what the runtime thread takes *during* a block counts against it (the
    rest is reported apart as ``drain_us``). ``api``: the same, but the runtime POSTs every
    record to the fake metering API at ``base_url`` (as the existing SDK does in figure 12).
    ``capture``: ``revenium.testing.capture`` keeps the records from delivery, so no runtime
    runs at all: the caller's side alone.
    """

    def __init__(self, params: Params) -> None:
        import revenium  # noqa: PLC0415

        scratch = Path(params["scratch"])
        self.mode: str = params.get("delivery", "ledger")
        if self.mode == "api":
            revenium.configure(
                api_key=API_KEY, base_url=params["base_url"], spool_dir=scratch / "spool"
            )
        else:
            revenium.configure(
                api_key=None, ledger_path=scratch / "ledger.sqlite3", spool_dir=scratch / "spool"
            )
        self.captured_total = 0
        self._capture: Any = None
        self._captured: Any = None
        if self.mode == "capture":
            self._capture = revenium.testing.capture(strict_mode=False)
            self._captured = self._capture.__enter__()

    def unmetered(self, endpoint: Any) -> Any:
        """The unwrapped side's resource: the unwrapped client's own, as it is."""
        return endpoint

    def settle(self, loop: asyncio.AbstractEventLoop | None) -> float:
        """Untimed, after every block: drain the runtime (or forget the captured records)."""
        import revenium  # noqa: PLC0415

        t0 = time.perf_counter()
        if self._captured is not None:
            self.captured_total += len(self._captured.records)
            self._captured.clear()
        elif loop is not None:
            loop.run_until_complete(revenium.flush(timeout=30))
        else:
            revenium.flush_sync(timeout=30)
        return time.perf_counter() - t0

    def close(self) -> Result:
        import revenium  # noqa: PLC0415

        if self._capture is not None:
            self._capture.__exit__(None, None, None)
            return {"records": self.captured_total, "stats": _statistics()}
        stats = _statistics()
        revenium.shutdown_sync(timeout=30)
        records = stats["delivered"] if self.mode == "api" else stats["ledger_written"]
        return {"records": records, "stats": stats}


SEED_MODULE = "revenium_middleware.openai"  # revenium-python-sdk's OpenAI integration


class _SeedDelivery:
    """The existing SDK, ``revenium-python-sdk`` (import name ``revenium_middleware``).

    Importing ``revenium_middleware.openai`` patches ``Completions.create`` and
    ``AsyncCompletions.create`` on the ``openai`` classes themselves (wrapt), for every
    client in the process. Its configuration is its environment, read at import: the key
    and the metering address (it appends ``/meter/``), here the fake API. The original
    methods are kept before the import, and the unwrapped side calls them through a subclass
    of the resource class that puts them back: the same call, without the patch.

    Delivery: a pool of daemon worker threads (32 by default), each with an event loop of
    its own, POSTs one record per call through the SDK's generated ``httpx`` client; between
    blocks, untimed, ``flush_metering`` waits until they are done.
    """

    def __init__(self, params: Params) -> None:
        import os  # noqa: PLC0415

        from openai.resources.chat import completions  # noqa: PLC0415

        os.environ["REVENIUM_METERING_API_KEY"] = API_KEY
        os.environ["REVENIUM_METERING_BASE_URL"] = params["base_url"]
        originals = {
            cls: cls.__dict__["create"]
            for cls in (completions.Completions, completions.AsyncCompletions)
        }
        importlib.import_module(SEED_MODULE)
        sdk = importlib.import_module("revenium_middleware")
        if any(cls.__dict__["create"] is fn for cls, fn in originals.items()):
            raise RuntimeError(f"importing {SEED_MODULE} did not patch chat.completions.create")
        self._sdk = sdk
        self._unpatched = {
            cls: type(f"Unpatched{cls.__name__}", (cls,), {"create": fn})
            for cls, fn in originals.items()
        }

    def unmetered(self, endpoint: Any) -> Any:
        """The same resource of the same client, with the original ``create``."""
        return self._unpatched[type(endpoint)](endpoint._client)  # noqa: SLF001

    def settle(self, loop: asyncio.AbstractEventLoop | None) -> float:
        del loop  # its workers deliver on their own threads and loops
        t0 = time.perf_counter()
        left = self._sdk.flush_metering(30)
        if left:
            raise RuntimeError(f"revenium-python-sdk left {left} records undelivered after 30 s")
        return time.perf_counter() - t0

    def close(self) -> Result:
        import threading  # noqa: PLC0415

        left = self._sdk.flush_metering(30)
        status = self._sdk.get_metering_status()
        stats = {
            "delivered": status.success_count,
            "errors": status.error_count,
            "evicted": status.evicted_count,
            "left": left,
            "threads": threading.active_count(),
        }
        return {"records": status.success_count, "stats": stats}


class _CallBench:
    """One unwrapped client and its metered counterpart, and a block runner.

    ``provider``: ``openai`` (default), ``anthropic`` or ``google`` (``models.generate_content``
    on a ``genai.Client``, or on its ``client.aio`` when async). Ours: the metered client is
    ``revenium.wrap`` of the unwrapped one; it shares the client's HTTP pool and transport
    (``wrap`` clones the client onto the same pool), so the only difference between their
    calls is the metering. With ``delivery: seed`` the existing SDK meters instead: one
    client, patched globally, against its unpatched methods (see :class:`_SeedDelivery`).
    ``kind``: ``call`` (non-streamed) or ``stream`` (an OpenAI chat stream iterated to its
    end).
    """

    def __init__(self, params: Params) -> None:
        self.params = params
        self.is_async: bool = params["is_async"]
        self.loop = asyncio.new_event_loop() if self.is_async else None
        self.provider = _provider(params.get("provider", "openai"))
        seed = params.get("delivery") == "seed"
        self.delivery = _SeedDelivery(params) if seed else _Delivery(params)
        options = dict(self.provider.options)
        if params.get("openai_url"):  # a real HTTP server on loopback
            options["base_url"] = params["openai_url"]
        else:
            options |= self.provider.transport(
                lambda: _mock_http_client(params, self.provider, is_async=False),
                lambda: _mock_http_client(params, self.provider, is_async=True),
                self.is_async,
            )
        self.plain = self.provider.classes[self.is_async](**options)
        if seed:
            self.wrapped = self.plain  # patched in place: the original methods are the baseline
        else:
            import revenium  # noqa: PLC0415

            self.wrapped = revenium.wrap(self.plain)
        if params["kind"] == "stream":
            self.per_block = params["streams"]
            self.units = params["streams"] * params["chunks"]  # time is reported per chunk
        else:
            self.per_block = params["calls"]
            self.units = params["calls"]
        self.blocks = {"plain": 0, "wrapped": 0}
        self.cpu = 0.0  # the caller's thread CPU seconds a unit in the last block

    def endpoint(self, which: str) -> Any:
        """What ``create`` (or ``generate_content``) is called on: ``client.chat.completions``,
        ``client.messages``, ``client.models`` or ``client.aio.models``."""
        if which == "wrapped":
            return self.provider.endpoint(self.wrapped, self.is_async)
        return self.delivery.unmetered(self.provider.endpoint(self.plain, self.is_async))

    def block(self, which: str) -> float:
        """One timed block on ``which`` client; seconds per unit (call or chunk).

        ``self.cpu`` is then the caller's thread's CPU time a unit, which leaves out the time
        it waited for the GIL while other threads (the metering's) held it.
        """
        endpoint = self.endpoint(which)
        self.blocks[which] += 1
        cpu = time.thread_time()
        if self.loop is not None:
            seconds = self.loop.run_until_complete(self._block_async(endpoint))
        else:
            seconds = self._block_sync(endpoint)
        self.cpu = (time.thread_time() - cpu) / self.units
        return seconds / self.units

    def _block_sync(self, endpoint: Any) -> float:
        n, perf = self.per_block, time.perf_counter
        if self.params["kind"] == "stream":
            expected, seen = self.params["chunks"] + 2, 0
            t0 = perf()
            for _ in range(n):
                stream = endpoint.create(
                    model=CHAT_MODEL, messages=CHAT_MESSAGES, stream=True,
                    stream_options=STREAM_OPTIONS,
                )  # fmt: skip
                for chunk in stream:  # read as a caller does: the text of each chunk
                    seen += 1
                    if chunk.choices:
                        _text = chunk.choices[0].delta.content
            elapsed = perf() - t0
            if seen != expected * n:
                raise RuntimeError(f"{seen} chunks seen, {expected * n} sent")
            return elapsed
        kwargs, read, method = self.provider.kwargs, self.provider.read, self.provider.method
        t0 = perf()
        for _ in range(n):  # the method looked up on every call, as ``endpoint.create(...)``
            read(getattr(endpoint, method)(**kwargs))
        return perf() - t0

    async def _block_async(self, endpoint: Any) -> float:
        n, perf = self.per_block, time.perf_counter
        if self.params["kind"] == "stream":
            expected, seen = self.params["chunks"] + 2, 0
            t0 = perf()
            for _ in range(n):
                stream = await endpoint.create(
                    model=CHAT_MODEL, messages=CHAT_MESSAGES, stream=True,
                    stream_options=STREAM_OPTIONS,
                )  # fmt: skip
                async for chunk in stream:
                    seen += 1
                    if chunk.choices:
                        _text = chunk.choices[0].delta.content
            elapsed = perf() - t0
            if seen != expected * n:
                raise RuntimeError(f"{seen} chunks seen, {expected * n} sent")
            return elapsed
        kwargs, read, method = self.provider.kwargs, self.provider.read, self.provider.method
        t0 = perf()
        for _ in range(n):
            read(await getattr(endpoint, method)(**kwargs))
        return perf() - t0

    def burst(self, which: str) -> tuple[list[float], float]:
        """``calls`` calls at once on ``which`` client (async), watched by a 1 ms ticker.

        Returns how late each tick that overlapped the burst woke (ms), and the burst's
        seconds.
        """
        if self.loop is None:
            raise RuntimeError("a burst needs the async client")
        endpoint = self.endpoint(which)
        self.blocks[which] += 1
        return self.loop.run_until_complete(self._burst(endpoint))

    async def _burst(self, endpoint: Any) -> tuple[list[float], float]:
        kwargs, read, perf = self.provider.kwargs, self.provider.read, time.perf_counter
        method = self.provider.method
        ticks: list[tuple[float, float]] = []  # (when the tick started, when it woke)
        running = True

        async def probe() -> None:
            while running:
                t0 = perf()
                await asyncio.sleep(0.001)
                ticks.append((t0, perf()))

        async def call() -> None:
            read(await getattr(endpoint, method)(**kwargs))

        ticker = asyncio.create_task(probe())
        await asyncio.sleep(0.005)  # the ticker is ticking before the calls start
        start = perf()
        await asyncio.gather(*(call() for _ in range(self.params["calls"])))
        end = perf()
        running = False
        await ticker
        # A tick asleep when the calls start wakes only after the loop's first turn through
        # all of them: it counts, as does every tick that started before the last call ended.
        late = [(woke - t0 - 0.001) * 1e3 for t0, woke in ticks if woke > start and t0 < end]
        return late, end - start

    def warm_up(self, step: Callable[[str], object]) -> None:
        """``warmup`` pairs of ``step`` (a block or a burst), untimed: every module loaded,
        the runtime started, the caches warm."""
        for _ in range(self.params["warmup"]):
            for which in ("plain", "wrapped"):
                step(which)
                self.settle()

    def settle(self) -> float:
        """Between blocks, untimed: deliver, then collect garbage, so that every block starts
        from the same state (a collection left pending by one block would land in the next)."""
        seconds = self.delivery.settle(self.loop) / self.units
        gc.collect()
        return seconds

    def close(self) -> Result:
        result = self.delivery.close()
        closing = self.provider.close(self.plain, self.is_async)
        if self.loop is not None:
            self.loop.run_until_complete(closing)
            self.loop.close()
        calls = self.blocks["wrapped"] * self.per_block
        return {**result, "wrapped_calls": calls, "units_per_block": self.units}


def _abba(pairs: int) -> Iterator[str]:
    """``plain wrapped wrapped plain plain wrapped ...``: a drift hits both sides alike."""
    for i in range(pairs):
        yield from ("plain", "wrapped") if i % 2 == 0 else ("wrapped", "plain")


def call_overhead(params: Params) -> Result:
    """Wrapped against unwrapped, in alternating timed blocks; per unit and per block pair.

    After ``warmup`` pairs (which load every module, start the runtime, warm the caches),
    ``pairs`` pairs of blocks run in ABBA order (plain-wrapped, then wrapped-plain, ...), so
    a drift of the machine's speed hits both sides alike. Each pair gives one difference and
    one ratio; their medians are the figure, and the spread is their IQR. ``cpu_added_us``:
    the same difference in the caller's thread CPU time (its own work, no GIL waits).
    """
    bench = _CallBench(params)
    bench.warm_up(bench.block)
    times: dict[str, list[float]] = {"plain": [], "wrapped": []}
    cpu: dict[str, list[float]] = {"plain": [], "wrapped": []}
    drain: list[float] = []
    for which in _abba(params["pairs"]):
        times[which].append(bench.block(which) * 1e6)
        cpu[which].append(bench.cpu * 1e6)
        settled = bench.settle()
        if which == "wrapped":
            drain.append(settled * 1e6)
    result = bench.close()
    plain, wrapped = times["plain"], times["wrapped"]
    return {
        "plain_us": plain,
        "wrapped_us": wrapped,
        "added_us": [w - p for w, p in zip(wrapped, plain, strict=True)],
        "ratio": [w / p for w, p in zip(wrapped, plain, strict=True)],
        "drain_us": drain,
        "cpu_added_us": [w - p for w, p in zip(cpu["wrapped"], cpu["plain"], strict=True)],
        **result,
    }


def loop_lag(params: Params) -> Result:
    """13. The caller's loop while ``calls`` wrapped ``AsyncOpenAI`` calls run at once.

    Bursts of ``calls`` concurrent calls (``asyncio.gather``) alternate in ABBA order between
    the wrapped client and the same client unwrapped (the control), a 1 ms ticker on the same
    loop recording how late it wakes; between bursts, untimed, the runtime is flushed. The
    transport's handler awaits ``asyncio.sleep(0)``, so the calls interleave on the loop as
    they do over a network. asyncio runs every ready callback before a timer that fell due
    meanwhile, so a tick waits for whole turns of the loop through all the calls: what
    metering adds to a call's time on the loop (its own work, and the runtime thread's turns
    with the GIL) shows up a thousandfold. ``delivery: capture`` leaves the runtime out.
    """
    bench = _CallBench({**params, "kind": "call", "is_async": True, "yield_loop": True})
    bench.warm_up(bench.burst)
    late: dict[str, list[float]] = {"plain": [], "wrapped": []}
    seconds: dict[str, list[float]] = {"plain": [], "wrapped": []}
    worst: dict[str, list[float]] = {"plain": [], "wrapped": []}
    for which in _abba(params["pairs"]):
        ms, secs = bench.burst(which)
        bench.settle()
        late[which] += ms
        seconds[which].append(secs)
        worst[which].append(max(ms, default=0.0))
    result = bench.close()
    out: Result = {"calls": params["calls"], **result}
    for which, name in (("wrapped", "wrapped"), ("plain", "control")):
        ms = late[which] or [0.0]
        out |= {
            f"{name}_max_ms": max(ms),
            f"{name}_p99_ms": _quantile(ms, 0.99),
            f"{name}_p50_ms": _quantile(ms, 0.5),
            f"{name}_ticks": len(late[which]),
            f"{name}_burst_max_ms": worst[which],
            f"{name}_burst_seconds": seconds[which],
        }
    return out


def _profile_rows(stats: dict[Any, Any], units: int, *, ours: bool) -> list[dict[str, Any]]:
    """pstats entries, per unit: revenium's own (``ours``) or everything else's."""
    import revenium  # noqa: PLC0415

    package = Path(revenium.__path__[0]).resolve()
    rows = []
    for (path, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.items():
        generated = path.startswith("<attrs generated") and " revenium." in path
        try:
            inside = Path(path).resolve().is_relative_to(package)
        except (OSError, ValueError):
            inside = False
        if (inside or generated) != ours:
            continue
        if inside:
            where = f"revenium/{Path(path).resolve().relative_to(package).as_posix()}:{line}"
        else:
            where = path if path.startswith("<") or path == "~" else f"{Path(path).name}:{line}"
        rows.append(
            {
                "function": name,
                "where": where,
                "calls": ncalls / units,
                "tottime_us": tottime / units * 1e6,
                "cumtime_us": cumtime / units * 1e6,
            }
        )
    return rows


class _ThreadProfiles:
    """cProfile in every thread the threading module starts from now on (the runtime's).

    ``threading.setprofile`` hands a function to each new thread; its first call swaps in a
    ``cProfile.Profile`` of that thread, which then runs until the thread ends.
    """

    def __init__(self) -> None:
        import cProfile  # noqa: PLC0415
        import threading  # noqa: PLC0415

        self.profiles: list[tuple[str, Any]] = []

        def start(_frame: Any, _event: str, _arg: Any) -> None:
            profile = cProfile.Profile()
            self.profiles.append((threading.current_thread().name, profile))
            profile.enable()

        threading.setprofile(start)

    def stats(self) -> dict[Any, Any]:
        import pstats  # noqa: PLC0415
        import threading  # noqa: PLC0415

        threading.setprofile(None)  # type: ignore[arg-type]
        merged: Any = None
        for _name, profile in self.profiles:
            try:
                one = pstats.Stats(profile)
            except TypeError:  # a thread that never ran a profiled call
                continue
            merged = one if merged is None else merged.add(one)
        return {} if merged is None else merged.stats  # type: ignore[no-any-return]


def call_profile(params: Params) -> Result:
    """cProfile of one wrapped block and one unwrapped block, per unit (call or chunk).

    The caller's thread: top revenium functions by own time (``tottime``), and the functions
    outside revenium that the wrapped block called more often than the unwrapped one (what
    the wrapper calls into), by added own time. With the ledger on and ``threads``, also the
    runtime's threads over the whole process, per record written (start-up included).
    """
    import cProfile  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    bench = _CallBench(params)
    bench.warm_up(bench.block)
    threads = None
    if params.get("threads") and params.get("delivery", "ledger") == "ledger":
        import revenium  # noqa: PLC0415

        # A fresh runtime for the measured blocks, started under the profiler: its start-up
        # (thread, loop, ledger) is counted once, the imports of the first one are not.
        revenium.shutdown_sync(timeout=30)
        threads = _ThreadProfiles()
    unprofiled = {}
    for which in ("plain", "wrapped"):
        unprofiled[which] = bench.block(which) * 1e6
        bench.settle()
    profiled: dict[str, Any] = {}
    totals = {}
    for which in ("plain", "wrapped"):
        profile = cProfile.Profile()
        profile.enable()
        bench.block(which)
        profile.disable()
        bench.settle()
        profiled[which] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        totals[which] = sum(v[2] for v in profiled[which].values()) / bench.units * 1e6
    units = bench.units
    closed = bench.close()
    top = params.get("top", 12)
    result: Result = {
        "unit": "chunk" if params["kind"] == "stream" else "call",
        "unprofiled_us": unprofiled,
        "profiled_us": totals,
        **_top_functions(profiled["wrapped"], profiled["plain"], units, top),
    }
    if threads is not None:
        stats, records = threads.stats(), max(closed["records"], 1)
        # Time blocked in the selector or on a lock is the thread waiting, not working.
        stats = {k: v for k, v in stats.items() if not _is_wait(k)}
        result["threads"] = {
            "names": sorted({name for name, _ in threads.profiles}),
            "records": records,
            "tottime_us": sum(v[2] for v in stats.values()) / records * 1e6,
            **_top_functions(stats, {}, records, top),
        }
    return result


_WAITS = ("poll", "acquire", "select", "sleep", "wait")


def _is_wait(key: tuple[str, int, str]) -> bool:
    """A builtin that blocks: a selector poll, a lock, a queue or condition wait, a sleep."""
    path, _line, name = key
    if path != "~":
        return False
    if name.startswith("<method 'get' of '_queue."):  # an idle worker thread's wait
        return True
    return any(f"'{word}'" in name or f".{word}>" in name for word in _WAITS)


def _top_functions(wrapped: dict[Any, Any], plain: dict[Any, Any], units: int, top: int) -> Result:
    ours = _profile_rows(wrapped, units, ours=True)
    ours.sort(key=lambda r: -r["tottime_us"])
    baseline = {(r["where"], r["function"]): r for r in _profile_rows(plain, units, ours=False)}
    outside = []
    for row in _profile_rows(wrapped, units, ours=False):
        base = baseline.get((row["where"], row["function"]))
        calls = row["calls"] - (base["calls"] if base else 0.0)
        if calls <= 1e-9:
            continue  # called as often without the wrapper: the SDK's own work
        added = row["tottime_us"] - (base["tottime_us"] if base else 0.0)
        outside.append({"function": row["function"], "where": row["where"], "calls": calls,
                        "tottime_us": added})  # fmt: skip
    outside.sort(key=lambda r: -r["tottime_us"])
    return {
        "revenium_tottime_us": sum(r["tottime_us"] for r in ours),
        "revenium": ours[:top],
        "outside": outside[: top // 2],
    }


# --------------------------------------------------------------------- 11. cost-control check


def enforcement_check(params: Params) -> Result:
    """The pre-call cost-control check with ``rules`` rules in force, per call.

    The rules are realistic and none blocks the measured call (it is allowed, so every rule is
    evaluated): each filters on another model, half also on an organization. The call's facts
    come from a 3-field session, as in a real call. This is the whole per-call price of cost
    controls; the poller works on the runtime's thread.
    """
    import revenium  # noqa: PLC0415
    from revenium import enforcement  # noqa: PLC0415
    from revenium.attribution import EMPTY  # noqa: PLC0415
    from revenium.config import get_config  # noqa: PLC0415
    from revenium.context import metadata_sources  # noqa: PLC0415
    from revenium.rule_check import CallFacts  # noqa: PLC0415
    from revenium.rules import parse_feed  # noqa: PLC0415

    _configure(params, circuit_breaker_enabled=True, team_id="bench", cb_poll_interval_seconds=3600)
    # Each rule names another model; with ``same_model`` every rule names the call's model
    # and another organization instead (the worst case: all of them are evaluated).
    same = params.get("same_model", False)
    rules = [
        {
            "ruleId": i,
            "name": f"cap {i}",
            "action": "BLOCK",
            "breached": True,
            "filters": [
                {
                    "dimension": "MODEL",
                    "operator": "IS",
                    "value": "gpt-4o-mini" if same else f"m-{i}",
                },
                # in the worst case the organization is tested by prefix, which the index
                # cannot key on: every rule is filed under the call's model, all evaluated
                {
                    "dimension": "ORGANIZATION",
                    "operator": "STARTS_WITH" if same else "IS",
                    "value": f"org-{i}" if same else "Acme",
                },
            ],
        }
        for i in range(params["rules"])
    ]
    config = get_config()
    enforcement._adopt(config)  # noqa: SLF001 - install a feed without a server
    enforcement._install(  # noqa: SLF001
        enforcement.Snapshot(parse_feed({"rules": rules}), time.time(), "bench")
    )
    enforcement._state.poller_alive = True  # noqa: SLF001 - no poller: the feed stays as set
    n = params["n"]
    with revenium.session(organization_name="Acme", product_name="bot", subscriber={"id": "u1"}):
        # as in a wrapped call: no client or per-call metadata, the session's scope
        sources = metadata_sources(client=EMPTY, call=EMPTY)

        def facts() -> CallFacts:
            md = sources[0]
            for source in sources[1:]:
                md = revenium.attribution.merge(md, source)
            return CallFacts(
                model="gpt-4o-mini",
                provider="OPENAI",
                organization=md.organization_name,
                product=md.product_name,
                subscriber_id=md.subscriber.id if md.subscriber else None,
            )

        check = enforcement.check
        for _ in range(min(n, 1_000)):  # warm-up
            check(config, facts, may_wait=False)
        samples: list[float] = []
        block = max(1, n // 20)
        for _ in range(20):
            t0 = time.perf_counter()
            for _ in range(block):
                check(config, facts, may_wait=False)
            samples.append((time.perf_counter() - t0) / block * 1e6)
    return {"n": n, "rules": params["rules"], "check_us": samples}


FIGURES: dict[str, Callable[[Params], Result]] = {
    "handoff": handoff,
    "throughput": throughput,
    "raw_httpx": raw_httpx,
    "loop_stall": loop_stall,
    "memory_down": memory_down,
    "memory_idle": memory_idle,
    "shutdown_flush": shutdown_flush,
    "import_time": import_time,
    "call_overhead": call_overhead,
    "call_profile": call_profile,
    "loop_lag": loop_lag,
    "enforcement_check": enforcement_check,
}


def loaded_modules() -> list[str]:
    """The package's modules this process loaded: the code a figure actually measured."""
    return sorted(m for m in sys.modules if m == "revenium" or m.startswith("revenium."))


if __name__ == "__main__":
    figure = FIGURES[sys.argv[1]]
    result = figure(json.loads(sys.argv[2]))
    result["modules"] = loaded_modules()
    print("RESULT " + json.dumps(result), flush=True)
