"""Google's ``google-genai`` SDK (the Gemini API and Vertex AI): what to meter and how to read it.

Data and pure functions only; the engine does the rest. ``docs/providers/google.md`` has the
tables. The points that need care, and why:

- **Tokens.** Gemini counts thinking *outside* ``candidates_token_count`` and tool-use prompts
  (grounding) outside ``prompt_token_count``. The wire carries the counts the Revenium server
  prices, as the seed SDK sends them: ``inputTokenCount`` = prompt + tool-use prompt (cached
  tokens included, and also reported as ``cacheReadTokenCount``); ``outputTokenCount`` =
  candidates + thoughts (thinking is billed at the output rate, and also reported as
  ``reasoningTokenCount``). So the record follows the OpenAI convention: input includes the
  cache, output includes the reasoning.
- **One record per HTTP request.** ``generate_content`` may send several requests for one call
  (automatic function calling, automatic continuation) and returns the last one's usage only.
  The engine meters the SDK's per-request method (``Endpoint.per_request``) and links the
  records (``revenium.call_groups``).
- **Streams are generators** that send nothing before the first ``next()``; every chunk's
  usage is the request's running total, so the last one counts (never summed).
- **Videos** are long-running operations: remembered at ``generate_videos``, metered once when
  the wrapped client's ``operations.get`` first sees them done (``revenium.operations``).

This module never imports ``google.genai`` at import time: responses are read by attribute,
defensively, and the SDK's classes are only used by :func:`_clone`, on a client of the SDK.
"""

from __future__ import annotations

import copy
import inspect
import json
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

from revenium import operations
from revenium._diagnostics import warn_once
from revenium._names import camel
from revenium.capture import PromptCapture, capture
from revenium.providers import reading as read
from revenium.providers.base import (
    Adapter,
    CallInfo,
    Endpoint,
    Labels,
    StreamEnd,
    ToolLoop,
    estimated_completion,
)
from revenium.records import (
    BillingUnit,
    CompletionStatus,
    ImageRecord,
    OperationType,
    Record,
    StopReason,
    VideoRecord,
)

__all__ = ["ADAPTER", "normalize_model"]

PROVIDER: Final = "Google"  # the Gemini API and Vertex alike (docs/providers/index.md)
MAKER: Final = "GOOGLE"
VIDEO_SECONDS: Final = 8  # Veo's default clip length, when the call did not ask for one

# ----------------------------------------------------------------------------- labels


def _labels(_client: Any) -> Labels:
    return Labels(PROVIDER, MAKER)


# ----------------------------------------------------------------------------- model names


def normalize_model(model: str) -> str:
    """The model's own name: ``models/gemini-2.5-flash``, Vertex's
    ``projects/p/locations/l/publishers/google/models/gemini-2.5-flash`` and
    ``gemini-2.5-flash@001`` all name ``gemini-2.5-flash``. Anything else is kept as it is
    (a tuned model's or an endpoint's resource name names no public model)."""
    name = model
    if "models/" in name:
        name = name.rsplit("models/", 1)[1]
    return name.split("@", 1)[0] or model


def _named(model: str) -> dict[str, Any]:
    """``model`` normalized, and the id as given when it differs."""
    name = normalize_model(model)
    return {"model": name, "provider_model_id": model if name != model else None}


def _model_fields(call: CallInfo, reported: object) -> dict[str, Any]:
    """``model`` (the normalized name) and the id the caller passed when it differs."""
    argument = read.text(call.request.get(call.model_argument))
    model = normalize_model(read.text(reported) or call.requested_model())
    keep = argument is not None and normalize_model(argument) != argument
    return {"model": model, "provider_model_id": argument if keep else None}


# ----------------------------------------------------------------------------- usage


