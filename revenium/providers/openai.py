"""OpenAI, Azure OpenAI and OpenAI-compatible hosts: which methods to meter and how to read them.

Data and pure functions only; the engine does the rest. Token semantics are OpenAI's own, as
the Revenium server prices them: ``inputTokenCount`` is ``prompt_tokens`` *including* cached
reads (which also go to ``cacheReadTokenCount``), ``outputTokenCount`` is ``completion_tokens``
*including* reasoning tokens (which also go to ``reasoningTokenCount``). See
``docs/providers/openai.md`` for the table and the normalized classes used for local estimates.

This module never imports ``openai``: it reads response objects by attribute, defensively, so
an SDK shape it does not know is metered as far as it can be read and never raises.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, cast
from urllib.parse import urlsplit

import attrs

from revenium.capture import PromptCapture, capture
from revenium.providers import reading as read
from revenium.providers.base import (
    Accumulator,
    Adapter,
    CallInfo,
    Endpoint,
    Labels,
    StreamEnd,
    estimated_completion,
)
from revenium.providers.makers import client_host, host_matches, model_maker
from revenium.records import (
    AudioRecord,
    BillingUnit,
    CompletionRecord,
    ImageRecord,
    OperationType,
    Record,
    StopReason,
)

__all__ = ["ADAPTER"]

# ----------------------------------------------------------------------------- labels

# host suffix -> (provider label, accepts stream_options.include_usage on chat streams)
_HOSTS: Final[tuple[tuple[str, str, bool], ...]] = (
    ("api.openai.com", "OPENAI", True),
    ("openai.azure.com", "Azure", True),
    ("cognitiveservices.azure.com", "Azure", True),
    ("api.perplexity.ai", "PERPLEXITY", False),  # sends usage on its last chunk unasked
    ("api.x.ai", "XAI", True),
    ("api.fireworks.ai", "FIREWORKS", True),
    ("api.together.xyz", "TOGETHER", True),
    ("api.together.ai", "TOGETHER", True),
    ("api.groq.com", "GROQ", True),
    ("api.deepseek.com", "DEEPSEEK", True),
    ("openrouter.ai", "OPENROUTER", True),
)
_FIRST_PARTY: Final = {"OPENAI": "OPENAI", "Azure": "OPENAI", "XAI": "XAI", "DEEPSEEK": "DEEPSEEK"}


def _labels(client: Any) -> Labels:
    url = str(getattr(client, "base_url", "") or "")
    host = client_host(client)
    is_azure = "Azure" in type(client).__name__
    for suffix, provider, accepts_usage in _HOSTS:
        if host_matches(host, suffix):
            inject = accepts_usage and (provider != "Azure" or _azure_accepts_usage(client))
            source = _FIRST_PARTY.get(provider)
            return Labels(
                provider,
                source,
                inject_stream_usage=inject,
                maker=model_maker,
                deployment_names=provider == "Azure",
            )
    if is_azure:
        inject = _azure_accepts_usage(client)
        return Labels("Azure", "OPENAI", inject_stream_usage=inject, deployment_names=True)
    if urlsplit(url).port == 11434 or "ollama" in host:
        return Labels("OLLAMA", None, inject_stream_usage=True, maker=model_maker)
    return Labels(host or "unknown", None, inject_stream_usage=False, maker=model_maker)


def _azure_accepts_usage(client: Any) -> bool:
    """``include_usage`` arrived in Azure api-version 2024-09-01-preview (GA 2024-10-21)."""
    version = getattr(client, "_api_version", None)
    return not isinstance(version, str) or version >= "2024-09-01"


def _hints(client: Any) -> Mapping[str, Any]:
    hints: dict[str, Any] = {"host": urlsplit(str(getattr(client, "base_url", ""))).netloc}
    deployment = getattr(client, "_azure_deployment", None)
    if isinstance(deployment, str):
        hints["azure_deployment"] = deployment
    return hints


# ----------------------------------------------------------------------------- reading helpers


def _model(call: CallInfo, reported: object) -> str:
    """The served model the response names, else the deployment's mapping, else what was asked."""
    return read.text(reported) or call.requested_model()


