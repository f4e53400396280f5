"""Streamed google-genai calls: one exact record per HTTP request on every exit path.

google-genai's streams are plain generators (``models.generate_content_stream``, the chats'
``send_message_stream``), sync and async, in the three client modes (the Gemini API, Vertex AI
and Vertex express). The engine meters the SDK's per-request method
(``Models._generate_content_stream``), so a call that sends several requests (automatic function
calling, a resumed hop) makes one record per request, linked to the first. Every expected number
is computed from the stand-in's counting rules (``revenium/providers/_google_standin.py``) and
the documented estimate for a stream cut short (the running usage's exact prompt; the output at
least ``ceil(characters / 4)``, never below what the running usage reported).

An async generator the caller drops (or leaves by an exception) is closed by the event loop, in a
task asyncio schedules when the generator is collected; those tests let the loop run a bounded
number of rounds (:func:`loop_rounds`), never a timed sleep.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import copy
import gc
import inspect
import json
import math
import sqlite3
import sys
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
import pytest
from google.genai import errors, types
from google_fixtures import (
    GOOGLE_ENV,
    LOCATION,
    MODEL,
    MODES,
    PROJECT,
    USER_TEXT,
    WEATHER_REPORT,
    WEATHER_TEXT,
    Handler,
    Recorded,
    client_for,
    echo,
    expected_usage,
    get_weather,
    make_handler,
    recording,
    served_client,
    tokens,
    words,
)
from standin_transport import backend_handler

import revenium
from revenium.errors import BudgetExceededError
from revenium.providers._google_standin import (
    THINKING_TEXT,
    THOUGHT_TOKENS,
    TOOL_ARGS,
    GoogleBackend,
)
from revenium.providers._openai_standin import StandInServer
from revenium.records import CompletionRecord, OperationType, StopReason
from revenium.testing import Capture

sys.path.insert(0, str(Path(__file__).parent.parent))
from metering_server import MeteringServer

# ----------------------------------------------------------------------------- the requests

REPLY = echo(USER_TEXT)  # "Echo: Hello there, how are you today?"
SECOND_TEXT = "And you?"  # a chat's second message
SURFACES = pytest.mark.parametrize("surface", ["models", "chat"])
ALL_MODES = pytest.mark.parametrize("mode", MODES)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)
# The SDK subclasses aiohttp.ClientSession inside a method; aiohttp 3.10+ warns at each subclass.
AIOHTTP_WARNING = pytest.mark.filterwarnings(
    "ignore:Inheritance class .* from ClientSession:DeprecationWarning"
)


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads its API version, mode and keys from the environment."""
    for name in GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)


# ----------------------------------------------------------------------------- counting rules


def estimate(characters: int) -> int:
    """The documented estimate: about four characters a token, rounded up."""
    return math.ceil(characters / 4)


def pieces(text: str) -> list[str]:
    """The text of each stream chunk of a reply: each word and a space, the last word bare."""
    split = text.split()
    return [w + " " for w in split[:-1]] + split[-1:]


def reported_candidates(chunks_read: int, counts: list[int]) -> int:
    """``candidatesTokenCount`` in the running usage after ``chunks_read`` chunks: the candidate
    tokens sent so far, left out of the first chunk unless it is also the last (then 0)."""
    if chunks_read > 1 or chunks_read == len(counts):
        return sum(counts[:chunks_read])
    return 0


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
    input_tokens: int,
    output_tokens: int,
    total: int | None = None,
    cache_read: int | None = None,
    reasoning: int | None = None,
    stop: StopReason = StopReason.END,
    estimated: bool = False,
    model: str = MODEL,
    provider_model_id: str | None = None,
    operation: OperationType = OperationType.CHAT,
    error_code: int | None = None,
    error_reason: str | None = None,
) -> dict[str, Any]:
    """A stream's record; ``total`` defaults to input + output."""
    return {
        "model": model,
        "provider": "Google",
        "model_source": "GOOGLE",
        "provider_model_id": provider_model_id,
        "transaction_id": None if n is None else f"resp-standin-{n}",
        "operation_type": operation,
        "input_token_count": input_tokens,
        "output_token_count": output_tokens,
        "total_token_count": input_tokens + output_tokens if total is None else total,
        "cache_read_token_count": cache_read,
        "cache_creation_token_count": None,
        "reasoning_token_count": reasoning,
        "stop_reason": stop,
        "is_streamed": True,
        "estimated": estimated,
        "error_code": error_code,
        "error_reason": error_reason,
    }


def from_usage(usage: Mapping[str, int | None], **overrides: Any) -> dict[str, Any]:
    """The exact record of a request whose usage the stand-in reported in full.

    Gemini counts tool-use prompts outside the prompt and thinking outside the candidates: the
    record's input is prompt + tool-use prompt, its output candidates + thoughts.
    """
    thoughts = usage["thoughts_token_count"]
    prompt, tool_prompt = usage["prompt_token_count"], usage["tool_use_prompt_token_count"]
    return expected(
        input_tokens=(prompt or 0) + (tool_prompt or 0),
        output_tokens=(usage["candidates_token_count"] or 0) + (thoughts or 0),
        total=usage["total_token_count"],
        cache_read=usage["cached_content_token_count"],
        reasoning=thoughts,
        **overrides,
    )


def exact(prompt: str = USER_TEXT, text: str = REPLY, **overrides: Any) -> dict[str, Any]:
    """The record of a plain request read to its end."""
    return from_usage(expected_usage(prompt, words(text)), **overrides)