def _tokens(usage: object) -> dict[str, Any]:
    # Responses are the SDK's objects: read by attribute (``read.field`` also takes dicts,
    # which costs an ABC check per field).
    prompt = read.count(getattr(usage, "prompt_token_count", None))
    tool_prompt = read.count(getattr(usage, "tool_use_prompt_token_count", None))
    candidates = read.count(getattr(usage, "candidates_token_count", None))
    thoughts = read.opt_count(getattr(usage, "thoughts_token_count", None))
    input_tokens = prompt + tool_prompt
    output_tokens = candidates + (thoughts or 0)
    total = read.opt_count(getattr(usage, "total_token_count", None))
    cached = read.opt_count(getattr(usage, "cached_content_token_count", None))
    return {
        "input_token_count": input_tokens,
        "output_token_count": output_tokens,
        "total_token_count": total if total is not None else input_tokens + output_tokens,
        "cache_read_token_count": cached,
        "reasoning_token_count": thoughts,
    }


# ----------------------------------------------------------------------------- finish reasons

_STOP: Final = {
    "STOP": StopReason.END,
    "FINISH_REASON_UNSPECIFIED": StopReason.END,
    "OTHER": StopReason.END,
    "MAX_TOKENS": StopReason.TOKEN_LIMIT,
    "CONTINUATION": StopReason.COMPLETION_LIMIT,  # a hop cut to be continued by the next
}
# The model (or a filter) refused or broke off: an error, with the reason kept.
_REFUSALS: Final = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MALFORMED_FUNCTION_CALL",
        "MODEL_ARMOR",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "NO_IMAGE",
        "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS",
        "MISSING_THOUGHT_SIGNATURE",
        "MALFORMED_RESPONSE",
    }
)


def _name(value: object) -> str | None:
    """An enum member's value (``FinishReason.STOP`` -> ``"STOP"``), or a plain string."""
    found = getattr(value, "value", value)
    return found if isinstance(found, str) and found else None


def _stop_fields(reason: object, blocked: object = None) -> dict[str, Any]:
    """``stop_reason`` in the API's vocabulary, and why for a refusal; unknown values: END."""
    block = _name(blocked)
    if block is not None:  # the prompt itself was blocked: no candidate at all
        return {"stop_reason": StopReason.ERROR, "error_reason": f"prompt blocked: {block}"}
    name = _name(reason)
    if name is None:
        return {"stop_reason": StopReason.END}
    if name in _REFUSALS:
        return {"stop_reason": StopReason.ERROR, "error_reason": f"finish_reason {name}"}
    stop = _STOP.get(name)
    if stop is None:
        warn_once(
            f"google-finish:{name}",
            "revenium: Gemini finish_reason %r is not known to this version; recorded as END",
            name,
        )
        return {"stop_reason": StopReason.END}
    return {"stop_reason": stop}


# ----------------------------------------------------------------------------- content


def _parts(response: object) -> list[Any]:
    """The parts of the first candidate (the one the SDK's ``.text`` reads)."""
    candidates = getattr(response, "candidates", None)
    if not read.is_list(candidates) or not candidates:
        return []
    parts = getattr(getattr(candidates[0], "content", None), "parts", None)
    return parts if read.is_list(parts) else []


def _finish(response: object) -> object:
    candidates = getattr(response, "candidates", None)
    if not read.is_list(candidates) or not candidates:
        return None
    return getattr(candidates[0], "finish_reason", None)


def _answer_text(part: object) -> str | None:
    """A part's answer text (thought summaries are not the answer)."""
    if getattr(part, "thought", None) is True:
        return None
    return read.text(getattr(part, "text", None))


def _contents(request: Mapping[str, Any]) -> list[object]:
    """The request's contents as a list of turns (a lone string is one user turn); prompt
    capture turns the SDK's objects into JSON."""
    found = request.get("contents")
    if found is None:
        return []
    if isinstance(found, str) or not isinstance(found, list | tuple):
        return [found]
    return list(cast("Sequence[object]", found))


