"""Streamed Anthropic calls: exactly one exact record on every exit path, the SDK's API intact.

Both streaming surfaces (``messages.create(stream=True)`` and the ``messages.stream()`` manager),
sync and async, on the direct API, Bedrock (binary event stream) and Vertex. Every expected number
is computed from the stand-in's counting rules (``revenium/providers/_anthropic_standin.py``) and
the documented estimate (``ceil(characters / 4)``, never below ``message_start``'s output count).
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic_fixtures import (
    BEDROCK_MODEL,
    MODEL,
    USER_TEXT,
    VERTEX_MODEL,
    Handler,
    Recorded,
    async_bedrock_client,
    async_client,
    async_vertex_client,
    bedrock_client,
    echo,
    make_handler,
    recording,
    sync_client,
    tokens,
    vertex_client,
    words,
)

import revenium
from revenium.providers._anthropic_standin import THINKING_TEXT, TOOL_INPUT, AnthropicBackend
from revenium.records import CompletionRecord, OperationType, StopReason
from revenium.testing import Capture

# ----------------------------------------------------------------------------- the requests

MESSAGES: Any = [{"role": "user", "content": USER_TEXT}]
# A system block marked for caching: on a fresh backend, the first request writes it (5 min).
CACHED = "You are a careful assistant who always answers briefly. " * 4
SYSTEM: Any = [{"type": "text", "text": CACHED, "cache_control": {"type": "ephemeral"}}]
REQUEST: Any = {"model": MODEL, "max_tokens": 100, "messages": MESSAGES, "system": SYSTEM}
WEATHER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS: Any = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
SURFACES = pytest.mark.parametrize("surface", ["create", "stream"])


# ----------------------------------------------------------------------------- counting rules


def estimate(characters: int) -> int:
    """The documented estimate: about four characters a token, rounded up."""
    return math.ceil(characters / 4)


REPLY = echo(USER_TEXT)
STARTED_OUTPUT = 1  # the stand-in's message_start carries output_tokens=1
INPUT = tokens(USER_TEXT)  # the cached system block is cache traffic, not input
CACHE_WRITE = tokens(CACHED)


def content_chars(events: list[Any]) -> int:
    """Characters of content in the deltas seen: text, thinking and tool-input JSON."""
    total = 0
    for event in events:
        if event.type == "content_block_delta":
            delta = event.delta
            piece = getattr(delta, "text", None) or getattr(delta, "thinking", None)
            total += len(piece or getattr(delta, "partial_json", None) or "")
    return total


# ----------------------------------------------------------------------------- expected records

FIELDS = (
    "model",
    "provider",
    "model_source",
    "provider_model_id",
    "transaction_id",
    "operation_type",
    "input_token_count",
    "output_token_count",
    "total_token_count",
    "cache_read_token_count",
    "cache_creation_token_count",
    "cache_creation_5m_token_count",
    "cache_creation_1h_token_count",
    "reasoning_token_count",
    "stop_reason",
    "is_streamed",
    "estimated",
    "error_code",
    "error_reason",
)


def fields(record: CompletionRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in FIELDS}


def expected(
    *,
    n: int | None = 1,
    input_tokens: int = INPUT,
    output_tokens: int,
    cache_write: int | None = CACHE_WRITE,
    stop: StopReason = StopReason.END,
    estimated: bool = False,
    model: str = MODEL,
    provider: str = "ANTHROPIC",
    platform_id: str | None = None,
    operation: OperationType = OperationType.CHAT,
    reasoning: int | None = None,
    error_reason: str | None = None,
) -> dict[str, Any]:
    """The record of a stream; ``cache_write=None``: message_start never arrived."""
    known = cache_write is not None
    return {
        "model": model,
        "provider": provider,
        "model_source": "ANTHROPIC",
        "provider_model_id": platform_id,
        "transaction_id": None if n is None else f"msg_standin_{n}",
        "operation_type": operation,
        "input_token_count": input_tokens,
        "output_token_count": output_tokens,
        "total_token_count": input_tokens + output_tokens + (cache_write or 0),
        "cache_read_token_count": 0 if known else None,
        "cache_creation_token_count": cache_write,
        "cache_creation_5m_token_count": cache_write,
        "cache_creation_1h_token_count": 0 if known else None,
        "reasoning_token_count": reasoning,
        "stop_reason": stop,
        "is_streamed": True,
        "estimated": estimated,
        "error_code": None,
        "error_reason": error_reason,
    }


def exact(**overrides: Any) -> dict[str, Any]:
    """The record of the standard request read to its end."""
    return expected(output_tokens=words(REPLY), **overrides)


def cut_short(
    events: list[Any] | None = None, *, chars: int | None = None, **overrides: Any
) -> dict[str, Any]:
    """Ended after message_start: input and cache exact, the output estimated from the content
    received (the deltas among ``events``, or ``chars`` characters of it)."""
    received = content_chars(events or []) if chars is None else chars
    overrides.setdefault("stop", StopReason.CANCELLED)
    output = max(STARTED_OUTPUT, estimate(received))
    return expected(output_tokens=output, estimated=True, **overrides)


def unread(**overrides: Any) -> dict[str, Any]:
    """Ended before message_start: input estimated from the prompt's text, no cache counts."""
    prompt_chars = len(CACHED) + len(USER_TEXT)
    return expected(
        n=None,
        input_tokens=estimate(prompt_chars),
        output_tokens=0,
        cache_write=None,
        stop=StopReason.CANCELLED,
        estimated=True,
        **overrides,
    )