def cut_short(
    read: int,
    *,
    prompt: str = USER_TEXT,
    text: str = REPLY,
    thinking: bool = False,
    stop: StopReason = StopReason.CANCELLED,
    **overrides: Any,
) -> dict[str, Any]:
    """Ended after ``read`` word chunks (and the thought chunk, with ``thinking``): the input
    exact from the running usage, the output the larger of the candidates reported so far (and
    the thoughts) and the estimate from the characters received (thoughts included)."""
    received = (THINKING_TEXT if thinking else "") + "".join(pieces(text)[:read])
    counts = ([0] if thinking else []) + [1] * words(text)
    thoughts = THOUGHT_TOKENS if thinking else None
    partial = reported_candidates(read + (1 if thinking else 0), counts) + (thoughts or 0)
    return expected(
        input_tokens=tokens(prompt),
        output_tokens=max(partial, estimate(len(received))),
        reasoning=thoughts,
        stop=stop,
        estimated=True,
        **overrides,
    )


def status_of(model: str) -> int:
    """The HTTP status a ``fail-NNN`` model answers with."""
    return int(model.removeprefix("fail-"))


def refused(model: str, error: errors.APIError, **overrides: Any) -> dict[str, Any]:
    """A request the API refused with an HTTP error: no usage, no id, the status kept."""
    return {
        **expected(n=None, input_tokens=0, output_tokens=0, model=model, **overrides),
        "total_token_count": None,
        "stop_reason": StopReason.ERROR,
        "error_code": status_of(model),
        "error_reason": f"{type(error).__name__}: {error.message}",
    }


def only(captured: Capture) -> CompletionRecord:
    assert len(captured.records) == 1, captured.records
    (record,) = captured.completions
    return record


def timed(record: CompletionRecord, *, content: bool = True) -> None:
    """The time to first token is consistent: measured at the first content when some arrived,
    otherwise the request's duration."""
    ttft, duration = record.time_to_first_token_ms, record.request_duration_ms
    assert ttft is not None
    if content:
        assert 0 < ttft <= duration
    else:
        assert ttft == duration


def check(captured: Capture, want: dict[str, Any], *, content: bool = True) -> CompletionRecord:
    """Exactly one record, with exactly these fields, its time to first token consistent."""
    record = only(captured)
    assert fields(record) == want
    timed(record, content=content)
    return record


async def loop_rounds(rounds: int = 20) -> None:
    """Let the event loop run ``rounds`` times: asyncio closes a collected async generator in
    a task it schedules, and each generator nested in it in one more task."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# ----------------------------------------------------------------------------- opening streams


def open_stream(
    client: Any, surface: str, contents: Any = USER_TEXT, *, model: str = MODEL, **config: Any
) -> Generator[types.GenerateContentResponse]:
    """``models.generate_content_stream`` or a new chat's ``send_message_stream`` (sync)."""
    settings = types.GenerateContentConfig(**config) if config else None
    if surface == "models":
        return client.models.generate_content_stream(
            model=model, contents=contents, config=settings
        )
    chat = client.chats.create(model=model, config=settings)
    return chat.send_message_stream(contents)


async def aopen_stream(
    client: Any, surface: str, contents: Any = USER_TEXT, *, model: str = MODEL, **config: Any
) -> AsyncGenerator[types.GenerateContentResponse]:
    """The async twins, awaited (both are ``async def`` returning an async generator)."""
    settings = types.GenerateContentConfig(**config) if config else None
    if surface == "models":
        return await client.aio.models.generate_content_stream(
            model=model, contents=contents, config=settings
        )
    chat = client.aio.chats.create(model=model, config=settings)
    return await chat.send_message_stream(contents)


def read(chunks: Iterator[types.GenerateContentResponse], count: int) -> list[Any]:
    return [next(chunks) for _ in range(count)]


async def aread(chunks: AsyncIterator[types.GenerateContentResponse], count: int) -> list[Any]:
    return [await anext(chunks) for _ in range(count)]


def texts(chunks: list[Any]) -> list[str]:
    """Each chunk's ``.text`` (the SDK's own accessor)."""
    return [chunk.text for chunk in chunks]


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


def tapping(raised: list[BaseException], inner: Handler | None = None) -> Handler:
    handler = inner or make_handler()

    def tap(request: httpx2.Request) -> httpx2.Response:
        response = handler(request)
        return httpx2.Response(
            response.status_code, headers=response.headers, stream=_Tap(response.stream, raised)
        )

    return tap


def gated(reached: asyncio.Event, release: asyncio.Event) -> Handler:
    """An async body that stops after the first word chunk, until ``release`` is set."""
    backend = GoogleBackend()

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
        body = Body(reply.chunks, reply.words_at + 1)  # words_at: the first word chunk
        return httpx2.Response(reply.status, headers=headers, stream=body)

    return handler


RESUME_TOKEN = base64.b64encode(b"standin-checkpoint").decode()


