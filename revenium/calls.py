"""One metered provider call, written once for every provider and both colours.

The contract with the caller, in order of importance:

1. The provider's result, or the provider's exception (the same object), reaches the caller
   unchanged. Nothing the SDK does before or after the call raises into it; internal failures
   are contained and reported (``revenium._diagnostics``).
2. Every paid call yields one record: on success, on a provider error (stop reason ERROR), on
   cancellation, and for streams on every exit path (:mod:`revenium.streams`).
3. The request is never rewritten, with one documented exception an adapter opts into (chat
   streams' ``include_usage`` on endpoints known to accept it); the per-call
   ``usage_metadata=`` keyword of the seed SDK is removed before the provider sees it.

The sync and async wrappers differ only in ``await``; the work before and after the call is
shared by :func:`_begin` and :func:`settle`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, Final, cast

import attrs

from revenium._diagnostics import report_internal_error, warn_once
from revenium.attribution import Metadata, parse_metadata
from revenium.config import Config, get_config
from revenium.context import is_metered, metadata_sources
from revenium.errors import BudgetExceededError
from revenium.providers.base import CallInfo, Endpoint, Labels, StreamEnd
from revenium.records import CompletionRecord, Record, StopReason
from revenium.sink import submit_later
from revenium.streams import (
    meter_async_generator,
    meter_async_stream,
    meter_generator,
    meter_stream,
)

__all__ = ["ClientState", "metered_async", "metered_deferred", "metered_sync"]


@attrs.frozen
class ClientState:
    """What a wrapped client remembers: its original, its labels and its metadata."""

    original: Any
    labels: Labels
    metadata: Metadata
    hints: Mapping[str, Any]
    model_name: Callable[[str], str] = str  # the adapter's normalization (Bedrock ids...)


def _begin(
    endpoint: Endpoint,
    state: ClientState,
    kwargs: dict[str, Any],
    raw_call_metadata: object,
    *,
    may_wait: bool,
) -> CallInfo | None:
    """Everything before the provider call; ``None`` when this call is not metered.

    Raises :class:`BudgetExceededError` when a cost control blocks the call (checked for calls
    that selective metering skips, too).
    """
    config = get_config()
    metered = is_metered(selective=config.selective_metering)
    checked = config.circuit_breaker_enabled and not config.bypass and endpoint.checked
    if not metered and not checked:
        return None
    call_metadata = parse_metadata(
        cast("Mapping[str, object] | None", raw_call_metadata),
        origin="usage_metadata",
        strict=False,
    )
    call = CallInfo(
        labels=state.labels,
        operation=endpoint.operation,
        model_argument=endpoint.model_argument,
        request=kwargs,
        metadata=metadata_sources(client=state.metadata, call=call_metadata),
        capture_prompts=config.capture_prompts,
        capture_limit=config.max_prompt_size,
        stream_usage=state.labels.inject_stream_usage and config.inject_stream_usage,
        client_hints=state.hints,
        model_aliases=config.model_aliases,
    )
    if checked:
        _enforce(config, state, call, may_wait=may_wait)
    if not metered:
        return None
    # ``kwargs`` is the wrapper's own dict (built by the call's ``**kwargs``): adjusting it
    # never touches a mapping of the caller's.
    if endpoint.prepare is not None and endpoint.prepare(kwargs, call):
        call.injected_usage = True
    if endpoint.per_request is None and (config.capture_prompts or endpoint.is_stream(kwargs)):
        # The record is built later (and a stream's estimate reads the prompt): freeze the
        # prompt now, before the caller appends the reply and the next question to it.
        # (A call metered per request: each request freezes its own, revenium.call_groups.)
        call.request = snapshot_request(kwargs)
    return call


def _enforce(config: Config, state: ClientState, call: CallInfo, *, may_wait: bool) -> None:
    """The cost-control check (:mod:`revenium.enforcement`), loaded only when it is enabled."""
    from revenium import enforcement  # noqa: PLC0415 - only with cost controls on
    from revenium.providers.makers import model_maker  # noqa: PLC0415
    from revenium.rule_check import CallFacts  # noqa: PLC0415

    def facts() -> CallFacts:
        md = call.metadata
        subscriber = md.subscriber
        credential = subscriber.credential if subscriber is not None else None
        model = state.model_name(call.requested_model())
        return CallFacts(
            model=model,
            model_uncertain=state.labels.deployment_names and model_maker(model) is None,
            provider=state.labels.provider,
            agent=md.agent,
            task_type=md.task_type,
            product=md.product_name,
            organization=md.organization_name,
            subscriber_id=subscriber.id if subscriber is not None else None,
            subscriber_email=subscriber.email if subscriber is not None else None,
            credential_name=credential.name if credential is not None else md.credential_alias,
            credential_value=credential.value if credential is not None else None,
        )

    try:
        enforcement.check(config, facts, may_wait=may_wait)
    except BudgetExceededError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken check must not stop metering the call
        report_internal_error(exc, "checking cost controls", reraise=False)


async def _await_first_rules(config: Config) -> None:
    """Closed fail mode, before the first rules: wait for them without blocking the loop."""
    if config.bypass:
        return
    from revenium import enforcement  # noqa: PLC0415 - only with cost controls on

    if enforcement.needs_first_fetch(config):
        await enforcement.wait_first_fetch(config)


_PROMPT_KEYS: Final = ("messages", "input", "prompt", "instructions", "system", "contents")


def snapshot_request(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request with its prompt copied deeply (only the prompt: files stay shared)."""
    snapshot = dict(kwargs)
    for key in _PROMPT_KEYS:
        if key in snapshot:
            try:
                snapshot[key] = copy.deepcopy(snapshot[key])
            except Exception:  # noqa: BLE001 - an odd object: keep the reference
                report_internal_error(
                    RuntimeError(f"cannot copy the {key!r} argument"), "snapshotting a prompt",
                    reraise=False,
                )  # fmt: skip
    return snapshot


