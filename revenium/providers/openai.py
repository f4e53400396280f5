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

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeGuard, cast
from urllib.parse import urlsplit

from revenium.capture import PromptCapture, capture
from revenium.providers.base import Adapter, CallInfo, Endpoint, Labels, estimate_tokens
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
# model-name prefix -> the model's maker, for hosts that serve other makers' models
_MAKERS: Final[tuple[tuple[str, str], ...]] = (
    ("gpt-", "OPENAI"),
    ("o1", "OPENAI"),
    ("o3", "OPENAI"),
    ("o4", "OPENAI"),
    ("text-embedding", "OPENAI"),
    ("dall-e", "OPENAI"),
    ("whisper", "OPENAI"),
    ("tts-", "OPENAI"),
    ("claude", "ANTHROPIC"),
    ("gemini", "GOOGLE"),
    ("gemma", "GOOGLE"),
    ("grok", "XAI"),
    ("llama", "META"),
    ("mistral", "MISTRAL"),
    ("mixtral", "MISTRAL"),
    ("deepseek", "DEEPSEEK"),
    ("qwen", "ALIBABA"),
    ("sonar", "PERPLEXITY"),
)
_FIRST_PARTY: Final = {"OPENAI": "OPENAI", "Azure": "OPENAI", "XAI": "XAI", "DEEPSEEK": "DEEPSEEK"}


def model_maker(model: str) -> str | None:
    """The maker of a model from its name (``anthropic/claude-...`` too), or ``None``."""
    name = model.lower().rsplit("/", 1)[-1]
    return next((maker for prefix, maker in _MAKERS if name.startswith(prefix)), None)


def _labels(client: Any) -> Labels:
    url = str(getattr(client, "base_url", "") or "")
    host = (urlsplit(url).hostname or "").lower()
    is_azure = "Azure" in type(client).__name__
    for suffix, provider, accepts_usage in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            inject = accepts_usage and (provider != "Azure" or _azure_accepts_usage(client))
            return Labels(provider, _FIRST_PARTY.get(provider), inject_stream_usage=inject)
    if is_azure:
        return Labels("Azure", "OPENAI", inject_stream_usage=_azure_accepts_usage(client))
    if urlsplit(url).port == 11434 or "ollama" in host:
        return Labels("OLLAMA", None, inject_stream_usage=True)
    return Labels(host or "unknown", None, inject_stream_usage=False)


def _azure_accepts_usage(client: Any) -> bool:
    """``include_usage`` arrived in Azure api-version 2024-09-01-preview (GA 2024-10-21)."""
    version = getattr(client, "_api_version", None)
    return not isinstance(version, str) or version >= "2024-09-01"


def _hints(client: Any) -> Mapping[str, Any]:
    deployment = getattr(client, "_azure_deployment", None)
    return {"azure_deployment": deployment} if isinstance(deployment, str) else {}


# ----------------------------------------------------------------------------- reading helpers


def _is_list(value: object) -> TypeGuard[list[Any]]:
    return isinstance(value, list)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _model(call: CallInfo, reported: object) -> str:
    """The served model the response names, else the deployment's mapping, else what was asked."""
    model = _str(reported)
    if model is not None:
        return model
    requested = _str(call.request.get("model")) or _str(call.client_hints.get("azure_deployment"))
    if requested is None:
        return "unknown"
    return call.model_aliases.get(requested, requested)