def resumable() -> Handler:
    """The stand-in, except that a stream request without a continuation token sends two word
    chunks, the second carrying a ``continuationToken`` checkpoint, then hangs up (a fixture of
    this file: the stand-in has no checkpoints). The SDK resumes from the checkpoint: a second
    request, answered by the stand-in as usual."""
    backend = GoogleBackend()

    def handle(method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Any:
        reply = backend.handle(method, path, headers, raw)
        if not reply.stream or "continuationToken" in json.loads(raw or b"{}"):
            return reply
        cut = list(reply.chunks[: reply.words_at + 2])
        event = json.loads(cut[-1].decode().removeprefix("data: "))
        event["candidates"][0]["continuationToken"] = RESUME_TOKEN
        cut[-1] = f"data: {json.dumps(event)}\r\n\r\n".encode()
        return replace(reply, chunks=cut, abort=True)

    return backend_handler(handle)


@pytest.fixture
def raised_api_errors(monkeypatch: pytest.MonkeyPatch) -> list[errors.APIError]:
    """Every ``APIError`` the SDK raises for an HTTP error response (to check its identity)."""
    raised: list[errors.APIError] = []
    sync_raise = errors.APIError.raise_for_response
    async_raise = errors.APIError.raise_for_async_response

    def raise_for_response(_cls: type[errors.APIError], response: Any) -> None:
        try:
            sync_raise(response)
        except errors.APIError as error:
            raised.append(error)
            raise

    async def raise_for_async_response(_cls: type[errors.APIError], response: Any) -> None:
        try:
            await async_raise(response)
        except errors.APIError as error:
            raised.append(error)
            raise

    monkeypatch.setattr(errors.APIError, "raise_for_response", classmethod(raise_for_response))
    monkeypatch.setattr(
        errors.APIError, "raise_for_async_response", classmethod(raise_for_async_response)
    )
    return raised


def let_time_pass(seconds: float) -> float:
    """Return once the monotonic clock has advanced by ``seconds``; returns that clock."""
    until = time.perf_counter() + seconds
    while (now := time.perf_counter()) < until:
        time.sleep(until - now)
    return now


class CallerError(Exception):
    """The caller's own error."""


# ============================================================================= read to the end


@ALL_MODES
@SURFACES
def test_a_stream_read_to_its_end_is_one_exact_record(
    captured: Capture, mode: str, surface: str
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    stream = open_stream(client, surface)
    assert inspect.isgenerator(stream)
    chunks = list(stream)
    assert all(isinstance(chunk, types.GenerateContentResponse) for chunk in chunks)
    assert texts(chunks) == pieces(REPLY)  # one chunk a word, .text working
    assert len(seen) == 1
    record = check(captured, exact())
    # The last chunk's running total, never a sum of the chunks' counts.
    counts = [c.usage_metadata.candidates_token_count or 0 for c in chunks]
    assert record.output_token_count == counts[-1] == words(REPLY)
    assert sum(counts) > words(REPLY)


@ALL_MODES
@SURFACES
async def test_an_async_stream_read_to_its_end_is_one_exact_record(
    captured: Capture, mode: str, surface: str
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    stream = await aopen_stream(client, surface)
    assert inspect.isasyncgen(stream)
    assert seen == []  # awaiting the method sends nothing: the first chunk does
    chunks = [chunk async for chunk in stream]
    assert all(isinstance(chunk, types.GenerateContentResponse) for chunk in chunks)
    assert texts(chunks) == pieces(REPLY)
    assert len(seen) == 1
    record = check(captured, exact())
    counts = [c.usage_metadata.candidates_token_count or 0 for c in chunks]
    assert record.output_token_count == counts[-1] == words(REPLY)


def test_the_wrapped_methods_keep_the_sdks_kinds() -> None:
    client = revenium.wrap(client_for("gemini"))
    assert not inspect.iscoroutinefunction(client.models.generate_content_stream)
    assert inspect.iscoroutinefunction(client.aio.models.generate_content_stream)
    assert inspect.isgeneratorfunction(client.chats.create(model=MODEL).send_message_stream)
    assert inspect.iscoroutinefunction(client.aio.chats.create(model=MODEL).send_message_stream)


@pytest.mark.parametrize(
    ("config", "usage"),
    [
        pytest.param(
            {"thinking_config": types.ThinkingConfig(thinking_budget=1024)},
            expected_usage(USER_TEXT, words(REPLY), thinking=True),
            id="thinking",
        ),
        pytest.param(
            {"thinking_config": types.ThinkingConfig(include_thoughts=True)},
            expected_usage(USER_TEXT, words(REPLY), thinking=True),
            id="thought-summaries",
        ),
        pytest.param(
            {"cached_content": "cachedContents/standin"},
            expected_usage(USER_TEXT, words(REPLY), cached=True),
            id="cached",
        ),
        pytest.param(
            {"tools": [types.Tool(google_search=types.GoogleSearch())]},
            expected_usage(USER_TEXT, words(REPLY), search=True),
            id="google-search",
        ),
    ],
)
@pytest.mark.parametrize("colour", ["sync", "async"])
async def test_usage_kinds_are_normalized(
    captured: Capture, config: dict[str, Any], usage: dict[str, int | None], colour: str
) -> None:
    """Thinking is in the output (and is the reasoning count), the tool-use prompt in the
    input, the cached tokens in the input and reported as cache reads."""
    client = revenium.wrap(client_for("gemini"))
    if colour == "sync":
        chunks = list(open_stream(client, "models", **config))
    else:
        chunks = [c async for c in await aopen_stream(client, "models", **config)]
    assert "".join(t or "" for t in texts(chunks)) == REPLY
    check(captured, from_usage(usage))


@ALL_MODES
def test_max_output_tokens_is_a_token_limit(captured: Capture, mode: str) -> None:
    limit = 3
    client = revenium.wrap(client_for(mode))
    chunks = list(open_stream(client, "models", max_output_tokens=limit))
    assert "".join(texts(chunks)) == " ".join(REPLY.split()[:limit])
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    check(captured, exact(stop=StopReason.TOKEN_LIMIT, text=" ".join(REPLY.split()[:limit])))


@pytest.mark.parametrize(
    ("mode", "argument"),
    [
        ("gemini", f"models/{MODEL}"),
        ("vertex", f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}"),
        ("express", f"publishers/google/models/{MODEL}"),
    ],
)
def test_a_resource_name_is_normalized_and_kept_as_the_provider_model_id(
    captured: Capture, mode: str, argument: str
) -> None:
    client = revenium.wrap(client_for(mode))
    list(open_stream(client, "models", model=argument))
    check(captured, exact(provider_model_id=argument))


# ============================================================================= early exits


@ALL_MODES
@SURFACES
def test_break_then_close_is_one_cancelled_estimated_record(
    captured: Capture, mode: str, surface: str
) -> None:
    client = revenium.wrap(client_for(mode))
    stream = open_stream(client, surface)
    chunks = read(stream, 2)
    assert texts(chunks) == pieces(REPLY)[:2]
    assert captured.records == []  # still open: the caller may resume
    stream.close()
    stream.close()
    check(captured, cut_short(2))


@ALL_MODES
@SURFACES
async def test_async_break_then_aclose_is_one_cancelled_estimated_record(
    captured: Capture, mode: str, surface: str
) -> None:
    client = revenium.wrap(client_for(mode))
    stream = await aopen_stream(client, surface)
    chunks = await aread(stream, 2)
    assert texts(chunks) == pieces(REPLY)[:2]
    assert captured.records == []
    await stream.aclose()
    await stream.aclose()
    await loop_rounds()  # see test_the_record_is_made_when_aclose_returns
    check(captured, cut_short(2))


async def test_the_record_is_made_when_aclose_returns(captured: Capture) -> None:
    """As for a sync ``close()`` (and Anthropic's ``await stream.close()``): a caller that
    closes the stream and then flushes, or leaves a capture block, finds its record. The
    SDK's nested generators are closed by the event loop later; the call's stream finishes
    the meters of its requests' streams when it is closed."""
    client = revenium.wrap(client_for("gemini"))
    stream = await aopen_stream(client, "models")
    await aread(stream, 2)
    await stream.aclose()
    check(captured, cut_short(2))
    await loop_rounds()  # the SDK's own late closes: still one record
    check(captured, cut_short(2))


async def test_an_async_chat_stream_closed_early_is_recorded_once_the_loop_runs(
    captured: Capture,
) -> None:
    """A chat's stream is the SDK's own generator around the metered one, and does not close
    it: asyncio does, a few rounds of the event loop later (``revenium.flush()`` awaits
    them). The record comes then, once."""
    client = revenium.wrap(client_for("gemini"))
    stream = await aopen_stream(client, "chat")
    await aread(stream, 2)
    await stream.aclose()
    await loop_rounds()
    check(captured, cut_short(2))


def test_contextlib_closing_is_a_close(captured: Capture) -> None:
    client = revenium.wrap(client_for("vertex"))
    with contextlib.closing(open_stream(client, "models")) as stream:
        for _chunk in stream:
            break
    check(captured, cut_short(1))


@pytest.mark.parametrize("how", ["dropped", "closed"])
@SURFACES
def test_a_stream_never_started_sends_nothing_and_records_nothing(
    captured: Capture, how: str, surface: str
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen)))
    stream = open_stream(client, surface)
    if how == "closed":
        stream.close()
        with pytest.raises(StopIteration):
            next(stream)
    del stream
    gc.collect()
    revenium.flush_sync(timeout=5)
    assert seen == []
    assert captured.records == []


@pytest.mark.parametrize("how", ["dropped", "closed"])
@SURFACES
async def test_an_async_stream_never_started_sends_nothing_and_records_nothing(
    captured: Capture, how: str, surface: str
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen)))
    stream = await aopen_stream(client, surface)
    if how == "closed":
        await stream.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
    del stream
    gc.collect()
    await loop_rounds()
    await revenium.flush(timeout=5)
    assert seen == []
    assert captured.records == []