def failure_record(endpoint: Endpoint, call: CallInfo, error: BaseException) -> Record | None:
    record = endpoint.failure(call, error)
    if not isinstance(record, CompletionRecord):
        return record
    changes: dict[str, Any] = {}
    if not isinstance(error, Exception):
        # cancellation, KeyboardInterrupt, exit: the caller stopped, the provider did not fail
        changes.update(stop_reason=StopReason.CANCELLED, error_code=None, error_reason=None)
    if endpoint.is_stream(call.request):
        changes["is_streamed"] = True  # a stream the provider refused is still a stream call
    return attrs.evolve(record, **changes) if changes else record


def record_failure(endpoint: Endpoint, call: CallInfo, error: BaseException) -> None:
    """The record of a call that raised: ERROR, or CANCELLED for a cancellation."""
    call.ended = time.perf_counter()
    submit_later(functools.partial(failure_record, endpoint, call, error))


def _is_raw_response(result: object) -> bool:
    """``with_raw_response`` / ``with_streaming_response`` hand back a response wrapper.

    Read from the instance's ``__dict__``: an attribute miss on a pydantic model is slow.
    """
    fields = getattr(result, "__dict__", None)
    return (
        isinstance(fields, dict)
        and "http_response" in fields
        and callable(getattr(result, "parse", None))
    )


def settle(endpoint: Endpoint, call: CallInfo, result: Any, *, is_async: bool) -> Any:
    """Everything after a successful call; returns what the caller gets (never raises)."""
    if endpoint.observe is not None:
        try:
            endpoint.observe(call, result)
        except Exception as exc:  # noqa: BLE001 - bookkeeping failed: the record still goes
            report_internal_error(exc, f"observing {endpoint.path}")
    try:
        if not endpoint.needs_response:
            call.ended = time.perf_counter()
            submit_later(functools.partial(endpoint.record, call, None))
            return result
        if _is_raw_response(result):
            call.ended = time.perf_counter()  # the response arrived now, whenever it is parsed
            _meter_on_parse(endpoint, call, result, is_async=is_async)
            return result
        if endpoint.accumulator is not None and endpoint.is_stream(call.request):
            return _metered_stream(endpoint, call, result, is_async=is_async)
        # The record is built where it costs the caller nothing: on the runtime's thread
        # (or right now, when a listener such as revenium.testing wants it now).
        if call.ended is None:  # a raw response parsed later keeps its arrival time
            call.ended = time.perf_counter()
        submit_later(functools.partial(endpoint.record, call, result))
    except Exception as exc:  # noqa: BLE001 - contained: the caller still gets the result
        report_internal_error(exc, f"metering {endpoint.path}")
    return result


