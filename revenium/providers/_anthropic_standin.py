"""A deterministic stand-in for the Anthropic Messages API: direct, on Bedrock and on Vertex.

Why it exists: the Anthropic adapter must be tested against the real ``anthropic`` SDK, offline, on
all three wire formats it meets in production. The formats differ in ways a metering wrapper has to
survive: Bedrock moves the model into the URL and streams binary AWS event-stream frames, Vertex
uses ``:rawPredict`` URLs. :class:`AnthropicBackend` answers all three. The test fixtures call it
in-process through an ``httpx2.MockTransport``, and ``StandInServer`` (in ``_openai_standin``) calls
it over a loopback socket for the demo. It uses only the standard library, so the demo needs nothing
extra.

Routes: ``POST /v1/messages`` (any query, e.g. ``?beta=true``), ``POST /v1/messages/count_tokens``,
Bedrock ``POST /model/{quoted model id}/invoke`` and ``/invoke-with-response-stream``, and Vertex
``POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict`` and
``:streamRawPredict`` (``models/count-tokens:rawPredict`` counts tokens). The response ``model`` is
the request's model on direct calls. On Bedrock it is the id with any ARN prefix, region prefix
(``us.`` etc.), ``anthropic.`` and ``-v1:0`` suffix removed. On Vertex it is the id without
``@...``.

Counting rules (exact, so tests can compute every number):

- ``tokens(s) = max(1, len(s) // 4)``. "Text" means a string content, or the ``text`` of text
  blocks plus the text of ``tool_result`` blocks' content. Tool definitions, images and
  ``tool_use`` inputs are not counted.
- Prompt caching: each ``system`` text block that carries ``cache_control`` is cache traffic worth
  ``tokens(block text)``. The first time this backend sees that text it is a cache write. Writes go
  to ``cache_creation_input_tokens`` and to ``cache_creation.ephemeral_5m_input_tokens`` or
  ``ephemeral_1h_input_tokens`` by the block's ``ttl`` ("5m" by default). Afterwards the same text
  is a ``cache_read_input_tokens``.
- ``input_tokens = tokens(the other system text + the text of every message, concatenated)``.
  Like the real API, this excludes cache traffic. ``count_tokens`` answers ``tokens(all of it)``.
- Reply text: ``"Echo: "`` + the first 40 characters of the last user message's text, with
  whitespace collapsed. With ``output_config.format`` (or beta ``output_format``) of type
  ``json_schema``, the reply is instead a JSON object. Each property gets a sample value: strings
  get the echo, integers 1, numbers 1.0, booleans true.
- A ``stop_sequences`` entry found in the reply cuts the reply just before it (earliest match wins):
  ``stop_reason="stop_sequence"``. If more words than ``max_tokens`` remain, the reply keeps the
  first ``max_tokens`` words and ``stop_reason="max_tokens"``. Thinking is not charged against
  ``max_tokens``.
- ``tools`` present and the last user text mentions "weather" (and that message carries no
  ``tool_result``, so tool loops end): the reply is one ``tool_use`` block named after the first
  tool, with input ``{"city": "Paris"}``. ``stop_reason="tool_use"``.
- ``thinking.type`` "enabled" or "adaptive": a thinking block ``"Let me think."`` (with a
  ``signature``) comes first, and ``usage.output_tokens_details.thinking_tokens`` = its words.
- ``output_tokens`` = the words of the reply text, or of ``json.dumps(tool input)`` for tool use,
  plus the thinking words. Streams send one delta per word and one ``ping``. ``message_start``
  carries the input and cache counts with ``output_tokens=1``. ``message_delta`` carries only the
  cumulative output counts, so a consumer must merge the two events.
- Bedrock: no pings. ``message_stop`` carries ``amazon-bedrock-invocationMetrics``
  (``inputTokenCount`` = input_tokens, ``outputTokenCount`` = output_tokens, ``firstByteLatency``
  50, ``invocationLatency`` 50 + 10 per output token). Non-streamed answers carry
  ``x-amzn-bedrock-input-token-count`` / ``-output-token-count`` headers.

Models ``fail-400``, ``fail-401``, ``fail-429`` (``retry-after: 0``), ``fail-500`` and ``fail-529``
answer with Anthropic error JSON. ``fail-midstream`` streams ``message_start`` and two deltas, then
hangs up (a plain call gets a truncated body). ``fail-error-event`` streams one delta, then an
``overloaded_error`` event; on Bedrock this is a ``modelStreamErrorException`` frame, and a plain
call gets a 529. ``refuse`` answers ``stop_reason="refusal"``, ``pause`` answers ``"pause_turn"``.
Ids are ``msg_standin_{n}`` with a ``request-id: req_standin_{n}`` header, ``n`` counting requests.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import struct
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast
from urllib.parse import unquote

from revenium.providers._openai_standin import Reply

__all__ = [
    "BEDROCK_STREAM_TYPE",
    "FIRST_BYTE_LATENCY_MS",
    "SIGNATURE",
    "THINKING_TEXT",
    "TOOL_INPUT",
    "AnthropicBackend",
    "anthropic_error",
    "aws_event_frame",
    "bedrock_model_name",
    "serves",
]

BEDROCK_STREAM_TYPE = "application/vnd.amazon.eventstream"
THINKING_TEXT = "Let me think."
SIGNATURE = "c3RhbmRpbi1zaWduYXR1cmU="  # base64 of "standin-signature"
TOOL_INPUT: dict[str, Any] = {"city": "Paris"}
FIRST_BYTE_LATENCY_MS = 50
Json = dict[str, Any]
_FAILURES: dict[str, tuple[int, str, str]] = {
    "fail-400": (400, "invalid_request_error", "messages: at least one message is required"),
    "fail-401": (401, "authentication_error", "invalid x-api-key"),
    "fail-429": (429, "rate_limit_error", "Number of requests has exceeded your rate limit"),
    "fail-500": (500, "api_error", "Internal server error"),
    "fail-529": (529, "overloaded_error", "Overloaded"),
}
_OVERLOADED: Json = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}
_DIRECT = re.compile(r"^/v1/messages(/count_tokens)?$")
_BEDROCK = re.compile(r"^/model/([^/]+)/(invoke|invoke-with-response-stream)$")
_VERTEX = re.compile(
    r"^/v1/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/([^/:]+):(\w+)$"
)
_WORD = re.compile(r"\S+\s*")


def serves(path: str) -> bool:
    """Whether ``path`` is one of the Anthropic routes (so a shared server sends it here)."""
    return path.startswith(("/v1/messages", "/model/", "/v1/projects/"))


def bedrock_model_name(model_id: str) -> str:
    """``arn:...:inference-profile/us.anthropic.claude-x-v1:0`` -> ``claude-x``."""
    name = model_id.rpartition("/")[2]
    name = name.partition("anthropic.")[2] or name
    return re.sub(r"-v\d+(?::\d+)?$", "", name)


def anthropic_error(status: int, kind: str, message: str) -> Reply:
    """An error answer in the Messages API's shape; ``retry-after: 0`` on 429."""
    headers = {"retry-after": "0"} if status == 429 else {}
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return Reply(status, [json.dumps(body).encode()], headers=headers)