def _setting(config: object, name: str) -> object:
    """A config field: a ``GenerateContentConfig``-like object, or a dict in the snake_case
    or camelCase spelling (the SDK accepts both)."""
    if isinstance(config, Mapping):
        items = cast("Mapping[str, object]", config)
        found = items.get(name)
        return found if found is not None else items.get(camel(name))
    return getattr(config, name, None)


def _system(request: Mapping[str, Any]) -> object:
    return _setting(request.get("config"), "system_instruction")


def _text_of(value: object) -> str | None:
    """The text in prompt turns: strings, ``Content``/``Part`` objects, dicts, lists of them."""
    texts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, Mapping):
            items = cast("Mapping[str, object]", node)
            walk(items.get("text"))
            walk(items.get("parts"))
        elif isinstance(node, list | tuple):
            for item in cast("Sequence[object]", node):
                walk(item)
        elif callable(getattr(node, "model_dump", None)):  # the SDK's Content and Part
            walk(getattr(node, "text", None))
            walk(getattr(node, "parts", None))

    walk(value)
    return "\n".join(t for t in texts if t) or None


def _prompts(call: CallInfo, output: str | None) -> PromptCapture | None:
    if not call.capture_prompts:
        return None
    request = call.request
    return capture(
        system_prompt=_text_of(_system(request)),
        messages=_contents(request),
        output_response=output,
        limit=call.capture_limit,
    )


def _is_tool_call(part: object) -> bool:
    return getattr(part, "function_call", None) is not None


# ----------------------------------------------------------------------------- generate_content