def _split_system(messages: object) -> tuple[str | None, list[object]]:
    """System/developer text and the other messages, for prompt capture."""
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        return None, []
    system: list[str] = []
    others: list[object] = []
    items: Sequence[object] = cast("Sequence[object]", messages)
    for message in items:
        others.append(message)
        if isinstance(message, Mapping):
            fields = cast("Mapping[str, object]", message)
            content = fields.get("content")
            if fields.get("role") in {"system", "developer"} and isinstance(content, str):
                system.append(content)
                others.pop()
    return ("\n".join(system) or None), others


def _prompts(call: CallInfo, output: str | None) -> PromptCapture | None:
    if not call.capture_prompts:
        return None
    request = call.request
    if "messages" in request:
        system, others = _split_system(request.get("messages"))
    else:  # Responses (``prompt`` there is a template reference) and legacy completions
        system = read.text(request.get("instructions"))
        legacy = call.operation is OperationType.GENERATE
        raw = request.get("prompt") if legacy else request.get("input")
        others = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    return capture(
        system_prompt=system, messages=others, output_response=output, limit=call.capture_limit
    )


_CHAT_STOP: Final = {
    "stop": StopReason.END,
    "length": StopReason.TOKEN_LIMIT,
    "tool_calls": StopReason.END_SEQUENCE,
    "function_call": StopReason.END_SEQUENCE,
    "content_filter": StopReason.ERROR,
    "timeout": StopReason.TIMEOUT,
}


def _stop(reason: object) -> StopReason:
    """The API's stop reason; an unknown value is END, quietly (no warning per call)."""
    return _CHAT_STOP.get(reason, StopReason.END) if isinstance(reason, str) else StopReason.END


def _chat_tokens(usage: object) -> dict[str, Any]:
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    total = getattr(usage, "total_tokens", None)
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return {
        "input_token_count": read.count(prompt),
        "output_token_count": read.count(completion),
        "total_token_count": read.opt_count(total),
        "cache_read_token_count": read.opt_count(read.field(prompt_details, "cached_tokens")),
        "reasoning_token_count": read.opt_count(
            getattr(completion_details, "reasoning_tokens", None)
        ),
    }


# ----------------------------------------------------------------------------- chat completions


def _chat_record(call: CallInfo, response: Any) -> Record | None:
    if isinstance(response, str | bytes):
        return None  # not a completion at all (an unexpected raw body): nothing to read
    found = getattr(response, "choices", None)
    choices: list[Any] = found if read.is_list(found) else []
    first = choices[0] if choices else None
    message = getattr(first, "message", None)
    tool = any(_called_tools(getattr(c, "message", None)) for c in choices)
    output = read.text(getattr(message, "content", None) or getattr(first, "text", None))
    return call.completion(
        model=_model(call, getattr(response, "model", None)),
        duration_ms=call.elapsed_ms(),
        operation_type=_operation(call, tool=tool),
        transaction_id=read.text(getattr(response, "id", None)),
        stop_reason=_stop(getattr(first, "finish_reason", None)),
        system_fingerprint=read.text(getattr(response, "system_fingerprint", None)),
        prompts=_prompts(call, output),
        **_chat_tokens(getattr(response, "usage", None)),
    )


def _called_tools(message: object) -> bool:
    """Tool calls, or the older single ``function_call``."""
    return bool(getattr(message, "tool_calls", None) or getattr(message, "function_call", None))


