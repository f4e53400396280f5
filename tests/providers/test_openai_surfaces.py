"""Every metered OpenAI surface beyond plain chat: the exact record a user would see.

Chat completions (non-streamed and streamed, every exit path) are covered by
``test_openai_wrap.py`` and ``test_openai_streams.py``; this module covers ``parse``, legacy
completions, the Responses API (streams, helpers, background responses), embeddings, images,
audio, Azure and the OpenAI-compatible hosts, and the wire body of a chat record. Expected
numbers are read from what the SDK returned (or, for a stream whose usage chunk the wrapper
hides, from an unwrapped client asked the same question), never copied from the adapter.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import sqlite3
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import openai
import pydantic
import pytest

import revenium
from revenium.providers._openai_standin import AZURE_MODEL
from revenium.records import (
    AudioRecord,
    BillingUnit,
    CompletionRecord,
    ImageRecord,
    OperationType,
    StopReason,
)
from revenium.testing import Capture

sys.path.insert(0, str(Path(__file__).parent))
from openai_fixtures import (
    async_azure_client,
    async_client,
    azure_client,
    compat_client,
    openai_handler,
    sync_client,
)

MESSAGES: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three colours of the rainbow please"},
]
AUDIO = b"ID3\x04\x00fake-audio"
PNG = (  # a valid 1x1 PNG
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x04\x00\x00\x00"
    b"\xb5\x1c\x0c\x02\x00\x00\x00\x0bIDATx\xdacd`\x00\x00\x00\x06\x00\x020\x81\xd0/\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)
COLOURS = pytest.mark.parametrize("colour", ["sync", "async"])
Handler = Callable[[httpx2.Request], httpx2.Response]


class Answer(pydantic.BaseModel):
    answer: str


# ----------------------------------------------------------------------------- helpers


def _client(colour: str, handler: Handler = openai_handler, **kw: Any) -> Any:
    return sync_client(handler, **kw) if colour == "sync" else async_client(handler, **kw)


def _azure(colour: str, handler: Handler = openai_handler, **kw: Any) -> Any:
    return azure_client(handler, **kw) if colour == "sync" else async_azure_client(handler, **kw)


async def _value(value: Any) -> Any:
    """The value of a sync call, or the awaited value of an async one."""
    return await value if inspect.isawaitable(value) else value


async def _drain(stream: Any) -> list[Any]:
    if isinstance(stream, openai.AsyncStream):
        return [chunk async for chunk in stream]
    return list(stream)


def _only(captured: Capture) -> Any:
    """The one record of the call (of any kind: a second record of another kind fails too)."""
    (record,) = captured.records
    return record


def _only_completion(captured: Capture) -> CompletionRecord:
    record = _only(captured)
    assert isinstance(record, CompletionRecord)
    return record


def _recording(sent: list[dict[str, Any]], handler: Handler = openai_handler) -> Handler:
    """Keep each JSON request body (and its URL under ``"_url"``), then answer as ``handler``."""

    def recorder(request: httpx2.Request) -> httpx2.Response:
        body = request.content
        is_json = request.headers.get("content-type", "").startswith("application/json")
        parsed = json.loads(body) if is_json and body else {}
        sent.append({**parsed, "_url": str(request.url)})
        return handler(request)

    return recorder


def _rewriting(handler: Handler) -> Handler:
    """Answer a compatible host's paths (``/inference/v1/...``, ``/api/v1/...``) as OpenAI's."""

    def rewrite(request: httpx2.Request) -> httpx2.Response:
        match = re.search(
            r"/(chat/completions|completions|responses|embeddings)$", request.url.path
        )
        assert match is not None, request.url
        moved = httpx2.Request(
            request.method,
            "https://api.openai.com/v1" + match.group(0),
            headers=request.headers,
            content=request.content,
        )
        return handler(moved)

    return rewrite


def _edit_json(edit: Callable[[dict[str, Any]], object]) -> Handler:
    """A handler answering like the stand-in, with its JSON body changed by ``edit``."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(openai_handler(request).read())
        edit(body)
        return httpx2.Response(200, json=body)

    return handler


def _assert_chat_usage(record: CompletionRecord, usage: Any) -> None:
    assert usage is not None
    assert (record.input_token_count, record.output_token_count, record.total_token_count) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
    )
    assert record.cache_read_token_count == usage.prompt_tokens_details.cached_tokens
    assert record.reasoning_token_count == usage.completion_tokens_details.reasoning_tokens
    assert record.estimated is False


def _assert_response_usage(record: CompletionRecord, usage: Any) -> None:
    assert usage is not None
    assert (record.input_token_count, record.output_token_count, record.total_token_count) == (
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
    )
    assert record.cache_read_token_count == usage.input_tokens_details.cached_tokens
    assert record.reasoning_token_count == usage.output_tokens_details.reasoning_tokens
    assert record.estimated is False