class _Body:
    """A response body as JSON, read by the SDK's snake_case names (the JSON is camelCase).

    ``should_return_http_response=True`` makes the SDK return the raw body instead of a
    parsed response: its usage is only there.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, object]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> object:
        value = self._data.get(camel(name))
        if isinstance(value, Mapping):
            return _Body(cast("Mapping[str, object]", value))
        if isinstance(value, list):
            items = cast("list[object]", value)
            return [
                _Body(cast("Mapping[str, object]", v)) if isinstance(v, Mapping) else v
                for v in items
            ]
        return value


def _raw_body(response: Any) -> _Body | None:
    """The raw body of a response the SDK did not parse, when it holds JSON."""
    if getattr(response, "usage_metadata", None) is not None:
        return None
    body = getattr(getattr(response, "sdk_http_response", None), "body", None)
    if not isinstance(body, str | bytes) or not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return _Body(cast("Mapping[str, object]", data)) if isinstance(data, dict) else None


def _content_record(call: CallInfo, response: Any) -> Record | None:
    if isinstance(response, str | bytes) or response is None:
        return None
    response = _raw_body(response) or response
    parts = _parts(response)
    texts = [t for p in parts if (t := _answer_text(p))]
    tool = any(_is_tool_call(p) for p in parts)
    blocked = getattr(getattr(response, "prompt_feedback", None), "block_reason", None)
    return call.completion(
        **_model_fields(call, getattr(response, "model_version", None)),
        duration_ms=call.elapsed_ms(),
        operation_type=OperationType.TOOL_CALL if tool else call.operation,
        transaction_id=read.text(getattr(response, "response_id", None)),
        prompts=_prompts(call, "".join(texts) or None) if call.capture_prompts else None,
        **_stop_fields(_finish(response), blocked),
        **_tokens(getattr(response, "usage_metadata", None)),
    )


class _ChunkAccumulator:
    """Stream chunks: the last usage (a running total), the finish reason, the text."""

    __slots__ = (
        "_blocked",
        "_chars",
        "_finish",
        "_id",
        "_model",
        "_parts",
        "_tool",
        "_usage",
        "asked_turn",
    )

    def __init__(self, call: CallInfo) -> None:
        self._usage: object = None
        self._finish: object = None
        self._blocked: object = None
        self._id: str | None = None
        self._model: str | None = None
        self._tool = False
        self._chars = 0
        self._parts: list[str] | None = [] if call.capture_prompts else None
        self.asked_turn: object = None  # the chunk's turn asking for function calls

    def feed(self, chunk: Any) -> tuple[bool, bool]:
        usage = getattr(chunk, "usage_metadata", None)
        if usage is not None:
            self._usage = usage
        if self._id is None:
            self._id = read.text(getattr(chunk, "response_id", None))
            self._model = read.text(getattr(chunk, "model_version", None))
        content = False
        candidates = getattr(chunk, "candidates", None)
        if candidates:
            first = candidates[0]
            finish = getattr(first, "finish_reason", None)
            if finish is not None:
                self._finish = finish
            parts = getattr(getattr(first, "content", None), "parts", None) or ()
            for part in parts:
                text = getattr(part, "text", None)
                if type(text) is str:
                    content = True
                    self._chars += len(text)
                    if self._parts is not None and getattr(part, "thought", None) is not True:
                        self._parts.append(text)
                elif getattr(part, "function_call", None) is not None:
                    content = self._tool = True
                    self.asked_turn = getattr(first, "content", None)
        else:
            feedback = getattr(chunk, "prompt_feedback", None)
            if feedback is not None:
                self._blocked = getattr(feedback, "block_reason", None)
        return content, False

    def record(self, call: CallInfo, end: StreamEnd) -> Record:
        common: dict[str, Any] = {
            **_model_fields(call, self._model),
            "duration_ms": end.duration_ms,
            "time_to_first_token_ms": end.ttft_ms,
            "operation_type": OperationType.TOOL_CALL if self._tool else call.operation,
            "transaction_id": self._id,
            "is_streamed": True,
            "prompts": _prompts(call, "".join(self._parts or ()) or None),
        }
        tokens = _tokens(self._usage)
        complete = self._finish is not None or self._blocked is not None
        if complete and not end.failed:
            return call.completion(**common, **_stop_fields(self._finish, self._blocked), **tokens)
        # Cut short: the last running total has the exact prompt, the output is partial.
        reported = self._usage is not None
        input_tokens = tokens.pop("input_token_count")
        output_tokens = tokens.pop("output_token_count")
        del tokens["total_token_count"]
        return estimated_completion(
            call,
            end,
            prompt=_text_of([_contents(call.request), _system(call.request)]) or "",
            output_chars=self._chars,
            input_tokens=input_tokens if reported else None,
            output_tokens=output_tokens,
            **common,
            **tokens,
        )


def _never_sent(error: BaseException) -> bool:
    """The SDK refused the call's arguments before sending anything (its own checks raise
    exactly ``ValueError`` or ``TypeError``, as ``generate_images`` does on the Gemini API):
    no request, no record. A malformed answer's ``JSONDecodeError`` (a subclass) was paid."""
    return type(error) in (ValueError, TypeError)


def _failure(call: CallInfo, error: BaseException) -> Record | None:
    """A call the provider rejected: ERROR, with the caller's model id kept."""
    if _never_sent(error):
        return None
    return call.completion(
        **_model_fields(call, None),
        duration_ms=call.elapsed_ms(),
        stop_reason=StopReason.ERROR,
        **call.error_fields(error),
    )


# ----------------------------------------------------------------------------- embed_content


def _embedding_record(call: CallInfo, response: Any) -> Record | None:
    """EMBED. The Gemini API reports no tokens for embeddings: such a record has 0 input
    tokens (the docs say so); Vertex reports each embedding's token count, summed here."""
    usage = read.field(response, "usage_metadata")
    tokens = read.opt_count(read.field(usage, "prompt_token_count"))
    if tokens is None:
        found = read.field(response, "embeddings")
        counts = [
            read.opt_count(read.field(read.field(e, "statistics"), "token_count"))
            for e in (found if read.is_list(found) else [])
        ]
        tokens = sum(c for c in counts if c is not None)
    return call.completion(
        **_model_fields(call, None),
        duration_ms=call.elapsed_ms(),
        input_token_count=tokens,
        output_token_count=0,
        total_token_count=tokens,
        prompts=_prompts(call, None),
    )