def only(captured: Capture) -> CompletionRecord:
    assert len(captured.records) == 1, captured.records
    (record,) = captured.completions
    return record


def check(captured: Capture, want: dict[str, Any], *, content: bool = True) -> CompletionRecord:
    """Exactly one record, with exactly these fields; its time to first token consistent.

    ``content``: a content delta arrived, so the time to first token was measured there;
    otherwise it is the stream's duration.
    """
    record = only(captured)
    assert fields(record) == want
    ttft, duration = record.time_to_first_token_ms, record.request_duration_ms
    assert ttft is not None
    if content:
        assert 0 < ttft <= duration
    else:
        assert ttft == duration
    return record


# ----------------------------------------------------------------------------- opening streams


def open_stream(client: Any, surface: str, **request: Any) -> Any:
    """``create(stream=True)`` (the request is sent now) or the manager (sent on ``with``)."""
    if surface == "create":
        return client.messages.create(stream=True, **request)
    return client.messages.stream(**request)


async def aopen_stream(client: Any, surface: str, **request: Any) -> Any:
    if surface == "create":
        return await client.messages.create(stream=True, **request)
    return client.messages.stream(**request)  # not awaited: the SDK's method is sync


def until_delta(events: Iterator[Any], seen: list[Any]) -> None:
    """Read up to and including the first content delta."""
    for event in events:
        seen.append(event)
        if event.type == "content_block_delta":
            return


async def auntil_delta(events: AsyncIterator[Any], seen: list[Any]) -> None:
    async for event in events:
        seen.append(event)
        if event.type == "content_block_delta":
            return


# ----------------------------------------------------------------------------- handlers