def _assert_not_streamed(record: CompletionRecord) -> None:
    assert record.is_streamed is False
    assert record.request_duration_ms > 0
    assert record.time_to_first_token_ms == record.request_duration_ms


def _assert_streamed(record: CompletionRecord) -> None:
    assert record.is_streamed is True
    assert record.time_to_first_token_ms is not None
    assert 0 < record.time_to_first_token_ms <= record.request_duration_ms


def _chat_usage_for(client: Any, **request: Any) -> Any:
    """The usage a chat stream reports, from an unwrapped sync client asked for it."""
    chunks = list(
        client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == []
    return chunks[-1].usage


def _without_ids(chunks: list[Any]) -> list[dict[str, Any]]:
    """Chunk dumps without the ids (the stand-in numbers each request)."""
    return [{k: v for k, v in c.model_dump().items() if k != "id"} for c in chunks]


# ----------------------------------------------------------------------------- chat parse, legacy


@COLOURS
async def test_chat_parse_with_a_pydantic_model_is_one_exact_record(
    captured: Capture, colour: str
) -> None:
    wrapped = revenium.wrap(_client(colour))
    parsed = await _value(
        wrapped.chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES, response_format=Answer
        )
    )
    assert isinstance(parsed.choices[0].message.parsed, Answer)
    record = _only_completion(captured)
    _assert_chat_usage(record, parsed.usage)
    assert record.model == parsed.model
    assert (record.provider, record.model_source) == ("OPENAI", "OPENAI")
    assert record.transaction_id == parsed.id
    assert record.stop_reason is StopReason.END
    assert record.operation_type is OperationType.CHAT
    assert record.system_fingerprint == parsed.system_fingerprint
    _assert_not_streamed(record)


@COLOURS
async def test_legacy_completion_is_one_exact_record(captured: Capture, colour: str) -> None:
    wrapped = revenium.wrap(_client(colour))
    completion = await _value(
        wrapped.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test")
    )
    record = _only_completion(captured)
    _assert_chat_usage(record, completion.usage)
    assert record.operation_type is OperationType.GENERATE
    assert record.model == completion.model
    assert record.transaction_id == completion.id
    assert record.stop_reason is StopReason.END
    assert record.provider == "OPENAI"
    _assert_not_streamed(record)


def test_legacy_completion_with_max_tokens_is_token_limit(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client())
    completion = wrapped.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="one two three four", max_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"
    assert _only_completion(captured).stop_reason is StopReason.TOKEN_LIMIT


# ----------------------------------------------------------------------------- responses API

RESPONSE_USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 64},
    "output_tokens": 40,
    "output_tokens_details": {"reasoning_tokens": 30},
    "total_tokens": 140,
}


@COLOURS
async def test_a_response_maps_input_cached_reasoning_and_total(
    captured: Capture, colour: str
) -> None:
    handler = _edit_json(lambda body: body.update(usage=RESPONSE_USAGE))
    wrapped = revenium.wrap(_client(colour, handler))
    response = await _value(
        wrapped.responses.create(model="gpt-5", input="Hello there, how are you?")
    )
    record = _only_completion(captured)
    _assert_response_usage(record, response.usage)
    # OpenAI's input includes cached reads and its output includes reasoning: sent as such.
    assert (record.input_token_count, record.cache_read_token_count) == (100, 64)
    assert (record.output_token_count, record.reasoning_token_count) == (40, 30)
    assert record.total_token_count == 140
    assert record.model == response.model
    assert (record.provider, record.model_source) == ("OPENAI", "OPENAI")
    assert record.transaction_id == response.id
    assert record.stop_reason is StopReason.END
    assert record.operation_type is OperationType.CHAT
    _assert_not_streamed(record)


@COLOURS
async def test_a_streamed_response_is_metered_from_its_terminal_event_without_stream_options(
    captured: Capture, colour: str
) -> None:
    sent: list[dict[str, Any]] = []
    wrapped = revenium.wrap(_client(colour, _recording(sent)))
    stream = await _value(
        wrapped.responses.create(model="gpt-5", input="one two three", stream=True)
    )
    events = await _drain(stream)
    assert sent[0]["stream"] is True
    assert "stream_options" not in sent[0]  # usage arrives with response.completed, unasked
    assert events[-1].type == "response.completed"
    final = events[-1].response
    record = _only_completion(captured)
    _assert_response_usage(record, final.usage)
    assert record.model == final.model
    assert record.transaction_id == events[0].response.id == final.id
    assert record.stop_reason is StopReason.END
    assert record.operation_type is OperationType.CHAT
    _assert_streamed(record)