@SURFACES
def test_a_stream_abandoned_after_one_chunk_is_recorded_at_garbage_collection(
    captured: Capture, surface: str
) -> None:
    stream = open_stream(revenium.wrap(client_for("express")), surface)
    assert texts(read(stream, 1)) == pieces(REPLY)[:1]
    assert captured.records == []
    del stream
    gc.collect()
    check(captured, cut_short(1))


@SURFACES
async def test_an_async_stream_abandoned_after_one_chunk_is_recorded_once_collected(
    captured: Capture, surface: str
) -> None:
    stream = await aopen_stream(revenium.wrap(client_for("express")), surface)
    assert texts(await aread(stream, 1)) == pieces(REPLY)[:1]
    assert captured.records == []
    del stream
    gc.collect()
    await loop_rounds()  # Python closes a dropped async generator only through its loop
    check(captured, cut_short(1))


# ============================================================================= the caller's error


@SURFACES
def test_the_callers_exception_in_the_loop_body_propagates_and_is_a_cancellation(
    captured: Capture, surface: str
) -> None:
    client = revenium.wrap(client_for("gemini"))
    boom = CallerError("the caller's own failure")
    seen: list[Any] = []
    with pytest.raises(CallerError) as raised:  # noqa: PT012 - the loop is the scenario
        for chunk in open_stream(client, surface):
            seen.append(chunk)
            if len(seen) == 2:
                raise boom
    assert raised.value is boom
    check(captured, cut_short(2))


@SURFACES
async def test_the_callers_exception_in_an_async_loop_body_is_a_cancellation(
    captured: Capture, surface: str
) -> None:
    client = revenium.wrap(client_for("gemini"))
    boom = CallerError("the caller's own failure")
    seen: list[Any] = []
    with pytest.raises(CallerError) as raised:  # noqa: PT012 - the loop is the scenario
        async for chunk in await aopen_stream(client, surface):
            seen.append(chunk)
            if len(seen) == 2:
                raise boom
    assert raised.value is boom
    await loop_rounds()  # the generator left by the loop is closed by the event loop
    check(captured, cut_short(2))


# ============================================================================= provider failures

HTTP_ERRORS = pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("fail-500", errors.ServerError),
        ("fail-429", errors.ClientError),
        ("fail-400", errors.ClientError),
    ],
)


