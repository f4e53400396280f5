"""Streams metered exactly once, whichever way they end.

A provider stream can end in many ways: exhausted, ``break`` then ``close()``, a ``with``
block's exit, an exception mid-stream, task cancellation, the helper managers closing the
HTTP response behind the raw stream's back, garbage collection, or still open at shutdown.
Peers lose records on some of these paths; here every path converges on
:meth:`StreamMeter.finish`, which runs once.

The engine leaves the SDK's own stream object in place (so ``isinstance(s, openai.Stream)``
and its whole API keep working) and meters it from the inside:

- its chunk iterator is replaced by a generator that shows each chunk to the adapter's
  accumulator (O(1) per chunk) and finishes the meter when the iterator ends or fails;
- the HTTP response's ``close``/``aclose`` is hooked, because every early exit (``close()``,
  ``__exit__``, the helpers' own close) goes through it;
- a ``weakref.finalize`` on the stream is the backstop for a stream dropped unstarted, and a
  registry lets shutdown finalize streams the caller still holds.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, cast

from revenium._diagnostics import report_internal_error, warn_once
from revenium.providers.base import Accumulator, CallInfo, StreamEnd
from revenium.records import Record
from revenium.sink import submit_later

__all__ = [
    "StreamMeter",
    "finalize_open_streams",
    "meter_async_generator",
    "meter_async_stream",
    "meter_generator",
    "meter_stream",
]

_open: weakref.WeakSet[StreamMeter] = weakref.WeakSet()
_open_lock = threading.Lock()


class StreamMeter:
    """The metering state of one stream: the accumulator, the timings, the once-only finish."""

    __slots__ = (
        "__weakref__",
        "_accumulator",
        "_call",
        "_done",
        "_failure",
        "_feed",
        "_first_content",
        "_lock",
        "_pid",
        "_seen",
        "pulling",
    )

    def __init__(
        self,
        call: CallInfo,
        accumulator: Accumulator,
        failure: Callable[[CallInfo, BaseException], Record | None] | None = None,
    ) -> None:
        _ensure_exit_hook()
        self._call = call
        self._accumulator = accumulator
        self._feed = accumulator.feed  # bound once, called per chunk
        # A stream that sends its request when read (a generator) may fail before its first
        # chunk, with the provider's HTTP error: that is a failed call, recorded as one.
        self._failure = failure
        self._seen = False
        self._first_content: float | None = None
        self._done = False
        self._lock = threading.Lock()
        self._pid = os.getpid()  # a forked child inherits the object, not the call
        # True while our iterator waits on the SDK's: a response close seen then is the SDK
        # ending (or failing) its own stream, which the iterator will report, not an early exit.
        self.pulling = False
        with _open_lock:
            _open.add(self)

    def observe(self, chunk: object) -> bool:
        """Show a chunk to the accumulator; True when the caller must not see it."""
        self._seen = True
        try:
            content, hide = self._feed(chunk)
        except Exception as exc:  # noqa: BLE001 - a malformed chunk must not break the stream
            report_internal_error(exc, "reading a stream chunk", reraise=False)
            return False
        if content and self._first_content is None:
            self._first_content = time.perf_counter()
        return hide

    def finish(self, error: BaseException | None = None, *, ended: bool = False) -> None:
        """Emit the stream's record, once; later calls do nothing."""
        with self._lock:
            if self._done:
                return
            self._done = True
        if os.getpid() != self._pid:
            return  # the parent's stream, inherited by a fork: the parent records it
        with _open_lock:
            _open.discard(self)
        call = self._call
        try:
            now = time.perf_counter()
            if self._failure is not None and not self._seen and isinstance(error, Exception):
                call.ended = now
                submit_later(functools.partial(self._failure, call, error))
                return
            ttft = None if self._first_content is None else call.elapsed_ms(self._first_content)
            end = StreamEnd(call.elapsed_ms(now), ttft, error, ended)
            if call.group is not None:  # one request of a tool loop's: did it ask for more?
                call.group.asked(getattr(self._accumulator, "asked_turn", None))
            # The accumulator is final now; its record is built off the caller's thread.
            submit_later(functools.partial(self._accumulator.record, call, end))
        except Exception as exc:  # noqa: BLE001 - contained; the caller's stream is unaffected
            report_internal_error(exc, "finishing a stream's record", reraise=False)

    def __enter__(self) -> StreamMeter:
        return self

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        """Leaving the chunk iterator: closed early (``GeneratorExit``) or failed."""
        if error is not None:
            self.finish(None if isinstance(error, GeneratorExit) else error)

    def finalize_now(self) -> None:
        """For shutdown: the caller still holds the stream; record what arrived so far."""
        self.finish()


def _ensure_exit_hook() -> None:
    """Load the lifecycle module (and its atexit hook) before the first stream can be left
    open: a stream abandoned at interpreter exit is finalized there, even when no record
    was submitted before it."""
    if "revenium.lifecycle" not in sys.modules:
        importlib.import_module("revenium.lifecycle")


def reinit_after_fork() -> None:
    """The child starts with no open streams of its own."""
    global _open_lock  # noqa: PLW0603 - a lock held at fork time would stay locked forever
    _open_lock = threading.Lock()
    _open.clear()


def finalize_open_streams() -> int:
    """Finish every stream still open (shutdown and interpreter exit); returns how many."""
    with _open_lock:
        meters = list(_open)
    for meter in meters:
        meter.finalize_now()
    return len(meters)