@COLOURS
async def test_the_responses_stream_helper_is_one_exact_record(
    captured: Capture, colour: str
) -> None:
    wrapped = revenium.wrap(_client(colour))
    if colour == "sync":
        with wrapped.responses.stream(model="gpt-5", input="one two three") as stream:
            final = stream.get_final_response()
    else:
        async with wrapped.responses.stream(model="gpt-5", input="one two three") as stream:
            final = await stream.get_final_response()
    assert final.output_text == "Echo: one two three"
    record = _only_completion(captured)
    _assert_response_usage(record, final.usage)
    assert record.transaction_id == final.id
    assert record.model == final.model
    assert record.stop_reason is StopReason.END
    _assert_streamed(record)


@COLOURS
async def test_responses_parse_with_a_text_format_is_one_exact_record(
    captured: Capture, colour: str
) -> None:
    wrapped = revenium.wrap(_client(colour))
    parsed = await _value(wrapped.responses.parse(model="gpt-5", input="Hi", text_format=Answer))
    assert parsed.output_parsed == Answer(answer="Echo: Hi")
    record = _only_completion(captured)
    _assert_response_usage(record, parsed.usage)
    assert record.transaction_id == parsed.id
    assert record.model == parsed.model
    assert record.stop_reason is StopReason.END
    _assert_not_streamed(record)


@COLOURS
@pytest.mark.parametrize("stream", [False, True])
async def test_a_response_cut_by_max_output_tokens_is_token_limit(
    captured: Capture, colour: str, stream: bool
) -> None:
    wrapped = revenium.wrap(_client(colour))
    request: dict[str, Any] = {"model": "gpt-5", "input": "a b c d e", "max_output_tokens": 2}
    if stream:
        events = await _drain(await _value(wrapped.responses.create(**request, stream=True)))
        assert events[-1].type == "response.incomplete"
        response = events[-1].response
    else:
        response = await _value(wrapped.responses.create(**request))
    assert response.status == "incomplete"
    record = _only_completion(captured)
    assert record.stop_reason is StopReason.TOKEN_LIMIT
    _assert_response_usage(record, response.usage)
    assert record.output_token_count == 2
    assert record.is_streamed is stream


def test_a_response_incomplete_for_content_filter_is_error(captured: Capture) -> None:
    def edit(body: dict[str, Any]) -> None:
        body.update(status="incomplete", incomplete_details={"reason": "content_filter"})

    revenium.wrap(sync_client(_edit_json(edit))).responses.create(model="gpt-5", input="x")
    assert _only_completion(captured).stop_reason is StopReason.ERROR


def _unique_ids(handler: Handler) -> Handler:
    """Give the stand-in's response ids a random part, unique in this process.

    A background response is metered once per process, by id, and the stand-in's ids restart
    with every ``make_handler()``: unique ids keep tests independent of one another.
    """
    token = uuid.uuid4().hex[:12]

    def unique(request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET":
            path = request.url.path.replace(f"resp_{token}_", "resp_standin_")
            request = httpx2.Request(
                "GET", request.url.copy_with(path=path), headers=request.headers
            )
        response = handler(request)
        body = response.read().replace(b"resp_standin_", f"resp_{token}_".encode())
        return httpx2.Response(response.status_code, headers=response.headers, content=body)

    return unique


COMPLETED_AT_DELAY = 42  # seconds the background response took, server-side


def _polled(gets: list[str]) -> Handler:
    """Background responses: the first poll finds it running, later polls find it finished."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.method != "GET":
            return openai_handler(request)
        gets.append(request.url.path)
        body = json.loads(openai_handler(request).read())
        if len(gets) == 1:
            body.update(status="in_progress", usage=None, output=[])
        else:
            body["completed_at"] = body["created_at"] + COMPLETED_AT_DELAY
        return httpx2.Response(200, json=body)

    return _unique_ids(handler)


@COLOURS
async def test_a_background_response_is_metered_once_when_retrieve_sees_it_finished(
    captured: Capture, colour: str
) -> None:
    gets: list[str] = []
    handler = _polled(gets)
    wrapped = revenium.wrap(_client(colour, handler))
    queued = await _value(
        wrapped.responses.create(model="gpt-5", input="later please", background=True)
    )
    assert queued.status == "queued"
    assert captured.records == []  # nothing to meter yet
    running = await _value(wrapped.responses.retrieve(queued.id))
    assert running.status == "in_progress"
    assert captured.records == []
    done = await _value(wrapped.responses.retrieve(queued.id))
    assert done.status == "completed"
    record = _only_completion(captured)
    _assert_response_usage(record, done.usage)
    assert record.transaction_id == done.id == queued.id
    assert record.model == done.model
    assert record.stop_reason is StopReason.END
    assert record.is_streamed is False
    # Timed by the server: from created_at to completed_at, not by this poll.
    assert record.request_time == datetime.fromtimestamp(done.created_at, UTC)
    assert record.request_duration_ms == COMPLETED_AT_DELAY * 1000
    assert uuid.UUID(record.idempotency_key).version == 5  # derived from the id, not random
    # Polling again, with this client or another, makes no second record.
    again = await _value(wrapped.responses.retrieve(queued.id))
    assert again.status == "completed"
    other = revenium.wrap(_client(colour, handler))
    await _value(other.responses.retrieve(queued.id))
    assert captured.records == [record]
    # A different background response gets a different key.
    later = await _value(wrapped.responses.create(model="gpt-5", input="another", background=True))
    await _value(wrapped.responses.retrieve(later.id))
    assert len(captured.records) == 2
    assert captured.completions[1].idempotency_key != record.idempotency_key


_OTHER_PROCESS = """
import sys, httpx2, openai, revenium
body = sys.stdin.read()
def handler(request):
    return httpx2.Response(200, content=body, headers={"content-type": "application/json"})
http = httpx2.Client(transport=httpx2.MockTransport(handler))
client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=http)
with revenium.testing.capture() as captured:
    revenium.wrap(client).responses.retrieve(sys.argv[1])
