"""Streamed OpenAI calls: exactly one record on every exit path, and the stream's API intact."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

import revenium
from revenium.records import CompletionRecord, StopReason
from revenium.testing import Capture

sys.path.insert(0, str(Path(__file__).parent))
from openai_fixtures import async_client, openai_handler, sync_client

MESSAGES = [{"role": "user", "content": "Write five short words about the sea for me"}]


def _only(captured: Capture) -> CompletionRecord:
    (record,) = captured.completions
    return record


def _expected_usage() -> Any:
    """The usage the provider reports for MESSAGES, read from an unwrapped client."""
    chunks = list(
        sync_client().chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    return chunks[-1].usage


def _recording(requests: list[dict[str, Any]]) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(json.loads(request.content or b"{}"))
        return openai_handler(request)

    return handler


def test_an_exhausted_stream_is_one_exact_record_and_the_injected_usage_chunk_is_hidden(
    captured: Capture,
) -> None:
    sent: list[dict[str, Any]] = []
    stream = revenium.wrap(sync_client(_recording(sent))).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert sent[0]["stream_options"] == {"include_usage": True}  # asked for, on the caller's behalf
    assert all(chunk.choices for chunk in chunks)  # ... and the extra chunk never shows
    usage = _expected_usage()
    record = _only(captured)
    assert (record.input_token_count, record.output_token_count) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert record.is_streamed is True
    assert record.estimated is False
    assert record.stop_reason is StopReason.END
    assert record.transaction_id == chunks[0].id
    assert record.time_to_first_token_ms is not None
    assert 0 < record.time_to_first_token_ms <= record.request_duration_ms


def test_a_caller_who_asked_for_usage_still_sees_the_usage_chunk(captured: Capture) -> None:
    stream = revenium.wrap(sync_client()).chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert _only(captured).output_token_count == chunks[-1].usage.completion_tokens


def test_include_usage_false_is_respected_and_the_record_is_estimated(captured: Capture) -> None:
    sent: list[dict[str, Any]] = []
    stream = revenium.wrap(sync_client(_recording(sent))).chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": False}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert sent[0]["stream_options"] == {"include_usage": False}
    record = _only(captured)
    assert record.estimated is True
    assert record.stop_reason is StopReason.END  # the stream finished; only usage is missing
    assert record.output_token_count == (len(text) + 3) // 4


def test_injection_can_be_turned_off(captured: Capture) -> None:
    revenium.configure(inject_stream_usage=False)
    sent: list[dict[str, Any]] = []
    list(
        revenium.wrap(sync_client(_recording(sent))).chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        )
    )
    assert "stream_options" not in sent[0]
    assert _only(captured).estimated is True


def test_break_then_close_is_one_cancelled_estimated_record(captured: Capture) -> None:
    stream = revenium.wrap(sync_client()).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    for _chunk in stream:
        break
    assert captured.records == []  # still open: the caller may resume
    stream.close()
    stream.close()
    record = _only(captured)
    assert record.stop_reason is StopReason.CANCELLED
    assert record.estimated is True
    assert record.input_token_count == (len(MESSAGES[0]["content"]) + 3) // 4


def test_leaving_a_with_block_early_is_one_record(captured: Capture) -> None:
    with revenium.wrap(sync_client()).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    ) as stream:
        next(iter(stream))
    assert _only(captured).stop_reason is StopReason.CANCELLED


def test_an_exception_mid_stream_is_one_error_record_and_the_error_reaches_the_caller(
    captured: Capture,
) -> None:
    stream = revenium.wrap(sync_client()).chat.completions.create(
        model="fail-midstream", messages=MESSAGES, stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)
    record = _only(captured)
    assert record.stop_reason is StopReason.ERROR
    assert record.estimated is True


def test_an_abandoned_stream_is_recorded_at_garbage_collection(captured: Capture) -> None:
    stream = revenium.wrap(sync_client()).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    next(iter(stream))
    del stream
    gc.collect()
    assert _only(captured).stop_reason is StopReason.CANCELLED


def test_a_stream_never_iterated_is_recorded_at_garbage_collection(captured: Capture) -> None:
    revenium.wrap(sync_client()).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    gc.collect()
    assert len(captured.completions) == 1


def test_a_stream_still_open_at_shutdown_is_finalized_first(tmp_path: Path) -> None:
    revenium.configure(ledger_path=tmp_path / "ledger.db")
    stream = revenium.wrap(sync_client()).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    next(iter(stream))
    report = revenium.shutdown_sync(timeout=10)
    assert report.ledger_written == 1
    stream.close()  # closing later does not record it twice
    assert revenium.flush_sync(timeout=10).ledger_written == 0


def test_the_stream_helper_meters_once_including_early_exit(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client())
    with wrapped.chat.completions.stream(model="m", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    with wrapped.chat.completions.stream(model="m", messages=MESSAGES) as stream:
        for _event in stream:
            break  # the helper closes the HTTP response behind the raw stream's back
    first, second = captured.completions
    assert (first.stop_reason, first.estimated) == (StopReason.END, False)
    assert (second.stop_reason, second.estimated) == (StopReason.CANCELLED, True)


def test_legacy_completions_stream(captured: Capture) -> None:
    stream = revenium.wrap(sync_client()).completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say three words", stream=True
    )
    assert list(stream)
    record = _only(captured)
    assert record.is_streamed
    assert record.estimated is False
    assert record.operation_type.value == "GENERATE"


async def test_async_stream_exhausted(captured: Capture) -> None:
    stream = await revenium.wrap(async_client()).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    assert isinstance(stream, openai.AsyncStream)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    record = _only(captured)
    assert record.estimated is False
    assert record.output_token_count == _expected_usage().completion_tokens


async def test_async_stream_closed_early(captured: Capture) -> None:
    stream = await revenium.wrap(async_client()).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    async with stream:
        async for _chunk in stream:
            break
    assert _only(captured).stop_reason is StopReason.CANCELLED


async def test_async_stream_cancelled_mid_iteration(captured: Capture) -> None:
    gate = asyncio.Event()

    class SlowBody(httpx2.AsyncByteStream):
        def __init__(self, data: bytes) -> None:
            self._lines = data.split(b"\n\n")

        async def __aiter__(self) -> Any:
            for index, line in enumerate(self._lines):
                if index == 2:
                    gate.set()
                    await asyncio.sleep(30)
                yield line + b"\n\n"

    def handler(request: httpx2.Request) -> httpx2.Response:
        response = openai_handler(request)
        return httpx2.Response(200, headers=response.headers, stream=SlowBody(response.read()))

    stream = await revenium.wrap(async_client(handler)).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )

    async def consume() -> None:
        async for _chunk in stream:
            pass

    task = asyncio.create_task(consume())
    await gate.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _only(captured).stop_reason is StopReason.CANCELLED


async def test_async_stream_helper(captured: Capture) -> None:
    wrapped = revenium.wrap(async_client())
    async with wrapped.chat.completions.stream(model="m", messages=MESSAGES) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content
    assert _only(captured).estimated is False


def test_prompt_capture_on_a_stream_records_the_text(captured: Capture) -> None:
    revenium.configure(capture_prompts=True)
    stream = revenium.wrap(sync_client()).chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    prompts = _only(captured).prompts
    assert prompts is not None
    assert prompts.output_response == text


def test_an_early_exit_while_an_unrelated_sdk_error_unwinds_is_a_cancellation(
    captured: Capture,
) -> None:
    wrapped = revenium.wrap(sync_client())
    stream = wrapped.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.RateLimitError), stream:  # noqa: PT012 - the block is the scenario
        next(iter(stream))
        wrapped.chat.completions.create(model="fail-429", messages=MESSAGES)
    stream_record = next(r for r in captured.completions if r.is_streamed)
    assert stream_record.stop_reason is StopReason.CANCELLED  # not the other call's ERROR
    assert stream_record.error_reason is None