def _header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v  # 7: string


def aws_event_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One binary AWS event-stream message (prelude, string headers, payload, two CRC32s)."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _chunk_frame(event: Json) -> bytes:
    data = base64.b64encode(json.dumps(event).encode()).decode()
    kinds = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return aws_event_frame(kinds, json.dumps({"bytes": data}).encode())


def _error_frame() -> bytes:
    """How Bedrock relays a model error mid-stream; the SDK turns it into an ``error`` event."""
    kinds = {":exception-type": "modelStreamErrorException",
             ":content-type": "application/json", ":message-type": "exception"}  # fmt: skip
    body = {"message": "Overloaded", "originalStatusCode": 529, "originalMessage": "Overloaded"}
    return aws_event_frame(kinds, json.dumps(body).encode())


def _sse(event: Json) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _obj(value: object) -> Json:
    return cast("Json", value) if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return list(cast("Iterable[Any]", value)) if isinstance(value, list) else []


def _json(status: int, value: object, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, [json.dumps(value).encode()], headers=headers or {})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _text(content: object) -> str:
    """A content's countable text: a string, text blocks, and ``tool_result`` contents."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in map(_obj, _list(content)):
        if block.get("type") == "text" and isinstance(text := block.get("text"), str):
            parts.append(text)
        elif block.get("type") == "tool_result":
            parts.append(_text(block.get("content")))
    return "".join(parts)


def _structured(fmt: Json, echo: str) -> str | None:
    if fmt.get("type") != "json_schema":
        return None
    samples: dict[object, object] = {"string": echo, "integer": 1, "number": 1.0, "boolean": True}
    props = _obj(_obj(fmt.get("schema")).get("properties"))
    return json.dumps({k: samples.get(_obj(p).get("type")) for k, p in props.items()})


@dataclass(frozen=True)
class _Route:
    platform: str  # "direct" | "bedrock" | "vertex"
    count: bool  # a count_tokens call
    model: str | None = None  # from the URL (Bedrock, Vertex)
    stream: bool | None = None  # from the URL (Bedrock, Vertex)


def _route(path: str) -> _Route | None:
    route = path.partition("?")[0]
    if m := _DIRECT.match(route):
        return _Route("direct", count=m.group(1) is not None)
    if m := _BEDROCK.match(route):
        model = bedrock_model_name(unquote(m.group(1)))
        return _Route(
            "bedrock", count=False, model=model, stream=m.group(2) == "invoke-with-response-stream"
        )
    if (m := _VERTEX.match(route)) and m.group(2) in ("rawPredict", "streamRawPredict"):
        model = unquote(m.group(1))
        if model == "count-tokens":
            return _Route("vertex", count=True)
        return _Route(
            "vertex",
            count=False,
            model=model.partition("@")[0],
            stream=m.group(2) == "streamRawPredict",
        )
    return None


@dataclass
class _Turn:
    """One answer, before it is encoded as JSON, SSE or event-stream frames."""

    blocks: list[Json]
    pieces: list[list[str]]  # per block: the delta pieces that rebuild it
    stop_reason: str
    stop_sequence: str | None
    input_usage: Json  # input_tokens and the cache counts
    output_tokens: int = 0
    thinking_tokens: int | None = None
    stop_details: Json | None = None
    extra: Json = field(default_factory=dict[str, Any])  # extra fields on message_stop


class AnthropicBackend:
    """Computes the Messages API answers; holds the id counter and the cache. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = itertools.count(1)
        self._cached: set[str] = set()

    serves = staticmethod(serves)

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Reply:
        with self._lock:
            n = next(self._count)
        reply = self._handle(n, method, path, raw)
        return replace(reply, headers={"request-id": f"req_standin_{n}", **reply.headers})

    def _handle(self, n: int, method: str, path: str, raw: bytes) -> Reply:
        route = _route(path) if method == "POST" else None
        if route is None:
            return anthropic_error(404, "not_found_error", f"Not found: {method} {path}")
        try:
            body = _obj(json.loads(raw or b"{}"))
        except ValueError:
            return anthropic_error(400, "invalid_request_error", "Invalid JSON body")
        messages = [_obj(m) for m in _list(body.get("messages"))]
        text_in = "".join(_text(m.get("content")) for m in messages)
        if route.count:
            return _json(200, {"input_tokens": _tokens(_text(body.get("system")) + text_in)})
        model = route.model if route.model is not None else str(body.get("model") or "")
        stream = route.stream if route.stream is not None else bool(body.get("stream"))
        overloaded = model == "fail-error-event" and not stream  # a plain call is refused at once
        if failure := _FAILURES.get("fail-529" if overloaded else model):
            return anthropic_error(*failure)
        turn = self._turn(n, model, body, messages, text_in)
        return _render(n, model, turn, bedrock=route.platform == "bedrock", stream=stream)

    def _cache(self, system: object) -> tuple[Json, str]:
        """Cache counts for the system blocks marked ``cache_control``; the uncached text."""
        written = {"5m": 0, "1h": 0}
        read = 0
        plain: list[str] = [system] if isinstance(system, str) else []
        for block in map(_obj, _list(system)):
            text = _text([block])
            control = _obj(block.get("cache_control"))
            if not control:
                plain.append(text)
                continue
            with self._lock:
                seen = text in self._cached
                self._cached.add(text)
            if seen:
                read += _tokens(text)
            else:
                written["1h" if control.get("ttl") == "1h" else "5m"] += _tokens(text)
        usage = {
            "cache_creation_input_tokens": written["5m"] + written["1h"],
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": written["5m"],
                               "ephemeral_1h_input_tokens": written["1h"]},
        }  # fmt: skip
        return usage, "".join(plain)

    def _turn(self, n: int, model: str, body: Json, messages: list[Json], text_in: str) -> _Turn:
        cache, plain = self._cache(body.get("system"))
        users = [m for m in messages if m.get("role") == "user"]
        content = users[-1].get("content") if users else ""
        last = _text(content)
        answered = any(_obj(b).get("type") == "tool_result" for b in _list(content))
        turn = _Turn([], [], "end_turn", None, {"input_tokens": _tokens(plain + text_in), **cache})
        if _obj(body.get("thinking")).get("type") in ("enabled", "adaptive"):
            turn.blocks.append(
                {"type": "thinking", "thinking": THINKING_TEXT, "signature": SIGNATURE}
            )
            turn.pieces.append(_WORD.findall(THINKING_TEXT))
            turn.thinking_tokens = len(THINKING_TEXT.split())
        tools = [_obj(t) for t in _list(body.get("tools"))]
        if tools and "weather" in last.lower() and not answered:
            arguments = json.dumps(TOOL_INPUT)
            tool = {"type": "tool_use", "id": f"toolu_standin_{n}",
                    "name": str(tools[0].get("name") or ""), "input": TOOL_INPUT}  # fmt: skip
            turn.blocks.append(tool)
            turn.pieces.append(_WORD.findall(arguments))
            turn.stop_reason = "tool_use"
            turn.output_tokens = len(arguments.split()) + (turn.thinking_tokens or 0)
            return turn
        echo = " ".join(f"Echo: {last[:40]}".split())
        fmt = _obj(_obj(body.get("output_config")).get("format") or body.get("output_format"))
        text = _structured(fmt, echo) or echo
        stops = [s for s in _list(body.get("stop_sequences")) if isinstance(s, str) and s in text]
        if stops:
            turn.stop_sequence = min(stops, key=text.index)  # the earliest match
            text, turn.stop_reason = text[: text.index(turn.stop_sequence)], "stop_sequence"
        limit = body.get("max_tokens")
        if isinstance(limit, int) and 0 <= limit < len(text.split()):
            text, turn.stop_reason, turn.stop_sequence = (
                " ".join(text.split()[:limit]),
                "max_tokens",
                None,
            )
        if model == "refuse":
            turn.stop_reason = "refusal"
            turn.stop_details = {"type": "refusal", "category": None, "explanation": None}
        elif model == "pause":
            turn.stop_reason = "pause_turn"
        turn.blocks.append({"type": "text", "text": text})
        turn.pieces.append(_WORD.findall(text))
        turn.output_tokens = len(text.split()) + (turn.thinking_tokens or 0)
        return turn


