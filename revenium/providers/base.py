"""The shape of a provider adapter: data and pure functions, no I/O, no threads, no sync/async.

An adapter says *what* to meter on a client (which method paths), *how* to read a response or
a stream into a record, and what the provider is called on the wire. Everything else (timing,
metadata, error isolation, streams finalized exactly once, the sync/async split, delivery) is
written once, in :mod:`revenium.proxy`, :mod:`revenium.calls` and :mod:`revenium.streams`.
Adding a provider means one module of this shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from revenium.attribution import EMPTY, Metadata, merge
from revenium.capture import PromptCapture
from revenium.providers import reading as read
from revenium.records import CompletionRecord, OperationType, Record, StopReason

__all__ = [
    "Accumulator",
    "Adapter",
    "CallInfo",
    "Endpoint",
    "Labels",
    "RequestGroup",
    "StreamEnd",
    "ToolLoop",
    "estimate_tokens",
    "estimated_completion",
]


_NO_HINTS: Mapping[str, Any] = {}
_NO_ALIASES: Mapping[str, str] = {}


@attrs.frozen
class Labels:
    """What the provider and the model's maker are called on the wire (one table: docs).

    ``maker`` names the maker from the model for hosts that serve several makers' models
    (OpenRouter, Together...), where ``model_source`` cannot be fixed per host.
    """

    provider: str
    model_source: str | None = None
    inject_stream_usage: bool = False  # the endpoint is known to accept include_usage
    # The provider's token conventions (see ``CompletionRecord.token_classes``): Anthropic's
    # input count excludes the cache traffic, Gemini's output count excludes thinking.
    cache_in_input: bool = True
    reasoning_in_output: bool = True
    maker: Callable[[str], str | None] | None = None
    # ``model`` may name a deployment, not a model (Azure): a name of no known model family
    # cannot be matched against a cost control's model filter, which then stays in force.
    deployment_names: bool = False


class CallInfo:
    """Everything a record builder may need about one call, captured by the engine.

    Cheap to make on the caller's path: the wall-clock time stays a float and the metadata
    sources stay separate until a record is built (often on the runtime's thread), when
    ``request_time`` and ``metadata`` are computed once. ``ended`` is set by the engine when
    the call returns, so a record built later still has the call's own duration.
    """

    __slots__ = (
        "_metadata",
        "_sources",
        "capture_limit",
        "capture_prompts",
        "client_hints",
        "ended",
        "group",
        "injected_usage",
        "labels",
        "model_aliases",
        "model_argument",
        "operation",
        "request",
        "started",
        "stream_usage",
        "wall",
    )

    def __init__(
        self,
        *,
        labels: Labels,
        operation: OperationType,
        request: Mapping[str, Any],
        metadata: Metadata | tuple[Metadata, ...],
        capture_prompts: bool = False,
        capture_limit: int = 50_000,
        stream_usage: bool = False,
        client_hints: Mapping[str, Any] = _NO_HINTS,
        model_aliases: Mapping[str, str] = _NO_ALIASES,
        model_argument: str = "model",
        wall: float | None = None,
        started: float | None = None,
    ) -> None:
        self.labels = labels
        self.operation = operation
        self.request = request
        # A Metadata, or its sources lowest first, merged when a record first needs them.
        self._metadata = metadata if isinstance(metadata, Metadata) else None
        self._sources = () if isinstance(metadata, Metadata) else metadata
        self.capture_prompts = capture_prompts
        self.capture_limit = capture_limit
        self.stream_usage = stream_usage  # may ask a chat stream for usage (endpoint, config)
        self.injected_usage = False
        self.client_hints = client_hints
        self.model_aliases = model_aliases
        self.model_argument = model_argument
        self.wall = time.time() if wall is None else wall
        self.started = time.perf_counter() if started is None else started
        self.ended: float | None = None
        # One of the requests of a call that sends several (revenium.requests): its
        # records are linked to the first request's.
        self.group: RequestGroup | None = None

    @property
    def request_time(self) -> datetime:
        """When the call started, UTC."""
        return datetime.fromtimestamp(self.wall, UTC)

    @property
    def metadata(self) -> Metadata:
        """The call's metadata, every source merged by precedence (computed once)."""
        if self._metadata is None:
            merged = EMPTY
            for source in self._sources:
                merged = merge(merged, source)
            self._metadata = merged
        return self._metadata

    def copy(self) -> CallInfo:
        """An independent copy (one per request a deferred method sends)."""
        twin = object.__new__(CallInfo)  # field by field: a loop over the slots is slower
        twin._metadata = self._metadata
        twin._sources = self._sources
        twin.capture_limit = self.capture_limit
        twin.capture_prompts = self.capture_prompts
        twin.client_hints = self.client_hints
        twin.ended = self.ended
        twin.group = self.group
        twin.injected_usage = self.injected_usage
        twin.labels = self.labels
        twin.model_aliases = self.model_aliases
        twin.model_argument = self.model_argument
        twin.operation = self.operation
        twin.request = self.request
        twin.started = self.started
        twin.stream_usage = self.stream_usage
        twin.wall = self.wall
        return twin

    def restart(self) -> None:
        """The request is sent now, not when the call was made (a stream manager's ``with``)."""
        self.wall = time.time()
        self.started = time.perf_counter()

    def elapsed_ms(self, now: float | None = None) -> float:
        """Milliseconds from the start to ``now``, else to the call's end, else to this moment."""
        end = now if now is not None else self.ended
        return ((time.perf_counter() if end is None else end) - self.started) * 1000

    def requested_model(self) -> str:
        """The model the call asked for, through the configured aliases (Azure deployments).

        A client bound to an Azure deployment sends every call to it, whatever ``model=`` says.
        """
        value = self.client_hints.get("azure_deployment")
        if not isinstance(value, str) or not value:
            value = self.request.get(self.model_argument)
        if not isinstance(value, str) or not value:
            return "unknown"
        return self.model_aliases.get(value, value)

    def common(self, *, model: str, duration_ms: float) -> dict[str, Any]:
        """The fields every AI record of this call shares, for the adapters' record builders."""
        labels = self.labels
        source = labels.model_source or (labels.maker(model) if labels.maker else None)
        return {
            "model": model,
            "provider": labels.provider,
            "model_source": source,
            "request_time": self.request_time,
            "request_duration_ms": duration_ms,
            "metadata": self.metadata,
        }

    def completion(
        self,
        *,
        model: str,
        duration_ms: float,
        time_to_first_token_ms: float | None = None,
        operation_type: OperationType | None = None,
        prompts: PromptCapture | None = None,
        **fields: Any,
    ) -> CompletionRecord:
        """A completion record with the engine's common fields filled in."""
        labels = self.labels
        record = CompletionRecord(
            **self.common(model=model, duration_ms=duration_ms),
            cache_in_input=labels.cache_in_input,
            reasoning_in_output=labels.reasoning_in_output,
            time_to_first_token_ms=duration_ms
            if time_to_first_token_ms is None
            else time_to_first_token_ms,
            operation_type=self.operation if operation_type is None else operation_type,
            prompts=prompts,
            **fields,
        )
        return record if self.group is None else self.group.link(self, record)

    def error_fields(self, error: BaseException) -> dict[str, Any]:
        """``error_code`` (the HTTP status, when there is one) and ``error_reason``."""
        status = getattr(error, "status_code", None)
        if status is None:  # google-genai's APIError names the HTTP status ``code``
            status = getattr(error, "code", None)
            status = status if isinstance(status, int) and 100 <= status <= 599 else None
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        # An error event inside a 200 stream carries the stream's status: not an error code.
        failed = isinstance(status, int) and not isinstance(status, bool) and status >= 400
        return {
            "error_code": status if failed else None,
            "error_reason": f"{type(error).__name__}: {message}",
        }


def estimated_completion(
    call: CallInfo,
    end: StreamEnd,
    *,
    prompt: object,
    output_chars: int,
    stop: StopReason | None = None,
    input_tokens: int | None = None,
    output_tokens: int = 0,
    counted_beside: int = 0,
    **common: Any,
) -> CompletionRecord:
    """A stream's record when the provider's usage did not (all) arrive: estimate, and say so.

    Counts the provider did report (``input_tokens``, a partial ``output_tokens``) are kept;
    the rest is estimated from the text, about four characters a token. ``counted_beside`` is
    what the total counts besides input and output (Anthropic's cache traffic). The stop reason is
    ERROR for a failure, the provider's own when it sent one, END for a stream read to its end
    and CANCELLED for an early exit.
    """
    error = end.error
    if end.failed:
        stop = StopReason.ERROR
    elif stop is None:
        stop = StopReason.END if end.ended else StopReason.CANCELLED
    if input_tokens is None:
        input_tokens = estimate_tokens(read.text_length(prompt))
    output_tokens = max(output_tokens, estimate_tokens(output_chars))
    return call.completion(
        stop_reason=stop,
        input_token_count=input_tokens,
        output_token_count=output_tokens,
        total_token_count=input_tokens + output_tokens + counted_beside,
        estimated=True,
        # a cancellation is the caller's doing, not an error: no reason, as for a close()
        error_reason=f"{type(error).__name__}: {error}"[:255] if end.failed else None,
        **common,
    )


def completion_failure(call: CallInfo, error: BaseException) -> Record:
    """The default record of a call the provider rejected: a completion, stop reason ERROR."""
    return call.completion(
        model=call.requested_model(),
        duration_ms=call.elapsed_ms(),
        stop_reason=StopReason.ERROR,
        **call.error_fields(error),
    )


@attrs.frozen
class StreamEnd:
    """How a stream ended: its timings, the error that ended it, whether it was read through."""

    duration_ms: float
    ttft_ms: float | None
    error: BaseException | None = None
    ended: bool = False  # the caller read it to its end (an early exit is False)

    @property
    def failed(self) -> bool:
        """An error (not a cancellation) ended the stream."""
        return isinstance(self.error, Exception)


class RequestGroup(Protocol):
    """The requests of one call that sends several (``revenium.requests``)."""

    def link(self, call: CallInfo, record: CompletionRecord) -> CompletionRecord:
        """``record`` of the request ``call``, linked to the call's first request."""
        ...

    def track(self, meter: Finishable) -> None:
        """A request's stream started: finish it when the call's own stream ends."""
        ...

    def asked(self, turn: object) -> None:
        """A request's answer asked for function calls with ``turn``."""
        ...


class Finishable(Protocol):
    """A stream's meter, as the call that opened it sees it."""

    def finish(self, error: BaseException | None = None, *, ended: bool = False) -> None:
        """Emit the stream's record, once."""
        ...


class Accumulator(Protocol):
    """Reads a stream chunk by chunk (O(1) per chunk) and makes its record at the end."""

    def feed(self, chunk: Any) -> tuple[bool, bool]:
        """Look at one chunk; return ``(is_first_content_candidate, hide_from_caller)``."""
        ...

    def record(self, call: CallInfo, end: StreamEnd) -> Record | None:
        """The record at the stream's end, however it ended."""
        ...


@attrs.frozen
class ToolLoop:
    """A provider's tool-loop turns, by identity (``revenium.call_groups``).

    ``asked`` reads, from a response or a stream chunk, the turn that asks for function
    calls (the object the SDK appends to the conversation), or ``None``; ``answered`` reads,
    from a request, the turn whose function calls it answers (the model turn just before the
    function results), or ``None``.
    """

    asked: Callable[[Any], object | None]
    answered: Callable[[Mapping[str, Any]], object | None]


@attrs.frozen
class Endpoint:
    """One metered method, by its attribute path on the client (``chat.completions.create``).

    ``record`` turns a non-streamed result into a record (``None``: nothing to meter yet, such
    as a background response still queued); ``accumulator`` reads a streamed one;
    ``is_stream`` tells from the arguments which it is; ``prepare`` may adjust a *copy* of the
    arguments (returns True when it injected something the caller did not ask for).

    ``asynchronous``, ``per_request``, ``tool_loop``, ``lazy``, ``observe`` and ``checked``
    are described where they are declared.

    ``deferred`` is for methods that send nothing themselves but return an object that sends
    the request later (Anthropic's ``messages.stream()`` returns a manager whose ``with``
    sends it): it names the private attribute of that object holding the request, a callable
    (sync) or an awaitable (async). The method itself stays synchronous on async clients, as
    the SDK's is, and the call is timed from the moment the request is sent.
    """

    path: str
    record: Callable[[CallInfo, Any], Record | None]
    accumulator: Callable[[CallInfo], Accumulator] | None = None
    is_stream: Callable[[Mapping[str, Any]], bool] = attrs.field(default=lambda kw: False)
    prepare: Callable[[dict[str, Any], CallInfo], bool] | None = None
    model_argument: str = "model"
    needs_response: bool = True  # False: the request alone makes the record (raw bytes too)
    operation: OperationType = OperationType.CHAT
    failure: Callable[[CallInfo, BaseException], Record | None] = completion_failure
    deferred: str | None = None
    # The method is async (True) or sync (False) whatever the client is: google-genai's sync
    # ``Client`` holds its async twin in ``.aio``. ``None``: as the client's class says.
    asynchronous: bool | None = None
    # The sibling method the SDK calls once per HTTP request when one call may send several
    # (google-genai's tool loop and continuations): each request is metered there, and the
    # call's own records are linked to its first (``revenium.requests``).
    per_request: str | None = None
    # How to recognize a tool loop run one call per request (a chat's): a request sending
    # back an answer that asked for function calls is linked to that answer's records.
    tool_loop: ToolLoop | None = None
    # The stream returned sends its request at the first ``next()`` (a plain generator):
    # its timings start there.
    lazy: bool = False
    # Runs on the caller's thread when the call returns, before its record is built (on the
    # runtime's thread): cheap bookkeeping only, such as a long-running operation
    # remembering its submission until it is seen done (``revenium.operations``).
    observe: Callable[[CallInfo, Any], None] | None = None
    # False for calls that cost nothing themselves (polling an operation): no cost control
    # is checked before them.
    checked: bool = True


@attrs.frozen
class Adapter:
    """A provider: the client types it handles, its endpoints, and its labelling rule."""

    name: str
    extra: str
    client_modules: tuple[str, ...]
    supported: tuple[str, ...]  # client class names, for the TypeError of unsupported ones
    endpoints: tuple[Endpoint, ...]
    labels: Callable[[Any], Labels]
    clone: Callable[[Any], Any]
    copy_methods: tuple[str, ...] = ("copy", "with_options")
    hints: Callable[[Any], Mapping[str, Any]] = attrs.field(default=lambda client: {})
    model_name: Callable[[str], str] = str  # a platform's model id -> the maker's name

    def handles(self, client: object) -> bool:
        """Whether ``client`` is (or subclasses) a supported client class of this SDK.

        Read from the class and its bases by name and module, so the SDK is never imported:
        a resource, a response object or another client class of the same SDK is refused.
        """
        return any(
            cls.__name__ in self.supported and self._in_sdk(cls.__module__)
            for cls in type(client).__mro__
        )

    def _in_sdk(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.client_modules)


def estimate_tokens(text_length: int) -> int:
    """A rough token count from a character count (about four characters a token).

    Used only for streams abandoned before the provider reported usage; such records are
    marked estimated in the ledger and statistics.
    """
    return (text_length + 3) // 4