@ALL_MODES
@HTTP_ERRORS
def test_an_http_error_reaches_the_caller_at_the_first_chunk_with_one_error_record(
    captured: Capture,
    raised_api_errors: list[errors.APIError],
    mode: str,
    model: str,
    kind: type[errors.APIError],
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    stream = open_stream(client, "models", model=model)  # nothing sent yet
    assert seen == []
    with pytest.raises(kind) as raised:
        next(stream)
    error = raised.value
    assert raised_api_errors == [error]  # the SDK's own error object, unchanged
    assert type(error) is kind
    assert error.code == status_of(model)
    assert len(seen) == 1
    record = only(captured)
    assert (record.stop_reason, record.is_streamed) == (StopReason.ERROR, True)
    assert (record.model, record.transaction_id) == (model, None)
    assert record.error_reason is not None
    assert type(error).__name__ in record.error_reason
    assert error.message in record.error_reason


@ALL_MODES
@HTTP_ERRORS
def test_an_http_error_record_has_the_status_and_no_usage(
    captured: Capture, mode: str, model: str, kind: type[errors.APIError]
) -> None:
    client = revenium.wrap(client_for(mode))
    with pytest.raises(kind) as raised:
        next(open_stream(client, "models", model=model))
    check(captured, refused(model, raised.value), content=False)


@ALL_MODES
@HTTP_ERRORS
async def test_an_async_http_error_reaches_the_caller_at_the_first_chunk(
    captured: Capture,
    raised_api_errors: list[errors.APIError],
    mode: str,
    model: str,
    kind: type[errors.APIError],
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    stream = await aopen_stream(client, "models", model=model)  # awaiting it sends nothing
    assert seen == []
    assert captured.records == []
    with pytest.raises(kind) as raised:
        await anext(stream)
    error = raised.value
    assert raised_api_errors == [error]
    assert type(error) is kind
    assert error.code == status_of(model)
    assert len(seen) == 1
    check(captured, refused(model, error), content=False)


@pytest.mark.parametrize("model", ["fail-500", "fail-429"])
def test_an_http_error_in_a_chat_stream_is_one_error_record(captured: Capture, model: str) -> None:
    client = revenium.wrap(client_for("vertex"))
    chat = client.chats.create(model=model)
    with pytest.raises(errors.APIError):
        list(chat.send_message_stream(USER_TEXT))
    record = only(captured)
    assert (record.stop_reason, record.is_streamed, record.model) == (StopReason.ERROR, True, model)


def _midstream_checks(
    captured: Capture, error: BaseException, chunks: list[Any], tapped: list[Any], seen: list[Any]
) -> None:
    assert type(error) is httpx2.RemoteProtocolError  # the transport's own error, not wrapped
    assert tapped == [error]  # the very object the transport raised
    assert texts(chunks) == pieces(REPLY)[:2]
    assert len(seen) == 1  # no content-less retry: the hop had yielded content
    reason = f"RemoteProtocolError: {error}"
    check(
        captured,
        cut_short(2, model="fail-midstream", stop=StopReason.ERROR, error_reason=reason),
    )


@ALL_MODES
def test_a_stream_dropped_midway_is_one_error_record_and_the_error_reaches_the_caller(
    captured: Capture, mode: str
) -> None:
    tapped: list[BaseException] = []
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen, tapping(tapped))))
    chunks: list[Any] = []
    with pytest.raises(httpx2.RemoteProtocolError) as raised:
        chunks.extend(open_stream(client, "models", model="fail-midstream"))
    _midstream_checks(captured, raised.value, chunks, tapped, seen)


@ALL_MODES
async def test_an_async_stream_dropped_midway_is_one_error_record(
    captured: Capture, mode: str
) -> None:
    tapped: list[BaseException] = []
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen, tapping(tapped))))
    chunks: list[Any] = []
    with pytest.raises(httpx2.RemoteProtocolError) as raised:  # noqa: PT012
        async for chunk in await aopen_stream(client, "models", model="fail-midstream"):
            chunks.append(chunk)
    _midstream_checks(captured, raised.value, chunks, tapped, seen)


def test_a_thinking_stream_dropped_midway_counts_the_thoughts(captured: Capture) -> None:
    client = revenium.wrap(client_for("gemini"))
    chunks: list[Any] = []
    with pytest.raises(httpx2.RemoteProtocolError) as raised:
        chunks.extend(
            open_stream(
                client,
                "models",
                model="fail-midstream",
                thinking_config=types.ThinkingConfig(include_thoughts=True),
            )
        )
    assert chunks[0].candidates[0].content.parts[0].thought is True
    reason = f"RemoteProtocolError: {raised.value}"
    want = cut_short(
        2, thinking=True, model="fail-midstream", stop=StopReason.ERROR, error_reason=reason
    )
    check(captured, want)


def _resumed_checks(captured: Capture, chunks: list[Any], seen: list[Recorded]) -> None:
    assert texts(chunks) == pieces(REPLY)[:2] + pieces(REPLY)  # the SDK resumed, no error
    assert len(seen) == 2
    assert seen[1].body["continuationToken"] == RESUME_TOKEN
    first, second = captured.completions
    assert len(captured.records) == 2
    dropped = "RemoteProtocolError: peer closed connection without sending complete message body"
    assert fields(first) == cut_short(2, stop=StopReason.ERROR, error_reason=dropped)
    # The second request's own usage: the SDK adds the first hop's to the chunks it yields,
    # but each record is its own request's.
    assert fields(second) == exact(n=2)
    assert chunks[-1].usage_metadata.candidates_token_count > words(REPLY)
    assert first.metadata.parent_transaction_id is None
    assert second.metadata.parent_transaction_id == first.transaction_id
    timed(first)
    timed(second)


def test_a_hop_resumed_after_a_drop_is_one_record_per_request(captured: Capture) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen, resumable())))
    chunks = list(open_stream(client, "models"))
    _resumed_checks(captured, chunks, seen)


async def test_an_async_hop_resumed_after_a_drop_is_one_record_per_request(
    captured: Capture,
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen, resumable())))
    chunks = [chunk async for chunk in await aopen_stream(client, "models")]
    _resumed_checks(captured, chunks, seen)


# ============================================================================= cancellation


@SURFACES
async def test_a_task_cancelled_mid_stream_is_one_cancelled_record(
    captured: Capture, surface: str
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()
    client = revenium.wrap(client_for("vertex", gated(reached, release)))
    seen: list[Any] = []

    async def consume() -> None:
        async for chunk in await aopen_stream(client, surface):
            seen.append(chunk)

    task = asyncio.create_task(consume())
    await reached.wait()  # the body is blocked after the first word chunk
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert texts(seen) == pieces(REPLY)[:1]
    record = check(captured, cut_short(1))
    assert record.error_reason is None  # a cancellation is the caller's doing, like a close()


async def test_a_task_cancelled_while_waiting_for_the_response_is_one_cancelled_record(
    captured: Capture,
) -> None:
    reached, never = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx2.Request) -> httpx2.Response:
        reached.set()
        await never.wait()
        raise AssertionError("unreachable")

    client = revenium.wrap(client_for("gemini", handler))

    async def consume() -> None:
        async for _chunk in await aopen_stream(client, "models"):
            pytest.fail("no response ever came")

    task = asyncio.create_task(consume())
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    want = {
        **expected(n=None, input_tokens=0, output_tokens=0),
        "total_token_count": None,
        "stop_reason": StopReason.CANCELLED,
    }
    check(captured, want, content=False)