# ----------------------------------------------------------------------------- images


def _config(call: CallInfo, name: str) -> object:
    return _setting(call.request.get("config"), name)


def _image_common(call: CallInfo, subtype: str) -> dict[str, Any]:
    fields = _model_fields(call, None)
    return {
        **call.common(model=fields["model"], duration_ms=call.elapsed_ms()),
        "provider_model_id": fields["provider_model_id"],
        "operation_type": OperationType.IMAGE,
        "operation_subtype": subtype,
        "resolution": read.text(_config(call, "image_size")),
        "aspect_ratio": read.text(_config(call, "aspect_ratio")),
        "format": read.text(_config(call, "output_mime_type")),
        "source_image_provided": subtype != "generation",
        "billing_unit": BillingUnit.PER_IMAGE,
    }


def _has_image(image: object) -> bool:
    """An image came back (a filtered one is an empty ``Image``, not ``None``)."""
    return bool(read.field(image, "image_bytes") or read.field(image, "gcs_uri"))


def _image_record(subtype: str) -> Callable[[CallInfo, Any], Record | None]:
    def record(call: CallInfo, response: Any) -> Record | None:
        found = read.field(response, "generated_images")
        images: list[Any] = found if read.is_list(found) else []
        returned = sum(1 for i in images if _has_image(read.field(i, "image")))
        asked = read.opt_count(_config(call, "number_of_images"))
        return ImageRecord(
            **_image_common(call, subtype),
            requested_image_count=asked if asked else max(len(images), 1),
            actual_image_count=returned,
            revised_prompt_provided=any(read.field(i, "enhanced_prompt") for i in images),
        )

    return record


def _image_failure(subtype: str) -> Callable[[CallInfo, BaseException], Record | None]:
    def failure(call: CallInfo, error: BaseException) -> Record | None:
        if _never_sent(error):
            return None
        asked = read.opt_count(_config(call, "number_of_images"))
        return ImageRecord(
            **_image_common(call, subtype),
            requested_image_count=asked or 1,
            actual_image_count=0,
            **call.error_fields(error),
        )

    return failure


# ----------------------------------------------------------------------------- videos


def _operation_name(operation: object) -> str | None:
    return read.text(read.field(operation, "name"))


_VIDEO_SETTINGS: Final = ("duration_seconds", "fps", "resolution", "aspect_ratio")


def _remember_video(call: CallInfo, operation: Any) -> None:
    """``generate_videos`` returned its operation: keep the submission until it is done.

    Only what the record needs is kept, never the caller's input image or video bytes.
    """
    name = _operation_name(operation)
    if name is None:
        return
    slim = call.copy()
    config = call.request.get("config")
    slim.request = {
        "model": call.request.get("model"),
        "config": {key: _setting(config, key) for key in _VIDEO_SETTINGS},
    }
    operations.remember(name, slim)


def _video_model(name: str) -> str:
    """The model named in an operation's name (``models/veo-3.0-generate-001/operations/x``)."""
    resource = name.rpartition("/operations/")[0]
    return normalize_model(resource) if "models/" in resource else "unknown"


def _media_common(call: CallInfo, model: str, duration_ms: float) -> dict[str, Any]:
    """A video record's common fields, its model normalized (``_named``)."""
    named = _named(model)
    fields = call.common(model=named["model"], duration_ms=duration_ms)
    return {**fields, "provider_model_id": named["provider_model_id"]}