class _ChatAccumulator:
    """Chat (and legacy completion) chunks: usage from the usage chunk, text for estimates."""

    __slots__ = ("_chars", "_finish", "_hide_usage", "_id", "_model", "_parts", "_tool", "_usage")

    def __init__(self, call: CallInfo) -> None:
        self._usage: object = None
        self._finish: object = None
        self._model: str | None = None
        self._id: str | None = None
        self._tool = False
        self._chars = 0
        self._parts: list[str] | None = [] if call.capture_prompts else None
        self._hide_usage = call.injected_usage

    def feed(self, chunk: Any) -> tuple[bool, bool]:
        # Called once per chunk: kept to a handful of attribute reads (docs/benchmarks.md).
        content = False
        if self._id is None:
            self._id = read.text(getattr(chunk, "id", None))
        if self._model is None:  # Azure's first chunk names no model
            self._model = read.text(getattr(chunk, "model", None))
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
        choices = getattr(chunk, "choices", None)
        if read.is_list(choices):
            for choice in choices:
                delta = getattr(choice, "delta", None)
                if delta is None:  # a legacy completion chunk carries ``text``
                    text = getattr(choice, "text", None)
                else:
                    text = getattr(delta, "content", None)
                    if getattr(delta, "tool_calls", None) or getattr(delta, "function_call", None):
                        content = self._tool = True
                if text and type(text) is str:
                    content = True
                    self._chars += len(text)
                    if self._parts is not None:
                        self._parts.append(text)
                finish = getattr(choice, "finish_reason", None)
                if finish:
                    self._finish = finish
        return content, usage is not None and self._hide_usage and not choices

    def record(self, call: CallInfo, end: StreamEnd) -> Record:
        operation = _operation(call, tool=self._tool)
        common: dict[str, Any] = {
            "model": _model(call, self._model),
            "duration_ms": end.duration_ms,
            "time_to_first_token_ms": end.ttft_ms,
            "operation_type": operation,
            "transaction_id": self._id,
            "is_streamed": True,
            "prompts": _prompts(call, "".join(self._parts or ()) or None),
        }
        if self._usage is not None:
            return call.completion(stop_reason=_stop(self._finish), **common,
                                   **_chat_tokens(self._usage))  # fmt: skip
        return _estimated(call, common, self._chars, self._finish, end)


def _operation(call: CallInfo, *, tool: bool) -> OperationType:
    return OperationType.TOOL_CALL if tool else call.operation


def _estimated(
    call: CallInfo,
    common: dict[str, Any],
    output_chars: int,
    finish: object,
    end: StreamEnd,
) -> CompletionRecord:
    """No usage arrived (early exit, or an endpoint that sends none): estimate, and say so."""
    request = call.request
    legacy = call.operation is OperationType.GENERATE
    prompt = request.get("prompt") if legacy else request.get("messages", request.get("input"))
    stop = _stop(finish) if finish else None
    return estimated_completion(
        call, end, prompt=prompt, output_chars=output_chars, stop=stop, **common
    )


def _inject_usage(kwargs: dict[str, Any], call: CallInfo) -> bool:
    """Ask a chat stream for its usage chunk, only where the endpoint is known to accept it.

    Never for the Responses API (usage arrives in ``response.completed``), never over a value
    the caller set (``include_usage`` True or False is theirs), and not when configured off.
    """
    if kwargs.get("stream") is not True or not call.stream_usage:
        return False
    options = kwargs.get("stream_options")
    if isinstance(options, Mapping):
        if "include_usage" in options:
            return False
        kwargs["stream_options"] = {**options, "include_usage": True}
        return True
    kwargs["stream_options"] = {"include_usage": True}
    return True


def _streaming(kwargs: Mapping[str, Any]) -> bool:
    return kwargs.get("stream") is True


# ----------------------------------------------------------------------------- responses API

_TERMINAL: Final = {"completed", "incomplete", "failed", "cancelled"}
_RESPONSE_STOP: Final = {
    "completed": StopReason.END,
    "failed": StopReason.ERROR,
    "cancelled": StopReason.CANCELLED,
}
_BACKGROUND_NAMESPACE: Final = uuid.UUID("8f0c5a56-5b8e-4c64-9a5a-6c1f35c1c0a1")