# ============================================================================= shutdown


def _ledger_bodies(ledger: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(ledger)) as db:
        return [json.loads(body) for (body,) in db.execute("SELECT body FROM records")]


def _check_shutdown_body(body: dict[str, Any]) -> None:
    want = cut_short(1)
    assert body["transactionId"] == want["transaction_id"]
    assert body["stopReason"] == "CANCELLED"
    assert body["isStreamed"] is True
    assert (body["inputTokenCount"], body["outputTokenCount"]) == (
        want["input_token_count"],
        want["output_token_count"],
    )
    assert body["totalTokenCount"] == want["total_token_count"]


def test_a_stream_still_open_at_shutdown_is_finalized_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    revenium.configure(ledger_path=ledger)
    stream = open_stream(revenium.wrap(client_for("gemini")), "models")
    next(stream)
    assert revenium.shutdown_sync(timeout=10).ledger_written == 1
    stream.close()  # closed later: not recorded twice
    del stream
    gc.collect()
    assert revenium.flush_sync(timeout=10).ledger_written == 0
    (body,) = _ledger_bodies(ledger)
    _check_shutdown_body(body)


async def test_an_async_stream_still_open_at_shutdown_is_finalized_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    revenium.configure(ledger_path=ledger)
    stream = await aopen_stream(revenium.wrap(client_for("gemini")), "models")
    await anext(stream)
    assert (await revenium.shutdown(timeout=10)).ledger_written == 1
    await stream.aclose()
    del stream
    gc.collect()
    await loop_rounds()
    assert (await revenium.flush(timeout=10)).ledger_written == 0
    (body,) = _ledger_bodies(ledger)
    _check_shutdown_body(body)


# ============================================================================= cost controls

KEY = "hak_integration_0123456789"
TEAM = "team-1"
GEMINI_RULE: dict[str, Any] = {
    "ruleId": 11,
    "name": "Gemini monthly cap",
    "action": "BLOCK",
    "breached": True,
    "currentValue": 120.5,
    "threshold": 100,
    "resetsAt": "2099-01-01T00:00:00Z",
    "denyMessage": "Gemini is paused.",
    "filters": [{"dimension": "MODEL", "operator": "IS", "value": MODEL}],
}


@pytest.fixture
def blocking_rules() -> Iterator[MeteringServer]:
    """Cost controls on, in closed fail mode (the first call waits for the rules), with a feed
    blocking ``MODEL``."""
    with MeteringServer() as server:
        server.serve_rules({"rules": [GEMINI_RULE]})
        revenium.configure(
            api_key=KEY,
            base_url=server.url,
            team_id=TEAM,
            circuit_breaker_enabled=True,
            cb_fail_mode="closed",
        )
        yield server
        revenium.shutdown_sync(timeout=5)


def _check_blocked(error: BudgetExceededError) -> None:
    assert (error.rule_id, error.rule_name) == (11, "Gemini monthly cap")
    assert "Gemini is paused." in error.message


@pytest.mark.usefixtures("blocking_rules")
def test_a_blocked_stream_raises_at_the_call_expression(captured: Capture) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen)))
    with pytest.raises(BudgetExceededError) as raised:
        client.models.generate_content_stream(model=MODEL, contents=USER_TEXT)
    _check_blocked(raised.value)
    assert seen == []
    assert captured.records == []
    # A model no rule names streams, and is metered, as usual.
    other = "gemini-2.5-pro"
    assert texts(list(open_stream(client, "models", model=other))) == pieces(REPLY)
    check(captured, exact(model=other))


@pytest.mark.usefixtures("blocking_rules")
async def test_a_blocked_async_stream_raises_when_awaited(captured: Capture) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("vertex", recording(seen)))
    with pytest.raises(BudgetExceededError) as raised:
        await client.aio.models.generate_content_stream(model=MODEL, contents=USER_TEXT)
    _check_blocked(raised.value)
    assert seen == []
    assert captured.records == []


@pytest.mark.usefixtures("blocking_rules")
def test_a_blocked_chat_stream_raises_at_its_first_chunk(captured: Capture) -> None:
    """The SDK's ``send_message_stream`` is a generator: the call inside it runs at ``next``."""
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen)))
    stream = client.chats.create(model=MODEL).send_message_stream(USER_TEXT)
    with pytest.raises(BudgetExceededError) as raised:
        next(stream)
    _check_blocked(raised.value)
    assert seen == []
    assert captured.records == []


# ============================================================================= function calling

TOOL_PROMPT = WEATHER_TEXT + json.dumps({"result": WEATHER_REPORT})  # the second request's


def _afc_checks(captured: Capture, chunks: list[Any], seen: list[Recorded]) -> None:
    assert chunks[0].function_calls[0].args == TOOL_ARGS
    assert "".join(texts(chunks[1:])) == echo(WEATHER_TEXT)
    assert len(seen) == 2
    sent = seen[1].body["contents"][2]["parts"][0]["functionResponse"]["response"]
    assert sent == {"result": WEATHER_REPORT}
    assert len(captured.records) == 2
    first, second = captured.completions
    call_output = words(json.dumps(TOOL_ARGS))
    assert fields(first) == from_usage(
        expected_usage(WEATHER_TEXT, call_output), operation=OperationType.TOOL_CALL
    )
    assert fields(second) == exact(prompt=TOOL_PROMPT, text=echo(WEATHER_TEXT), n=2)
    assert first.metadata.parent_transaction_id is None
    assert second.metadata.parent_transaction_id == first.transaction_id
    timed(first)
    timed(second)


