"""The Revenium metering API's wire format: camelCase JSON bodies and their endpoints.

One cattrs converter, configured rather than subclassed, turns records into request bodies:
field names are renamed to camelCase, ``None`` fields are omitted, datetimes become UTC
ISO-8601 with milliseconds (``2026-11-27T00:28:44.123Z``), enums their values. A short
post-processing step per record kind adds what the API requires but the record derives
(``costType``, ``responseTime``, ``totalTokenCount``...), flattens the business metadata into
the body, and cuts over-long text to the lengths the server stores, because a field the server
finds too long makes it reject the whole record with a 400 that no retry can fix.

Only the runtime thread calls this module: building a body is never on the caller's path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final, cast

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from revenium._names import camel
from revenium.attribution import Credential, Metadata, Subscriber
from revenium.capture import PromptCapture
from revenium.records import (
    AudioRecord,
    CompletionRecord,
    ImageRecord,
    Record,
    ToolEventRecord,
    VideoRecord,
)

__all__ = ["ENDPOINTS", "endpoint_for", "to_wire"]

ENDPOINTS: Final[dict[type[Any], str]] = {
    CompletionRecord: "/v2/ai/completions",
    ImageRecord: "/v2/ai/images",
    VideoRecord: "/v2/ai/video",
    AudioRecord: "/v2/ai/audio",
    ToolEventRecord: "/v2/tool/events",
}

MIDDLEWARE_SOURCE: Final = "PYTHON"

# Lengths the server stores (the study, section 1.3): longer text is cut, not rejected.
_MAX_LENGTH: Final[dict[str, int]] = {
    "transactionName": 255,
    "taskType": 255,
    "agent": 255,
    "subscriptionId": 255,
    "parentTransactionId": 255,
    "environment": 255,
    "region": 255,
    "traceId": 255,
    "operationSubtype": 255,
    "errorReason": 255,
    "productName": 224,
    "traceName": 256,
    "ticketId": 256,
    "agentVersion": 64,
    "errorMessage": 2048,
}
_SUBSCRIBER_MAX: Final = 255
# Classification fields the server checks against ``[A-Za-z0-9_-]{1,16}``.
_CLASSIFIER: Final = re.compile(r"[A-Za-z0-9_-]{1,16}")
_CLASSIFIED: Final = ("modelSource", "systemFingerprint")

# snake_case names whose wire name is not their plain camelCase form, or that stay local.
_RENAMES: Final[dict[str, str]] = {
    "request_duration_ms": "requestDuration",
    "time_to_first_token_ms": "timeToFirstToken",
    "duration_ms": "durationMs",
}
_LOCAL_ONLY: Final = frozenset(
    {
        "idempotency_key",
        "estimated",
        "prompts",
        "metadata",
        "provider_model_id",
        "cache_in_input",
        "reasoning_in_output",
    }
)


def _to_ms(value: datetime) -> datetime:
    """UTC, cut to the millisecond: the precision the wire carries."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _offset(start: datetime, milliseconds: int) -> str:
    """``start`` (cut to the ms) plus a whole number of ms: sums that hold exactly on the wire."""
    return format_timestamp(_to_ms(start) + timedelta(milliseconds=milliseconds))