def _response_stop(response: Any) -> StopReason:
    status = getattr(response, "status", None)
    if status == "incomplete":
        reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
        return StopReason.ERROR if reason == "content_filter" else StopReason.TOKEN_LIMIT
    return _RESPONSE_STOP.get(status, StopReason.END) if isinstance(status, str) else StopReason.END


def _response_tokens(usage: object) -> dict[str, Any]:
    input_details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    return {
        "input_token_count": read.count(getattr(usage, "input_tokens", None)),
        "output_token_count": read.count(getattr(usage, "output_tokens", None)),
        "total_token_count": read.opt_count(getattr(usage, "total_tokens", None)),
        "cache_read_token_count": read.opt_count(getattr(input_details, "cached_tokens", None)),
        "reasoning_token_count": read.opt_count(getattr(output_details, "reasoning_tokens", None)),
    }


def _response_output(response: Any) -> tuple[str | None, bool]:
    """The output text and whether the response called tools."""
    texts: list[str] = []
    tool = False
    items: list[Any] = getattr(response, "output", None) or []
    for item in items:
        kind = getattr(item, "type", None)
        if kind == "message":
            parts: list[Any] = getattr(item, "content", None) or []
            texts.extend(
                text for part in parts if isinstance(text := getattr(part, "text", None), str)
            )
        elif isinstance(kind, str) and kind.endswith("_call"):
            tool = True
    return ("".join(texts) or None), tool