def _video_record(call: CallInfo, operation: Any) -> Record | None:
    """An operation seen by ``operations.get`` (or returned done by ``generate_videos``):
    metered the first time it is seen done, with its submission's context when this process
    submitted it."""
    name = _operation_name(operation)
    if name is None or read.field(operation, "done") is not True:
        return None
    if type(operation).__name__ != "GenerateVideosOperation" and not operations.known(name):
        return None  # another kind of operation (a File Search upload...): not a video
    first, submitted = operations.take(name)
    if not first:
        return None
    origin = submitted or call
    ended = call.ended if call.ended is not None else origin.ended
    duration_ms = origin.elapsed_ms(ended)
    config = origin.request.get("config")
    asked = read.opt_count(_setting(config, "duration_seconds"))
    response = read.field(operation, "response") or read.field(operation, "result")
    found = read.field(response, "generated_videos")
    videos = len(found) if read.is_list(found) else 0
    error = read.field(operation, "error")
    if submitted is None:
        warn_once(
            "google-video-unknown",
            "revenium: video operation %s was not submitted through this process's wrapped "
            "client; it is metered with Veo's default %s s a video",
            name,
            VIDEO_SECONDS,
        )
    model = origin.requested_model() if submitted is not None else "unknown"
    if model == "unknown":
        model = _video_model(name)
    failed = error is not None
    return VideoRecord(
        **_media_common(origin, model, duration_ms),
        operation_type=OperationType.VIDEO,
        transaction_id=name,
        idempotency_key=operations.idempotency_key(PROVIDER, name),
        duration_seconds=0.0 if failed else float(videos * (asked or VIDEO_SECONDS)),
        requested_duration_seconds=float(asked) if asked else None,
        fps=read.opt_count(_setting(config, "fps")),
        resolution=read.text(_setting(config, "resolution")),
        aspect_ratio=read.text(_setting(config, "aspect_ratio")),
        video_job_id=name,
        async_operation=True,
        completion_status=CompletionStatus.FAILED if failed else CompletionStatus.SUCCESS,
        billing_unit=BillingUnit.PER_SECOND,
        error_reason=_operation_error(error),
        error_code=None,
    )


def _operation_error(error: object) -> str | None:
    if error is None:
        return None
    message = read.text(read.field(error, "message")) or "the operation failed"
    code = read.field(error, "code")
    return f"operation error {code}: {message}" if code is not None else message


def _video_failure(call: CallInfo, error: BaseException) -> Record | None:
    """``generate_videos`` rejected at submission: a failed job, no video."""
    if _never_sent(error):
        return None
    model = call.requested_model()
    asked = read.opt_count(_config(call, "duration_seconds"))
    return VideoRecord(
        **_media_common(call, model, call.elapsed_ms()),
        operation_type=OperationType.VIDEO,
        duration_seconds=0.0,
        requested_duration_seconds=float(asked) if asked else None,
        async_operation=True,
        completion_status=CompletionStatus.FAILED,
        billing_unit=BillingUnit.PER_SECOND,
        **call.error_fields(error),
    )


def _poll_failure(_call: CallInfo, _error: BaseException) -> Record | None:
    return None  # a failed poll costs nothing; the next one meters the operation


# ----------------------------------------------------------------------------- the client


def _clone(client: Any) -> Any:
    """A new ``Client`` sharing the original's API client (its connections and credentials)
    with metered models and operations of its own; ``client.aio`` likewise.

    ``genai.Client`` has no ``copy()``, so the clone is a shallow copy with fresh resource
    objects built on the same API client. ``Client.__del__`` closes the API client; the
    clone's ``close`` does that only when called, never when the clone is collected (it
    would close the original's connections under it).
    """
    api = client._api_client  # noqa: SLF001 - the SDK's resources are built on it
    clone = copy.copy(client)
    clone._models = type(client._models)(api)  # noqa: SLF001
    clone._operations = type(client._operations)(api)  # noqa: SLF001
    aio = copy.copy(client._aio)  # noqa: SLF001
    aio._models = type(aio._models)(api)  # noqa: SLF001
    aio._operations = type(aio._operations)(api)  # noqa: SLF001
    clone._aio = aio  # noqa: SLF001
    cls: type[Any] = client.__class__
    close_client: Callable[[Any], None] = cls.close  # the SDK's own close
    finalizer = getattr(getattr(cls, "__del__", None), "__code__", None)
    clone.close = _close_unless_collected(weakref.ref(clone), close_client, finalizer)
    return clone


