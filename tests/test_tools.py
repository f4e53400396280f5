"""Tool metering: one tool event per call, for every function shape, never raising into it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

import revenium
from revenium.attribution import Metadata
from revenium.records import ToolEventRecord
from revenium.wire import to_wire


def test_sync_tool_success_records_duration_and_scope_metadata() -> None:
    @revenium.meter_tool("customer-db", operation="lookup", agent="support-bot")
    def lookup(customer_id: str) -> dict[str, str]:
        return {"id": customer_id}

    with revenium.testing.capture() as captured, revenium.session(organization_name="Acme"):
        assert lookup("c-1") == {"id": "c-1"}
    (event,) = captured.tool_events
    assert (event.tool_id, event.operation, event.agent, event.success) == (
        "customer-db",
        "lookup",
        "support-bot",
        True,
    )
    assert event.error_message is None
    assert event.duration_ms >= 0
    assert event.metadata == Metadata(organization_name="Acme")


def test_a_failing_tool_records_the_error_class_and_reraises_the_same_exception() -> None:
    error = TimeoutError("upstream slow; token=abc123secretvalue")

    @revenium.meter_tool("scraper")
    def scrape() -> None:
        raise error

    with revenium.testing.capture() as captured, pytest.raises(TimeoutError) as excinfo:
        scrape()
    assert excinfo.value is error
    (event,) = captured.tool_events
    assert (event.success, event.error_message, event.operation) == (
        False,
        "TimeoutError",
        "execute",
    )


def test_error_messages_are_captured_masked_when_enabled() -> None:
    revenium.configure(capture_error_messages=True)

    @revenium.meter_tool("scraper")
    def scrape() -> None:
        raise RuntimeError("auth failed with Bearer abcdefghijklmnop0123456789")

    with revenium.testing.capture() as captured, pytest.raises(RuntimeError):
        scrape()
    message = captured.tool_events[0].error_message or ""
    assert message.startswith("RuntimeError: auth failed with Bearer ")
    assert "abcdefghijklmnop0123456789" not in message


async def test_async_tool() -> None:
    @revenium.meter_tool("search", operation="query")
    async def search(q: str) -> list[str]:
        await asyncio.sleep(0)
        return [q]

    with revenium.testing.capture() as captured:
        assert await search("x") == ["x"]
        with pytest.raises(ZeroDivisionError):
            await revenium.meter_tool("div")(_divide)()
    assert [(e.tool_id, e.success) for e in captured.tool_events] == [
        ("search", True),
        ("div", False),
    ]


async def _divide() -> float:
    return 1 / 0


def test_generator_tool_reports_once_at_the_end_or_when_closed_early() -> None:
    @revenium.meter_tool("pages")
    def pages(n: int) -> Iterator[int]:
        yield from range(n)

    with revenium.testing.capture() as captured:
        assert list(pages(3)) == [0, 1, 2]
        gen = pages(10)
        next(gen)
        gen.close()  # the consumer stopped early: the work done still counts, once
        never_started = pages(5)
        del never_started
    assert [e.success for e in captured.tool_events] == [True, True]


def test_generator_tool_failure_mid_stream() -> None:
    @revenium.meter_tool("pages")
    def pages() -> Iterator[int]:
        yield 1
        raise ValueError("page 2 missing")

    with revenium.testing.capture() as captured, pytest.raises(ValueError, match="page 2"):
        list(pages())
    (event,) = captured.tool_events
    assert (event.success, event.error_message) == (False, "ValueError")


async def test_async_generator_tool() -> None:
    @revenium.meter_tool("feed")
    async def feed() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0)
            yield i

    with revenium.testing.capture() as captured:
        assert [i async for i in feed()] == [0, 1, 2]
    assert len(captured.tool_events) == 1


def test_report_tool_call_passes_usage_metadata_through_and_merges_scope() -> None:
    with revenium.testing.capture() as captured, revenium.session(trace_id="t-1", agent="a"):
        returned = revenium.report_tool_call(
            "my-tool",
            operation="fetch",
            duration_ms=1234,
            success=True,
            usage_metadata={"records": 42},
            metadata={"organizationName": "Acme"},
        )
    assert captured.records == [returned]
    body = to_wire(returned)
    assert body["usageMetadata"] == {"records": 42}
    assert (body["toolId"], body["operation"], body["durationMs"]) == ("my-tool", "fetch", 1234)
    assert (body["traceId"], body["organizationName"], body["agent"]) == ("t-1", "Acme", "a")


def test_report_tool_call_drops_bad_metadata_with_a_warning_but_still_reports() -> None:
    with revenium.testing.capture() as captured:
        revenium.report_tool_call("t", duration_ms=1, metadata={"trace_type": "not valid"})
    assert captured.tool_events[0].metadata == Metadata()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tool_id": "", "duration_ms": 1}, "tool_id must be a non-empty string"),
        ({"tool_id": "t", "duration_ms": -1}, "duration_ms must be a number >= 0"),
        ({"tool_id": "t", "duration_ms": True}, "duration_ms must be a number >= 0"),
        ({"tool_id": "t", "operation": " ", "duration_ms": 1}, "operation must be"),
    ],
)
def test_report_tool_call_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        revenium.report_tool_call(**kwargs)  # type: ignore[arg-type]


def test_meter_tool_rejects_an_empty_tool_id_at_decoration() -> None:
    with pytest.raises(ValueError, match="tool_id must be a non-empty string"):
        revenium.meter_tool("")


def test_env_defaults_reach_tool_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVENIUM_ENVIRONMENT", "prod")
    with revenium.testing.capture() as captured:
        revenium.report_tool_call("t", duration_ms=1)
    event: ToolEventRecord = captured.tool_events[0]
    assert event.metadata.environment == "prod"


def test_report_tool_call_legacy_metadata_warns_at_the_callers_line() -> None:
    with (
        revenium.testing.capture() as captured,
        pytest.warns(DeprecationWarning, match="'organizationId' is deprecated") as record,
    ):
        revenium.report_tool_call("t", duration_ms=1, metadata={"organizationId": "Acme"})
    assert record[0].filename == __file__
    assert captured.tool_events[0].metadata.organization_name == "Acme"


def test_report_tool_call_timestamp_defaults_to_the_start_of_the_call() -> None:
    with revenium.testing.capture():
        before = datetime.now(UTC)
        record = revenium.report_tool_call("t", duration_ms=60_000)
    assert before - record.timestamp >= timedelta(seconds=59)