def format_timestamp(value: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a ``Z``: what the API parses, to the millisecond."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    # isoformat cuts (never rounds) to the millisecond, and is several times faster than
    # strftime: ``2026-11-27T00:28:44.120+00:00`` -> ``2026-11-27T00:28:44.120Z``.
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_unstructure_hook(datetime, format_timestamp)
    # Nested types first: a generated function binds the hooks of its fields' types.
    for cls in (Credential, Subscriber, Metadata, *ENDPOINTS):
        overrides = {
            a.name: override(omit=True)
            if a.name in _LOCAL_ONLY
            else override(rename=_RENAMES.get(a.name, camel(a.name)))
            for a in attrs.fields(cls)
        }
        converter.register_unstructure_hook(
            cls,
            make_dict_unstructure_fn(
                cls, converter, _cattrs_omit_if_default=True, **cast("dict[str, Any]", overrides)
            ),
        )
    return converter


@cache
def _converter() -> cattrs.Converter:
    return _make_converter()


def endpoint_for(record: Record) -> str:
    """The path under the metering root (``/v2/ai/completions``...) for this record."""
    return ENDPOINTS[type(record)]


def _attribution(md: Metadata) -> dict[str, Any]:
    body: dict[str, Any] = _converter().unstructure(md, Metadata)
    alias = body.pop("credentialAlias", None)
    subscriber = body.get("subscriber")
    if alias is not None and not subscriber:
        body["subscriber"] = {"credential": {"name": alias}}
    elif subscriber:
        for key in ("id", "email"):
            if isinstance(subscriber.get(key), str):
                subscriber[key] = subscriber[key][:_SUBSCRIBER_MAX]
    return body


def _ms(value: float) -> int:
    return round(value)


def _ai_common(
    record: CompletionRecord | ImageRecord | VideoRecord | AudioRecord,
) -> dict[str, Any]:
    body = _attribution(record.metadata)
    body.update(_converter().unstructure(record, type(record)))
    body["requestDuration"] = _ms(record.request_duration_ms)
    body["responseTime"] = _offset(record.request_time, body["requestDuration"])
    body["transactionId"] = record.transaction_id or record.idempotency_key
    body["costType"] = "AI"
    body["middlewareSource"] = MIDDLEWARE_SOURCE
    return body


def _prompt_fields(prompts: PromptCapture | None) -> dict[str, Any]:
    if prompts is None:
        return {}
    fields = {
        "systemPrompt": prompts.system_prompt,
        "inputMessages": prompts.input_messages,
        "outputResponse": prompts.output_response,
    }
    body: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    body["promptsTruncated"] = prompts.truncated
    return body


def _completion(record: CompletionRecord) -> dict[str, Any]:
    body = _ai_common(record)
    body["inputTokenCount"] = record.input_token_count
    body["outputTokenCount"] = record.output_token_count
    body["totalTokenCount"] = (
        record.total_token_count
        if record.total_token_count is not None
        else record.input_token_count + record.output_token_count
    )
    body["stopReason"] = record.stop_reason.value
    body["isStreamed"] = record.is_streamed
    ttft = record.time_to_first_token_ms
    body["timeToFirstToken"] = _ms(record.request_duration_ms if ttft is None else ttft)
    body["completionStartTime"] = _offset(record.request_time, body["timeToFirstToken"])
    body.setdefault("retryNumber", 0)
    if "transactionName" not in body and "taskType" in body:
        body["transactionName"] = body["taskType"]  # the seed SDK's fallback, kept for dashboards
    body.update(_prompt_fields(record.prompts))
    return body


def _image(record: ImageRecord) -> dict[str, Any]:
    body = _ai_common(record)
    body["requestedImageCount"] = record.requested_image_count
    body["actualImageCount"] = record.actual_image_count
    return body


def _video(record: VideoRecord) -> dict[str, Any]:
    body = _ai_common(record)
    body["durationSeconds"] = record.duration_seconds
    return body


def _audio(record: AudioRecord) -> dict[str, Any]:
    return _ai_common(record)


def _tool_event(record: ToolEventRecord) -> dict[str, Any]:
    md = record.metadata
    body: dict[str, Any] = _converter().unstructure(record, ToolEventRecord)
    body["transactionId"] = record.transaction_id or record.idempotency_key
    body["durationMs"] = _ms(record.duration_ms)
    body["success"] = record.success
    if record.usage_metadata is None:
        body.pop("usageMetadata", None)
    else:
        body["usageMetadata"] = record.usage_metadata
    credential = (
        md.subscriber.credential.name if md.subscriber and md.subscriber.credential else None
    )
    attribution = {
        "traceId": md.trace_id,
        "organizationName": md.organization_name,
        "productName": md.product_name,
        "agenticJobId": md.agentic_job_id,
        "subscriberCredential": credential or md.credential_alias,
    }
    if record.agent is None and md.agent is not None:
        attribution["agent"] = md.agent
    body.update({k: v for k, v in attribution.items() if v is not None})
    return body


_BUILDERS: Final[dict[type[Any], Callable[[Any], dict[str, Any]]]] = {
    CompletionRecord: _completion,
    ImageRecord: _image,
    VideoRecord: _video,
    AudioRecord: _audio,
    ToolEventRecord: _tool_event,
}


def _guard(body: dict[str, Any]) -> dict[str, Any]:
    for key in _MAX_LENGTH.keys() & body.keys():
        value, limit = body[key], _MAX_LENGTH[key]
        if isinstance(value, str) and len(value) > limit:
            body[key] = value[:limit]
    for key in _CLASSIFIED:
        value = body.get(key)
        if isinstance(value, str) and _CLASSIFIER.fullmatch(value) is None:
            del body[key]  # the server would reject the whole record for this one field
    return body


def to_wire(record: Record) -> dict[str, Any]:
    """The exact JSON body to POST for ``record`` (required fields always present)."""
    return _guard(_BUILDERS[type(record)](record))
