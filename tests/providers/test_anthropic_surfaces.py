"""Every metered Anthropic surface, on all three platforms, sync and async: the exact records.

The real ``anthropic`` SDK runs over an in-process transport backed by the stand-in backend;
expected numbers come from its documented counting rule (``_anthropic_standin``). Streams and
their exit paths are in ``test_anthropic_streams.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anthropic
import httpx2
import pydantic
import pytest
from anthropic_fixtures import (
    BEDROCK_MODEL,
    MODEL,
    USER_TEXT,
    VERTEX_MODEL,
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
from revenium.records import CompletionRecord, OperationType, StopReason
from revenium.testing import Capture
from revenium.wire import to_wire

USER: Any = [{"role": "user", "content": USER_TEXT}]
WEATHER_TEXT = "What is the weather in Paris?"
TOOLS: Any = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]


REPLY = echo(USER_TEXT)


@dataclass(frozen=True)
class Platform:
    name: str
    sync: Callable[..., Any]
    async_: Callable[..., Any]
    model: str
    provider: str
    platform_id: str | None  # the provider_model_id the record keeps


PLATFORMS = [
    Platform("direct", sync_client, async_client, MODEL, "ANTHROPIC", None),
    Platform("bedrock", bedrock_client, async_bedrock_client, BEDROCK_MODEL, "AWS", BEDROCK_MODEL),
    Platform(
        "bedrock-sigv4",
        partial(bedrock_client, signed=True),
        partial(async_bedrock_client, signed=True),
        BEDROCK_MODEL,
        "AWS",
        BEDROCK_MODEL,
    ),
    Platform("vertex", vertex_client, async_vertex_client, VERTEX_MODEL, "Google", VERTEX_MODEL),
]


@pytest.fixture(params=PLATFORMS, ids=lambda p: p.name)
def platform(request: pytest.FixtureRequest) -> Platform:
    return request.param  # type: ignore[no-any-return]


def only(captured: Capture) -> CompletionRecord:
    assert len(captured.completions) == 1, captured.records
    return captured.completions[0]


def expect_plain(record: CompletionRecord, platform: Platform, n: int) -> None:
    """The record of one plain answer to USER_TEXT, request number ``n`` of its handler."""
    assert (record.model, record.provider, record.model_source) == (
        MODEL, platform.provider, "ANTHROPIC"
    )  # fmt: skip
    assert record.provider_model_id == platform.platform_id
    assert record.transaction_id == f"msg_standin_{n}"
    assert (record.input_token_count, record.output_token_count) == (
        tokens(USER_TEXT),
        words(REPLY),
    )
    assert record.total_token_count == tokens(USER_TEXT) + words(REPLY)
    assert (record.cache_read_token_count, record.cache_creation_token_count) == (0, 0)
    assert record.reasoning_token_count is None
    assert (record.stop_reason, record.operation_type) == (StopReason.END, OperationType.CHAT)
    assert (record.is_streamed, record.estimated) == (False, False)
    assert record.time_to_first_token_ms == record.request_duration_ms > 0
    assert (record.error_code, record.error_reason) == (None, None)


# -- non-streamed surfaces -------------------------------------------------------------------------


class Answer(pydantic.BaseModel):
    answer: str


def test_create_parse_and_beta_on_every_platform(platform: Platform, captured: Capture) -> None:
    client = revenium.wrap(platform.sync(make_handler()))
    kw: Any = {"model": platform.model, "max_tokens": 100, "messages": USER}
    message = client.messages.create(**kw)
    assert message.content[0].text == REPLY  # type: ignore[union-attr]
    expect_plain(only(captured), platform, 1)
    captured.clear()

    client.beta.messages.create(**kw)
    expect_plain(only(captured), platform, 2)
    captured.clear()

    parsed = client.messages.parse(**kw, output_format=Answer)
    assert parsed.parsed_output == Answer(answer=REPLY)
    record = only(captured)
    assert (record.model, record.provider_model_id, record.transaction_id) == (
        MODEL, platform.platform_id, "msg_standin_3"
    )  # fmt: skip
    assert record.input_token_count == tokens(USER_TEXT)
    captured.clear()

    client.beta.messages.parse(**kw, output_format=Answer)
    assert only(captured).transaction_id == "msg_standin_4"


async def test_async_create_parse_and_beta(platform: Platform, captured: Capture) -> None:
    client = revenium.wrap(platform.async_(make_handler()))
    kw: Any = {"model": platform.model, "max_tokens": 100, "messages": USER}
    await client.messages.create(**kw)
    expect_plain(only(captured), platform, 1)
    captured.clear()
    await client.beta.messages.create(**kw)
    expect_plain(only(captured), platform, 2)
    captured.clear()
    await client.messages.parse(**kw, output_format=Answer)
    assert only(captured).transaction_id == "msg_standin_3"


def test_raw_response_surfaces_are_metered_once_when_parsed(captured: Capture) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    kw: Any = {"model": MODEL, "max_tokens": 100, "messages": USER}
    raw = client.messages.with_raw_response.create(**kw)
    assert captured.records == []  # nothing read yet: metered on parse
    assert raw.parse().content[0].text == REPLY  # type: ignore[union-attr]
    raw.parse()
    expect_plain(only(captured), PLATFORMS[0], 1)
    captured.clear()

    client.with_raw_response.messages.create(**kw).parse()
    assert only(captured).transaction_id == "msg_standin_2"
    captured.clear()

    with client.messages.with_streaming_response.create(**kw) as response:
        response.parse()
    assert only(captured).transaction_id == "msg_standin_3"
    captured.clear()

    events = client.messages.with_raw_response.create(**kw, stream=True).parse()
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == REPLY  # type: ignore[union-attr]
    record = only(captured)
    assert (record.is_streamed, record.estimated, record.output_token_count) == (
        True, False, words(REPLY)
    )  # fmt: skip


async def test_async_raw_response(captured: Capture) -> None:
    client = revenium.wrap(async_client(make_handler()))
    raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=USER)
    await raw.parse()
    expect_plain(only(captured), PLATFORMS[0], 1)


# -- usage classes, stop reasons, operation types -------------------------------------------------

CACHED_5M = "A" * 400
CACHED_1H = "B" * 800
SYSTEM: Any = [
    {"type": "text", "text": "Be brief."},
    {"type": "text", "text": CACHED_5M, "cache_control": {"type": "ephemeral"}},
    {"type": "text", "text": CACHED_1H, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
]


def test_cache_writes_then_reads_with_the_5m_1h_split(
    platform: Platform, captured: Capture
) -> None:
    client = revenium.wrap(platform.sync(make_handler()))
    kw: Any = {"model": platform.model, "max_tokens": 100, "messages": USER, "system": SYSTEM}
    client.messages.create(**kw)
    written = only(captured)
    uncached = tokens("Be brief." + USER_TEXT)
    created = tokens(CACHED_5M) + tokens(CACHED_1H)
    # Anthropic's own semantics: input excludes the cache traffic, which has its own fields
    assert written.input_token_count == uncached
    assert (written.cache_creation_token_count, written.cache_read_token_count) == (created, 0)
    assert (written.cache_creation_5m_token_count, written.cache_creation_1h_token_count) == (
        tokens(CACHED_5M), tokens(CACHED_1H)
    )  # fmt: skip
    assert written.total_token_count == uncached + created + words(REPLY)
    body = to_wire(written)
    assert (body["inputTokenCount"], body["cacheCreationTokenCount"]) == (uncached, created)
    assert (body["cacheCreation5mTokenCount"], body["cacheCreation1hTokenCount"]) == (100, 200)
    assert "providerModelId" not in body
    assert "provider_model_id" not in body
    captured.clear()

    client.messages.create(**kw)
    read = only(captured)
    assert (read.input_token_count, read.cache_read_token_count) == (uncached, created)
    assert read.cache_creation_token_count == 0
    assert read.total_token_count == uncached + created + words(REPLY)


@pytest.mark.parametrize("kind", ["enabled", "adaptive"])
def test_thinking_tokens_are_output_and_reasoning(kind: str, captured: Capture) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    thinking: Any = {"type": kind, "budget_tokens": 1024} if kind == "enabled" else {"type": kind}
    client.messages.create(model=MODEL, max_tokens=2048, messages=USER, thinking=thinking)
    record = only(captured)
    thought = words("Let me think.")
    assert (record.output_token_count, record.reasoning_token_count) == (
        words(REPLY) + thought, thought
    )  # fmt: skip


def test_a_tool_use_answer_is_a_tool_call(captured: Capture) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    weather: Any = [{"role": "user", "content": WEATHER_TEXT}]
    message = client.messages.create(model=MODEL, max_tokens=100, messages=weather, tools=TOOLS)
    assert message.stop_reason == "tool_use"
    record = only(captured)
    assert (record.operation_type, record.stop_reason) == (
        OperationType.TOOL_CALL, StopReason.END_SEQUENCE
    )  # fmt: skip
    assert record.output_token_count == words(json.dumps({"city": "Paris"}))
    captured.clear()
    # tools offered but not used: a chat
    client.messages.create(model=MODEL, max_tokens=100, messages=USER, tools=TOOLS)
    assert only(captured).operation_type is OperationType.CHAT


@pytest.mark.parametrize(
    ("model", "kw", "stop", "error_reason"),
    [
        ("refuse", {}, StopReason.ERROR, "refusal: the model declined to answer"),
        ("pause", {}, StopReason.COMPLETION_LIMIT, None),
        (MODEL, {"max_tokens": 2}, StopReason.TOKEN_LIMIT, None),
        (MODEL, {"stop_sequences": ["how"]}, StopReason.END_SEQUENCE, None),
    ],
)
def test_stop_reasons_map_to_the_api_enum(
    model: str, kw: dict[str, Any], stop: StopReason, error_reason: str | None, captured: Capture
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    client.messages.create(**{"model": model, "max_tokens": 100, "messages": USER, **kw})
    record = only(captured)
    assert (record.stop_reason, record.error_reason, record.error_code) == (
        stop,
        error_reason,
        None,
    )


def test_an_unknown_stop_reason_is_end_with_one_warning(
    captured: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    message = {
        "id": "msg_x", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "brand_new_reason",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }  # fmt: skip
    client = revenium.wrap(sync_client(lambda request: httpx2.Response(200, json=message)))
    for _ in range(3):
        client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert [r.stop_reason for r in captured.completions] == [StopReason.END] * 3
    warnings = [r for r in caplog.records if "brand_new_reason" in r.getMessage()]
    assert len(warnings) == 1
    # a usage without cache fields omits them rather than sending zeros
    body = to_wire(captured.completions[0])
    assert "cacheReadTokenCount" not in body
    assert body["totalTokenCount"] == 4


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("fail-400", anthropic.BadRequestError, 400),
        ("fail-401", anthropic.AuthenticationError, 401),
        ("fail-429", anthropic.RateLimitError, 429),
        ("fail-500", anthropic.InternalServerError, 500),
        ("fail-529", anthropic.OverloadedError, 529),
    ],
)
def test_a_rejected_call_is_one_error_record_and_the_same_exception(
    model: str, error: type[Exception], status: int, captured: Capture
) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with pytest.raises(error) as raised:
        client.messages.create(model=model, max_tokens=100, messages=USER)
    record = only(captured)
    assert (record.stop_reason, record.error_code, record.model) == (
        StopReason.ERROR,
        status,
        model,
    )
    assert record.error_reason is not None
    assert record.error_reason.startswith(type(raised.value).__name__)
    assert (record.input_token_count, record.output_token_count) == (0, 0)


async def test_a_rejected_bedrock_call_keeps_the_platform_model_id(captured: Capture) -> None:
    def reject(request: httpx2.Request) -> httpx2.Response:
        body = {"message": "Too many requests, please wait before trying again."}
        return httpx2.Response(429, json=body)

    client = revenium.wrap(async_bedrock_client(reject))
    with pytest.raises(anthropic.RateLimitError):
        await client.messages.create(model=BEDROCK_MODEL, max_tokens=10, messages=USER)
    record = only(captured)
    assert (record.model, record.provider_model_id, record.provider) == (
        MODEL, BEDROCK_MODEL, "AWS"
    )  # fmt: skip
    assert (record.stop_reason, record.error_code) == (StopReason.ERROR, 429)


def test_a_dropped_connection_is_an_error_record_without_a_status(captured: Capture) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model="fail-midstream", max_tokens=100, messages=USER)
    record = only(captured)
    assert (record.stop_reason, record.error_code) == (StopReason.ERROR, None)


# -- the guarantees -------------------------------------------------------------------------------


def test_requests_are_sent_exactly_as_written(captured: Capture) -> None:
    seen: list[Recorded] = []
    plain = sync_client(recording(seen))
    wrapped = revenium.wrap(sync_client(recording(seen)))
    kw: Any = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": WEATHER_TEXT}],
        "system": SYSTEM,
        "tools": TOOLS,
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u-1"},  # Anthropic's own parameter, not ours
        "stop_sequences": ["zzz"],
    }
    plain.messages.create(**kw)
    wrapped.messages.create(**kw, usage_metadata={"organization_name": "Acme"})
    plain.beta.messages.create(**kw, betas=["interleaved-thinking-2025-05-14"])
    wrapped.beta.messages.create(**kw, betas=["interleaved-thinking-2025-05-14"])
    assert len(seen) == 4
    for unwrapped_request, wrapped_request in ((seen[0], seen[1]), (seen[2], seen[3])):
        assert json.loads(wrapped_request.body) == json.loads(unwrapped_request.body)
        assert wrapped_request.url == unwrapped_request.url
        same = {"anthropic-beta", "anthropic-version", "content-type", "x-stainless-helper-method"}
        for header in same:
            assert wrapped_request.headers.get(header) == unwrapped_request.headers.get(header)
    assert len(captured.completions) == 2
    assert captured.completions[0].metadata.organization_name == "Acme"


def test_count_tokens_is_not_metered(captured: Capture) -> None:
    client = revenium.wrap(sync_client(make_handler()))
    assert client.messages.count_tokens(model=MODEL, messages=USER).input_tokens == tokens(
        USER_TEXT
    )
    client.beta.messages.count_tokens(model=MODEL, messages=USER)
    assert captured.records == []


def test_the_original_client_stays_unmetered_and_options_stay_metered(captured: Capture) -> None:
    original = sync_client(make_handler())
    wrapped = revenium.wrap(original, metadata={"product_name": "bot"})
    original.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert captured.records == []
    assert not hasattr(original, "_revenium_state")

    faster = wrapped.with_options(timeout=5)
    assert type(faster) is anthropic.Anthropic
    faster.messages.create(model=MODEL, max_tokens=100, messages=USER)
    wrapped.copy(max_retries=0).messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert [r.metadata.product_name for r in captured.completions] == ["bot", "bot"]

    twice = revenium.wrap(wrapped, metadata={"agent": "a"})
    assert revenium.unwrap(twice) is original
    twice.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert len(captured.completions) == 3  # metered once, not twice
    third = captured.completions[2].metadata
    assert (third.product_name, third.agent) == ("bot", "a")

    with wrapped as same:
        assert same is wrapped


def test_bedrock_and_vertex_options_stay_metered(captured: Capture) -> None:
    for make, model in ((bedrock_client, BEDROCK_MODEL), (vertex_client, VERTEX_MODEL)):
        wrapped = revenium.wrap(make(make_handler()))
        wrapped.with_options(timeout=5).messages.create(model=model, max_tokens=100, messages=USER)
    assert [(r.provider, r.provider_model_id) for r in captured.completions] == [
        ("AWS", BEDROCK_MODEL),
        ("Google", VERTEX_MODEL),
    ]


def test_tool_runners_are_metered_per_turn_through_create(captured: Capture) -> None:
    from anthropic import beta_tool

    @beta_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}"

    client = revenium.wrap(sync_client(make_handler()))
    weather: Any = [{"role": "user", "content": WEATHER_TEXT}]
    runner = client.beta.messages.tool_runner(
        model=MODEL, max_tokens=100, messages=weather, tools=[get_weather]
    )
    turns = list(runner)
    assert len(turns) == 2  # the tool call, then the answer after the tool's result
    assert [r.operation_type for r in captured.completions] == [
        OperationType.TOOL_CALL,
        OperationType.CHAT,
    ]


def test_prompt_capture_of_system_blocks_messages_and_output(captured: Capture) -> None:
    revenium.configure(capture_prompts=True)
    client = revenium.wrap(sync_client(make_handler()))
    client.messages.create(model=MODEL, max_tokens=100, messages=USER, system=SYSTEM)
    prompts = only(captured).prompts
    assert prompts is not None
    assert prompts.system_prompt == "\n".join(["Be brief.", CACHED_5M, CACHED_1H])
    assert json.loads(prompts.input_messages or "") == USER
    assert prompts.output_response == REPLY
    captured.clear()
    client.messages.create(model=MODEL, max_tokens=100, messages=USER, system="Be brief.")
    prompts = only(captured).prompts
    assert prompts is not None
    assert prompts.system_prompt == "Be brief."


def test_metadata_from_sessions_wrap_and_the_call(captured: Capture) -> None:
    client = revenium.wrap(bedrock_client(make_handler()), metadata={"product_name": "bot"})
    with revenium.session(organization_name="Acme", subscriber={"id": "u-1"}):
        client.messages.create(
            model=BEDROCK_MODEL, max_tokens=100, messages=USER, usage_metadata={"task_type": "qa"}
        )
    md = only(captured).metadata
    assert (md.organization_name, md.product_name, md.task_type) == ("Acme", "bot", "qa")
    assert md.subscriber is not None
    assert md.subscriber.id == "u-1"