class _Tap(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A response body that keeps the exception its transport raised (to check its identity)."""

    def __init__(self, inner: Any, raised: list[BaseException]) -> None:
        self._inner = inner
        self._raised = raised

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except Exception as error:
            self._raised.append(error)
            raise

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as error:
            self._raised.append(error)
            raise


def tapping(raised: list[BaseException]) -> Handler:
    inner = make_handler()

    def handler(request: httpx2.Request) -> httpx2.Response:
        response = inner(request)
        return httpx2.Response(
            response.status_code, headers=response.headers, stream=_Tap(response.stream, raised)
        )

    return handler


def gated(reached: asyncio.Event, release: asyncio.Event) -> Handler:
    """An async body that stops after the first content delta, until ``release`` is set."""
    backend = AnthropicBackend()

    class Body(httpx2.AsyncByteStream):
        def __init__(self, chunks: list[bytes], stop_at: int) -> None:
            self._chunks = chunks
            self._stop_at = stop_at

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for index, chunk in enumerate(self._chunks):
                if index == self._stop_at:
                    reached.set()
                    await release.wait()
                yield chunk

    def handler(request: httpx2.Request) -> httpx2.Response:
        path = request.url.raw_path.decode("ascii")
        reply = backend.handle(request.method, path, request.headers, request.content)
        headers = {"content-type": reply.content_type, **reply.headers}
        body = Body(reply.chunks, reply.words_at + 1)  # words_at: the first content delta
        return httpx2.Response(reply.status, headers=headers, stream=body)

    return handler


def let_time_pass(seconds: float) -> float:
    """Return once the monotonic clock has advanced by ``seconds``; returns that clock."""
    until = time.perf_counter() + seconds
    while (now := time.perf_counter()) < until:
        time.sleep(until - now)
    return now


class CallerError(Exception):
    """The caller's own error."""


# ============================================================================= read to the end

SYNC_READERS: dict[str, Callable[[Any], Any]] = {
    "iterate": lambda s: [e.type for e in s if e.type == "message_stop"],
    "text_stream": lambda s: "".join(s.text_stream),
    "get_final_message": lambda s: s.get_final_message().content[0].text,
    "get_final_text": lambda s: s.get_final_text(),
    "until_done": lambda s: s.until_done() or s.current_message_snapshot.content[0].text,
}
READS = pytest.mark.parametrize(
    ("surface", "reader"),
    [
        ("create", "iterate"),
        ("stream", "iterate"),
        ("stream", "text_stream"),
        ("stream", "get_final_message"),
        ("stream", "get_final_text"),
        ("stream", "until_done"),
    ],
)


def _result_of(reader: str) -> Any:
    return ["message_stop"] if reader == "iterate" else REPLY


@READS
def test_a_stream_read_to_its_end_is_one_exact_record(
    captured: Capture, surface: str, reader: str
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with open_stream(client, surface, **REQUEST) as stream:
        assert captured.records == []  # nothing before the stream ends
        assert SYNC_READERS[reader](stream) == _result_of(reader)  # called without iterating
    check(captured, exact())


async def _aread(stream: Any, reader: str) -> Any:
    if reader == "iterate":
        return [e.type async for e in stream if e.type == "message_stop"]
    if reader == "text_stream":
        return "".join([t async for t in stream.text_stream])
    if reader == "get_final_message":
        return (await stream.get_final_message()).content[0].text
    if reader == "get_final_text":
        return await stream.get_final_text()
    await stream.until_done()
    return stream.current_message_snapshot.content[0].text


@READS
async def test_an_async_stream_read_to_its_end_is_one_exact_record(
    captured: Capture, surface: str, reader: str
) -> None:
    client = revenium.wrap(async_client(make_handler()))
    async with await aopen_stream(client, surface, **REQUEST) as stream:
        assert captured.records == []
        assert await _aread(stream, reader) == _result_of(reader)
    check(captured, exact())


def test_a_create_stream_read_without_a_with_block_is_one_exact_record(captured: Capture) -> None:
    stream = revenium.wrap(sync_client(make_handler())).messages.create(stream=True, **REQUEST)
    assert isinstance(stream, anthropic.Stream)
    events = list(stream)
    assert [e.type for e in events][:2] == ["message_start", "content_block_start"]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == REPLY
    check(captured, exact())


async def test_an_async_create_stream_read_without_a_with_block_is_one_exact_record(
    captured: Capture,
) -> None:
    client = revenium.wrap(async_client(make_handler()))
    stream = await client.messages.create(stream=True, **REQUEST)
    assert isinstance(stream, anthropic.AsyncStream)
    assert [e.type async for e in stream][-1] == "message_stop"
    check(captured, exact())


def test_the_second_request_reads_the_cache(captured: Capture) -> None:
    """The cache counts come from message_start, merged with message_delta's output."""
    client = revenium.wrap(sync_client(make_handler()))
    with client.messages.stream(**REQUEST) as first:
        first.until_done()
    with client.messages.stream(**REQUEST) as second:
        second.until_done()
    _, record = captured.completions
    assert (record.cache_read_token_count, record.cache_creation_token_count) == (CACHE_WRITE, 0)
    assert (record.cache_creation_5m_token_count, record.cache_creation_1h_token_count) == (0, 0)
    assert record.total_token_count == INPUT + words(REPLY) + CACHE_WRITE
    assert (record.transaction_id, record.estimated) == ("msg_standin_2", False)


# ============================================================================= early exits


def test_break_then_close_on_a_create_stream_is_one_cancelled_estimated_record(
    captured: Capture,
) -> None:
    stream = revenium.wrap(sync_client(make_handler())).messages.create(stream=True, **REQUEST)
    seen: list[Any] = []
    until_delta(iter(stream), seen)
    assert captured.records == []  # still open: the caller may resume
    stream.close()
    stream.close()
    check(captured, cut_short(seen))


def test_break_then_close_inside_a_manager_is_one_cancelled_estimated_record(
    captured: Capture,
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    seen: list[Any] = []
    with client.messages.stream(**REQUEST) as stream:
        until_delta(iter(stream), seen)
        assert captured.records == []
        stream.close()
        assert len(captured.records) == 1
    check(captured, cut_short(seen))


async def test_async_break_then_close_is_one_cancelled_estimated_record(
    captured: Capture,
) -> None:
    client = revenium.wrap(async_client(make_handler()))
    stream = await client.messages.create(stream=True, **REQUEST)
    seen: list[Any] = []
    await auntil_delta(stream, seen)
    assert captured.records == []
    await stream.close()
    await stream.close()
    check(captured, cut_short(seen))


async def test_async_break_then_close_inside_a_manager_is_one_cancelled_estimated_record(
    captured: Capture,
) -> None:
    client = revenium.wrap(async_client(make_handler()))
    seen: list[Any] = []
    async with client.messages.stream(**REQUEST) as stream:
        await auntil_delta(stream, seen)
        assert captured.records == []
        await stream.close()
        assert len(captured.records) == 1
    check(captured, cut_short(seen))


@SURFACES
def test_a_with_block_left_early_is_one_cancelled_record_with_exact_input(
    captured: Capture, surface: str
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with open_stream(client, surface, **REQUEST) as stream:
        first = next(iter(stream))
    assert first.type == "message_start"
    check(captured, cut_short([first]), content=False)


@SURFACES
async def test_an_async_with_block_left_early_is_one_cancelled_record_with_exact_input(
    captured: Capture, surface: str
) -> None:
    client = revenium.wrap(async_client(make_handler()))
    async with await aopen_stream(client, surface, **REQUEST) as stream:
        first = await anext(aiter(stream))
    assert first.type == "message_start"
    check(captured, cut_short([first]), content=False)


@SURFACES
def test_a_with_block_left_without_reading_is_one_cancelled_estimated_record(
    captured: Capture, surface: str
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(sync_client(recording(seen)))
    with open_stream(client, surface, **REQUEST):
        pass
    assert len(seen) == 1  # the request was sent: a paid call
    check(captured, unread(), content=False)


@SURFACES
async def test_an_async_with_block_left_without_reading_is_one_cancelled_estimated_record(
    captured: Capture, surface: str
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(async_client(recording(seen)))
    async with await aopen_stream(client, surface, **REQUEST):
        pass
    assert len(seen) == 1
    check(captured, unread(), content=False)


def test_a_manager_never_entered_sends_nothing_and_records_nothing(captured: Capture) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(sync_client(recording(seen)))
    manager = client.messages.stream(**REQUEST)
    assert isinstance(manager, anthropic.MessageStreamManager)
    del manager
    gc.collect()
    revenium.flush_sync(timeout=5)
    assert seen == []
    assert captured.records == []


async def test_an_async_manager_never_entered_sends_nothing_and_records_nothing(
    captured: Capture,
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(async_client(recording(seen)))
    manager = client.messages.stream(**REQUEST)
    assert isinstance(manager, anthropic.AsyncMessageStreamManager)
    # Only the SDK's own warning: its request coroutine, made up front, is never awaited.
    with pytest.warns(RuntimeWarning, match="never awaited") as warned:  # noqa: PT031
        del manager
        gc.collect()
    assert len(warned) == 1
    assert seen == []
    assert captured.records == []


# ============================================================================= the caller's error


@SURFACES
def test_the_callers_exception_in_the_loop_body_is_a_cancellation_and_propagates(
    captured: Capture, surface: str
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    boom = CallerError("the caller's own failure")
    seen: list[Any] = []
    with (  # noqa: PT012 - the loop is the scenario
        pytest.raises(CallerError) as raised,
        open_stream(client, surface, **REQUEST) as stream,
    ):
        for event in stream:
            seen.append(event)
            if event.type == "content_block_delta":
                raise boom
    assert raised.value is boom
    check(captured, cut_short(seen))


def test_the_callers_exception_in_a_text_stream_loop_is_a_cancellation(
    captured: Capture,
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    boom = CallerError("the caller's own failure")
    texts: list[str] = []
    with (  # noqa: PT012 - the loop is the scenario
        pytest.raises(CallerError) as raised,
        client.messages.stream(**REQUEST) as stream,
    ):
        for text in stream.text_stream:
            texts.append(text)
            raise boom
    assert raised.value is boom
    assert texts == ["Echo: "]
    check(captured, cut_short(chars=len("".join(texts))))


@SURFACES
async def test_the_callers_exception_in_an_async_loop_body_is_a_cancellation(
    captured: Capture, surface: str
) -> None:
    client = revenium.wrap(async_client(make_handler()))
    boom = CallerError("the caller's own failure")
    seen: list[Any] = []
    with pytest.raises(CallerError) as raised:  # noqa: PT012 - the loop is the scenario
        async with await aopen_stream(client, surface, **REQUEST) as stream:
            async for event in stream:
                seen.append(event)
                if event.type == "content_block_delta":
                    raise boom
    assert raised.value is boom
    check(captured, cut_short(seen))


def test_the_callers_exception_in_a_bare_loop_is_recorded_when_the_stream_is_dropped(
    captured: Capture,
) -> None:
    stream = revenium.wrap(sync_client(make_handler())).messages.create(stream=True, **REQUEST)
    seen: list[Any] = []

    def consume(events: Any) -> None:
        for event in events:
            seen.append(event)
            if event.type == "content_block_delta":
                raise CallerError

    with pytest.raises(CallerError):
        consume(stream)
    assert captured.records == []  # no with block: the stream is still open, and held
    del stream
    gc.collect()
    check(captured, cut_short(seen))


# ============================================================================= provider failures


def _failure_checks(
    captured: Capture, model: str, error: BaseException, seen: list[Any], tapped: list[Any]
) -> None:
    if model == "fail-midstream":  # a dropped connection: the transport's own exception
        assert type(error) is httpx2.RemoteProtocolError
        assert tapped == [error]  # the very object the transport raised
        reason = f"RemoteProtocolError: {error}"
    else:  # an SSE error event inside a 200 stream
        assert type(error) is anthropic.APIStatusError
        assert error.status_code == 200
        assert error.body == {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
        }
        reason = f"APIStatusError: {error}"
    want = cut_short(seen, model=model, stop=StopReason.ERROR, error_reason=reason)
    check(captured, want)  # error_code None: the only status there was is 200
    assert seen[0].type == "message_start"
    assert content_chars(seen) > 0


FAILURES = pytest.mark.parametrize("model", ["fail-midstream", "fail-error-event"])


@FAILURES
@SURFACES
def test_a_stream_failing_midway_is_one_error_record_and_the_error_reaches_the_caller(
    captured: Capture, surface: str, model: str
) -> None:
    tapped: list[BaseException] = []
    client = revenium.wrap(sync_client(tapping(tapped)))
    seen: list[Any] = []
    with (
        pytest.raises(Exception) as raised,
        open_stream(client, surface, **{**REQUEST, "model": model}) as stream,
    ):
        seen.extend(stream)
    _failure_checks(captured, model, raised.value, seen, tapped)


@FAILURES
@SURFACES
async def test_an_async_stream_failing_midway_is_one_error_record(
    captured: Capture, surface: str, model: str
) -> None:
    tapped: list[BaseException] = []
    client = revenium.wrap(async_client(tapping(tapped)))
    seen: list[Any] = []
    with pytest.raises(Exception) as raised:  # noqa: PT012 - the loop is the scenario
        async with await aopen_stream(client, surface, **{**REQUEST, "model": model}) as s:
            async for event in s:
                seen.append(event)
    _failure_checks(captured, model, raised.value, seen, tapped)


def test_a_manager_failing_in_get_final_message_is_one_error_record(captured: Capture) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client.messages.stream(**{**REQUEST, "model": "fail-error-event"}) as stream,
    ):
        stream.get_final_message()
    record = only(captured)
    assert (record.stop_reason, record.error_code) == (StopReason.ERROR, None)
    assert record.error_reason == f"APIStatusError: {raised.value}"
    assert (record.input_token_count, record.cache_creation_token_count) == (INPUT, CACHE_WRITE)


HTTP_ERRORS = pytest.mark.parametrize(
    ("model", "status", "kind"),
    [
        ("fail-429", 429, anthropic.RateLimitError),
        ("fail-500", 500, anthropic.InternalServerError),
    ],
)


def _http_error(model: str, status: int, error: anthropic.APIStatusError) -> dict[str, Any]:
    """A request refused before any stream began: no usage at all."""
    return {
        **expected(n=None, input_tokens=0, output_tokens=0, cache_write=None, model=model),
        "total_token_count": None,
        "stop_reason": StopReason.ERROR,
        "error_code": status,
        "error_reason": f"{type(error).__name__}: {error.message}",
    }


@HTTP_ERRORS
@SURFACES
def test_an_http_error_before_the_stream_is_one_error_record_with_its_status(
    captured: Capture, surface: str, model: str, status: int, kind: type[Exception]
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with (  # create(stream=True) raises at once, the manager when it is entered
        pytest.raises(kind) as raised,
        open_stream(client, surface, **{**REQUEST, "model": model}),
    ):
        pytest.fail("the request was refused")
    error = raised.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == status
    check(captured, _http_error(model, status, error), content=False)


@HTTP_ERRORS
@SURFACES
async def test_an_async_http_error_before_the_stream_is_one_error_record(
    captured: Capture, surface: str, model: str, status: int, kind: type[Exception]
) -> None:
    client = revenium.wrap(async_client(make_handler()))
    with pytest.raises(kind) as raised:
        async with await aopen_stream(client, surface, **{**REQUEST, "model": model}):
            pytest.fail("the request was refused")
    error = raised.value
    assert isinstance(error, anthropic.APIStatusError)
    check(captured, _http_error(model, status, error), content=False)


# ============================================================================= cancellation


@SURFACES
async def test_a_task_cancelled_mid_stream_is_one_cancelled_record(
    captured: Capture, surface: str
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()
    client = revenium.wrap(async_client(gated(reached, release)))
    seen: list[Any] = []

    async def consume() -> None:
        async with await aopen_stream(client, surface, **REQUEST) as stream:
            async for event in stream:
                seen.append(event)

    task = asyncio.create_task(consume())
    await reached.wait()  # the body is blocked after the first content delta
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert content_chars(seen) == len("Echo: ")  # the first word, and no more
    record = only(captured)
    want = cut_short(seen, error_reason=None)
    check(captured, want)
    assert record.error_reason is None  # a cancellation is the caller's doing, like a close()


@SURFACES
async def test_a_task_cancelled_while_waiting_for_the_response_is_one_cancelled_record(
    captured: Capture, surface: str
) -> None:
    reached, never = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx2.Request) -> httpx2.Response:
        reached.set()
        await never.wait()
        raise AssertionError("unreachable")

    client = revenium.wrap(async_client(handler))  # type: ignore[arg-type]

    async def consume() -> None:
        async with await aopen_stream(client, surface, **REQUEST):
            pytest.fail("no response ever came")

    task = asyncio.create_task(consume())
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = only(captured)
    want = {
        **expected(n=None, input_tokens=0, output_tokens=0, cache_write=None),
        "total_token_count": None,
        "stop_reason": StopReason.CANCELLED,
        "error_reason": None,
    }
    check(captured, want, content=False)
    assert record.error_reason is None


# ============================================================================= garbage collection


@pytest.mark.parametrize("read_first", [True, False], ids=["partly-read", "never-read"])
def test_an_abandoned_create_stream_is_recorded_at_garbage_collection(
    captured: Capture, read_first: bool
) -> None:
    stream = revenium.wrap(sync_client(make_handler())).messages.create(stream=True, **REQUEST)
    seen: list[Any] = []
    if read_first:
        until_delta(iter(stream), seen)
    assert captured.records == []
    del stream
    gc.collect()
    if read_first:
        check(captured, cut_short(seen))
    else:
        check(captured, unread(), content=False)


@pytest.mark.parametrize("read_first", [True, False], ids=["partly-read", "never-read"])
def test_an_abandoned_manager_stream_is_recorded_at_garbage_collection(
    captured: Capture, read_first: bool
) -> None:
    manager = revenium.wrap(sync_client(make_handler())).messages.stream(**REQUEST)
    stream = manager.__enter__()  # entered by hand, never exited
    seen: list[Any] = []
    if read_first:
        until_delta(stream, seen)
    assert captured.records == []
    del stream, manager
    gc.collect()
    if read_first:
        check(captured, cut_short(seen))
    else:
        check(captured, unread(), content=False)


@SURFACES
@pytest.mark.parametrize("read_first", [True, False], ids=["partly-read", "never-read"])
async def test_an_abandoned_async_stream_is_recorded_at_garbage_collection(
    captured: Capture, surface: str, read_first: bool
) -> None:
    opened = await aopen_stream(revenium.wrap(async_client(make_handler())), surface, **REQUEST)
    stream = await opened.__aenter__() if surface == "stream" else opened
    seen: list[Any] = []
    if read_first:  # by __anext__: an `async for` left by break keeps its generator alive
        while not seen or seen[-1].type != "content_block_delta":
            seen.append(await stream.__anext__())
    assert captured.records == []
    del stream, opened
    gc.collect()
    if read_first:
        check(captured, cut_short(seen))
    else:
        check(captured, unread(), content=False)


# ============================================================================= shutdown


def _ledger_bodies(ledger: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(ledger)) as db:
        return [json.loads(body) for (body,) in db.execute("SELECT body FROM records")]


def _check_shutdown_body(body: dict[str, Any]) -> None:
    output = max(STARTED_OUTPUT, estimate(0))
    assert body["transactionId"] == "msg_standin_1"
    assert body["stopReason"] == "CANCELLED"
    assert body["isStreamed"] is True
    assert (body["inputTokenCount"], body["outputTokenCount"]) == (INPUT, output)
    assert body["cacheCreationTokenCount"] == CACHE_WRITE
    assert body["totalTokenCount"] == INPUT + output + CACHE_WRITE


@SURFACES
def test_a_stream_still_open_at_shutdown_is_finalized_once(tmp_path: Path, surface: str) -> None:
    ledger = tmp_path / "ledger.db"
    revenium.configure(ledger_path=ledger)
    client = revenium.wrap(sync_client(make_handler()))
    with open_stream(client, surface, **REQUEST) as stream:
        next(iter(stream))
        assert revenium.shutdown_sync(timeout=10).ledger_written == 1
    # The block's exit closes the stream later: it is not recorded twice.
    assert revenium.flush_sync(timeout=10).ledger_written == 0
    (body,) = _ledger_bodies(ledger)
    _check_shutdown_body(body)


async def test_an_async_stream_still_open_at_shutdown_is_finalized_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    revenium.configure(ledger_path=ledger)
    client = revenium.wrap(async_client(make_handler()))
    async with client.messages.stream(**REQUEST) as stream:
        await stream.__anext__()
        assert (await revenium.shutdown(timeout=10)).ledger_written == 1
    assert (await revenium.flush(timeout=10)).ledger_written == 0
    (body,) = _ledger_bodies(ledger)
    _check_shutdown_body(body)


# ============================================================================= Bedrock and Vertex

PLATFORMS = pytest.mark.parametrize(
    ("platform", "platform_id", "provider"),
    [("bedrock", BEDROCK_MODEL, "AWS"), ("vertex", VERTEX_MODEL, "Google")],
)
EXITS = pytest.mark.parametrize("exit_", ["exhausted", "early"])
_SYNC_PLATFORMS = {"bedrock": bedrock_client, "vertex": vertex_client}
_ASYNC_PLATFORMS = {"bedrock": async_bedrock_client, "vertex": async_vertex_client}


def _platform_record(exit_: str, seen: list[Any], platform_id: str, provider: str) -> Any:
    labels = {"platform_id": platform_id, "provider": provider}
    return exact(**labels) if exit_ == "exhausted" else cut_short(seen, **labels)


@PLATFORMS
@SURFACES
@EXITS
def test_bedrock_and_vertex_streams(
    captured: Capture, platform: str, platform_id: str, provider: str, surface: str, exit_: str
) -> None:
    client = revenium.wrap(_SYNC_PLATFORMS[platform](make_handler()))
    seen: list[Any] = []
    with open_stream(client, surface, **{**REQUEST, "model": platform_id}) as stream:
        if exit_ == "exhausted":
            seen.extend(stream)
        else:
            until_delta(iter(stream), seen)
    assert seen[0].message.model == MODEL  # the platform names the model by Anthropic's name
    check(captured, _platform_record(exit_, seen, platform_id, provider))


@PLATFORMS
@SURFACES
@EXITS
async def test_async_bedrock_and_vertex_streams(
    captured: Capture, platform: str, platform_id: str, provider: str, surface: str, exit_: str
) -> None:
    client = revenium.wrap(_ASYNC_PLATFORMS[platform](make_handler()))
    seen: list[Any] = []
    async with await aopen_stream(client, surface, **{**REQUEST, "model": platform_id}) as stream:
        if exit_ == "exhausted":
            seen.extend([e async for e in stream])
        else:
            await auntil_delta(stream, seen)
    check(captured, _platform_record(exit_, seen, platform_id, provider))


def test_a_bedrock_exception_frame_is_one_error_record_without_a_code(captured: Capture) -> None:
    client = revenium.wrap(bedrock_client(make_handler()))
    seen: list[Any] = []
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client.messages.stream(**{**REQUEST, "model": "fail-error-event"}) as stream,
    ):
        seen.extend(stream)
    assert raised.value.status_code == 200
    reason = f"APIStatusError: {raised.value}"
    want = cut_short(seen, model="fail-error-event", stop=StopReason.ERROR, error_reason=reason)
    check(captured, {**want, "provider": "AWS"})


# ============================================================================= content kinds

THOUGHT = words(THINKING_TEXT)
TOOL_OUTPUT = words(json.dumps(TOOL_INPUT))
TOOL_REQUEST: Any = {"model": MODEL, "max_tokens": 100, "messages": WEATHER, "tools": TOOLS}


@SURFACES
def test_a_tool_use_stream_is_a_tool_call_ended_by_its_sequence(
    captured: Capture, surface: str
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with open_stream(client, surface, **TOOL_REQUEST) as stream:
        events = list(stream)
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [b.type for b in starts] == ["tool_use"]
    want = expected(
        input_tokens=tokens(WEATHER[0]["content"]),
        output_tokens=TOOL_OUTPUT,
        cache_write=0,
        operation=OperationType.TOOL_CALL,
        stop=StopReason.END_SEQUENCE,
    )
    check(captured, want)


def test_a_tool_use_stream_left_early_is_a_tool_call_estimated_from_its_json(
    captured: Capture,
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    seen: list[Any] = []
    with client.messages.stream(**TOOL_REQUEST) as stream:
        until_delta(iter(stream), seen)
        until_delta(iter(stream), seen)  # two pieces of the tool's input JSON
    assert [e.delta.type for e in seen if e.type == "content_block_delta"] == [
        "input_json_delta",
        "input_json_delta",
    ]
    want = cut_short(
        seen,
        input_tokens=tokens(WEATHER[0]["content"]),
        cache_write=0,
        operation=OperationType.TOOL_CALL,  # the tool_use block started
    )
    check(captured, want)


def test_get_final_text_on_a_tool_use_stream_raises_the_sdks_error_after_one_exact_record(
    captured: Capture,
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with (
        pytest.raises(RuntimeError, match="text` content block"),
        client.messages.stream(**TOOL_REQUEST) as stream,
    ):
        stream.get_final_text()  # reads the whole stream, then finds no text block
    want = expected(
        input_tokens=tokens(WEATHER[0]["content"]),
        output_tokens=TOOL_OUTPUT,
        cache_write=0,
        operation=OperationType.TOOL_CALL,
        stop=StopReason.END_SEQUENCE,
    )
    check(captured, want)  # the stream itself completed: not an error record


@SURFACES
async def test_an_async_tool_use_stream(captured: Capture, surface: str) -> None:
    client = revenium.wrap(async_client(make_handler()))
    async with await aopen_stream(client, surface, **TOOL_REQUEST) as stream:
        async for _event in stream:
            pass
    want = expected(
        input_tokens=tokens(WEATHER[0]["content"]),
        output_tokens=TOOL_OUTPUT,
        cache_write=0,
        operation=OperationType.TOOL_CALL,
        stop=StopReason.END_SEQUENCE,
    )
    check(captured, want)


@SURFACES
def test_a_thinking_stream_counts_thinking_in_output_and_as_reasoning(
    captured: Capture, surface: str
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with open_stream(client, surface, **REQUEST, thinking=THINKING) as stream:
        events = list(stream)
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas[0] == "thinking_delta"  # the first content, and where ttft is taken
    want = expected(output_tokens=words(REPLY) + THOUGHT, reasoning=THOUGHT)
    check(captured, want)


def test_a_thinking_stream_left_early_estimates_the_thinking_received(captured: Capture) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    seen: list[Any] = []
    with client.messages.create(stream=True, **REQUEST, thinking=THINKING) as stream:
        events = iter(stream)
        until_delta(events, seen)
        until_delta(events, seen)
        until_delta(events, seen)
    assert "".join(e.delta.thinking for e in seen if e.type == "content_block_delta") == (
        THINKING_TEXT
    )
    check(captured, cut_short(seen))  # no thinking_tokens yet: reasoning unknown


async def test_an_async_thinking_stream(captured: Capture) -> None:
    client = revenium.wrap(async_client(make_handler()))
    async with client.messages.stream(**REQUEST, thinking=THINKING) as stream:
        message = await stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text"]
    check(captured, expected(output_tokens=words(REPLY) + THOUGHT, reasoning=THOUGHT))


# ============================================================================= time to first token

GAP = 0.02  # seconds the test lets pass between two events it reads


@SURFACES
def test_time_to_first_token_is_taken_at_the_first_content_delta(
    captured: Capture, surface: str
) -> None:
    """Measured from the request (the manager's ``with``) to the first content delta.

    The test reads the events itself and lets time pass between them, so every bound below
    follows from the clock, whatever the machine's speed.
    """
    client = revenium.wrap(sync_client(make_handler()))
    before = time.perf_counter()
    opened = open_stream(client, surface, **REQUEST)  # create(stream=True) sends it now
    if surface == "stream":
        before = let_time_pass(GAP)  # the manager sends nothing until it is entered
    with opened as stream:
        started_by = time.perf_counter()  # the request was sent (and timed) before this
        events = iter(stream)
        assert next(events).type == "message_start"
        resumed = let_time_pass(GAP)  # message_start arrived: the clock must not stop here
        seen: list[Any] = []
        until_delta(events, seen)
        first_seen = time.perf_counter()
        let_time_pass(GAP)
        rest = list(events)
        finished_by = time.perf_counter()
    assert rest[-1].type == "message_stop"
    record = check(captured, exact())
    ttft, duration = record.time_to_first_token_ms, record.request_duration_ms
    assert ttft is not None
    assert (resumed - started_by) * 1000 <= ttft <= (first_seen - before) * 1000
    assert duration - ttft >= GAP * 1000  # the stream went on after its first token
    assert duration <= (finished_by - before) * 1000  # timed from the request, not .stream()


# ============================================================================= beta twins


@SURFACES
def test_the_beta_twins_are_one_exact_record(captured: Capture, surface: str) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    if surface == "create":
        with client.beta.messages.create(stream=True, **REQUEST) as stream:
            assert [e.type for e in stream][-1] == "message_stop"
    else:
        with client.beta.messages.stream(**REQUEST) as stream:
            assert stream.get_final_text() == REPLY
    check(captured, exact())


@SURFACES
async def test_the_async_beta_twins_are_one_exact_record(captured: Capture, surface: str) -> None:
    client = revenium.wrap(async_client(make_handler()))
    if surface == "create":
        stream = await client.beta.messages.create(stream=True, **REQUEST)
        assert [e.type async for e in stream][-1] == "message_stop"
    else:
        async with client.beta.messages.stream(**REQUEST) as stream:
            assert await stream.get_final_text() == REPLY
    check(captured, exact())


# ============================================================================= prompt capture


@pytest.mark.parametrize(
    ("system", "captured_system", "plain_system"),
    [
        pytest.param("Be brief.", "Be brief.", "Be brief.", id="string"),
        pytest.param(
            [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            "Be brief.\nBe kind.",
            "Be brief.Be kind.",  # the stand-in counts the blocks' text concatenated
            id="text-blocks",
        ),
    ],
)
@SURFACES
def test_prompt_capture_on_a_stream_records_system_input_and_streamed_output(
    captured: Capture, surface: str, system: Any, captured_system: str, plain_system: str
) -> None:
    revenium.configure(capture_prompts=True)
    client = revenium.wrap(sync_client(make_handler()))
    request = {**REQUEST, "system": system}
    with open_stream(client, surface, **request) as stream:
        text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    assert text == REPLY
    record = check(captured, exact(input_tokens=tokens(plain_system + USER_TEXT), cache_write=0))
    prompts = record.prompts
    assert prompts is not None
    assert prompts.system_prompt == captured_system
    assert prompts.input_messages is not None
    assert json.loads(prompts.input_messages) == MESSAGES
    assert prompts.output_response == REPLY
    assert prompts.truncated is False


@SURFACES
def test_prompt_capture_on_a_stream_left_early_records_the_text_received(
    captured: Capture, surface: str
) -> None:
    revenium.configure(capture_prompts=True)
    client = revenium.wrap(sync_client(make_handler()))
    seen: list[Any] = []
    with open_stream(client, surface, **REQUEST) as stream:
        until_delta(iter(stream), seen)
    prompts = check(captured, cut_short(seen)).prompts
    assert prompts is not None
    assert prompts.system_prompt == CACHED
    assert prompts.output_response == "".join(
        e.delta.text for e in seen if e.type == "content_block_delta"
    )


async def test_prompt_capture_on_an_async_manager(captured: Capture) -> None:
    revenium.configure(capture_prompts=True)
    client = revenium.wrap(async_client(make_handler()))
    async with client.messages.stream(**REQUEST) as stream:
        assert "".join([t async for t in stream.text_stream]) == REPLY
    prompts = check(captured, exact()).prompts
    assert prompts is not None
    assert (prompts.system_prompt, prompts.output_response) == (CACHED, REPLY)


def test_prompts_are_not_captured_by_default(captured: Capture) -> None:
    with revenium.wrap(sync_client(make_handler())).messages.stream(**REQUEST) as stream:
        stream.until_done()
    assert check(captured, exact()).prompts is None


# ============================================================================= context


def test_the_context_is_taken_when_stream_is_called_not_when_it_is_entered(
    captured: Capture,
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with revenium.session(organization_name="A"):
        manager = client.messages.stream(**REQUEST)
    with revenium.session(organization_name="B"), manager as stream:
        stream.until_done()
    record = check(captured, exact())
    assert record.metadata.organization_name == "A"


async def test_the_async_context_is_taken_when_stream_is_called(captured: Capture) -> None:
    client = revenium.wrap(async_client(make_handler()))
    with revenium.session(organization_name="A"):
        manager = client.messages.stream(**REQUEST)
    with revenium.session(organization_name="B"):
        async with manager as stream:
            await stream.until_done()
    assert check(captured, exact()).metadata.organization_name == "A"


def test_a_manager_made_outside_any_session_has_none_of_the_session_entered_in(
    captured: Capture,
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    manager = client.messages.stream(**REQUEST)
    with revenium.session(organization_name="B"), manager as stream:
        stream.until_done()
    assert check(captured, exact()).metadata.organization_name is None