(record,) = captured.records
print(record.idempotency_key, record.transaction_id)
"""


def test_another_process_retrieving_the_same_background_response_uses_the_same_key(
    captured: Capture,
) -> None:
    handler = _unique_ids(openai_handler)
    wrapped = revenium.wrap(sync_client(handler))
    queued = wrapped.responses.create(model="gpt-5", input="later please", background=True)
    done = wrapped.responses.retrieve(queued.id)
    record = _only_completion(captured)
    body = sync_client(handler).responses.with_raw_response.retrieve(queued.id).text
    assert json.loads(body)["id"] == done.id
    result = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, done.id],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert result.stdout.split() == [record.idempotency_key, done.id]


def test_a_background_response_is_one_row_in_the_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    revenium.configure(ledger_path=ledger)
    wrapped = revenium.wrap(sync_client(_unique_ids(openai_handler)))
    with revenium.testing.capture(deliver=True) as captured:
        queued = wrapped.responses.create(model="gpt-5", input="later please", background=True)
        done = wrapped.responses.retrieve(queued.id)
        wrapped.responses.retrieve(queued.id)
    record = _only_completion(captured)
    assert revenium.flush_sync(timeout=10).dropped == 0
    with closing(sqlite3.connect(ledger)) as db:
        rows = db.execute("SELECT idempotency_key, input_tokens FROM records").fetchall()
    assert done.usage is not None
    assert rows == [(record.idempotency_key, done.usage.input_tokens)]


def test_retrieving_a_foreground_response_does_not_meter_it_again(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client())
    response = wrapped.responses.create(model="gpt-5", input="now please")
    assert len(captured.records) == 1
    assert wrapped.responses.retrieve(response.id).status == "completed"
    assert len(captured.records) == 1


# ----------------------------------------------------------------------------- embeddings


@COLOURS
async def test_an_embedding_is_an_embed_record(captured: Capture, colour: str) -> None:
    wrapped = revenium.wrap(_client(colour))
    result = await _value(
        wrapped.embeddings.create(model="text-embedding-3-small", input=["abcdefgh", "ijkl"])
    )
    record = _only_completion(captured)
    assert record.operation_type is OperationType.EMBED
    assert result.usage.prompt_tokens == 3
    assert record.input_token_count == result.usage.prompt_tokens
    assert record.output_token_count == 0
    assert record.total_token_count == result.usage.total_tokens
    assert record.model == result.model == "text-embedding-3-small"
    assert (record.provider, record.model_source) == ("OPENAI", "OPENAI")
    assert record.stop_reason is StopReason.END
    assert record.transaction_id is None  # embeddings have no response id
    _assert_not_streamed(record)


# ----------------------------------------------------------------------------- images


@COLOURS
async def test_an_image_generation_is_one_image_record(captured: Capture, colour: str) -> None:
    wrapped = revenium.wrap(_client(colour))
    images = await _value(
        wrapped.images.generate(
            model="dall-e-3", prompt="a cat", n=2, size="1024x1792", quality="hd", style="vivid"
        )
    )
    assert len(images.data) == 2
    record = _only(captured)
    assert isinstance(record, ImageRecord)
    assert (record.model, record.provider, record.model_source) == ("dall-e-3", "OPENAI", "OPENAI")
    assert record.operation_type is OperationType.IMAGE
    assert record.operation_subtype == "generation"
    assert (record.requested_image_count, record.actual_image_count) == (2, 2)
    assert (record.resolution, record.quality, record.style) == ("1024x1792", "hd", "vivid")
    assert record.billing_unit is BillingUnit.PER_IMAGE
    assert record.source_image_provided is False
    assert record.revised_prompt_provided is False
    assert record.request_duration_ms > 0


def test_fewer_images_than_requested_are_counted_apart(captured: Capture) -> None:
    def edit(body: dict[str, Any]) -> None:
        body["data"] = [{**body["data"][0], "revised_prompt": "a calm cat"}]
        body.update(size="1024x1536", quality="medium")  # what "auto" turned out to be

    wrapped = revenium.wrap(sync_client(_edit_json(edit)))
    images = wrapped.images.generate(
        model="gpt-image-1", prompt="a cat", n=3, size="auto", quality="auto"
    )
    assert images.data is not None
    assert len(images.data) == 1
    record = _only(captured)
    assert isinstance(record, ImageRecord)
    assert (record.requested_image_count, record.actual_image_count) == (3, 1)
    assert record.revised_prompt_provided is True
    # "auto" cannot be priced: the size and quality the provider reports are recorded.
    assert (record.resolution, record.quality) == ("1024x1536", "medium")


@COLOURS
async def test_an_image_edit_is_one_image_record_with_a_source_image(
    captured: Capture, colour: str
) -> None:
    wrapped = revenium.wrap(_client(colour))
    edited = await _value(
        wrapped.images.edit(
            model="dall-e-2", image=("in.png", io.BytesIO(PNG), "image/png"), prompt="make it blue"
        )
    )
    assert len(edited.data) == 1
    record = _only(captured)
    assert isinstance(record, ImageRecord)
    assert record.operation_subtype == "edit"
    assert record.source_image_provided is True
    assert (record.requested_image_count, record.actual_image_count) == (1, 1)
    assert record.model == "dall-e-2"
    assert record.billing_unit is BillingUnit.PER_IMAGE


def test_an_image_edit_with_a_bare_bytesio_is_metered(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client())
    wrapped.images.edit(model="gpt-image-1", image=io.BytesIO(PNG), prompt="blue", n=3)
    record = _only(captured)
    assert isinstance(record, ImageRecord)
    assert (record.requested_image_count, record.actual_image_count) == (3, 3)


# ----------------------------------------------------------------------------- audio

SPEECH_INPUT = "The quick brown fox jumps over the lazy dog."


def _assert_speech(record: object, *, model: str = "gpt-4o-mini-tts") -> None:
    assert isinstance(record, AudioRecord)
    assert (record.model, record.provider, record.model_source) == (model, "OPENAI", "OPENAI")
    assert record.operation_type is OperationType.AUDIO
    assert record.operation_subtype == "speech"
    assert record.character_count == len(SPEECH_INPUT)
    assert record.voice == "coral"
    assert record.speed == 1.25
    assert record.response_format == "mp3"
    assert record.billing_unit is BillingUnit.PER_CHARACTER
    assert record.request_duration_ms >= 0


@COLOURS
async def test_speech_is_one_audio_record_per_character(captured: Capture, colour: str) -> None:
    wrapped = revenium.wrap(_client(colour))
    speech = await _value(
        wrapped.audio.speech.create(
            model="gpt-4o-mini-tts", voice="coral", input=SPEECH_INPUT, speed=1.25
        )
    )
    assert speech.content.startswith(b"ID3")
    _assert_speech(_only(captured))


@COLOURS
async def test_streamed_speech_read_as_bytes_without_parse_is_one_record(
    captured: Capture, colour: str
) -> None:
    wrapped = revenium.wrap(_client(colour))
    request: dict[str, Any] = {
        "model": "gpt-4o-mini-tts",
        "voice": "coral",
        "input": SPEECH_INPUT,
        "speed": 1.25,
    }
    if colour == "sync":
        with wrapped.audio.speech.with_streaming_response.create(**request) as response:
            data = b"".join(response.iter_bytes())
    else:
        async with wrapped.audio.speech.with_streaming_response.create(**request) as response:
            data = b"".join([chunk async for chunk in response.iter_bytes()])
    assert data.startswith(b"ID3")
    _assert_speech(_only(captured))


@COLOURS
async def test_a_token_billed_transcription(captured: Capture, colour: str) -> None:
    wrapped = revenium.wrap(_client(colour))
    result = await _value(
        wrapped.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("a.mp3", io.BytesIO(AUDIO))
        )
    )
    record = _only(captured)
    assert isinstance(record, AudioRecord)
    assert result.usage is not None
    assert result.usage.type == "tokens"
    assert (record.input_token_count, record.output_token_count) == (
        result.usage.input_tokens,
        result.usage.output_tokens,
    )
    assert result.usage.input_token_details is not None
    assert record.input_audio_token_count == result.usage.input_token_details.audio_tokens
    assert record.billing_unit is BillingUnit.PER_TOKEN
    assert record.duration_seconds is None
    assert (record.model, record.operation_subtype) == ("gpt-4o-transcribe", "transcription")
    assert record.operation_type is OperationType.AUDIO


@COLOURS
async def test_a_duration_billed_transcription(captured: Capture, colour: str) -> None:
    wrapped = revenium.wrap(_client(colour))
    result = await _value(
        wrapped.audio.transcriptions.create(model="whisper-1", file=("a.mp3", io.BytesIO(AUDIO)))
    )
    record = _only(captured)
    assert isinstance(record, AudioRecord)
    assert result.usage is not None
    assert result.usage.type == "duration"
    assert record.duration_seconds == result.usage.seconds == 3
    assert record.billing_unit is BillingUnit.PER_MINUTE
    assert record.input_token_count is None
    assert (record.model, record.operation_subtype) == ("whisper-1", "transcription")


def test_a_verbose_transcription_reads_duration_and_language(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client())
    result = wrapped.audio.transcriptions.create(
        model="whisper-1", file=("a.mp3", io.BytesIO(AUDIO)), response_format="verbose_json"
    )
    record = _only(captured)
    assert isinstance(record, AudioRecord)
    assert record.duration_seconds == result.duration
    assert record.language == result.language == "english"
    assert record.response_format == "verbose_json"


@COLOURS
async def test_a_translation_is_one_audio_record(captured: Capture, colour: str) -> None:
    wrapped = revenium.wrap(_client(colour))
    with pytest.warns(DeprecationWarning, match="deprecated"):
        result = await _value(
            wrapped.audio.translations.create(  # pyright: ignore[reportDeprecated]
                model="whisper-1", file=("a.mp3", io.BytesIO(AUDIO))
            )
        )
    assert result.text == "hello world"
    record = _only(captured)
    assert isinstance(record, AudioRecord)
    assert (record.model, record.operation_subtype) == ("whisper-1", "translation")
    assert record.operation_type is OperationType.AUDIO
    assert record.billing_unit is BillingUnit.PER_MINUTE


def test_a_translation_carries_its_duration(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = wrapped.audio.translations.create(  # pyright: ignore[reportDeprecated]
            model="whisper-1", file=("a.mp3", io.BytesIO(AUDIO))
        )
    assert result.model_extra == {"usage": {"type": "duration", "seconds": 3}}
    record = _only(captured)
    assert isinstance(record, AudioRecord)
    assert record.duration_seconds == 3


# ----------------------------------------------------------------------------- Azure


@COLOURS
async def test_azure_names_the_served_model_not_the_deployment(
    captured: Capture, colour: str
) -> None:
    wrapped = revenium.wrap(_azure(colour))
    response = await _value(
        wrapped.chat.completions.create(model="my-deployment", messages=MESSAGES)
    )
    record = _only_completion(captured)
    assert record.model == response.model == AZURE_MODEL
    assert (record.provider, record.model_source) == ("Azure", "OPENAI")
    _assert_chat_usage(record, response.usage)
    assert record.transaction_id == response.id
    assert record.stop_reason is StopReason.END
    _assert_not_streamed(record)


def test_azure_responses_and_embeddings_are_labelled_azure(captured: Capture) -> None:
    wrapped = revenium.wrap(azure_client())
    response = wrapped.responses.create(model="my-deployment", input="hello")
    wrapped.embeddings.create(model="emb-deployment", input="hello")
    chat, embed = captured.completions
    assert (chat.provider, chat.model_source, chat.model) == ("Azure", "OPENAI", response.model)
    assert (embed.provider, embed.operation_type) == ("Azure", OperationType.EMBED)


@COLOURS
async def test_an_azure_stream_with_its_empty_first_chunk_is_one_exact_record(
    captured: Capture, colour: str
) -> None:
    sent: list[dict[str, Any]] = []
    wrapped = revenium.wrap(_azure(colour, _recording(sent), azure_first_chunk=True))
    stream = await _value(
        wrapped.chat.completions.create(model="my-deployment", messages=MESSAGES, stream=True)
    )
    chunks = await _drain(stream)
    assert sent[0]["stream_options"] == {"include_usage": True}
    expected = list(
        azure_client(azure_first_chunk=True).chat.completions.create(
            model="my-deployment",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    # The caller sees every chunk, Azure's empty first one included, but the injected usage one.
    assert chunks[0].choices == []
    assert chunks[0].id == ""
    assert _without_ids(chunks) == _without_ids(expected[:-1])
    usage = expected[-1].usage
    record = _only_completion(captured)
    _assert_chat_usage(record, usage)
    assert record.model == AZURE_MODEL
    assert record.transaction_id == chunks[1].id != ""
    assert (record.provider, record.model_source) == ("Azure", "OPENAI")
    assert record.stop_reason is StopReason.END
    _assert_streamed(record)


@pytest.mark.parametrize(("api_version", "injected"), [("2024-10-21", True), ("2024-02-01", False)])
def test_azure_include_usage_only_where_the_api_version_accepts_it(
    captured: Capture, api_version: str, injected: bool
) -> None:
    sent: list[dict[str, Any]] = []
    wrapped = revenium.wrap(azure_client(_recording(sent), api_version=api_version))
    chunks = list(wrapped.chat.completions.create(model="dep", messages=MESSAGES, stream=True))
    assert f"api-version={api_version}" in sent[0]["_url"]
    assert ("stream_options" in sent[0]) is injected
    assert all(chunk.choices for chunk in chunks)
    record = _only_completion(captured)
    assert record.estimated is (not injected)
    assert record.stop_reason is StopReason.END
    if injected:
        _assert_chat_usage(record, _chat_usage_for(azure_client(), model="dep", messages=MESSAGES))


def _blank_model(body: dict[str, Any]) -> None:
    body["model"] = ""


@pytest.mark.parametrize(
    ("aliases", "expected"),
    [
        ({"my-deployment": "gpt-4o"}, "gpt-4o"),
        ({}, "my-deployment"),
        ({"other": "x"}, "my-deployment"),
    ],
)
def test_azure_without_a_served_model_falls_back_to_the_alias_then_the_deployment(
    captured: Capture, aliases: dict[str, str], expected: str
) -> None:
    revenium.configure(model_aliases=aliases)
    wrapped = revenium.wrap(azure_client(_edit_json(_blank_model)))
    response = wrapped.chat.completions.create(model="my-deployment", messages=MESSAGES)
    assert response.model == ""
    record = _only_completion(captured)
    assert record.model == expected
    _assert_chat_usage(record, response.usage)


def test_an_azure_stream_without_a_served_model_uses_the_alias(captured: Capture) -> None:
    revenium.configure(model_aliases={"my-deployment": "gpt-4o"})

    def handler(request: httpx2.Request) -> httpx2.Response:
        response = openai_handler(request)
        events = response.read().split(b"\n\n")
        blanked = [
            e if not e.startswith(b"data: {") else b"data: " + _reblank(e[6:]) for e in events
        ]
        return httpx2.Response(200, headers=response.headers, content=b"\n\n".join(blanked))

    wrapped = revenium.wrap(azure_client(handler))
    chunks = list(
        wrapped.chat.completions.create(model="my-deployment", messages=MESSAGES, stream=True)
    )
    assert all(chunk.model == "" for chunk in chunks)
    record = _only_completion(captured)
    assert record.model == "gpt-4o"
    assert record.estimated is False


def _reblank(data: bytes) -> bytes:
    body = json.loads(data)
    body["model"] = ""
    return json.dumps(body).encode()


def test_an_azure_client_bound_to_a_deployment_falls_back_to_that_deployment(
    captured: Capture,
) -> None:
    revenium.configure(model_aliases={"my-deployment": "gpt-4o"})
    sent: list[dict[str, Any]] = []
    client = azure_client(
        _recording(sent, _edit_json(_blank_model)), azure_deployment="my-deployment"
    )
    revenium.wrap(client).chat.completions.create(model="placeholder", messages=MESSAGES)
    assert "/deployments/my-deployment/" in sent[0]["_url"]
    assert _only_completion(captured).model == "gpt-4o"


def test_a_failed_azure_call_names_the_aliased_model(captured: Capture) -> None:
    revenium.configure(model_aliases={"fail-429": "gpt-4o"})
    with pytest.raises(openai.RateLimitError):
        revenium.wrap(azure_client()).chat.completions.create(model="fail-429", messages=MESSAGES)
    record = _only_completion(captured)
    assert record.stop_reason is StopReason.ERROR
    assert (record.error_code, record.model, record.provider) == (429, "gpt-4o", "Azure")


# ----------------------------------------------------------------------------- compatible hosts

COMPATIBLE = [
    # base_url, model asked for, provider, model_source, include_usage injected
    ("https://api.perplexity.ai", "acme-large", "PERPLEXITY", None, False),
    ("http://localhost:11434/v1", "acme-large", "OLLAMA", None, True),
    ("https://api.x.ai/v1", "grok-4", "XAI", "XAI", True),
    ("https://api.fireworks.ai/inference/v1", "acme-large", "FIREWORKS", None, True),
    ("https://api.together.xyz/v1", "acme-large", "TOGETHER", None, True),
    ("https://api.groq.com/openai/v1", "acme-large", "GROQ", None, True),
    ("https://api.deepseek.com", "deepseek-chat", "DEEPSEEK", "DEEPSEEK", True),
    ("https://openrouter.ai/api/v1", "acme-large", "OPENROUTER", None, True),
    # A host serving other makers' models: the maker is read from the model's name.
    (
        "https://openrouter.ai/api/v1",
        "anthropic/claude-3.5-sonnet",
        "OPENROUTER",
        "ANTHROPIC",
        True,
    ),
    ("https://llm.internal.example:8443/v1", "acme-large", "llm.internal.example", None, False),
]


@pytest.mark.parametrize(("base_url", "model", "provider", "source", "injected"), COMPATIBLE)
def test_compatible_hosts_are_labelled_and_injected_only_where_accepted(
    captured: Capture,
    base_url: str,
    model: str,
    provider: str,
    source: str | None,
    injected: bool,
) -> None:
    sent: list[dict[str, Any]] = []
    wrapped = revenium.wrap(compat_client(base_url, _recording(sent, _rewriting(openai_handler))))
    response = wrapped.chat.completions.create(model=model, messages=MESSAGES)
    chunks = list(wrapped.chat.completions.create(model=model, messages=MESSAGES, stream=True))
    assert sent[0]["_url"].startswith(base_url.rstrip("/"))
    assert ("stream_options" in sent[1]) is injected
    assert all(chunk.choices for chunk in chunks)  # no usage chunk shown unless asked for
    plain, streamed = captured.completions
    for record in (plain, streamed):
        assert (record.provider, record.model_source) == (provider, source)
        assert record.model == response.model
    _assert_chat_usage(plain, response.usage)
    assert streamed.estimated is (not injected)
    assert streamed.is_streamed is True


# ----------------------------------------------------------------------------- raw responses

RAW_CALLS: dict[str, tuple[Callable[[Any], Any], type]] = {
    "legacy": (
        lambda c: c.completions.with_raw_response.create(
            model="gpt-3.5-turbo-instruct", prompt="hi"
        ),
        CompletionRecord,
    ),
    "chat-parse": (
        lambda c: c.chat.completions.with_raw_response.parse(
            model="gpt-4o-mini", messages=MESSAGES, response_format=Answer
        ),
        CompletionRecord,
    ),
    "responses": (
        lambda c: c.responses.with_raw_response.create(model="gpt-5", input="hi"),
        CompletionRecord,
    ),
    "embeddings": (
        lambda c: c.embeddings.with_raw_response.create(model="text-embedding-3-small", input="a"),
        CompletionRecord,
    ),
    "images": (
        lambda c: c.images.with_raw_response.generate(model="dall-e-3", prompt="a cat"),
        ImageRecord,
    ),
    "transcription": (
        lambda c: c.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("a.mp3", io.BytesIO(AUDIO))
        ),
        AudioRecord,
    ),
}


@COLOURS
@pytest.mark.parametrize("surface", list(RAW_CALLS))
async def test_raw_responses_of_every_surface_are_metered_once_when_parsed(
    captured: Capture, colour: str, surface: str
) -> None:
    call, kind = RAW_CALLS[surface]
    raw = await _value(call(revenium.wrap(_client(colour))))
    assert captured.records == []  # metered when parsed: that is when the usage is read
    parsed = await _value(raw.parse())
    await _value(raw.parse())
    record = _only(captured)
    assert type(record) is kind
    if isinstance(record, CompletionRecord):
        assert record.transaction_id == getattr(parsed, "id", None)
        assert record.input_token_count == (
            getattr(parsed.usage, "prompt_tokens", None) or parsed.usage.input_tokens
        )


def test_a_responses_stream_through_with_streaming_response_is_metered(
    captured: Capture,
) -> None:
    wrapped = revenium.wrap(sync_client())
    with wrapped.responses.with_streaming_response.create(
        model="gpt-5", input="one two", stream=True
    ) as response:
        events = list(response.parse())
    assert events[-1].type == "response.completed"
    record = _only_completion(captured)
    _assert_response_usage(record, events[-1].response.usage)
    _assert_streamed(record)


# ----------------------------------------------------------------------------- the wire body


@pytest.mark.parametrize("stream", [False, True])
def test_the_wire_body_of_a_chat_record(captured: Capture, stream: bool) -> None:
    wrapped = revenium.wrap(sync_client())
    if stream:
        chunks = list(
            wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        )
        ident, model = chunks[0].id, chunks[0].model
        usage = _chat_usage_for(sync_client(), model="gpt-4o-mini", messages=MESSAGES)
    else:
        response = wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        ident, model, usage = response.id, response.model, response.usage
    (body,) = captured.bodies()
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]*", key) for key in body), sorted(body)
    assert body["provider"] == "OPENAI"
    assert body["modelSource"] == "OPENAI"
    assert body["model"] == model
    assert body["operationType"] == "CHAT"
    assert body["isStreamed"] is stream
    assert body["costType"] == "AI"
    assert body["stopReason"] == "END"
    assert body["transactionId"] == ident
    assert (body["inputTokenCount"], body["outputTokenCount"], body["totalTokenCount"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
    )
    assert isinstance(body["requestDuration"], int)
    assert isinstance(body["timeToFirstToken"], int)
    assert body["timeToFirstToken"] <= body["requestDuration"]
    for local in ("idempotencyKey", "estimated", "prompts", "metadata"):
        assert local not in body
