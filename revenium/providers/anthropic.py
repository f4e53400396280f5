"""Anthropic (the direct API, AWS Bedrock, Google Vertex): what to meter and how to read it.

Data and pure functions only; the engine does the rest. Token semantics are Anthropic's own,
as the Revenium server prices them: ``inputTokenCount`` is ``input_tokens``, which *excludes*
cache traffic; cache reads and cache writes go to ``cacheReadTokenCount`` and
``cacheCreationTokenCount`` (with the 5-minute / 1-hour split when the API reports it), and
``outputTokenCount`` is ``output_tokens``, which *includes* extended thinking (also reported as
``reasoningTokenCount``). ``docs/providers/anthropic.md`` has the table and the normalized
classes used for local estimates.

``messages.stream()`` sends nothing itself: the manager it returns sends the request when it is
entered. The engine meters such methods generically (``Endpoint.deferred``), so the manager,
its ``MessageStream`` and every helper on it (``text_stream``, ``get_final_message()``,
``until_done()``) keep the SDK's own types and behaviour.

This module never imports ``anthropic``: it reads response objects by attribute, defensively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast

from revenium._diagnostics import warn_once
from revenium.capture import PromptCapture, capture
from revenium.providers import reading as read
from revenium.providers.base import (
    Adapter,
    CallInfo,
    Endpoint,
    Labels,
    StreamEnd,
    estimated_completion,
)
from revenium.providers.makers import client_host, host_matches, model_maker
from revenium.records import OperationType, Record, StopReason

__all__ = ["ADAPTER", "normalize_model"]

# ----------------------------------------------------------------------------- labels

# A class-name fragment of the client (or a base class) -> the provider label; the model's
# maker is always Anthropic. Bedrock and Vertex clients are not subclasses of ``Anthropic``.
_PLATFORMS: Final[tuple[tuple[str, str], ...]] = (
    ("Bedrock", "AWS"),
    ("AnthropicAWS", "AWS"),
    ("Vertex", "Google"),
    ("GoogleCloud", "Google"),
    ("Foundry", "Foundry"),
)
# The Anthropic SDK pointed elsewhere (``base_url``): hosts with an Anthropic-compatible API.
_HOSTS: Final[tuple[tuple[str, str, str | None], ...]] = (
    ("api.anthropic.com", "ANTHROPIC", "ANTHROPIC"),
    ("api.deepseek.com", "DEEPSEEK", "DEEPSEEK"),
)


def _labels(client: Any) -> Labels:
    names = [cls.__name__ for cls in type(client).__mro__]
    for fragment, provider in _PLATFORMS:
        if any(fragment in name for name in names):
            # a Bedrock application inference profile's ARN names no model: cost controls
            # keep their model rules in force for it (as for an Azure deployment)
            return Labels(provider, "ANTHROPIC", cache_in_input=False, deployment_names=True)
    host = client_host(client)
    for suffix, provider, source in _HOSTS:
        if host_matches(host, suffix):
            return Labels(provider, source, maker=model_maker, cache_in_input=False)
    # A gateway or a compatible server: named by its host, the maker read from the model.
    return Labels(host or "unknown", None, maker=model_maker, cache_in_input=False)


# ----------------------------------------------------------------------------- model names

# Bedrock: an ARN's resource part, a cross-region prefix (us., eu., apac., global. ...) and the
# maker prefix, then Bedrock's ``-v1:0`` version suffix. Vertex: an ``@version`` suffix.
_BEDROCK_ID: Final = re.compile(
    r"^(?:[a-z-]+\.)?anthropic\.(?P<name>.+?)(?:-v\d+(?::\d+)?)?(?::\d+k)?$"
)  # ``:200k`` and kin name a context-window variant of the same model
_LEGACY: Final = frozenset({"claude", "claude-instant"})  # ``claude-v2:1``: the version is the name


def normalize_model(model: str) -> str:
    """Anthropic's name for a platform's model id (the id itself when it is not recognized).

    ``us.anthropic.claude-sonnet-4-6-v1:0``, ``anthropic.claude-3-5-haiku-20241022-v1:0``,
    an inference-profile ARN ending in either, and Vertex's ``claude-sonnet-4-6@20260101`` all
    name the model Anthropic's API calls ``claude-sonnet-4-6`` / ``claude-3-5-haiku-20241022``.
    An application inference profile's ARN names no model: it is kept as it is.
    """
    name = model.rsplit("/", 1)[-1] if model.startswith("arn:") else model
    match = _BEDROCK_ID.match(name)
    if match is not None:
        stripped = match.group("name")
        return stripped if stripped not in _LEGACY else name.split("anthropic.", 1)[1]
    if name is not model:
        return model  # an ARN that names no model (an application inference profile)
    return model.split("@", 1)[0] or model


def _model_fields(call: CallInfo, reported: object) -> dict[str, Any]:
    """``model`` (Anthropic's name) and, for a platform's model id, ``provider_model_id``.

    The platform id is the ``model`` argument as the caller passed it (before any configured
    alias): a Bedrock id, inference profile or ARN, or a Vertex ``@`` version.
    """
    model = normalize_model(read.text(reported) or call.requested_model())
    argument = read.text(call.request.get(call.model_argument))
    is_platform_id = argument is not None and (
        argument.startswith("arn:") or normalize_model(argument) != argument
    )
    return {"model": model, "provider_model_id": argument if is_platform_id else None}


# ----------------------------------------------------------------------------- usage

_USAGE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation",
    "output_tokens_details",
)


def _merged(usages: Iterable[object]) -> dict[str, object]:
    """Usage fields, later objects overwriting earlier ones where they carry a value.

    A stream's ``message_delta`` usage holds cumulative totals that replace ``message_start``'s
    (its output count always, its input and cache counts when present), as the SDK's own
    accumulator treats them.
    """
    merged: dict[str, object] = {}
    for usage in usages:
        if usage is None:
            continue
        for name in _USAGE_FIELDS:
            value = read.field(usage, name)
            if value is not None:
                merged[name] = value
    return merged


def _tokens(usage: Mapping[str, object]) -> dict[str, Any]:
    creation = usage.get("cache_creation")
    input_tokens = read.count(usage.get("input_tokens"))
    output_tokens = read.count(usage.get("output_tokens"))
    cache_read = read.opt_count(usage.get("cache_read_input_tokens"))
    cache_write = read.opt_count(usage.get("cache_creation_input_tokens"))
    return {
        "input_token_count": input_tokens,
        "output_token_count": output_tokens,
        # every token the call processed: Anthropic's input excludes the cache traffic
        "total_token_count": input_tokens + output_tokens + (cache_read or 0) + (cache_write or 0),
        "cache_read_token_count": cache_read,
        "cache_creation_token_count": cache_write,
        "cache_creation_5m_token_count": read.opt_count(
            read.field(creation, "ephemeral_5m_input_tokens")
        ),
        "cache_creation_1h_token_count": read.opt_count(
            read.field(creation, "ephemeral_1h_input_tokens")
        ),
        "reasoning_token_count": read.opt_count(
            read.field(usage.get("output_tokens_details"), "thinking_tokens")
        ),
    }


# ----------------------------------------------------------------------------- stop reasons

_STOP: Final = {
    "end_turn": StopReason.END,
    "stop_sequence": StopReason.END_SEQUENCE,
    "tool_use": StopReason.END_SEQUENCE,
    "max_tokens": StopReason.TOKEN_LIMIT,
    "model_context_window_exceeded": StopReason.TOKEN_LIMIT,
    "refusal": StopReason.ERROR,  # the model declined: like OpenAI's content_filter
    "pause_turn": StopReason.COMPLETION_LIMIT,  # the server's sampling loop hit its limit
}


def _stop_fields(reason: object) -> dict[str, Any]:
    """``stop_reason`` in the API's vocabulary (and why, for a refusal); unknown values: END."""
    if not isinstance(reason, str):
        return {"stop_reason": StopReason.END}
    stop = _STOP.get(reason)
    if stop is None:
        warn_once(
            f"anthropic-stop:{reason}",
            "revenium: Anthropic stop_reason %r is not known to this version; recorded as END",
            reason,
        )
        return {"stop_reason": StopReason.END}
    if reason == "refusal":
        return {"stop_reason": stop, "error_reason": "refusal: the model declined to answer"}
    return {"stop_reason": stop}


def _operation(call: CallInfo, *, tool: bool) -> OperationType:
    return OperationType.TOOL_CALL if tool else call.operation


def _is_tool_block(kind: object) -> bool:
    """``tool_use``, ``server_tool_use``, ``mcp_tool_use``: the response used a tool."""
    return isinstance(kind, str) and kind.endswith("tool_use")


# ----------------------------------------------------------------------------- prompts


def _system_text(system: object) -> str | None:
    """A system prompt given as a string or as text blocks."""
    if isinstance(system, str):
        return system or None
    if isinstance(system, Sequence) and not isinstance(system, bytes | bytearray):
        texts = [read.text(read.field(block, "text")) for block in cast("Sequence[object]", system)]
        return "\n".join(t for t in texts if t) or None
    return None


def _prompts(call: CallInfo, output: str | None) -> PromptCapture | None:
    if not call.capture_prompts:
        return None
    request = call.request
    found = request.get("messages")
    messages: list[object] | None = None
    if isinstance(found, Iterable) and not isinstance(found, str | bytes):
        messages = list(cast("Iterable[object]", found))
    return capture(
        system_prompt=_system_text(request.get("system")),
        messages=messages,
        output_response=output,
        limit=call.capture_limit,
    )


# ----------------------------------------------------------------------------- messages


def _message_record(call: CallInfo, message: Any) -> Record | None:
    if isinstance(message, str | bytes):
        return None  # not a message at all (an unexpected raw body): nothing to read
    found = getattr(message, "content", None)
    blocks: list[Any] = found if read.is_list(found) else []
    texts = [t for b in blocks if getattr(b, "type", None) == "text" and (t := read.text(b.text))]
    stop = getattr(message, "stop_reason", None)
    tool = stop == "tool_use" or any(_is_tool_block(getattr(b, "type", None)) for b in blocks)
    return call.completion(
        **_model_fields(call, getattr(message, "model", None)),
        duration_ms=call.elapsed_ms(),
        operation_type=_operation(call, tool=tool),
        transaction_id=read.text(getattr(message, "id", None)),
        prompts=_prompts(call, "".join(texts) or None),
        **_stop_fields(stop),
        **_tokens(_merged((getattr(message, "usage", None),))),
    )


class _MessageAccumulator:
    """Raw stream events: input and cache counts from ``message_start``, the cumulative output
    from ``message_delta``; text is kept for estimates (and prompt capture when on)."""

    __slots__ = ("_chars", "_delta", "_id", "_model", "_parts", "_start", "_stop", "_tool")

    def __init__(self, call: CallInfo) -> None:
        self._start: object = None  # message_start's usage
        self._delta: object = None  # the last message_delta's usage
        self._stop: object = None
        self._id: str | None = None
        self._model: str | None = None
        self._tool = False
        self._chars = 0
        self._parts: list[str] | None = [] if call.capture_prompts else None

    def feed(self, chunk: Any) -> tuple[bool, bool]:
        # Called once per event: the content delta, by far the most frequent, comes first.
        kind = getattr(chunk, "type", None)
        if kind == "content_block_delta":
            delta = getattr(chunk, "delta", None)
            text = getattr(delta, "text", None)
            if type(text) is str:
                self._chars += len(text)
                if self._parts is not None:
                    self._parts.append(text)
            else:  # thinking, tool input: output tokens too, for estimates
                other = getattr(delta, "thinking", None) or getattr(delta, "partial_json", None)
                self._chars += len(other) if type(other) is str else 0
            return True, False
        if kind == "message_start":
            message = getattr(chunk, "message", None)
            self._id = read.text(getattr(message, "id", None))
            self._model = read.text(getattr(message, "model", None))
            self._start = getattr(message, "usage", None)
        elif kind == "content_block_start":
            if _is_tool_block(getattr(getattr(chunk, "content_block", None), "type", None)):
                self._tool = True
        elif kind == "message_delta":
            self._delta = getattr(chunk, "usage", None)
            stop = getattr(getattr(chunk, "delta", None), "stop_reason", None)
            if stop is not None:
                self._stop = stop
        return False, False

    def record(self, call: CallInfo, end: StreamEnd) -> Record:
        common: dict[str, Any] = {
            **_model_fields(call, self._model),
            "duration_ms": end.duration_ms,
            "time_to_first_token_ms": end.ttft_ms,
            "operation_type": _operation(call, tool=self._tool or self._stop == "tool_use"),
            "transaction_id": self._id,
            "is_streamed": True,
            "prompts": _prompts(call, "".join(self._parts or ()) or None),
        }
        tokens = _tokens(_merged((self._start, self._delta)))
        if self._delta is not None:  # the final usage arrived: exact
            return call.completion(**common, **_stop_fields(self._stop), **tokens)
        # Ended before message_delta: input and cache counts are exact when message_start
        # came, the output is estimated from the content received.
        started = self._start is not None
        for name in ("input_token_count", "output_token_count", "total_token_count"):
            del tokens[name]
        cache = (tokens["cache_read_token_count"] or 0) + (
            tokens["cache_creation_token_count"] or 0
        )
        request = call.request
        return estimated_completion(
            call,
            end,
            prompt=[request.get("system"), request.get("messages")],
            output_chars=self._chars,
            input_tokens=read.opt_count(read.field(self._start, "input_tokens")),
            output_tokens=read.count(read.field(self._start, "output_tokens")),
            counted_beside=cache if started else 0,
            **common,
            **(tokens if started else {}),
        )


def _failure(call: CallInfo, error: BaseException) -> Record:
    """A call the provider rejected: ERROR, with the platform's model id kept."""
    return call.completion(
        **_model_fields(call, None),
        duration_ms=call.elapsed_ms(),
        stop_reason=StopReason.ERROR,
        **call.error_fields(error),
    )


def _streaming(kwargs: Mapping[str, Any]) -> bool:
    return kwargs.get("stream") is True


def _always(_kwargs: Mapping[str, Any]) -> bool:
    return True


# ----------------------------------------------------------------------------- the adapter


def _clone(client: Any) -> Any:
    return client.copy()


def _endpoints(prefix: str) -> tuple[Endpoint, ...]:
    """``messages.*`` and their ``beta.messages.*`` twins: the same shapes, the same records."""
    return (
        Endpoint(
            f"{prefix}.create",
            record=_message_record,
            accumulator=_MessageAccumulator,
            is_stream=_streaming,
            failure=_failure,
        ),
        Endpoint(f"{prefix}.parse", record=_message_record, failure=_failure),
        Endpoint(
            f"{prefix}.stream",
            record=_message_record,
            accumulator=_MessageAccumulator,
            is_stream=_always,
            failure=_failure,
            deferred="__api_request",  # MessageStreamManager's request, sent on ``with``
        ),
    )


CLIENTS: Final = (
    "Anthropic",
    "AsyncAnthropic",
    "AnthropicBedrock",
    "AsyncAnthropicBedrock",
    "AnthropicVertex",
    "AsyncAnthropicVertex",
)

ADAPTER: Final = Adapter(
    name="anthropic",
    extra="anthropic",
    client_modules=("anthropic",),
    supported=CLIENTS,
    endpoints=(*_endpoints("messages"), *_endpoints("beta.messages")),
    labels=_labels,
    clone=_clone,
    model_name=normalize_model,
)