class _SeenOnce:
    """Response ids already metered in this process (bounded), so repeats make no new record.

    Across processes the derived idempotency key lets the server deduplicate; this keeps the
    local capture, ledger writes and statistics to one record too.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > self._limit:
                self._seen.popitem(last=False)
            return True


_BACKGROUND_SEEN: Final = _SeenOnce()


def _background_fields(response: Any, host: str) -> dict[str, Any] | None:
    """The derived identity and the server-side timing of a finished background response.

    One record per background response, whichever process or retrieve sees it first: the key
    is derived from the response id, so the server deduplicates repeats. ``None`` when this
    process already metered it.
    """
    response_id = read.text(getattr(response, "id", None))
    if response_id is None:
        return {}  # nothing to derive an identity from: an ordinary, random key
    # Provider ids are unique per host only, so the host is part of the identity.
    identity = f"{host}:{response_id}"
    if not _BACKGROUND_SEEN.first(identity):
        return None
    fields: dict[str, Any] = {"idempotency_key": str(uuid.uuid5(_BACKGROUND_NAMESPACE, identity))}
    created, completed = (
        getattr(response, "created_at", None),
        getattr(response, "completed_at", None),
    )
    if isinstance(created, int | float):
        fields["request_time"] = datetime.fromtimestamp(created, UTC)
        if isinstance(completed, int | float) and completed >= created:
            fields["request_duration_ms"] = (completed - created) * 1000
            fields["time_to_first_token_ms"] = fields["request_duration_ms"]
    return fields


def _response_record(
    call: CallInfo,
    response: Any,
    *,
    streamed: bool = False,
    ttft_ms: float | None = None,
    duration_ms: float | None = None,
) -> Record | None:
    status = getattr(response, "status", None)
    if status not in _TERMINAL:
        return None  # a background response still queued: metered when retrieve sees it done
    fields: dict[str, Any] = {}
    if getattr(response, "background", None) is True:
        host = call.client_hints.get("host")
        background = _background_fields(response, host if isinstance(host, str) else "")
        if background is None:
            return None
        fields = background
    output, tool = _response_output(response)
    record = call.completion(
        model=_model(call, getattr(response, "model", None)),
        duration_ms=call.elapsed_ms() if duration_ms is None else duration_ms,
        time_to_first_token_ms=ttft_ms,
        operation_type=_operation(call, tool=tool),
        transaction_id=read.text(getattr(response, "id", None)),
        stop_reason=_response_stop(response),
        is_streamed=streamed,
        prompts=_prompts(call, output),
        **_response_tokens(getattr(response, "usage", None)),
    )
    return attrs.evolve(record, **fields) if fields else record


def _retrieved_record(call: CallInfo, response: Any) -> Record | None:
    """``responses.retrieve`` meters only background responses it sees finished."""
    if getattr(response, "background", None) is not True:
        return None
    return _response_record(call, response)


class _ResponsesAccumulator:
    """Response stream events: the terminal event carries the whole response with usage.

    A background response whose stream ends early is not estimated: it goes on running on the
    server and is metered, exactly, when a retrieve sees it finished.
    """

    __slots__ = ("_chars", "_final", "_id", "_model", "_resumed", "_tool")

    def __init__(self, call: CallInfo, *, resumed: bool = False) -> None:
        self._resumed = resumed  # ``retrieve(stream=True)``: the create call is metered already
        self._final: object = None
        self._id: str | None = None
        self._model: str | None = None
        self._tool = False
        self._chars = 0

    def feed(self, chunk: Any) -> tuple[bool, bool]:
        event = chunk
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            self._chars += len(getattr(event, "delta", "") or "")
            return True, False
        if kind in {"response.completed", "response.incomplete", "response.failed"}:
            self._final = event.response
        elif kind == "response.created":
            self._id = read.text(getattr(event.response, "id", None))
            self._model = read.text(getattr(event.response, "model", None))
        elif kind.startswith("response.function_call_arguments"):
            self._tool = True
            return True, False
        return False, False

    def record(self, call: CallInfo, end: StreamEnd) -> Record | None:
        if self._final is not None:
            return _response_record(call, self._final, streamed=True, ttft_ms=end.ttft_ms,
                                    duration_ms=end.duration_ms)  # fmt: skip
        if self._resumed or call.request.get("background") is True:
            return None  # still running server-side: a retrieve that sees it finished meters it
        common: dict[str, Any] = {
            "model": _model(call, self._model),
            "duration_ms": end.duration_ms,
            "time_to_first_token_ms": end.ttft_ms,
            "operation_type": _operation(call, tool=self._tool),
            "transaction_id": self._id,
            "is_streamed": True,
            "prompts": _prompts(call, None),
        }
        return _estimated(call, common, self._chars, None, end)


# ----------------------------------------------------------------------------- embeddings, media


def _embedding_record(call: CallInfo, response: Any) -> Record:
    usage = getattr(response, "usage", None)
    prompt = read.count(getattr(usage, "prompt_tokens", None))
    return call.completion(
        model=_model(call, getattr(response, "model", None)),
        duration_ms=call.elapsed_ms(),
        input_token_count=prompt,
        output_token_count=0,
        total_token_count=read.opt_count(getattr(usage, "total_tokens", None)) or prompt,
    )


def _image_record(subtype: str) -> Callable[[CallInfo, Any], Record | None]:
    def record(call: CallInfo, response: Any) -> Record | None:
        found = getattr(response, "data", None)
        if not read.is_list(found):
            return None
        data: list[Any] = found
        request = call.request
        n = request.get("n")
        return ImageRecord(
            **call.common(model=_image_model(call), duration_ms=call.elapsed_ms()),
            operation_type=OperationType.IMAGE,
            operation_subtype=subtype,
            requested_image_count=n if isinstance(n, int) and n > 0 else 1,
            actual_image_count=len(data),
            resolution=read.text(getattr(response, "size", None)) or read.text(request.get("size")),
            quality=read.text(getattr(response, "quality", None))
            or read.text(request.get("quality")),
            style=read.text(request.get("style")),
            format=read.text(request.get("output_format"))
            or read.text(request.get("response_format")),
            revised_prompt_provided=any(getattr(d, "revised_prompt", None) for d in data),
            source_image_provided=subtype != "generation",
            billing_unit=BillingUnit.PER_IMAGE,
        )

    return record


def _image_failure(subtype: str) -> Callable[[CallInfo, BaseException], Record]:
    def failure(call: CallInfo, error: BaseException) -> Record:
        n = call.request.get("n")
        return ImageRecord(
            **call.common(model=_image_model(call), duration_ms=call.elapsed_ms()),
            operation_type=OperationType.IMAGE,
            operation_subtype=subtype,
            requested_image_count=n if isinstance(n, int) and n > 0 else 1,
            actual_image_count=0,
            billing_unit=BillingUnit.PER_IMAGE,
            **call.error_fields(error),
        )

    return failure


class _ImageStreamAccumulator:
    """Streamed image generation: one image per ``*.completed`` event."""

    __slots__ = ("_images", "_subtype")

    def __init__(self, call: CallInfo, *, subtype: str) -> None:
        self._images = 0
        self._subtype = subtype

    def feed(self, chunk: Any) -> tuple[bool, bool]:
        kind = getattr(chunk, "type", "")
        if isinstance(kind, str) and kind.endswith(".completed"):
            self._images += 1
            return True, False
        return False, False

    def record(self, call: CallInfo, end: StreamEnd) -> Record:
        n = call.request.get("n")
        extra = call.error_fields(end.error) if end.error and end.failed else {}
        return ImageRecord(
            **call.common(model=_image_model(call), duration_ms=end.duration_ms),
            operation_type=OperationType.IMAGE,
            operation_subtype=self._subtype,
            requested_image_count=n if isinstance(n, int) and n > 0 else 1,
            actual_image_count=self._images,
            source_image_provided=self._subtype != "generation",
            billing_unit=BillingUnit.PER_IMAGE,
            **extra,
        )


def _image_model(call: CallInfo) -> str:
    """What was asked, through the aliases; OpenAI's default image model when nothing was."""
    asked = call.request.get("model") or call.client_hints.get("azure_deployment")
    return call.requested_model() if read.text(asked) else "dall-e-2"


