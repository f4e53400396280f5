"""What a metering API response means: the verdict table, Retry-After, and the retries.

These drive our own httpx transport through respx: the mock sits where the network would.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from revenium.config import Config, Secret
from revenium.delivery import Sender, Verdict, classify, parse_retry_after
from revenium.spool import Envelope

URL = "https://api.example.test"
ENDPOINT = f"{URL}/meter/v2/ai/completions"
ENVELOPE = Envelope("key-1", "/v2/ai/completions", b'{"model":"m"}', 0.0)


def _config(**overrides: object) -> Config:
    return Config(api_key=Secret("hak_unit_test_key"), base_url=URL, **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, "", Verdict.DELIVERED),
        (201, '{"id":"x"}', Verdict.DELIVERED),
        (408, "", Verdict.RETRY),
        (429, "", Verdict.RETRY),
        (500, "", Verdict.RETRY),
        (503, "", Verdict.RETRY),
        (409, '{"error":"idempotency_key_in_progress"}', Verdict.RETRY),
        (409, '{"error":"idempotency_key_mismatch"}', Verdict.QUARANTINE),
        (400, '{"message":"bad traceType"}', Verdict.QUARANTINE),
        (413, "", Verdict.QUARANTINE),
        (422, "", Verdict.QUARANTINE),
        (401, "", Verdict.MISCONFIGURED),
        (403, "", Verdict.MISCONFIGURED),
        (404, "", Verdict.MISCONFIGURED),
        (301, "", Verdict.MISCONFIGURED),
    ],
)
def test_the_verdict_table(status: int, body: str, verdict: Verdict) -> None:
    assert classify(httpx.Response(status, text=body)).verdict is verdict


def test_a_quarantine_keeps_the_servers_reason() -> None:
    result = classify(httpx.Response(400, text='{"message":"traceType is invalid"}'))
    assert (result.status, result.reason) == (400, '{"message":"traceType is invalid"}')


def test_in_progress_conflicts_wait_at_least_a_second() -> None:
    result = classify(httpx.Response(409, text="idempotency_key_in_progress"))
    assert result.retry_after == 1.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("86400", 60.0),  # capped: one bad header must not park delivery for a day
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    now = time.time()
    later = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=10), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(10, abs=1)


@respx.mock
async def test_headers_and_body_on_the_wire() -> None:
    route = respx.post(ENDPOINT).mock(return_value=httpx.Response(201))
    sender = Sender(_config())
    result = await sender.deliver(ENVELOPE, _config())
    await sender.aclose()
    assert result.verdict is Verdict.DELIVERED
    request = route.calls.last.request
    assert request.headers["x-api-key"] == "hak_unit_test_key"
    assert request.headers["idempotency-key"] == "key-1"
    assert request.headers["content-type"] == "application/json"
    assert request.content == b'{"model":"m"}'


@respx.mock
async def test_transient_failures_are_retried_with_the_same_key_then_delivered() -> None:
    route = respx.post(ENDPOINT).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(201),
        ]
    )
    sender = Sender(_config())
    result = await sender.deliver(ENVELOPE, _config(max_retries=3))
    await sender.aclose()
    assert (result.verdict, result.attempts) == (Verdict.DELIVERED, 3)
    assert {c.request.headers["idempotency-key"] for c in route.calls} == {"key-1"}
    assert sender.retried == 2


@respx.mock
async def test_retries_stop_after_max_retries_and_return_the_last_verdict() -> None:
    route = respx.post(ENDPOINT).mock(return_value=httpx.Response(500, text="boom"))
    sender = Sender(_config())
    result = await sender.deliver(ENVELOPE, _config(max_retries=2))
    await sender.aclose()
    assert (result.verdict, result.status, result.attempts) == (Verdict.RETRY, 500, 3)
    assert route.call_count == 3


@respx.mock
async def test_a_permanent_failure_is_not_retried() -> None:
    route = respx.post(ENDPOINT).mock(return_value=httpx.Response(400, text="bad"))
    sender = Sender(_config())
    result = await sender.deliver(ENVELOPE, _config(max_retries=5))
    await sender.aclose()
    assert (result.verdict, route.call_count) == (Verdict.QUARANTINE, 1)


@respx.mock
async def test_a_429_with_retry_after_holds_every_sender() -> None:
    respx.post(ENDPOINT).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(201)]
    )
    sender = Sender(_config())
    first = await sender.attempt(ENVELOPE, _config())
    started = time.monotonic()
    second = await sender.attempt(ENVELOPE, _config())  # another sender would wait the same
    waited = time.monotonic() - started
    await sender.aclose()
    assert (first.verdict, second.verdict) == (Verdict.RETRY, Verdict.DELIVERED)
    assert waited >= 0.9
