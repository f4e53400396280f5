"""The one door every record leaves by: :func:`submit`.

Producers (wrapped provider calls, ``@meter_tool``, ``report_tool_call``) call ``submit`` on
the caller's thread, so it must be cheap and must never raise into the caller. It hands the
record to the listeners (``revenium.testing`` captures, the demo) and then to the delivery
runtime, which is loaded, and started, by the first record (:mod:`revenium.lifecycle`).
``set_delivery`` replaces that destination (tests of the sink itself).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from revenium._diagnostics import report_internal_error
from revenium.records import Record

__all__ = [
    "Listener",
    "add_listener",
    "listeners",
    "remove_listener",
    "set_delivery",
    "submit",
    "submit_later",
]

Listener = Callable[[Record], object]
"""Sees every record as it is submitted; returns ``False`` to keep it from delivery."""

_lock = threading.Lock()
_listeners: tuple[Listener, ...] = ()
_delivery: list[Callable[[Record], None]] = []
_custom: list[bool] = []  # a destination other than the runtime: it wants built records


def add_listener(listener: Listener) -> None:
    """Let ``listener`` see every record from now on (thread-safe, copy-on-write)."""
    global _listeners  # noqa: PLW0603 - an immutable tuple swapped under a lock
    with _lock:
        _listeners = (*_listeners, listener)


def remove_listener(listener: Listener) -> None:
    """Stop showing records to ``listener``."""
    global _listeners  # noqa: PLW0603 - see add_listener
    with _lock:
        _listeners = tuple(x for x in _listeners if x is not listener)


def listeners() -> tuple[Listener, ...]:
    """The listeners installed now."""
    return _listeners


def set_delivery(deliver: Callable[[Record], None] | None) -> None:
    """Install (or remove) the function that hands records to the delivery runtime.

    A destination installed here gets built records only (never deferred builders).
    """
    _delivery[:] = [] if deliver is None else [deliver]
    _custom[:] = [True] if deliver is not None else []


def submit_later(build: Callable[[], Record | None]) -> None:
    """Hand over a record to be built later, off the caller's thread.

    Building a record (reading the response, making ids and timestamps) is most of what
    metering costs; the runtime can do it on its own thread. When a listener is installed
    (``revenium.testing``, the demo) the record is built now instead, so that it sees the
    record at once and strict mode raises where the bug is.
    """
    try:
        if _listeners or _custom:
            record = build()
            if record is not None:
                submit(record)
            return
        if not _delivery:
            from revenium import lifecycle  # noqa: PLC0415 - the runtime loads with the first record

            _delivery[:] = [lifecycle.submit]
        _delivery[0](build)  # type: ignore[arg-type]  # the runtime builds callables itself
    except Exception as exc:  # noqa: BLE001 - contained and reported; see _diagnostics
        report_internal_error(exc, "submitting a record")


def submit(record: Record) -> None:
    """Hand ``record`` over for delivery. Never blocks on I/O; never raises (but in strict mode)."""
    try:
        keep = True
        for listener in _listeners:
            if listener(record) is False:
                keep = False
        if not keep:
            return
        if not _delivery:
            from revenium import lifecycle  # noqa: PLC0415 - the runtime loads with the first record

            _delivery[:] = [lifecycle.submit]
        _delivery[0](record)
    except Exception as exc:  # noqa: BLE001 - contained and reported; see _diagnostics
        report_internal_error(exc, "submitting a record")


def reinit_after_fork() -> None:
    """Replace the module lock in a forked child (another thread may have held it)."""
    global _lock  # noqa: PLW0603 - see the docstring
    _lock = threading.Lock()