def _output(turn: _Turn) -> Json:
    usage: Json = {"output_tokens": turn.output_tokens}
    if turn.thinking_tokens is not None:
        usage["output_tokens_details"] = {"thinking_tokens": turn.thinking_tokens}
    return usage


def _message(n: int, model: str, turn: _Turn) -> Json:
    return {"id": f"msg_standin_{n}", "type": "message", "role": "assistant", "model": model,
            "content": turn.blocks, "stop_reason": turn.stop_reason,
            "stop_sequence": turn.stop_sequence, "stop_details": turn.stop_details,
            "usage": {**turn.input_usage, **_output(turn), "service_tier": "standard"}}  # fmt: skip


def _block_events(index: int, block: Json, pieces: list[str]) -> list[Json]:
    kind = block["type"]
    at: Json = {"index": index}
    if kind == "thinking":
        start: Json = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in pieces]
    return [
        {"type": "content_block_start", **at, "content_block": start},
        *({"type": "content_block_delta", **at, "delta": d} for d in deltas),
        {"type": "content_block_stop", **at},
    ]


def _render(n: int, model: str, turn: _Turn, *, bedrock: bool, stream: bool) -> Reply:
    """The answer as JSON, SSE (direct, Vertex) or AWS event-stream frames (Bedrock)."""
    headers = {"x-amzn-requestid": f"standin-{n}"} if bedrock else {}
    if bedrock:
        turn.extra["amazon-bedrock-invocationMetrics"] = {
            "inputTokenCount": turn.input_usage["input_tokens"],
            "outputTokenCount": turn.output_tokens,
            "invocationLatency": FIRST_BYTE_LATENCY_MS + 10 * turn.output_tokens,
            "firstByteLatency": FIRST_BYTE_LATENCY_MS,
        }
    if stream:
        return _stream(n, model, turn, bedrock=bedrock, headers=headers)
    if bedrock:
        headers["x-amzn-bedrock-input-token-count"] = str(turn.input_usage["input_tokens"])
        headers["x-amzn-bedrock-output-token-count"] = str(turn.output_tokens)
    reply = _json(200, _message(n, model, turn), headers)
    if model == "fail-midstream":  # the body is cut short
        return replace(reply, chunks=[reply.body[:20]], abort=True)
    return reply


