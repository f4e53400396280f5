"""Test helpers for code that uses ``revenium``: capture records, turn on strict mode.

A user's test wants to assert "this request produced one completion for organization Acme"
without a network or a ledger::

    def test_support_answer():
        with revenium.testing.capture() as captured:
            answer_ticket("T-1")
        (record,) = captured.completions
        assert record.metadata.organization_name == "Acme"

While a capture is active, records are kept in memory and (by default) not delivered, and
strict mode is on: an internal metering failure raises
:class:`~revenium.errors.InternalMeteringError` instead of being logged and counted, so a
metering bug fails the test that caused it.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any, TypeVar

from revenium import _diagnostics, records, sink

__all__ = ["Capture", "capture", "strict"]

R = TypeVar("R")
_strict_depth = [0]
_strict_lock = threading.Lock()


class Capture:
    """The records submitted while a :func:`capture` block was active, in order."""

    def __init__(self) -> None:
        self.records: list[records.Record] = []

    def add(self, record: records.Record) -> None:
        """Keep ``record`` (called by the capture's listener; ``list.append`` is thread-safe)."""
        self.records.append(record)

    def of_type(self, kind: type[R]) -> list[R]:
        """The captured records of one kind."""
        return [r for r in self.records if isinstance(r, kind)]

    @property
    def completions(self) -> list[records.CompletionRecord]:
        """Chat, completion and embedding records."""
        return self.of_type(records.CompletionRecord)

    @property
    def tool_events(self) -> list[records.ToolEventRecord]:
        """Tool-call records."""
        return self.of_type(records.ToolEventRecord)

    @property
    def media(self) -> list[records.ImageRecord | records.VideoRecord | records.AudioRecord]:
        """Image, video and audio records."""
        media = (records.ImageRecord, records.VideoRecord, records.AudioRecord)
        return [r for r in self.records if isinstance(r, media)]

    def bodies(self) -> list[dict[str, Any]]:
        """The exact JSON bodies these records would be sent as."""
        from revenium.wire import to_wire  # noqa: PLC0415 - cattrs is imported only when needed

        return [to_wire(r) for r in self.records]

    def clear(self) -> None:
        """Forget what was captured so far."""
        self.records.clear()


@contextmanager
def strict() -> Generator[None]:
    """Within this block, internal metering failures raise instead of being contained."""
    with _strict_lock:
        _strict_depth[0] += 1
        _diagnostics.set_strict(True)
    try:
        yield
    finally:
        with _strict_lock:
            _strict_depth[0] -= 1
            _diagnostics.set_strict(_strict_depth[0] > 0)


@contextmanager
def capture(*, deliver: bool = False, strict_mode: bool = True) -> Generator[Capture]:
    """Capture every record submitted in this process while the block runs.

    ``deliver=True`` also lets the records go on to the normal destination (an end-to-end
    test against a stand-in server); ``strict_mode=False`` keeps production error handling.
    """
    captured = Capture()

    def listener(record: records.Record) -> bool:
        captured.add(record)
        return deliver

    sink.add_listener(listener)
    try:
        if strict_mode:
            with strict():
                yield captured
        else:
            yield captured
    finally:
        sink.remove_listener(listener)