def _metered_stream(endpoint: Endpoint, call: CallInfo, stream: Any, *, is_async: bool) -> Any:
    """The SDK's stream object metered in place, or a generator metered by one of ours."""
    assert endpoint.accumulator is not None
    accumulator = endpoint.accumulator(call)
    if inspect.isgenerator(stream):  # google-genai: a plain generator, not a stream object
        failure = functools.partial(failure_record, endpoint)
        return meter_generator(stream, call, accumulator, failure, lazy=endpoint.lazy)
    if inspect.isasyncgen(stream):
        failure = functools.partial(failure_record, endpoint)
        return meter_async_generator(stream, call, accumulator, failure, lazy=endpoint.lazy)
    if is_async:
        return meter_async_stream(stream, call, accumulator)
    return meter_stream(stream, call, accumulator)


def _meter_on_parse(endpoint: Endpoint, call: CallInfo, response: Any, *, is_async: bool) -> None:
    """Meter a raw response when the caller parses it.

    A streamed body the caller reads as bytes or lines (``with_streaming_response``) and
    never parses is still a paid call: when its HTTP response closes unparsed, it is
    recorded with estimated counts (see :func:`_unparsed_record`).
    """
    original = response.parse
    done: list[bool] = []
    parsing: list[bool] = []  # parse() reads the body, and the response closes inside it

    def settle_once(parsed: Any) -> Any:
        if done:
            return parsed
        done.append(True)
        return settle(endpoint, call, parsed, is_async=is_async)

    _on_unparsed_close(endpoint, call, response, done, parsing, is_async=is_async)

    if _is_coroutine_function(original):

        @functools.wraps(original)
        async def parse_async(*args: Any, **kwargs: Any) -> Any:
            parsing.append(True)
            try:
                parsed = await original(*args, **kwargs)
            finally:
                parsing.pop()
            return settle_once(parsed)

        response.parse = parse_async
    else:

        @functools.wraps(original)
        def parse(*args: Any, **kwargs: Any) -> Any:
            parsing.append(True)
            try:
                parsed = original(*args, **kwargs)
            finally:
                parsing.pop()
            return settle_once(parsed)

        response.parse = parse


def _on_unparsed_close(
    endpoint: Endpoint,
    call: CallInfo,
    response: Any,
    done: list[bool],
    parsing: list[bool],
    *,
    is_async: bool,
) -> None:
    """Record a streamed raw response closed without being parsed (``with_streaming_response``).

    The hook is on the response wrapper's ``close`` (the ``with`` block's exit), not on the
    HTTP response: a caller may ``read()`` first and ``parse()`` after. At close, a body that
    was read whole is parsed here, so its exact usage is kept; a body read as lines or bytes
    (or not read) makes the estimated record.
    """
    http = getattr(response, "http_response", None)
    if http is None or getattr(http, "is_closed", True) or endpoint.accumulator is None:
        return  # a buffered body (with_raw_response): metered when parsed
    found = getattr(response, "close", None)
    if not callable(found):
        return
    streamed = endpoint.is_stream(call.request)

    def estimate() -> None:
        if not done and not parsing:  # a close inside parse() is parse's own reading
            done.append(True)
            submit_later(functools.partial(_unparsed_record, endpoint, call))

    def read_whole() -> bool:
        """The body was read into memory (``read()``, ``json()``, ``text``): parse it."""
        try:
            http.content  # noqa: B018 - raises when the body was streamed, not read
        except Exception:  # noqa: BLE001 - httpx's ResponseNotRead, or any other shape
            return False
        return not streamed and not done

    if is_async:
        original_async = cast("Callable[[], Awaitable[Any]]", found)

        async def aclose() -> Any:
            with contextlib.suppress(Exception):  # not parseable: estimated below
                if read_whole():
                    await response.parse()  # metered by the parse hook, exactly
            estimate()
            return await original_async()

        response.close = aclose
    else:
        original = cast("Callable[[], Any]", found)

        def close() -> Any:
            with contextlib.suppress(Exception):  # not parseable: estimated below
                if read_whole():
                    response.parse()
            estimate()
            return original()

        response.close = close


