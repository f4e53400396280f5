"""Calls that send several HTTP requests: one record per request, linked to the first.

google-genai's ``generate_content`` may send several requests for one call: automatic
function calling loops (the model asks for a Python function, the SDK runs it and sends the
result back), and automatic continuation resumes a long answer. The response the caller
gets carries the usage of the last request only, so metering the call would miss the tokens
of every request before it.

Such a call is metered in two places (``Endpoint.per_request``):

- the public method starts the call like any other (context, metadata, cost controls: a
  blocked call raises here, before anything is sent) and makes it the *active group* of the
  requests it sends, in a context variable, so threads and tasks never see each other's;
- the SDK's per-request method (a private one, ``Models._generate_content``) is metered once
  per HTTP request, each request a record with its own usage and timings. The second and
  later records name the first one's transaction id as their ``parentTransactionId``, unless
  the caller's metadata names a parent of its own.

The per-request method is private, so the hook is guarded: when a call ends without the SDK
having called it (an SDK version that sends its requests another way), the public method
meters what it returned, the last request's usage, and says so once in the log.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final, cast

import attrs

from revenium._diagnostics import report_internal_error, warn_once
from revenium.calls import (
    Begin,
    ClientState,
    failure_record,
    record_failure,
    settle,
    snapshot_request,
    start_async,
    start_call,
)
from revenium.providers.base import CallInfo, Endpoint, Finishable
from revenium.records import CompletionRecord
from revenium.streams import meter_async_generator, meter_generator

__all__ = ["grouped_async", "grouped_sync", "request_begin", "request_observer"]

_ACTIVE: ContextVar[_Group | None] = ContextVar("revenium_call_group", default=None)


class _Chain:
    """The requests of one tool loop, whose records link to the first one's.

    Usually one call's requests. A chat runs its tool loop itself, one public call per
    request: a call whose request answers the function calls of an earlier answer (it sends
    back that answer's own turn, then the results) joins that answer's chain.
    """

    __slots__ = ("first", "first_id")

    def __init__(self) -> None:
        self.first: CallInfo | None = None
        self.first_id: str | None = None


_ASKED_LIMIT: Final = 1024
_asked_lock = threading.Lock()
# id(turn) -> (turn, chain): the answers that asked for function calls, latest last. The turn
# itself is kept, so its id cannot be reused while it is here, and matched by identity.
_asked: OrderedDict[int, tuple[object, _Chain]] = OrderedDict()


def _remember_asked(turn: object, chain: _Chain) -> None:
    with _asked_lock:
        _asked[id(turn)] = (turn, chain)
        _asked.move_to_end(id(turn))
        while len(_asked) > _ASKED_LIMIT:
            _asked.popitem(last=False)


def _chain_of(turn: object) -> _Chain | None:
    with _asked_lock:
        found = _asked.get(id(turn))
    return found[1] if found is not None and found[0] is turn else None


def reinit_after_fork() -> None:
    """A forked child starts with a fresh lock (another thread may have held it)."""
    global _asked_lock  # noqa: PLW0603 - a lock held at fork time would stay locked forever
    _asked_lock = threading.Lock()


class _Group:
    """One call and the requests it has sent so far."""

    __slots__ = ("call", "chain", "open", "requests")

    def __init__(self, call: CallInfo, chain: _Chain) -> None:
        self.call = call
        self.chain = chain
        self.requests = 0
        self.open: list[Finishable] = []  # the requests' streams

    def track(self, meter: Finishable) -> None:
        self.open.append(meter)

    def asked(self, turn: object) -> None:
        """A request's answer asks for function calls: a call sending ``turn`` back joins."""
        if turn is not None:
            _remember_asked(turn, self.chain)

    def finish_open(self) -> None:
        """The call's stream ended (or was closed early): so did every request's stream.

        The SDK's nested generators would be closed later, by the garbage collector or (async)
        by the event loop some rounds on; the records are made now.
        """
        for meter in self.open:
            meter.finish()
        self.open.clear()

    def request(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> CallInfo:
        """The ``CallInfo`` of a request the call sends now, with the request's own arguments."""
        call = self.call.copy()
        call.restart()
        call.ended = None
        # The request's own prompt (a tool loop's later requests carry the function calls),
        # frozen before the SDK appends the next turns: deeply when it is captured; a
        # stream's estimate only needs the turns sent, which the SDK never changes.
        if call.capture_prompts:
            call.request = snapshot_request(kwargs)
        elif endpoint.is_stream(kwargs):
            call.request = _turns_copied(kwargs)
        else:
            call.request = kwargs
        call.group = self
        if self.chain.first is None and self.chain.first_id is None:
            self.chain.first = call
        self.requests += 1
        return call

    def link(self, call: CallInfo, record: CompletionRecord) -> CompletionRecord:
        """Records are built in the order the requests ended: the first one's comes first."""
        chain = self.chain
        if call is chain.first:
            chain.first_id = record.transaction_id or record.idempotency_key
            chain.first = None  # its id is all the later records need
            return record
        if chain.first_id is None or record.metadata.parent_transaction_id is not None:
            return record
        metadata = attrs.evolve(record.metadata, parent_transaction_id=chain.first_id)
        return attrs.evolve(record, metadata=metadata)


def _turns_copied(kwargs: dict[str, Any]) -> dict[str, Any]:
    contents: object = kwargs.get("contents")
    if not isinstance(contents, list):
        return kwargs
    return {**kwargs, "contents": list(cast("list[object]", contents))}


def _group(endpoint: Endpoint, call: CallInfo, kwargs: Mapping[str, Any]) -> _Group:
    """The call's group, in the chain of the answer whose function calls it answers."""
    chain: _Chain | None = None
    if endpoint.tool_loop is not None:
        try:
            turn = endpoint.tool_loop.answered(kwargs)
            chain = None if turn is None else _chain_of(turn)
        except Exception as exc:  # noqa: BLE001 - contained: the call is metered unlinked
            report_internal_error(exc, f"reading the turns of {endpoint.path}", reraise=False)
    return _Group(call, chain or _Chain())


def request_begin(endpoint: Endpoint) -> Begin:
    """The start of a request of the active call; ``None`` outside a metered call."""

    def begin(kwargs: dict[str, Any]) -> CallInfo | None:
        group = _ACTIVE.get()
        return None if group is None else group.request(endpoint, kwargs)

    return begin


def request_observer(endpoint: Endpoint) -> Callable[[CallInfo, Any], None]:
    """After each request: an answer asking for function calls starts (or continues) a loop."""
    loop = endpoint.tool_loop
    observe = endpoint.observe

    def observed(call: CallInfo, result: Any) -> None:
        if observe is not None:
            observe(call, result)
        group = call.group
        if loop is not None and group is not None and not endpoint.is_stream(call.request):
            group.asked(loop.asked(result))  # a stream's answer is read by its accumulator

    # (``settle`` runs this inside its own guard: a fault here never reaches the caller.)

    return observed


def _unseen(endpoint: Endpoint) -> None:
    warn_once(
        f"per-request:{endpoint.path}",
        "revenium: %s sent its requests without calling %s, as this SDK version is known "
        "to; each call is metered with the usage of its last request only (please report "
        "the SDK version)",
        endpoint.path,
        endpoint.per_request,
    )


def _settled(endpoint: Endpoint, group: _Group, result: Any, *, is_async: bool) -> Any:
    if group.requests:
        return result  # each request made its record
    _unseen(endpoint)
    return settle(endpoint, group.call, result, is_async=is_async)


def grouped_sync(
    original: Callable[..., Any], endpoint: Endpoint, state: ClientState
) -> Callable[..., Any]:
    """A drop-in for a sync public method whose requests are metered one by one."""

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        info = start_call(endpoint, state, kwargs)
        if info is None:
            return original(*args, **kwargs)
        group = _group(endpoint, info, kwargs)
        token = _ACTIVE.set(group)
        try:
            result = original(*args, **kwargs)
        except BaseException as error:
            if not group.requests:  # it failed before sending anything we saw
                record_failure(endpoint, info, error)
            raise
        finally:
            _ACTIVE.reset(token)
        if endpoint.is_stream(info.request):  # a generator: its requests leave as it is read
            return _grouped_chunks(result, group, endpoint)
        return _settled(endpoint, group, result, is_async=False)

    call.__revenium_endpoint__ = endpoint.path  # type: ignore[attr-defined]
    return call


def grouped_async(
    original: Callable[..., Any], endpoint: Endpoint, state: ClientState
) -> Callable[..., Any]:
    """A drop-in for an async public method whose requests are metered one by one."""

    @functools.wraps(original)
    async def call(*args: Any, **kwargs: Any) -> Any:
        info = await start_async(endpoint, state, kwargs)
        if info is None:
            return await original(*args, **kwargs)
        group = _group(endpoint, info, kwargs)
        token = _ACTIVE.set(group)
        try:
            result = await original(*args, **kwargs)
        except BaseException as error:
            if not group.requests:
                record_failure(endpoint, info, error)
            raise
        finally:
            _ACTIVE.reset(token)
        if endpoint.is_stream(info.request):
            return _grouped_async_chunks(result, group, endpoint)
        return _settled(endpoint, group, result, is_async=True)

    call.__revenium_endpoint__ = endpoint.path  # type: ignore[attr-defined]
    return call


def _fallback(endpoint: Endpoint, group: _Group) -> tuple[CallInfo, Any]:
    _unseen(endpoint)
    assert endpoint.accumulator is not None
    return group.call, endpoint.accumulator(group.call)


def _grouped_chunks(inner: Iterator[Any], group: _Group, endpoint: Endpoint) -> Iterator[Any]:
    """The SDK's stream, read with the call's group active (its requests start in ``next``)."""
    group.call.restart()  # nothing was sent before the first next()
    try:
        while True:
            token = _ACTIVE.set(group)
            try:
                chunk = next(inner)
            except StopIteration:
                return
            except BaseException as error:
                if not group.requests:
                    record_failure(endpoint, group.call, error)
                raise
            finally:
                _ACTIVE.reset(token)
            if not group.requests:  # the hook was not reached: meter the stream as a whole
                call, accumulator = _fallback(endpoint, group)
                failure = functools.partial(failure_record, endpoint)
                prepended = _prepend(chunk, inner)
                yield from meter_generator(prepended, call, accumulator, failure, lazy=False)
                return
            yield chunk
    finally:
        inner.close()  # type: ignore[attr-defined]
        group.finish_open()


async def _grouped_async_chunks(
    inner: AsyncIterator[Any], group: _Group, endpoint: Endpoint
) -> AsyncIterator[Any]:
    """:func:`_grouped_chunks` for an async stream."""
    group.call.restart()
    try:
        while True:
            token = _ACTIVE.set(group)
            try:
                chunk = await anext(inner)
            except StopAsyncIteration:
                return
            except BaseException as error:
                if not group.requests:
                    record_failure(endpoint, group.call, error)
                raise
            finally:
                _ACTIVE.reset(token)
            if not group.requests:
                call, accumulator = _fallback(endpoint, group)
                failure = functools.partial(failure_record, endpoint)
                prepended = _aprepend(chunk, inner)
                metered = meter_async_generator(prepended, call, accumulator, failure, lazy=False)
                try:
                    async for rest in metered:
                        yield rest
                finally:
                    await metered.aclose()  # type: ignore[attr-defined]
                return
            yield chunk
    finally:
        await inner.aclose()  # type: ignore[attr-defined]
        group.finish_open()


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


async def _aprepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item