@ALL_MODES
def test_automatic_function_calling_is_one_record_per_request(captured: Capture, mode: str) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    chunks = list(open_stream(client, "models", WEATHER_TEXT, tools=[get_weather]))
    _afc_checks(captured, chunks, seen)


@ALL_MODES
async def test_async_automatic_function_calling_is_one_record_per_request(
    captured: Capture, mode: str
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    stream = await aopen_stream(client, "models", WEATHER_TEXT, tools=[get_weather])
    chunks = [chunk async for chunk in stream]
    _afc_checks(captured, chunks, seen)


def test_automatic_function_calling_in_a_chat_stream(captured: Capture) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("express", recording(seen)))
    chunks = list(open_stream(client, "chat", WEATHER_TEXT, tools=[get_weather]))
    _afc_checks(captured, chunks, seen)


def _each_next_in_a_fresh_context(chunks: Iterator[Any]) -> list[Any]:
    """Each ``next()`` in a copy of the caller's context, as a thread pool would run it."""
    base = contextvars.copy_context()
    read: list[Any] = []
    while True:
        try:
            read.append(base.copy().run(next, chunks))
        except StopIteration:
            return read


def _each_next_in_a_worker_thread(chunks: Iterator[Any]) -> list[Any]:
    """Starlette's ``iterate_in_threadpool`` for a sync ``StreamingResponse`` body: each
    ``next()`` in anyio's worker threads, each in a copy of the context."""
    end = object()
    read: list[Any] = []

    async def main() -> None:
        while (chunk := await anyio.to_thread.run_sync(next, chunks, end)) is not end:
            read.append(chunk)

    anyio.run(main)
    return read


@pytest.mark.parametrize(
    "reader",
    [_each_next_in_a_fresh_context, _each_next_in_a_worker_thread],
    ids=["context", "thread"],
)
def test_a_chat_streams_tool_loop_read_step_by_step_elsewhere_stays_linked(
    captured: Capture, reader: Callable[[Iterator[Any]], list[Any]]
) -> None:
    """A chat stream sends each request of its tool loop from inside ``next()``: read in
    another context (or thread) at each step, its requests are still one linked chain."""
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen)))
    chunks = reader(open_stream(client, "chat", WEATHER_TEXT, tools=[get_weather]))
    _afc_checks(captured, chunks, seen)


async def _in_a_task(step: Awaitable[Any]) -> Any:
    return await step


@pytest.mark.parametrize("how", ["wait_for", "task"])
async def test_an_async_chat_streams_tool_loop_read_in_a_task_per_chunk_stays_linked(
    captured: Capture, how: str
) -> None:
    """Each ``__anext__`` awaited in a task of its own (a copy of the context): Python
    3.11's ``asyncio.wait_for`` does that, as does an explicit task per chunk."""
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("vertex", recording(seen)))
    stream = await aopen_stream(client, "chat", WEATHER_TEXT, tools=[get_weather])
    chunks: list[Any] = []
    while True:
        try:
            if how == "wait_for":
                chunk = await asyncio.wait_for(anext(stream), 5)
            else:
                chunk = await asyncio.create_task(_in_a_task(anext(stream)))
        except StopAsyncIteration:
            break
        chunks.append(chunk)
    _afc_checks(captured, chunks, seen)


def test_a_tool_loop_closed_after_the_function_call_sends_no_second_request(
    captured: Capture,
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen)))
    stream = open_stream(client, "models", WEATHER_TEXT, tools=[get_weather])
    (call,) = read(stream, 1)
    assert call.function_calls
    stream.close()
    assert len(seen) == 1
    # The function call's chunk is its request's last (it has the finish reason): exact.
    want = from_usage(
        expected_usage(WEATHER_TEXT, words(json.dumps(TOOL_ARGS))),
        operation=OperationType.TOOL_CALL,
    )
    check(captured, want)


def test_a_function_call_without_automatic_calling_is_one_tool_call_record(
    captured: Capture,
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("vertex", recording(seen)))
    config = {"tools": [get_weather], "automatic_function_calling": NO_AFC}
    chunks = list(open_stream(client, "models", WEATHER_TEXT, **config))
    assert len(chunks) == 1
    assert chunks[0].function_calls
    assert len(seen) == 1
    want = from_usage(
        expected_usage(WEATHER_TEXT, words(json.dumps(TOOL_ARGS))),
        operation=OperationType.TOOL_CALL,
    )
    check(captured, want)


# ============================================================================= chats


def _chat_checks(captured: Capture, history: list[Any], seen: list[Recorded]) -> None:
    assert len(seen) == 2
    # The second request carries the first turn: its prompt is the whole conversation.
    roles = [c["role"] for c in seen[1].body["contents"]]
    assert (roles[0], roles[-1]) == ("user", "user")
    # The SDK keeps each streamed chunk as a model turn of its own.
    user_turns = [i for i, turn in enumerate(history) if turn.role == "user"]
    assert [history[i].parts[0].text for i in user_turns] == [USER_TEXT, SECOND_TEXT]
    replies = ["".join(t.parts[0].text for t in history[a + 1 : b]) for a, b in
               zip(user_turns, [*user_turns[1:], len(history)], strict=True)]  # fmt: skip
    assert replies == [REPLY, echo(SECOND_TEXT)]
    assert len(captured.records) == 2
    first, second = captured.completions
    assert fields(first) == exact()
    conversation = USER_TEXT + REPLY + SECOND_TEXT
    assert fields(second) == exact(prompt=conversation, text=echo(SECOND_TEXT), n=2)
    # Two calls, not one call's requests: no parent.
    assert second.metadata.parent_transaction_id is None
    timed(first)
    timed(second)


@ALL_MODES
def test_a_chat_streams_each_message_as_one_record(captured: Capture, mode: str) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    chat = client.chats.create(model=MODEL)
    assert "".join(c.text for c in chat.send_message_stream(USER_TEXT)) == REPLY
    assert "".join(c.text for c in chat.send_message_stream(SECOND_TEXT)) == echo(SECOND_TEXT)
    _chat_checks(captured, chat.get_history(), seen)