def _close_unless_collected(
    ref: Callable[[], Any], close_client: Callable[[Any], None], finalizer: object
) -> Callable[[], None]:
    def close() -> None:
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        if caller is not None and caller.f_code is finalizer:
            return  # the clone being collected: the connections are the original's too
        clone: Any = ref()
        if clone is not None:
            close_client(clone)

    return close


def _asked(response: Any) -> object | None:
    """The model turn of an answer (or stream chunk) that asks for function calls: the very
    ``Content`` object a chat appends to its history and sends back with the results."""
    candidates = getattr(response, "candidates", None)
    if not candidates:
        return None
    content = getattr(candidates[0], "content", None)
    parts = getattr(content, "parts", None) or ()
    return content if any(_is_tool_call(p) for p in parts) else None


def _answered(kwargs: Mapping[str, Any]) -> object | None:
    """The model turn a request's function results answer: the turn before them."""
    found: object = kwargs.get("contents")
    if not isinstance(found, list):
        return None
    contents = cast("list[object]", found)
    if len(contents) < 2:
        return None
    parts = getattr(contents[-1], "parts", None)
    if not read.is_list(parts) or not parts:
        return None
    if all(getattr(p, "function_response", None) is not None for p in parts):
        return contents[-2]
    return None


_TOOL_LOOP: Final = ToolLoop(asked=_asked, answered=_answered)


def _always(_kwargs: Mapping[str, Any]) -> bool:
    return True


# method -> the record's operationSubtype (editing and upscaling are Vertex only)
_IMAGE_METHODS: Final = (
    ("generate_images", "generation"),
    ("edit_image", "edit"),
    ("upscale_image", "upscale"),
)


def _endpoints(prefix: str, *, is_async: bool) -> tuple[Endpoint, ...]:
    models = f"{prefix}models"
    return (
        Endpoint(
            f"{models}.generate_content",
            record=_content_record,
            accumulator=_ChunkAccumulator,
            failure=_failure,
            asynchronous=is_async,
            per_request="_generate_content",
            tool_loop=_TOOL_LOOP,
        ),
        Endpoint(
            f"{models}.generate_content_stream",
            record=_content_record,
            accumulator=_ChunkAccumulator,
            is_stream=_always,
            failure=_failure,
            asynchronous=is_async,
            per_request="_generate_content_stream",
            tool_loop=_TOOL_LOOP,
            lazy=not is_async,  # aio: awaiting the per-request method sends the request
        ),
        Endpoint(
            f"{models}.embed_content",
            record=_embedding_record,
            operation=OperationType.EMBED,
            failure=_failure,
            asynchronous=is_async,
        ),
        *(
            Endpoint(
                f"{models}.{method}",
                record=_image_record(subtype),
                operation=OperationType.IMAGE,
                failure=_image_failure(subtype),
                asynchronous=is_async,
            )
            for method, subtype in _IMAGE_METHODS
        ),
        Endpoint(
            f"{models}.generate_videos",
            record=_video_record,
            operation=OperationType.VIDEO,
            failure=_video_failure,
            asynchronous=is_async,
            observe=_remember_video,
        ),
        Endpoint(
            f"{prefix}operations.get",
            record=_video_record,
            model_argument="operation",
            failure=_poll_failure,
            asynchronous=is_async,
            checked=False,
        ),
    )


ADAPTER: Final = Adapter(
    name="google",
    extra="google",
    client_modules=("google.genai",),
    supported=("Client",),
    endpoints=(*_endpoints("", is_async=False), *_endpoints("aio.", is_async=True)),
    labels=_labels,
    clone=_clone,
    copy_methods=(),
    model_name=normalize_model,
)