def _text_length(value: object) -> int:
    """Characters of text in a prompt structure, for estimates (messages, parts, strings)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        items = cast("Mapping[object, object]", value)
        return sum(_text_length(v) for k, v in items.items() if k in {"content", "text", "input"})
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return sum(_text_length(v) for v in cast("Sequence[object]", value))
    return 0


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
    else:  # Responses and legacy completions
        system = _str(request.get("instructions"))
        raw = request.get("input", request.get("prompt"))
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
        "input_token_count": _int(prompt),
        "output_token_count": _int(completion),
        "total_token_count": _opt_int(total),
        "cache_read_token_count": _opt_int(getattr(prompt_details, "cached_tokens", None)),
        "reasoning_token_count": _opt_int(getattr(completion_details, "reasoning_tokens", None)),
    }


# ----------------------------------------------------------------------------- chat completions


def _chat_record(call: CallInfo, response: Any) -> Record | None:
    found = getattr(response, "choices", None)
    if not _is_list(found):
        return None
    choices: list[Any] = found
    first = choices[0] if choices else None
    message = getattr(first, "message", None)
    tool_calls = any(getattr(getattr(c, "message", None), "tool_calls", None) for c in choices)
    output = _str(getattr(message, "content", None))
    return call.completion(
        model=_model(call, getattr(response, "model", None)),
        duration_ms=call.elapsed_ms(),
        operation_type=OperationType.TOOL_CALL if tool_calls else OperationType.CHAT,
        transaction_id=_str(getattr(response, "id", None)),
        stop_reason=_stop(getattr(first, "finish_reason", None)),
        system_fingerprint=_str(getattr(response, "system_fingerprint", None)),
        prompts=_prompts(call, output),
        **_chat_tokens(getattr(response, "usage", None)),
    )


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
        content = False
        if self._id is None:
            self._id = _str(getattr(chunk, "id", None))
        if self._model is None:
            self._model = _str(getattr(chunk, "model", None))
        choices = getattr(chunk, "choices", None)
        if choices:
            for choice in choices:
                delta = getattr(choice, "delta", None)
                text = getattr(delta, "content", None) if delta is not None else choice.text
                if text:
                    content = True
                    self._chars += len(text)
                    if self._parts is not None:
                        self._parts.append(text)
                if delta is not None and getattr(delta, "tool_calls", None):
                    content = self._tool = True
                if choice.finish_reason:
                    self._finish = choice.finish_reason
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
            return content, self._hide_usage and not choices
        return content, False

    def record(
        self,
        call: CallInfo,
        *,
        duration_ms: float,
        ttft_ms: float | None,
        error: BaseException | None,
    ) -> Record:
        operation = _operation(call, tool=self._tool)
        common: dict[str, Any] = {
            "model": _model(call, self._model),
            "duration_ms": duration_ms,
            "time_to_first_token_ms": ttft_ms,
            "operation_type": operation,
            "transaction_id": self._id,
            "is_streamed": True,
            "prompts": _prompts(call, "".join(self._parts) if self._parts is not None else None),
        }
        if self._usage is not None:
            return call.completion(stop_reason=_stop(self._finish), **common,
                                   **_chat_tokens(self._usage))  # fmt: skip
        return _estimated(call, common, self._chars, self._finish, error)


def _operation(call: CallInfo, *, tool: bool) -> OperationType:
    if tool:
        return OperationType.TOOL_CALL
    return OperationType.GENERATE if "prompt" in call.request else OperationType.CHAT


def _estimated(
    call: CallInfo,
    common: dict[str, Any],
    output_chars: int,
    finish: object,
    error: BaseException | None,
) -> CompletionRecord:
    """No usage arrived (early exit, or an endpoint that sends none): estimate, and say so."""
    if error is not None and isinstance(error, Exception):
        stop = StopReason.ERROR
    elif finish:
        stop = _stop(finish)
    else:
        stop = StopReason.CANCELLED
    prompt = call.request.get("messages", call.request.get("input", call.request.get("prompt")))
    return call.completion(
        stop_reason=stop,
        input_token_count=estimate_tokens(_text_length(prompt)),
        output_token_count=estimate_tokens(output_chars),
        estimated=True,
        error_reason=None if error is None else f"{type(error).__name__}: {error}"[:255],
        **common,
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
        "input_token_count": _int(getattr(usage, "input_tokens", None)),
        "output_token_count": _int(getattr(usage, "output_tokens", None)),
        "total_token_count": _opt_int(getattr(usage, "total_tokens", None)),
        "cache_read_token_count": _opt_int(getattr(input_details, "cached_tokens", None)),
        "reasoning_token_count": _opt_int(getattr(output_details, "reasoning_tokens", None)),
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
    output, tool = _response_output(response)
    fields: dict[str, Any] = {}
    if getattr(response, "background", None) is True:
        # One record per background response, whichever process or retrieve sees it first:
        # the key is derived from the response id, so the server deduplicates repeats.
        fields["idempotency_key"] = str(uuid.uuid5(_BACKGROUND_NAMESPACE, str(response.id)))
        created = getattr(response, "created_at", None)
        if isinstance(created, int | float):
            fields["request_time"] = datetime.fromtimestamp(created, UTC)
    record = call.completion(
        model=_model(call, getattr(response, "model", None)),
        duration_ms=call.elapsed_ms() if duration_ms is None else duration_ms,
        time_to_first_token_ms=ttft_ms,
        operation_type=OperationType.TOOL_CALL if tool else OperationType.CHAT,
        transaction_id=_str(getattr(response, "id", None)),
        stop_reason=_response_stop(response),
        is_streamed=streamed,
        prompts=_prompts(call, output),
        **_response_tokens(getattr(response, "usage", None)),
    )
    if fields:
        import attrs  # noqa: PLC0415 - background responses only

        record = attrs.evolve(record, **fields)
    return record


def _retrieved_record(call: CallInfo, response: Any) -> Record | None:
    """``responses.retrieve`` meters only background responses it sees finished."""
    if getattr(response, "background", None) is not True:
        return None
    return _response_record(call, response)


class _ResponsesAccumulator:
    """Response stream events: the terminal event carries the whole response with usage."""

    __slots__ = ("_chars", "_final", "_id", "_model", "_tool")

    def __init__(self, call: CallInfo) -> None:
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
            self._id = _str(getattr(event.response, "id", None))
            self._model = _str(getattr(event.response, "model", None))
        elif kind.startswith("response.function_call_arguments"):
            self._tool = True
            return True, False
        return False, False

    def record(
        self,
        call: CallInfo,
        *,
        duration_ms: float,
        ttft_ms: float | None,
        error: BaseException | None,
    ) -> Record | None:
        if self._final is not None:
            return _response_record(call, self._final, streamed=True, ttft_ms=ttft_ms,
                                    duration_ms=duration_ms)  # fmt: skip
        common: dict[str, Any] = {
            "model": _model(call, self._model),
            "duration_ms": duration_ms,
            "time_to_first_token_ms": ttft_ms,
            "operation_type": _operation(call, tool=self._tool),
            "transaction_id": self._id,
            "is_streamed": True,
            "prompts": _prompts(call, None),
        }
        return _estimated(call, common, self._chars, None, error)


# ----------------------------------------------------------------------------- embeddings, media


def _embedding_record(call: CallInfo, response: Any) -> Record:
    usage = getattr(response, "usage", None)
    prompt = _int(getattr(usage, "prompt_tokens", None))
    return call.completion(
        model=_model(call, getattr(response, "model", None)),
        duration_ms=call.elapsed_ms(),
        operation_type=OperationType.EMBED,
        input_token_count=prompt,
        output_token_count=0,
        total_token_count=_opt_int(getattr(usage, "total_tokens", None)) or prompt,
    )


def _image_record(subtype: str) -> Any:
    def record(call: CallInfo, response: Any) -> Record | None:
        found = getattr(response, "data", None)
        if not _is_list(found):
            return None
        data: list[Any] = found
        request = call.request
        n = request.get("n")
        return ImageRecord(
            model=_str(request.get("model")) or "dall-e-2",
            provider=call.labels.provider,
            model_source=call.labels.model_source,
            request_time=call.request_time,
            request_duration_ms=call.elapsed_ms(),
            operation_type=OperationType.IMAGE,
            operation_subtype=subtype,
            requested_image_count=n if isinstance(n, int) and n > 0 else 1,
            actual_image_count=len(data),
            resolution=_str(getattr(response, "size", None)) or _str(request.get("size")),
            quality=_str(getattr(response, "quality", None)) or _str(request.get("quality")),
            style=_str(request.get("style")),
            format=_str(request.get("output_format")) or _str(request.get("response_format")),
            revised_prompt_provided=any(getattr(d, "revised_prompt", None) for d in data),
            source_image_provided=subtype != "generation",
            billing_unit=BillingUnit.PER_IMAGE,
            metadata=call.metadata,
        )

    return record


def _audio(call: CallInfo, subtype: str, **fields: Any) -> AudioRecord:
    return AudioRecord(
        model=_str(call.request.get("model")) or "unknown",
        provider=call.labels.provider,
        model_source=call.labels.model_source,
        request_time=call.request_time,
        request_duration_ms=call.elapsed_ms(),
        operation_type=OperationType.AUDIO,
        operation_subtype=subtype,
        metadata=call.metadata,
        **fields,
    )


def _speech_record(call: CallInfo, _response: object) -> Record:
    text = call.request.get("input")
    speed = call.request.get("speed")
    return _audio(
        call,
        "speech",
        character_count=len(text) if isinstance(text, str) else None,
        voice=_str(call.request.get("voice")),
        response_format=_str(call.request.get("response_format")) or "mp3",
        speed=float(speed) if isinstance(speed, int | float) else None,
        billing_unit=BillingUnit.PER_CHARACTER,
    )


def _transcript_record(subtype: str) -> Any:
    def record(call: CallInfo, response: Any) -> Record:
        usage = getattr(response, "usage", None)
        fields: dict[str, Any] = {"response_format": _str(call.request.get("response_format"))}
        if getattr(usage, "type", None) == "tokens":
            details = getattr(usage, "input_token_details", None)
            fields.update(
                input_token_count=_int(getattr(usage, "input_tokens", None)),
                output_token_count=_int(getattr(usage, "output_tokens", None)),
                input_audio_token_count=_opt_int(getattr(details, "audio_tokens", None)),
                billing_unit=BillingUnit.PER_TOKEN,
            )
        else:
            seconds = getattr(usage, "seconds", None) or getattr(response, "duration", None)
            if isinstance(seconds, int | float):
                fields["duration_seconds"] = float(seconds)
            fields["billing_unit"] = BillingUnit.PER_MINUTE
        language = getattr(response, "language", None) or call.request.get("language")
        fields["language"] = _str(language)
        return _audio(call, subtype, **fields)

    return record


def _never_streamed(_kwargs: Mapping[str, Any]) -> bool:
    return False


# ----------------------------------------------------------------------------- the adapter


def _clone(client: Any) -> Any:
    return client.copy()


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
        ),
        Endpoint(
            "responses.create",
            record=_response_record,
            accumulator=_ResponsesAccumulator,
            is_stream=_streaming,
        ),
        Endpoint("responses.parse", record=_response_record),
        Endpoint("responses.retrieve", record=_retrieved_record, is_stream=_never_streamed),
        Endpoint("embeddings.create", record=_embedding_record),
        Endpoint("images.generate", record=_image_record("generation")),
        Endpoint("images.edit", record=_image_record("edit")),
        Endpoint("images.create_variation", record=_image_record("variation")),
        Endpoint("audio.speech.create", record=_speech_record, needs_response=False),
        Endpoint("audio.transcriptions.create", record=_transcript_record("transcription")),
        Endpoint("audio.translations.create", record=_transcript_record("translation")),
    ),
    labels=_labels,
    clone=_clone,
    hints=_hints,
)
