"""Golden wire bodies: the exact JSON the metering API receives for each record kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from revenium.attribution import Credential, Metadata, Subscriber
from revenium.capture import PromptCapture
from revenium.records import (
    AudioRecord,
    BillingUnit,
    CompletionRecord,
    CompletionStatus,
    ImageRecord,
    OperationType,
    StopReason,
    ToolEventRecord,
    VideoRecord,
)
from revenium.wire import endpoint_for, format_timestamp, to_wire

T0 = datetime(2026, 11, 27, 0, 28, 44, 120_000, tzinfo=UTC)
KEY = "5f0c2f4e-4a8e-4d8e-9c7a-1d2b3c4d5e6f"
FULL = Metadata(
    trace_id="trace-1",
    task_type="qa",
    subscriber=Subscriber(
        id="u1", email="u1@x.com", credential=Credential(name="eng-key", value="cred-value")
    ),
    organization_name="AcmeCorp",
    subscription_id="pro-plan",
    product_name="chatbot",
    agent="support-bot",
    agent_version="1.2",
    response_quality_score=0.9,
    environment="production",
    region="us-east-1",
    trace_type="support",
    trace_name="Support chat",
    parent_transaction_id="parent-1",
    retry_number=1,
    ticket_id="T-9",
    agentic_job_id="job-1",
    agentic_job_name="triage",
    squad_name="blue",
)
ATTRIBUTION = {
    "traceId": "trace-1",
    "taskType": "qa",
    "subscriber": {
        "id": "u1",
        "email": "u1@x.com",
        "credential": {"name": "eng-key", "value": "cred-value"},
    },
    "organizationName": "AcmeCorp",
    "subscriptionId": "pro-plan",
    "productName": "chatbot",
    "agent": "support-bot",
    "agentVersion": "1.2",
    "responseQualityScore": 0.9,
    "environment": "production",
    "region": "us-east-1",
    "traceType": "support",
    "traceName": "Support chat",
    "parentTransactionId": "parent-1",
    "retryNumber": 1,
    "ticketId": "T-9",
    "agenticJobId": "job-1",
    "agenticJobName": "triage",
    "squadName": "blue",
}


def test_completion_body_with_every_field() -> None:
    record = CompletionRecord(
        model="gpt-4o-mini-2024-07-18",
        provider="OPENAI",
        model_source="OPENAI",
        request_time=T0,
        request_duration_ms=912.4,
        time_to_first_token_ms=301.6,
        transaction_id="chatcmpl-abc",
        operation_type=OperationType.CHAT,
        input_token_count=20,
        output_token_count=5,
        total_token_count=25,
        cache_read_token_count=4,
        reasoning_token_count=1,
        stop_reason=StopReason.END,
        is_streamed=True,
        system_fingerprint="fp_44709d6fcb",
        prompts=PromptCapture(
            system_prompt="be nice",
            input_messages='[{"role":"user","content":"hi"}]',
            output_response="Hi there",
            truncated=False,
        ),
        metadata=FULL,
        idempotency_key=KEY,
    )
    assert endpoint_for(record) == "/v2/ai/completions"
    assert to_wire(record) == {
        **ATTRIBUTION,
        "model": "gpt-4o-mini-2024-07-18",
        "provider": "OPENAI",
        "modelSource": "OPENAI",
        "requestTime": "2026-11-27T00:28:44.120Z",
        "responseTime": "2026-11-27T00:28:45.032Z",
        "completionStartTime": "2026-11-27T00:28:44.422Z",  # requestTime + timeToFirstToken
        "requestDuration": 912,
        "timeToFirstToken": 302,
        "transactionId": "chatcmpl-abc",
        "operationType": "CHAT",
        "inputTokenCount": 20,
        "outputTokenCount": 5,
        "totalTokenCount": 25,
        "cacheReadTokenCount": 4,
        "reasoningTokenCount": 1,
        "stopReason": "END",
        "isStreamed": True,
        "systemFingerprint": "fp_44709d6fcb",
        "costType": "AI",
        "middlewareSource": "PYTHON",
        "systemPrompt": "be nice",
        "inputMessages": '[{"role":"user","content":"hi"}]',
        "outputResponse": "Hi there",
        "promptsTruncated": False,
        "transactionName": "qa",  # the task type, as the seed SDK sends it
    }


def test_minimal_completion_fills_every_required_field() -> None:
    record = CompletionRecord(
        model="claude-sonnet-4-5",
        provider="ANTHROPIC",
        request_time=T0,
        request_duration_ms=40,
        input_token_count=7,
        output_token_count=3,
        stop_reason=StopReason.ERROR,
        error_code=529,
        error_reason="overloaded_error",
        idempotency_key=KEY,
    )
    assert to_wire(record) == {
        "model": "claude-sonnet-4-5",
        "provider": "ANTHROPIC",
        "requestTime": "2026-11-27T00:28:44.120Z",
        "responseTime": "2026-11-27T00:28:44.160Z",
        "completionStartTime": "2026-11-27T00:28:44.160Z",
        "requestDuration": 40,
        "timeToFirstToken": 40,
        "transactionId": KEY,  # no provider id: the record's own UUID
        "inputTokenCount": 7,
        "outputTokenCount": 3,
        "totalTokenCount": 10,
        "stopReason": "ERROR",
        "errorCode": 529,
        "errorReason": "overloaded_error",
        "isStreamed": False,
        "costType": "AI",
        "middlewareSource": "PYTHON",
        "retryNumber": 0,
    }


def test_transaction_name_falls_back_to_the_task_type() -> None:
    record = CompletionRecord(
        model="m", provider="p", request_time=T0, request_duration_ms=1,
        metadata=Metadata(task_type="summarize"),
    )  # fmt: skip
    assert to_wire(record)["transactionName"] == "summarize"


def test_image_body() -> None:
    record = ImageRecord(
        model="dall-e-3",
        provider="OPENAI",
        model_source="OPENAI",
        request_time=T0,
        request_duration_ms=5000,
        transaction_id="img-1",
        operation_type=OperationType.IMAGE,
        operation_subtype="generation",
        requested_image_count=2,
        actual_image_count=2,
        resolution="1024x1024",
        quality="hd",
        revised_prompt_provided=True,
        billing_unit=BillingUnit.PER_IMAGE,
        metadata=Metadata(organization_name="AcmeCorp"),
        idempotency_key=KEY,
    )
    assert endpoint_for(record) == "/v2/ai/images"
    assert to_wire(record) == {
        "model": "dall-e-3",
        "provider": "OPENAI",
        "modelSource": "OPENAI",
        "requestTime": "2026-11-27T00:28:44.120Z",
        "responseTime": "2026-11-27T00:28:49.120Z",
        "requestDuration": 5000,
        "transactionId": "img-1",
        "operationType": "IMAGE",
        "operationSubtype": "generation",
        "requestedImageCount": 2,
        "actualImageCount": 2,
        "resolution": "1024x1024",
        "quality": "hd",
        "revisedPromptProvided": True,
        "billingUnit": "PER_IMAGE",
        "organizationName": "AcmeCorp",
        "costType": "AI",
        "middlewareSource": "PYTHON",
    }


def test_video_body() -> None:
    record = VideoRecord(
        model="veo-3.0-generate-001",
        provider="Google",
        model_source="GOOGLE",
        request_time=T0,
        request_duration_ms=61_000,
        duration_seconds=16.0,
        requested_duration_seconds=8.0,
        video_job_id="operations/abc",
        async_operation=True,
        completion_status=CompletionStatus.SUCCESS,
        resolution="1280x720",
        idempotency_key=KEY,
    )
    assert endpoint_for(record) == "/v2/ai/video"
    assert to_wire(record) == {
        "model": "veo-3.0-generate-001",
        "provider": "Google",
        "modelSource": "GOOGLE",
        "requestTime": "2026-11-27T00:28:44.120Z",
        "responseTime": "2026-11-27T00:29:45.120Z",
        "requestDuration": 61000,
        "transactionId": KEY,
        "durationSeconds": 16.0,
        "requestedDurationSeconds": 8.0,
        "videoJobId": "operations/abc",
        "asyncOperation": True,
        "completionStatus": "SUCCESS",
        "resolution": "1280x720",
        "costType": "AI",
        "middlewareSource": "PYTHON",
    }


def test_audio_body() -> None:
    record = AudioRecord(
        model="tts-1",
        provider="OPENAI",
        request_time=T0,
        request_duration_ms=800,
        operation_type=OperationType.AUDIO,
        operation_subtype="speech",
        character_count=120,
        voice="alloy",
        response_format="mp3",
        speed=1.25,
        billing_unit=BillingUnit.PER_CHARACTER,
        idempotency_key=KEY,
    )
    assert endpoint_for(record) == "/v2/ai/audio"
    assert to_wire(record) == {
        "model": "tts-1",
        "provider": "OPENAI",
        "requestTime": "2026-11-27T00:28:44.120Z",
        "responseTime": "2026-11-27T00:28:44.920Z",
        "requestDuration": 800,
        "transactionId": KEY,
        "operationType": "AUDIO",
        "operationSubtype": "speech",
        "characterCount": 120,
        "voice": "alloy",
        "responseFormat": "mp3",
        "speed": 1.25,
        "billingUnit": "PER_CHARACTER",
        "costType": "AI",
        "middlewareSource": "PYTHON",
    }


def test_tool_event_body() -> None:
    record = ToolEventRecord(
        tool_id="firecrawl",
        operation="scrape",
        timestamp=T0,
        duration_ms=1234.4,
        success=False,
        agent="a1",
        error_message="TimeoutError",
        usage_metadata={"records": 42},
        workflow_id="wf-1",
        metadata=Metadata(
            trace_id="trace-1",
            organization_name="AcmeCorp",
            product_name="chatbot",
            agentic_job_id="job-1",
            credential_alias="scraper-key",
            environment="prod",  # not a tool-event field: not sent
        ),
        idempotency_key=KEY,
    )
    assert endpoint_for(record) == "/v2/tool/events"
    assert to_wire(record) == {
        "transactionId": KEY,
        "toolId": "firecrawl",
        "operation": "scrape",
        "durationMs": 1234,
        "success": False,
        "timestamp": "2026-11-27T00:28:44.120Z",
        "agent": "a1",
        "errorMessage": "TimeoutError",
        "usageMetadata": {"records": 42},
        "workflowId": "wf-1",
        "traceId": "trace-1",
        "organizationName": "AcmeCorp",
        "productName": "chatbot",
        "agenticJobId": "job-1",
        "subscriberCredential": "scraper-key",
    }


def test_tool_event_agent_falls_back_to_the_metadata_agent() -> None:
    record = ToolEventRecord(
        tool_id="t", operation="execute", timestamp=T0, duration_ms=0, success=True,
        metadata=Metadata(agent="scope-agent"),
    )  # fmt: skip
    assert to_wire(record)["agent"] == "scope-agent"


def test_over_long_text_is_cut_to_the_stored_length_instead_of_rejected() -> None:
    record = CompletionRecord(
        model="m",
        provider="p",
        request_time=T0,
        request_duration_ms=1,
        error_reason="e" * 400,
        metadata=Metadata(
            product_name="p" * 300,
            trace_id="t" * 300,
            agent_version="v" * 100,
            subscriber=Subscriber(id="i" * 300, email="e" * 300),
        ),
    )
    body = to_wire(record)
    assert body["productName"] == "p" * 224
    assert body["traceId"] == "t" * 255
    assert body["agentVersion"] == "v" * 64
    assert body["errorReason"] == "e" * 255
    assert body["subscriber"] == {"id": "i" * 255, "email": "e" * 255}


def test_a_malformed_classifier_is_dropped_not_sent() -> None:
    record = CompletionRecord(
        model="m", provider="p", request_time=T0, request_duration_ms=1,
        model_source="not a valid source!", system_fingerprint="fp_ok",
    )  # fmt: skip
    body = to_wire(record)
    assert "modelSource" not in body
    assert body["systemFingerprint"] == "fp_ok"


def test_credential_alias_becomes_the_subscriber_credential_name_only_without_a_subscriber() -> (
    None
):
    alone = CompletionRecord(
        model="m", provider="p", request_time=T0, request_duration_ms=1,
        metadata=Metadata(credential_alias="prod-key"),
    )  # fmt: skip
    assert to_wire(alone)["subscriber"] == {"credential": {"name": "prod-key"}}
    assert "credentialAlias" not in to_wire(alone)
    with_subscriber = CompletionRecord(
        model="m", provider="p", request_time=T0, request_duration_ms=1,
        metadata=Metadata(credential_alias="prod-key", subscriber=Subscriber(id="u1")),
    )  # fmt: skip
    assert to_wire(with_subscriber)["subscriber"] == {"id": "u1"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (
            datetime(2026, 1, 2, 5, 4, 5, 1000, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T03:04:05.001Z",
        ),
        (datetime(2026, 1, 2, 3, 4, 5, 999_999), "2026-01-02T03:04:05.999Z"),
    ],
)
def test_timestamps_are_utc_with_milliseconds(value: datetime, expected: str) -> None:
    assert format_timestamp(value) == expected


def test_request_time_plus_duration_is_the_response_time() -> None:
    record = CompletionRecord(model="m", provider="p", request_time=T0, request_duration_ms=1500)
    body = to_wire(record)
    assert body["requestTime"] == "2026-11-27T00:28:44.120Z"
    assert body["responseTime"] == "2026-11-27T00:28:45.620Z"


def test_every_record_gets_a_fresh_idempotency_key() -> None:
    a = CompletionRecord(model="m", provider="p", request_time=T0, request_duration_ms=1)
    b = CompletionRecord(model="m", provider="p", request_time=T0, request_duration_ms=1)
    assert a.idempotency_key != b.idempotency_key
    assert len(a.idempotency_key) == 36


def test_wire_times_add_up_exactly_even_when_durations_round() -> None:
    record = CompletionRecord(
        model="m", provider="p", request_time=T0.replace(microsecond=120_900),
        request_duration_ms=912.6, time_to_first_token_ms=0.5,
    )  # fmt: skip
    body = to_wire(record)
    assert body["requestTime"] == "2026-11-27T00:28:44.120Z"
    assert body["requestDuration"] == 913
    assert body["responseTime"] == "2026-11-27T00:28:45.033Z"
    assert body["timeToFirstToken"] == 0
    assert body["completionStartTime"] == "2026-11-27T00:28:44.120Z"


def test_idempotency_keys_are_uuid4_and_a_forked_child_draws_its_own() -> None:
    import os
    import uuid

    from revenium.records import new_idempotency_key

    keys = {new_idempotency_key() for _ in range(10_000)}
    assert len(keys) == 10_000
    assert all(uuid.UUID(k).version == 4 for k in list(keys)[:100])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child writes its next key and leaves at once
        os.write(write, new_idempotency_key().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_key = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child_key != new_idempotency_key()
    assert child_key not in keys
