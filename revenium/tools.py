"""Tool metering: ``@meter_tool`` and ``report_tool_call``.

An agent's paid work is not only model calls: a scraper, a database lookup or a paid search
API cost money too, and Revenium bills them as tool events next to the completions of the same
trace. The decorator measures duration and outcome; the business metadata comes from the
ambient scope, exactly as for a wrapped client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from revenium._decorate import decorate
from revenium.attribution import Metadata, parse_metadata
from revenium.capture import mask_secrets
from revenium.config import get_config
from revenium.context import effective_metadata
from revenium.records import ToolEventRecord, utc_now
from revenium.sink import submit

__all__ = ["meter_tool", "report_tool_call"]

F = TypeVar("F", bound=Callable[..., Any])


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string; got {value!r}")
    return value


def _is_duration(value: object) -> bool:
    """Untyped callers may pass anything; a duration is a non-negative, non-bool number."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _error_message(error: BaseException) -> str:
    name = type(error).__name__
    if not get_config().capture_error_messages:
        return name
    return f"{name}: {mask_secrets(str(error))}"[:2048]


class _ToolCall:
    """The lifetime of one decorated tool invocation."""

    __slots__ = ("_metadata", "_spec", "_start", "_timestamp")

    def __init__(self, spec: _ToolSpec) -> None:
        self._spec = spec
        self._metadata = effective_metadata()
        self._timestamp = utc_now()
        self._start = time.perf_counter()

    def finish(self, error: BaseException | None) -> None:
        duration_ms = (time.perf_counter() - self._start) * 1000
        spec = self._spec
        submit(
            ToolEventRecord(
                tool_id=spec.tool_id,
                operation=spec.operation,
                timestamp=self._timestamp,
                duration_ms=duration_ms,
                success=error is None,
                agent=spec.agent,
                error_message=None if error is None else _error_message(error),
                usage_metadata=spec.usage_metadata,
                workflow_id=spec.workflow_id,
                metadata=self._metadata,
            )
        )


class _ToolSpec:
    __slots__ = ("agent", "operation", "tool_id", "usage_metadata", "workflow_id")

    def __init__(
        self,
        tool_id: str,
        operation: str,
        agent: str | None,
        usage_metadata: object,
        workflow_id: str | None,
    ) -> None:
        self.tool_id = tool_id
        self.operation = operation
        self.agent = agent
        self.usage_metadata = usage_metadata
        self.workflow_id = workflow_id


def meter_tool(
    tool_id: str,
    *,
    operation: str = "execute",
    agent: str | None = None,
    usage_metadata: object = None,
    workflow_id: str | None = None,
) -> Callable[[F], F]:
    """Meter every call of the decorated function as a tool event.

    Works on sync and async functions, generators and async generators (a generator reports
    once, when it ends or is closed; nothing if it never started). The event records the
    duration, whether the call raised, and the exception's class name (with
    ``REVENIUM_CAPTURE_ERROR_MESSAGES``, its message too, secrets masked).
    """
    spec = _ToolSpec(
        _check_id(tool_id, "tool_id"),
        _check_id(operation, "operation"),
        agent,
        usage_metadata,
        workflow_id,
    )

    def decorator(fn: F) -> F:
        return decorate(fn, lifetime=lambda: _ToolCall(spec))

    return decorator


def report_tool_call(
    tool_id: str,
    *,
    operation: str = "execute",
    duration_ms: float,
    success: bool = True,
    error_message: str | None = None,
    usage_metadata: object = None,
    agent: str | None = None,
    workflow_id: str | None = None,
    transaction_id: str | None = None,
    timestamp: datetime | None = None,
    metadata: Mapping[str, object] | Metadata | None = None,
) -> ToolEventRecord:
    """Report a tool call measured by the caller; returns the record that was submitted.

    ``timestamp`` is when the call started, as for ``@meter_tool``; by default, now minus
    ``duration_ms``, which is right when the report follows the call.

    ``metadata`` adds to (and overrides) the ambient scope for this event only; an invalid
    field in it is dropped with a warning, like a provider call's ``usage_metadata``.
    """
    _check_id(tool_id, "tool_id")
    _check_id(operation, "operation")
    if not _is_duration(duration_ms):
        raise ValueError(f"duration_ms must be a number >= 0; got {duration_ms!r}")
    extra = parse_metadata(metadata, origin="report_tool_call(metadata=...)", strict=False)
    record = ToolEventRecord(
        tool_id=tool_id,
        operation=operation,
        timestamp=timestamp or utc_now() - timedelta(milliseconds=float(duration_ms)),
        duration_ms=float(duration_ms),
        success=success,
        agent=agent,
        error_message=None if error_message is None else mask_secrets(error_message)[:2048],
        usage_metadata=usage_metadata,
        workflow_id=workflow_id,
        transaction_id=transaction_id,
        metadata=effective_metadata(call=extra),
    )
    submit(record)
    return record