@ALL_MODES
async def test_an_async_chat_streams_each_message_as_one_record(
    captured: Capture, mode: str
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    chat = client.aio.chats.create(model=MODEL)
    first = await chat.send_message_stream(USER_TEXT)
    assert inspect.isasyncgen(first)
    assert "".join([c.text async for c in first]) == REPLY
    second = [c.text async for c in await chat.send_message_stream(SECOND_TEXT)]
    assert "".join(second) == echo(SECOND_TEXT)
    _chat_checks(captured, chat.get_history(), seen)


def _long_history(turns: int) -> list[types.Content]:
    history = []
    for i in range(turns):
        history.append(types.Content(role="user", parts=[types.Part(text=f"question {i}")]))
        history.append(types.Content(role="model", parts=[types.Part(text=f"answer {i}")]))
    history.append(types.Content(role="user", parts=[types.Part(text=USER_TEXT)]))
    return history


@pytest.mark.parametrize("capture_prompts", [False, True])
@pytest.mark.parametrize("colour", ["sync", "async"])
async def test_a_streamed_calls_history_is_not_deep_copied_on_the_callers_path(
    captured: Capture, monkeypatch: pytest.MonkeyPatch, colour: str, capture_prompts: bool
) -> None:
    """A stream's estimate only needs the turns sent (the SDK never changes a turn): without
    prompt capture nothing of a long history is copied deeply on the caller's thread. With
    prompt capture the request's prompt is, once (which also shows the count sees our
    copies)."""
    revenium.configure(capture_prompts=capture_prompts)
    history = _long_history(50)
    real = copy.deepcopy
    copied: list[object] = []

    def deepcopy(value: Any, *args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("revenium"):  # the SDK's own copies are not ours
            copied.append(value)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(copy, "deepcopy", deepcopy)
    client = revenium.wrap(client_for("gemini"))
    if colour == "sync":
        chunks = list(client.models.generate_content_stream(model=MODEL, contents=history))
    else:
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents=history)
        chunks = [chunk async for chunk in stream]
    assert copied == ([history] if capture_prompts else [])
    assert texts(chunks) == pieces(REPLY)
    prompt = "".join(t.parts[0].text for t in history)  # type: ignore[index]
    record = check(captured, exact(prompt=prompt))
    assert (record.prompts is not None) is capture_prompts


# ============================================================================= timings


GAP = 0.02  # seconds the test lets pass between creating a stream and reading it


def test_a_sync_stream_is_timed_from_its_first_chunk_request(captured: Capture) -> None:
    """A generator sends its request at the first ``next()``: the time before is not the
    call's. The bounds follow from the clock, whatever the machine's speed."""
    stream = open_stream(revenium.wrap(client_for("gemini")), "models")
    let_time_pass(GAP)
    started = time.perf_counter()
    first = next(stream)
    first_seen = time.perf_counter()
    rest = list(stream)
    finished = time.perf_counter()
    assert texts([first, *rest]) == pieces(REPLY)
    record = check(captured, exact())
    assert record.time_to_first_token_ms is not None
    assert record.time_to_first_token_ms <= (first_seen - started) * 1000
    assert record.request_duration_ms <= (finished - started) * 1000


async def test_an_async_stream_is_timed_from_its_first_chunk_request(captured: Capture) -> None:
    stream = await aopen_stream(revenium.wrap(client_for("gemini")), "models")
    let_time_pass(GAP)
    started = time.perf_counter()
    chunks = [chunk async for chunk in stream]
    finished = time.perf_counter()
    assert texts(chunks) == pieces(REPLY)
    record = check(captured, exact())
    assert record.request_duration_ms <= (finished - started) * 1000


# ============================================================================= aiohttp


@AIOHTTP_WARNING
async def test_an_async_stream_over_aiohttp_is_metered_as_over_httpx(captured: Capture) -> None:
    """Without an async httpx client, the SDK's ``client.aio`` streams over aiohttp (a body
    iterated another way, another exception for a dropped connection): the same records."""
    aiohttp = pytest.importorskip("aiohttp")
    with StandInServer() as server:
        async with served_client(server, aiohttp=True) as plain:
            client = revenium.wrap(plain)
            api = client._api_client
            assert api._use_aiohttp()
            chunks = [c async for c in await aopen_stream(client, "models")]
            assert texts(chunks) == pieces(REPLY)
            sessions = list(api._aiohttp_sessions.values())
            assert len(sessions) == 1
            assert isinstance(sessions[0], aiohttp.ClientSession)
            early = await aopen_stream(client, "models")
            await aread(early, 2)
            await early.aclose()
            await loop_rounds()
            dropped: list[Any] = []
            with pytest.raises(aiohttp.ClientPayloadError) as raised:  # noqa: PT012
                async for chunk in await aopen_stream(client, "models", model="fail-midstream"):
                    dropped.append(chunk)
            assert texts(dropped) == pieces(REPLY)[:2]
        async with served_client(server) as plain:
            client = revenium.wrap(plain)
            api = client._api_client
            assert not api._use_aiohttp()
            assert texts([c async for c in await aopen_stream(client, "models")]) == pieces(REPLY)
            assert api._aiohttp_sessions == {}
    assert len(captured.records) == 4
    over_aiohttp, cut, failed, over_httpx = captured.completions
    assert fields(over_aiohttp) == exact(n=1)
    assert fields(cut) == cut_short(2, n=2)
    reason = f"{type(raised.value).__name__}: {raised.value}"
    assert fields(failed) == cut_short(
        2, n=3, model="fail-midstream", stop=StopReason.ERROR, error_reason=reason[:255]
    )
    assert fields(over_httpx) == exact(n=4)
    assert {**fields(over_aiohttp), "transaction_id": None} == {
        **fields(over_httpx),
        "transaction_id": None,
    }
    for record in captured.completions:
        timed(record)
