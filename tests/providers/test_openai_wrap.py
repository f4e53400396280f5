"""revenium.wrap on the real openai SDK: the client contract and chat completions.

Every test drives a real ``openai`` client over its own ``http_client=`` (an
``httpx2.MockTransport`` whose handler answers like the API), so the SDK's own parsing,
streaming and helpers run exactly as in production.
"""

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
from revenium.attribution import Metadata, Subscriber
from revenium.records import CompletionRecord, OperationType, StopReason
from revenium.testing import Capture

sys.path.insert(0, str(Path(__file__).parent))
from openai_fixtures import async_client, openai_handler, sync_client

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Tell me about the weather in Paris today please"},
]


def _only(captured: Capture) -> CompletionRecord:
    (record,) = captured.completions
    return record


def _recording(requests: list[dict[str, Any]]) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(json.loads(request.content or b"{}"))
        return openai_handler(request)

    return handler


# ----------------------------------------------------------------------------- the client contract


def test_wrap_returns_the_same_type_and_leaves_the_original_unmetered(captured: Capture) -> None:
    client = sync_client()
    wrapped = revenium.wrap(client)
    assert type(wrapped) is openai.OpenAI
    assert wrapped is not client
    assert revenium.unwrap(wrapped) is client
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert captured.records == []  # the original client is untouched and unmetered
    wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(captured.completions) == 1


def test_wrapping_twice_meters_once_and_merges_metadata(captured: Capture) -> None:
    once = revenium.wrap(sync_client(), metadata={"organization_name": "Acme"})
    twice = revenium.wrap(once, metadata={"product_name": "bot"})
    twice.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    record = _only(captured)
    assert record.metadata == Metadata(organization_name="Acme", product_name="bot")
    assert revenium.unwrap(twice) is revenium.unwrap(once)


def test_an_unsupported_client_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match=r"does not support builtins\.dict; supported clients: "):
        revenium.wrap({})


def test_invalid_wrap_metadata_raises_at_wrap_time() -> None:
    with pytest.raises(ValueError, match=r"^revenium\.wrap\(metadata=\.\.\.\): trace_type must"):
        revenium.wrap(sync_client(), metadata={"trace_type": "no spaces"})


def test_with_options_copy_and_context_manager_stay_metered(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client(), metadata={"agent": "a"})
    wrapped.with_options(timeout=5).chat.completions.create(model="m1", messages=MESSAGES)
    wrapped.copy(max_retries=1).chat.completions.create(model="m2", messages=MESSAGES)
    with wrapped as entered:
        assert entered is wrapped
        entered.chat.completions.create(model="m3", messages=MESSAGES)
    assert [r.metadata.agent for r in captured.completions] == ["a", "a", "a"]


def test_raw_response_surfaces_are_metered_when_parsed(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client())
    raw = wrapped.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert captured.records == []  # metered when parsed: that is when the usage is read
    completion = raw.parse()
    raw.parse()  # parsing twice does not meter twice
    client_level = wrapped.with_raw_response.chat.completions.create(model="m", messages=MESSAGES)
    client_level.parse()
    with wrapped.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES
    ) as streamed:
        streamed.parse()
    assert len(captured.completions) == 3
    assert captured.completions[0].transaction_id == completion.id


# ----------------------------------------------------------------------------- non-streamed chat


def test_a_chat_completion_record_carries_the_providers_own_counts(captured: Capture) -> None:
    wrapped = revenium.wrap(sync_client())
    response = wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    record = _only(captured)
    assert response.usage is not None
    assert (record.input_token_count, record.output_token_count, record.total_token_count) == (
        response.usage.prompt_tokens,
        response.usage.completion_tokens,
        response.usage.total_tokens,
    )
    assert record.model == response.model
    assert (record.provider, record.model_source) == ("OPENAI", "OPENAI")
    assert record.transaction_id == response.id
    assert record.stop_reason is StopReason.END
    assert record.operation_type is OperationType.CHAT
    assert record.is_streamed is False
    assert record.system_fingerprint == response.system_fingerprint
    assert 0 < record.time_to_first_token_ms == record.request_duration_ms  # type: ignore[operator]