def _audio_failure(subtype: str) -> Callable[[CallInfo, BaseException], Record]:
    def failure(call: CallInfo, error: BaseException) -> Record:
        return _audio(call, subtype, **call.error_fields(error))

    return failure


class _TranscriptStreamAccumulator:
    """Streamed transcription: the ``transcript.text.done`` event carries the usage."""

    __slots__ = ("_done", "_subtype")

    def __init__(self, call: CallInfo, *, subtype: str) -> None:
        self._done: object = None
        self._subtype = subtype

    def feed(self, chunk: Any) -> tuple[bool, bool]:
        kind = getattr(chunk, "type", "")
        if kind == "transcript.text.done":
            self._done = chunk
        return kind == "transcript.text.delta", False

    def record(self, call: CallInfo, end: StreamEnd) -> Record:
        record = _transcript_record(self._subtype)(call, self._done)
        extra = call.error_fields(end.error) if end.error and end.failed else {}
        return attrs.evolve(record, request_duration_ms=end.duration_ms, **extra)


def _audio(call: CallInfo, subtype: str, **fields: Any) -> AudioRecord:
    model = call.requested_model()
    return AudioRecord(
        **call.common(model=model, duration_ms=call.elapsed_ms()),
        operation_type=OperationType.AUDIO,
        operation_subtype=subtype,
        **fields,
    )


def _speech_record(call: CallInfo, _response: object) -> Record:
    text = call.request.get("input")
    speed = call.request.get("speed")
    return _audio(
        call,
        "speech",
        character_count=len(text) if isinstance(text, str) else None,
        voice=read.text(call.request.get("voice")),
        response_format=read.text(call.request.get("response_format")) or "mp3",
        speed=float(speed) if isinstance(speed, int | float) else None,
        billing_unit=BillingUnit.PER_CHARACTER,
    )


