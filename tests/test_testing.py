"""revenium.testing, and the error-containment contract that strict mode switches."""

from __future__ import annotations

import logging
import threading

import pytest

import revenium
from revenium import _diagnostics, sink
from revenium.records import Record


def _broken_delivery(record: Record) -> None:
    raise RuntimeError("delivery exploded")


def test_outside_strict_mode_an_internal_failure_is_contained_logged_counted_and_hooked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    seen: list[tuple[str, str]] = []
    revenium.configure(on_error=lambda exc, where: seen.append((str(exc), where)))
    sink.set_delivery(_broken_delivery)
    before = _diagnostics.internal_error_count()

    @revenium.meter_tool("t")
    def tool() -> int:
        return 7

    assert tool() == 7  # the user's call is unaffected
    assert _diagnostics.internal_error_count() == before + 1
    assert seen == [("delivery exploded", "submitting a record")]
    assert caplog.records[0].getMessage() == (
        "revenium: internal error in submitting a record: RuntimeError('delivery exploded') "
        "(metering continues)"
    )


def test_a_raising_error_hook_is_itself_contained(caplog: pytest.LogCaptureFixture) -> None:
    def bad_hook(exc: BaseException, where: str) -> None:
        raise ValueError("hook bug")

    revenium.configure(on_error=bad_hook)
    sink.set_delivery(_broken_delivery)
    revenium.report_tool_call("t", duration_ms=1)
    assert "revenium: the on_error hook raised" in caplog.text


def test_strict_mode_reraises_internal_failures() -> None:
    sink.set_delivery(_broken_delivery)
    with revenium.testing.strict(), pytest.raises(revenium.InternalMeteringError) as excinfo:
        revenium.report_tool_call("t", duration_ms=1)
    assert isinstance(excinfo.value.__cause__, RuntimeError)
    revenium.report_tool_call("t", duration_ms=1)  # strict mode ended with the block


def test_capture_keeps_records_from_every_thread_and_does_not_deliver_them() -> None:
    delivered: list[Record] = []
    sink.set_delivery(delivered.append)
    with revenium.testing.capture() as captured:
        threads = [
            threading.Thread(
                target=revenium.report_tool_call, args=(f"t{i}",), kwargs={"duration_ms": 1}
            )
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(r.tool_id for r in captured.tool_events) == [f"t{i}" for i in range(8)]
    assert delivered == []
    revenium.report_tool_call("after", duration_ms=1)
    assert [r.tool_id for r in captured.tool_events if r.tool_id == "after"] == []
    assert len(delivered) == 1  # outside the block, delivery resumes


def test_capture_with_deliver_passes_records_on() -> None:
    delivered: list[Record] = []
    sink.set_delivery(delivered.append)
    with revenium.testing.capture(deliver=True) as captured:
        revenium.report_tool_call("t", duration_ms=1)
    assert captured.records == delivered


def test_capture_bodies_are_the_wire_bodies() -> None:
    with revenium.testing.capture() as captured:
        revenium.report_tool_call("t", duration_ms=3, usage_metadata={"n": 1})
    (body,) = captured.bodies()
    assert body["toolId"] == "t"
    assert body["usageMetadata"] == {"n": 1}
    captured.clear()
    assert captured.records == []