def _stream(n: int, model: str, turn: _Turn, *, bedrock: bool, headers: dict[str, str]) -> Reply:
    usage = {**turn.input_usage, "output_tokens": 1, "service_tier": "standard"}
    start: Json = {**_message(n, model, turn), "content": [], "stop_reason": None,
             "stop_sequence": None, "stop_details": None, "usage": usage}  # fmt: skip
    events: list[Json] = [{"type": "message_start", "message": start}]
    for index, (block, pieces) in enumerate(zip(turn.blocks, turn.pieces, strict=True)):
        events.extend(_block_events(index, block, pieces))
    if not bedrock:
        events.insert(2, {"type": "ping"})  # after the first content_block_start, as observed
    delta = {"stop_reason": turn.stop_reason, "stop_sequence": turn.stop_sequence,
             "stop_details": turn.stop_details}  # fmt: skip
    events.append({"type": "message_delta", "delta": delta, "usage": _output(turn)})
    events.append({"type": "message_stop", **turn.extra})
    deltas = (i for i, e in enumerate(events) if e["type"] == "content_block_delta")
    first = next(deltas, len(events) - 2)  # no deltas at all: cut before message_delta
    abort = False
    if model == "fail-midstream":
        events, abort = events[: first + 2], True
    encode = _chunk_frame if bedrock else _sse
    chunks = [encode(e) for e in events]
    if model == "fail-error-event":
        chunks = [*chunks[: first + 1], _error_frame() if bedrock else _sse(_OVERLOADED)]
    content_type = BEDROCK_STREAM_TYPE if bedrock else "text/event-stream"
    return Reply(200, chunks, content_type, headers, stream=True, abort=abort, words_at=first)