def _transcript_record(subtype: str) -> Callable[[CallInfo, Any], AudioRecord]:
    def record(call: CallInfo, response: Any) -> AudioRecord:
        usage = read.field(response, "usage")
        fields: dict[str, Any] = {"response_format": read.text(call.request.get("response_format"))}
        if read.field(usage, "type") == "tokens":
            details = read.field(usage, "input_token_details")
            fields.update(
                input_token_count=read.count(read.field(usage, "input_tokens")),
                output_token_count=read.count(read.field(usage, "output_tokens")),
                input_audio_token_count=read.opt_count(read.field(details, "audio_tokens")),
                billing_unit=BillingUnit.PER_TOKEN,
            )
        else:
            seconds = read.field(usage, "seconds") or read.field(response, "duration")
            if isinstance(seconds, int | float):
                fields["duration_seconds"] = float(seconds)
            fields["billing_unit"] = BillingUnit.PER_MINUTE
        language = read.field(response, "language") or call.request.get("language")
        fields["language"] = read.text(language)
        return _audio(call, subtype, **fields)

    return record


# ----------------------------------------------------------------------------- the adapter


def _clone(client: Any) -> Any:
    return client.copy()


def _media(
    names: tuple[tuple[str, str], ...],
    record: Callable[[str], Callable[[CallInfo, Any], Record | None]],
    accumulator: Callable[..., Accumulator],
    failure: Callable[[str], Callable[[CallInfo, BaseException], Record]],
    operation: OperationType,
) -> tuple[Endpoint, ...]:
    """One endpoint per (path, subtype) of a media resource, streamed or not."""
    return tuple(
        Endpoint(
            path,
            record=record(subtype),
            accumulator=functools.partial(accumulator, subtype=subtype),
            is_stream=_streaming,
            operation=operation,
            failure=failure(subtype),
        )
        for path, subtype in names
    )


def _media_endpoints() -> tuple[Endpoint, ...]:
    images = _media(
        (
            ("images.generate", "generation"),
            ("images.edit", "edit"),
            ("images.create_variation", "variation"),
        ),
        _image_record,
        _ImageStreamAccumulator,
        _image_failure,
        OperationType.IMAGE,
    )
    audio = _media(
        (
            ("audio.transcriptions.create", "transcription"),
            ("audio.translations.create", "translation"),
        ),
        _transcript_record,
        _TranscriptStreamAccumulator,
        _audio_failure,
        OperationType.AUDIO,
    )
    speech = Endpoint(
        "audio.speech.create",
        record=_speech_record,
        needs_response=False,
        operation=OperationType.AUDIO,
        failure=_audio_failure("speech"),
    )
    return (*images, *audio, speech)


_CHAT = Endpoint(
    "chat.completions.create",
    record=_chat_record,
    accumulator=_ChatAccumulator,
    is_stream=_streaming,
    prepare=_inject_usage,
)

ADAPTER: Final = Adapter(
    name="openai",
    extra="openai",
    client_modules=("openai",),
    supported=("OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI"),
    endpoints=(
        _CHAT,
        Endpoint("chat.completions.parse", record=_chat_record),
        Endpoint(
            "completions.create",
            record=_chat_record,
            accumulator=_ChatAccumulator,
            is_stream=_streaming,
            prepare=_inject_usage,
            operation=OperationType.GENERATE,
        ),
        Endpoint(
            "responses.create",
            record=_response_record,
            accumulator=_ResponsesAccumulator,
            is_stream=_streaming,
        ),
        Endpoint("responses.parse", record=_response_record),
        Endpoint(
            "responses.retrieve",
            record=_retrieved_record,
            accumulator=functools.partial(_ResponsesAccumulator, resumed=True),
            is_stream=_streaming,
        ),
        Endpoint("embeddings.create", record=_embedding_record, operation=OperationType.EMBED),
        *_media_endpoints(),
    ),
    labels=_labels,
    clone=_clone,
    hints=_hints,
)