def _unparsed_record(endpoint: Endpoint, call: CallInfo) -> Record | None:
    """A paid call whose body the caller read raw: the request is known, the usage is not.

    The endpoint's stream reader, fed nothing, makes the estimated record it makes for a
    stream without usage (input from the prompt's size), marked ``estimated``.
    """
    assert endpoint.accumulator is not None
    end = StreamEnd(call.elapsed_ms(), None, None, ended=True)
    record = endpoint.accumulator(call).record(call, end)
    if isinstance(record, CompletionRecord):  # the reader says "stream": the request decides
        record = attrs.evolve(record, is_streamed=endpoint.is_stream(call.request))
    return record


def _is_coroutine_function(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(inspect.unwrap(fn))


def start_call(
    endpoint: Endpoint, state: ClientState, kwargs: dict[str, Any], *, may_wait: bool = True
) -> CallInfo | None:
    # The seed SDK's per-call keyword is ours: the provider never sees it, metered or not.
    raw_call_metadata = kwargs.pop("usage_metadata", None)
    try:
        return _begin(endpoint, state, kwargs, raw_call_metadata, may_wait=may_wait)
    except BudgetExceededError:
        raise  # the one exception metering raises on purpose: before anything was sent
    except Exception as exc:  # noqa: BLE001 - an SDK bug must not cost the caller the call
        report_internal_error(exc, f"preparing {endpoint.path}")
        return None


Begin = Callable[[dict[str, Any]], CallInfo | None]
"""What a metered method does before the provider call: ``None`` when it is not metered."""


def _begun(begin: Begin, kwargs: dict[str, Any]) -> CallInfo | None:
    try:
        return begin(kwargs)
    except Exception as exc:  # noqa: BLE001 - an SDK bug must not cost the caller the call
        report_internal_error(exc, "starting a request")
        return None


def metered_sync(
    original: Callable[..., Any],
    endpoint: Endpoint,
    state: ClientState,
    begin: Begin | None = None,
) -> Callable[..., Any]:
    """A drop-in for a sync SDK method that meters each call.

    ``begin`` replaces the usual start of a call (context, cost controls) for the requests of
    a call that makes several (:mod:`revenium.requests`), whose call has started already.
    """

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        info = start_call(endpoint, state, kwargs) if begin is None else _begun(begin, kwargs)
        if info is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as error:
            record_failure(endpoint, info, error)
            raise
        return settle(endpoint, info, result, is_async=False)

    call.__revenium_endpoint__ = endpoint.path  # type: ignore[attr-defined]
    return call


def metered_async(
    original: Callable[..., Any],
    endpoint: Endpoint,
    state: ClientState,
    begin: Begin | None = None,
) -> Callable[..., Any]:
    """A drop-in for an async SDK method that meters each call (``begin``: see ``metered_sync``)."""

    @functools.wraps(original)
    async def call(*args: Any, **kwargs: Any) -> Any:
        if begin is None:
            info = await start_async(endpoint, state, kwargs)
        else:
            info = _begun(begin, kwargs)
        if info is None:
            return await original(*args, **kwargs)
        try:
            result = await original(*args, **kwargs)
        except BaseException as error:
            record_failure(endpoint, info, error)
            raise
        return settle(endpoint, info, result, is_async=True)

    call.__revenium_endpoint__ = endpoint.path  # type: ignore[attr-defined]
    return call


async def start_async(
    endpoint: Endpoint, state: ClientState, kwargs: dict[str, Any]
) -> CallInfo | None:
    """The start of an async call: in closed fail mode, the first rules are awaited first."""
    config = get_config()
    if config.cb_fail_mode == "closed" and config.circuit_breaker_enabled and endpoint.checked:
        try:
            await _await_first_rules(config)
        except Exception as exc:  # noqa: BLE001 - contained; the check decides next
            report_internal_error(exc, "waiting for the cost-control rules", reraise=False)
    return start_call(endpoint, state, kwargs, may_wait=False)


def metered_deferred(
    original: Callable[..., Any], endpoint: Endpoint, state: ClientState, *, is_async: bool
) -> Callable[..., Any]:
    """A drop-in for a method whose result sends the request later (``Endpoint.deferred``).

    The call's context (metadata, and the checks made before a paid call) is taken when the
    method is called, at the caller's call expression; the request is timed, and its record
    made, when the returned object sends it. An object that is never used sends nothing and
    makes no record. The method stays synchronous on async clients, like the SDK's.
    """

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        # On an async client this runs on the event loop: it must not wait for the rules.
        info = start_call(endpoint, state, kwargs, may_wait=not is_async)
        result = original(*args, **kwargs)  # sends nothing: if this raises, nothing was paid
        if info is not None:
            try:
                _defer(endpoint, info, result, is_async=is_async)
            except Exception as exc:  # noqa: BLE001 - contained: the caller still gets it
                report_internal_error(exc, f"metering {endpoint.path}")
        return result

    call.__revenium_endpoint__ = endpoint.path  # type: ignore[attr-defined]
    return call


def _private_attribute(holder: object, name: str) -> str | None:
    """The attribute ``name`` of ``holder`` as stored, private (name-mangled) names included."""
    fields: dict[str, Any] = getattr(holder, "__dict__", {})
    if not name.startswith("__"):
        return name if name in fields else None
    for cls in type(holder).__mro__:
        mangled = f"_{cls.__name__.lstrip('_')}{name}"
        if mangled in fields:
            return mangled
    return None


def _defer(endpoint: Endpoint, call: CallInfo, holder: object, *, is_async: bool) -> None:
    name = _private_attribute(holder, endpoint.deferred or "")
    if name is None:
        warn_once(
            f"deferred-shape:{type(holder).__qualname__}",
            "revenium: %s does not hold its request where this SDK version is known to; "
            "requests it sends are not metered (please report the SDK version)",
            type(holder).__qualname__,
        )
        return
    request = getattr(holder, name)
    awaitable = inspect.isawaitable(request)
    if is_async and awaitable and not callable(request):
        setattr(holder, name, _DeferredSend(endpoint, call, request))
    elif not is_async and callable(request) and not awaitable:
        setattr(holder, name, functools.partial(_send, endpoint, call, request))
    else:  # an SDK version that keeps its request in another form: leave it alone, say so
        warn_once(
            f"deferred-kind:{type(holder).__qualname__}",
            "revenium: %s holds its request in a form this version does not know; "
            "requests it sends are not metered (please report the SDK version)",
            type(holder).__qualname__,
        )


def _send(endpoint: Endpoint, template: CallInfo, request: Callable[[], Any]) -> Any:
    call = template.copy()  # a manager entered twice sends twice: two calls, two records
    call.restart()
    try:
        result = request()
    except BaseException as error:
        record_failure(endpoint, call, error)
        raise
    return settle(endpoint, call, result, is_async=False)


async def _send_async(endpoint: Endpoint, call: CallInfo, request: Awaitable[Any]) -> Any:
    call.restart()
    try:
        result = await request
    except BaseException as error:
        record_failure(endpoint, call, error)
        raise
    return settle(endpoint, call, result, is_async=True)


class _DeferredSend:
    """An awaitable sending an async deferred request, metered.

    Not a coroutine made up front: a manager that is never entered must leave only the SDK's
    own "never awaited" warning, not one of ours beside it.
    """

    __slots__ = ("_call", "_endpoint", "_request", "_sent")

    def __init__(self, endpoint: Endpoint, call: CallInfo, request: Awaitable[Any]) -> None:
        self._endpoint = endpoint
        self._call = call
        self._request = request
        self._sent = False

    def __await__(self) -> Generator[Any, None, Any]:
        if self._sent:  # awaited again: the SDK's own coroutine says it cannot be reused
            return self._request.__await__()
        self._sent = True
        return _send_async(self._endpoint, self._call, self._request).__await__()