def test_cached_and_reasoning_tokens_go_to_their_own_fields(captured: Capture) -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(openai_handler(request).read())
        return httpx2.Response(200, json={**body, "usage": usage})

    revenium.wrap(sync_client(handler)).chat.completions.create(model="o3", messages=MESSAGES)
    record = _only(captured)
    # OpenAI's input includes cached reads and its output includes reasoning: sent as such.
    assert (record.input_token_count, record.cache_read_token_count) == (100, 64)
    assert (record.output_token_count, record.reasoning_token_count) == (40, 30)


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", StopReason.END),
        ("length", StopReason.TOKEN_LIMIT),
        ("tool_calls", StopReason.END_SEQUENCE),
        ("content_filter", StopReason.ERROR),
        ("something_new", StopReason.END),
    ],
)
def test_finish_reasons_map_to_the_apis_stop_reasons(
    captured: Capture, finish: str, stop: StopReason
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(openai_handler(request).read())
        body["choices"][0]["finish_reason"] = finish
        return httpx2.Response(200, json=body)

    revenium.wrap(sync_client(handler)).chat.completions.create(model="m", messages=MESSAGES)
    assert _only(captured).stop_reason is stop


def test_tool_calls_make_a_tool_call_operation(captured: Capture) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    wrapped = revenium.wrap(sync_client())
    response = wrapped.chat.completions.create(model="m", messages=MESSAGES, tools=tools)
    assert response.choices[0].message.tool_calls
    record = _only(captured)
    assert record.operation_type is OperationType.TOOL_CALL
    assert record.stop_reason is StopReason.END_SEQUENCE


async def test_async_chat_completion(captured: Capture) -> None:
    wrapped = revenium.wrap(async_client())
    assert type(wrapped) is openai.AsyncOpenAI
    response = await wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    record = _only(captured)
    assert response.usage is not None
    assert record.input_token_count == response.usage.prompt_tokens
    assert record.transaction_id == response.id


def test_metadata_precedence_and_usage_metadata_never_reaches_the_provider(
    captured: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVENIUM_ENVIRONMENT", "prod")
    sent: list[dict[str, Any]] = []
    wrapped = revenium.wrap(
        sync_client(_recording(sent)),
        metadata={"organization_name": "from-wrap", "product_name": "from-wrap", "agent": "w"},
    )
    with revenium.session(product_name="from-session", subscriber={"id": "u1"}):
        wrapped.chat.completions.create(
            model="m",
            messages=MESSAGES,
            usage_metadata={"agent": "from-call", "traceId": "t-1"},
        )
    assert "usage_metadata" not in sent[0]
    assert _only(captured).metadata == Metadata(
        environment="prod",
        organization_name="from-wrap",
        product_name="from-session",
        subscriber=Subscriber(id="u1"),
        agent="from-call",
        trace_id="t-1",
    )


def test_invalid_per_call_metadata_is_dropped_with_a_warning_not_raised(
    captured: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    wrapped = revenium.wrap(sync_client())
    response = wrapped.chat.completions.create(
        model="m", messages=MESSAGES, usage_metadata={"trace_type": "bad type", "agent": "a"}
    )
    assert response.id
    assert _only(captured).metadata == Metadata(agent="a")
    assert "ignoring invalid metadata from usage_metadata" in caplog.text


def test_a_provider_error_yields_one_error_record_and_the_same_exception(
    captured: Capture,
) -> None:
    wrapped = revenium.wrap(sync_client())
    with pytest.raises(openai.RateLimitError) as excinfo:
        wrapped.chat.completions.create(model="fail-429", messages=MESSAGES)
    record = _only(captured)
    assert record.stop_reason is StopReason.ERROR
    assert record.error_code == 429
    assert record.error_reason is not None
    assert record.error_reason.startswith("RateLimitError")
    assert (record.model, record.input_token_count, record.output_token_count) == ("fail-429", 0, 0)
    assert excinfo.value.status_code == 429


async def test_a_cancelled_async_call_yields_a_cancelled_record(captured: Capture) -> None:
    started = asyncio.Event()

    async def slow(request: httpx2.Request) -> httpx2.Response:
        started.set()
        await asyncio.sleep(30)
        return openai_handler(request)

    wrapped = revenium.wrap(async_client(slow))
    task = asyncio.create_task(wrapped.chat.completions.create(model="m", messages=MESSAGES))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _only(captured).stop_reason is StopReason.CANCELLED


def test_selective_metering_skips_calls_outside_meter_scopes(
    captured: Capture,
) -> None:
    revenium.configure(selective_metering=True)
    sent: list[dict[str, Any]] = []
    wrapped = revenium.wrap(sync_client(_recording(sent)))
    wrapped.chat.completions.create(model="m", messages=MESSAGES, usage_metadata={"agent": "x"})
    assert captured.records == []
    assert "usage_metadata" not in sent[0]  # removed even when the call is not metered

    @revenium.meter()
    def premium() -> None:
        wrapped.chat.completions.create(model="m", messages=MESSAGES)

    premium()
    assert len(captured.completions) == 1


def test_prompt_capture_records_system_input_and_output(captured: Capture) -> None:
    revenium.configure(capture_prompts=True)
    wrapped = revenium.wrap(sync_client())
    response = wrapped.chat.completions.create(model="m", messages=MESSAGES)
    prompts = _only(captured).prompts
    assert prompts is not None
    assert prompts.system_prompt == "You are terse."
    assert json.loads(prompts.input_messages or "") == [MESSAGES[1]]
    assert prompts.output_response == response.choices[0].message.content
    assert prompts.truncated is False


def test_nothing_is_captured_by_default(captured: Capture) -> None:
    revenium.wrap(sync_client()).chat.completions.create(model="m", messages=MESSAGES)
    assert _only(captured).prompts is None


def test_an_internal_failure_never_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from revenium import _diagnostics
    from revenium.providers import openai as adapter

    def broken(*args: object) -> None:
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(adapter, "_chat_tokens", broken)
    before = _diagnostics.internal_error_count()
    with revenium.testing.capture(strict_mode=False) as captured:
        response = revenium.wrap(sync_client()).chat.completions.create(
            model="m", messages=MESSAGES
        )
    assert response.choices[0].message.content  # the caller got the provider's answer
    assert captured.records == []
    assert _diagnostics.internal_error_count() == before + 1


def test_garbage_collection_does_not_lose_a_non_streamed_record(captured: Capture) -> None:
    revenium.wrap(sync_client()).chat.completions.create(model="m", messages=MESSAGES)
    gc.collect()
    assert len(captured.completions) == 1