def _sync_chunks(inner: Iterator[Any], start: Callable[[], StreamMeter]) -> Iterator[Any]:
    meter = start()  # runs at the first next(): a generator's request is sent there
    observe = meter.observe  # bound once: this loop runs per chunk
    try:
        with meter:
            while True:
                meter.pulling = True
                try:
                    chunk = next(inner)
                except StopIteration:
                    meter.finish(ended=True)
                    return
                finally:
                    meter.pulling = False
                if not observe(chunk):
                    yield chunk
    finally:
        close = getattr(inner, "close", None)
        if close is not None:  # closed early: close the SDK's iterator as closing it would
            close()


async def _async_chunks(
    inner: AsyncIterator[Any], start: Callable[[], StreamMeter]
) -> AsyncIterator[Any]:
    meter = start()
    observe = meter.observe
    try:
        with meter:
            while True:
                meter.pulling = True
                try:
                    chunk = await anext(inner)
                except StopAsyncIteration:
                    meter.finish(ended=True)
                    return
                finally:
                    meter.pulling = False
                if not observe(chunk):
                    yield chunk
    finally:
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()


def _hook_close(stream: Any, meter: StreamMeter, *, is_async: bool) -> None:
    """Finish the meter when the stream's HTTP response is closed, by whoever closes it."""
    response = getattr(stream, "response", None)
    name = "aclose" if is_async else "close"
    found = getattr(response, name, None)
    if response is None or not callable(found):
        return
    if is_async:
        original_async = cast("Callable[[], Awaitable[Any]]", found)

        async def aclose() -> Any:
            # While our iterator is pulling, this is the SDK ending (or failing) its own stream,
            # which the iterator reports, with the error if there is one. Otherwise the caller
            # (or a helper) closed the stream early: whatever exception may be unwinding around
            # that close is not this stream's.
            if not meter.pulling:
                meter.finish()
            return await original_async()

        response.aclose = aclose
    else:
        original = cast("Callable[[], Any]", found)

        def close() -> Any:
            if not meter.pulling:  # see aclose
                meter.finish()
            return original()

        response.close = close


def _install(stream: Any, meter: StreamMeter, *, is_async: bool) -> bool:
    inner = getattr(stream, "_iterator", None)
    if inner is None:
        warn_once(
            f"stream-shape:{type(stream).__qualname__}",
            "revenium: %s has no chunk iterator this SDK version is known to expose; its "
            "calls are metered when the stream closes, without usage from its chunks",
            type(stream).__qualname__,
        )
    elif is_async:
        stream._iterator = _async_chunks(inner, lambda: meter)  # noqa: SLF001 - see module docstring
    else:
        stream._iterator = _sync_chunks(inner, lambda: meter)  # noqa: SLF001 - see module docstring
    _hook_close(stream, meter, is_async=is_async)
    finalizer = weakref.finalize(stream, meter.finish)
    finalizer.atexit = False  # at exit, shutdown finalizes open streams through the registry
    return True


def meter_stream(stream: Any, call: CallInfo, accumulator: Accumulator) -> Any:
    """Meter a sync SDK stream in place and return the same object."""
    _install(stream, StreamMeter(call, accumulator), is_async=False)
    return stream


def meter_async_stream(stream: Any, call: CallInfo, accumulator: Accumulator) -> Any:
    """Meter an async SDK stream in place and return the same object."""
    _install(stream, StreamMeter(call, accumulator), is_async=True)
    return stream


class _Started:
    """The meter of a generator once it has started (a generator never started sent nothing)."""

    __slots__ = ("accumulator", "call", "failure", "lazy", "meter")

    def __init__(
        self, call: CallInfo, accumulator: Accumulator, failure: Failure, *, lazy: bool
    ) -> None:
        self.call = call
        self.accumulator = accumulator
        self.failure = failure
        self.lazy = lazy
        self.meter: StreamMeter | None = None

    def start(self) -> StreamMeter:
        if self.lazy:
            self.call.restart()  # the request leaves now, at the first next()
        self.meter = StreamMeter(self.call, self.accumulator, self.failure)
        if self.call.group is not None:  # one request of several: its call may close it
            self.call.group.track(self.meter)
        return self.meter

    def finish(self) -> None:
        """The generator was collected: a started one that was never closed ends here."""
        if self.meter is not None:
            self.meter.finish()


Failure = Callable[[CallInfo, BaseException], Record | None]
"""The record of a call that failed (the endpoint's), for a stream failing before a chunk."""


def meter_generator(
    inner: Iterator[Any],
    call: CallInfo,
    accumulator: Accumulator,
    failure: Failure,
    *,
    lazy: bool,
) -> Iterator[Any]:
    """Meter a stream the SDK returns as a plain generator (google-genai): a generator in its place.

    ``lazy``: the SDK's generator sends its request at the first ``next()``, so the call is
    timed from there; one that is never started sent nothing and makes no record.
    """
    started = _Started(call, accumulator, failure, lazy=lazy)
    chunks = _sync_chunks(inner, started.start)
    weakref.finalize(chunks, started.finish).atexit = False
    return chunks


def meter_async_generator(
    inner: AsyncIterator[Any],
    call: CallInfo,
    accumulator: Accumulator,
    failure: Failure,
    *,
    lazy: bool,
) -> AsyncIterator[Any]:
    """:func:`meter_generator` for an async generator.

    An async generator dropped where no event loop can close it is never finalized by
    Python; the ``weakref.finalize`` backstop records it then.
    """
    started = _Started(call, accumulator, failure, lazy=lazy)
    chunks = _async_chunks(inner, started.start)
    weakref.finalize(chunks, started.finish).atexit = False
    return chunks
