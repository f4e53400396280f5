"""A deterministic stand-in for Google's generative APIs: the Gemini API and Vertex AI.

Why it exists: the ``google-genai`` adapter must be tested against the real SDK, offline, in each
mode the SDK has: the Gemini API (``api_key``), Vertex AI (project and location) and Vertex
express mode (``vertexai=True`` with an ``api_key``). :class:`GoogleBackend` answers all three. The
test fixtures call it in-process through an ``httpx2.MockTransport``, and ``StandInServer`` (in
``_openai_standin``) calls it over a loopback socket. It uses only the standard library.

Routes, under any version segment (``v1``, ``v1beta``, ``v1beta1``, ``v1alpha``) and any resource
prefix: ``models/{m}`` (Gemini API), ``projects/{p}/locations/{l}/publishers/{pub}/models/{m}``
(Vertex) or ``publishers/{pub}/models/{m}`` (Vertex express). ``{m}`` is the model named below.

- ``:generateContent``; ``:streamGenerateContent?alt=sse`` (``data: {json}`` frames, CRLF line
  ends; without ``alt=sse``, the same chunks as one JSON array); ``:countTokens`` answers
  ``{"totalTokens": tokens(prompt text)}``.
- ``:batchEmbedContents``, ``:embedContent``, and ``:predict`` for any model not named
  ``imagen-*``: embeddings (below). ``:predict`` for ``imagen-*``: images.
- ``:predictLongRunning`` starts a video operation; ``GET .../operations/{id}`` (the Gemini API)
  and ``:fetchPredictOperation`` with ``{"operationName": name}`` (Vertex) poll it.
- Anything else: a Google ``404 NOT_FOUND`` error.

Counting rules (exact, so tests can compute every number):

- ``tokens(s) = max(1, len(s) // 4)``. Field names are read in camelCase or snake_case (the SDK
  sends ``thinkingConfig``'s fields as ``thinking_budget`` / ``include_thoughts``).
- Prompt text: the ``systemInstruction`` text, then every ``text`` part of every content (user and
  model turns, thoughts included) and ``json.dumps(part.functionResponse.response)`` for every
  ``functionResponse`` part, concatenated with no separator. ``functionCall`` parts and tool
  declarations are not counted. ``promptTokenCount = tokens(prompt text)``, plus the cached tokens.
- ``cachedContent`` (a cache name) in the request: ``cachedContentTokenCount = 4``, and those 4
  are also in ``promptTokenCount`` (the Gemini API's prompt count includes cached tokens).
- A ``googleSearch`` tool: ``toolUsePromptTokenCount = 7`` (not in ``promptTokenCount``).
- The last user text: the text parts of the last content with role ``user`` (or no role) that has
  a text part. A content holding only a ``functionResponse`` is skipped.
- Reply: ``"Echo: "`` + the first 40 characters of the last user text, whitespace collapsed.
  ``candidatesTokenCount`` = its words. A positive ``generationConfig.maxOutputTokens`` below the
  word count keeps the first ``maxOutputTokens`` words: ``finishReason="MAX_TOKENS"``, else
  ``"STOP"``. Thinking is not charged against ``maxOutputTokens``.
- Function calling: ``functionDeclarations`` in ``tools``, the last user text mentions "weather"
  (any case), and no content carries a ``functionResponse`` part (so tool loops end): the reply is
  the one part ``{"functionCall": {"name": <first declared name>, "args": {"city": "Paris"}}}``,
  ``finishReason="STOP"``, ``candidatesTokenCount = words(json.dumps(args))`` = 2.
- Thinking: ``generationConfig.thinkingConfig`` with ``thinkingBudget`` > 0 or -1 (dynamic), or
  ``includeThoughts`` true: ``thoughtsTokenCount = 3`` (the words of ``"Let me think."``), not
  part of ``candidatesTokenCount``. With ``includeThoughts``, the reply starts with the part
  ``{"text": "Let me think.", "thought": true}``.
- ``totalTokenCount = promptTokenCount + candidatesTokenCount + thoughtsTokenCount +
  toolUsePromptTokenCount``. Absent counts are left out of ``usageMetadata``; Vertex routes add
  ``"trafficType": "ON_DEMAND"``.
- Every generateContent answer and stream chunk has ``modelVersion`` = the model in the URL and
  ``responseId = "resp-standin-{n}"``, ``n`` counting the requests this backend has handled (any
  route, failures and polls included).
- Streams: one chunk per reply word (word + trailing space, the last without), preceded by a chunk
  holding only the thought part when ``includeThoughts``. A function call is one chunk (after the
  thought chunk, if any); a blocked answer is one chunk, without content. Every chunk's
  ``usageMetadata`` is the running total: the prompt, cached, tool-use and thought counts from the
  first chunk on; ``candidatesTokenCount`` = the candidate tokens sent so far, left out of the
  first chunk unless it is also the last. Only the last chunk has ``finishReason``.

Models: ``finish-SAFETY``, ``finish-RECITATION``, ``finish-BLOCKLIST``,
``finish-PROHIBITED_CONTENT`` and ``finish-SPII`` answer a candidate with that ``finishReason``, no
content and ``candidatesTokenCount = 0`` (thoughts still counted).
``finish-MALFORMED_FUNCTION_CALL`` and ``finish-OTHER`` answer the normal reply with that
``finishReason``. ``fail-400``, ``fail-403``,
``fail-429``, ``fail-500`` and ``fail-503`` answer, on every route, Google's error JSON
``{"error": {"code", "message", "status"}}`` with that HTTP status (429 adds a ``RetryInfo`` of
``0s``). ``fail-midstream``: a stream sends the thought chunk, if any, and two word chunks, then
hangs up; other calls get a body cut after 20 bytes.

Embeddings: a vector has ``outputDimensionality`` values (8 by default), value ``i`` being
``round((i + 1) / 10 + len(text) / 1000, 4)``. The Gemini API (every ``embed_content`` goes to
``:batchEmbedContents``): ``{"embeddings": [{"values"}]}`` per request, and no usage, as the real
API. Vertex ``:embedContent`` (``gemini-*`` and ``*-maas`` models, one content):
``{"embedding": {"values"}, "usageMetadata": {"promptTokenCount", "totalTokenCount"},
"truncated": false}`` with ``tokens(text)``; Vertex ``:batchEmbedContents`` (several contents):
one embedding per request, usage = the sum of ``tokens(text)``. Vertex ``:predict``
(``text-embedding-*`` and the like): per instance ``{"embeddings": {"values", "statistics":
{"token_count": tokens(content), "truncated": false}}}``, and ``metadata.billableCharacterCount``
= the characters of all contents (spaces included).

Images (``imagen-*``): ``parameters.sampleCount`` predictions (4 when absent, Imagen's default),
each ``{"bytesBase64Encoded": base64(IMAGE_BYTES), "mimeType"}`` (``outputOptions.mimeType``, else
``image/png``). A prompt containing "blocked" filters the last image: with
``parameters.includeRaiReason`` it becomes ``{"raiFilteredReason": RAI_REASON}``, otherwise it is
left out, as the real API does. No usage.

Videos (``veo-*``): ``:predictLongRunning`` answers
``{"name": "<resource>/operations/op-standin-{n}"}``, ``<resource>`` being the URL's resource
(``models/{m}`` on the Gemini API, ``projects/{p}/locations/{l}/publishers/google/models/{m}`` on
Vertex). The first poll of an operation answers ``{"name"}`` (not done; the real API leaves
``done`` out), every later poll ``done: true`` with ``parameters.sampleCount`` videos (1 when
absent): on the Gemini API ``response.generateVideoResponse.generatedSamples[{"video": {"uri"}}]``,
on Vertex ``response.videos[{"gcsUri", "mimeType": "video/mp4"}]`` under ``parameters.storageUri``
(default ``gs://standin-bucket/videos``). A prompt containing "fail" makes the done operation carry
``error: {"code": 3, "message"}`` instead. An unknown operation is a 404.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast
from urllib.parse import unquote

from revenium.providers._openai_standin import Reply

__all__ = [
    "CACHED_TOKENS",
    "DEFAULT_IMAGES",
    "EMBEDDING_DIMS",
    "IMAGE_BYTES",
    "RAI_REASON",
    "SEARCH_TOOL_TOKENS",
    "THINKING_TEXT",
    "THOUGHT_TOKENS",
    "TOOL_ARGS",
    "GoogleBackend",
    "google_error",
    "serves",
]

THINKING_TEXT = "Let me think."
THOUGHT_TOKENS = len(THINKING_TEXT.split())  # 3
TOOL_ARGS: dict[str, Any] = {"city": "Paris"}
CACHED_TOKENS = 4
SEARCH_TOOL_TOKENS = 7
EMBEDDING_DIMS = 8
DEFAULT_IMAGES = 4
IMAGE_BYTES = b"\x89PNG\r\n\x1a\nstandin-image"
RAI_REASON = "Your current safety filter threshold filtered out 1 generated image."
VIDEO_BUCKET = "gs://standin-bucket/videos"
Json = dict[str, Any]
_FAILURES: dict[str, tuple[int, str, str]] = {
    "fail-400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "fail-403": (403, "PERMISSION_DENIED", "Permission denied on resource project."),
    "fail-429": (429, "RESOURCE_EXHAUSTED", "Resource exhausted. Please try again later."),
    "fail-500": (500, "INTERNAL", "An internal error has occurred."),
    "fail-503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
}
_BLOCKED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"})
_FINISHES = _BLOCKED | {"MALFORMED_FUNCTION_CALL", "OTHER"}
_ROUTE = re.compile(
    r"^/v1\w*/(?P<resource>(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?"
    r"models/(?P<model>[^/:]+))(?::(?P<verb>\w+)|/operations/(?P<op>[^/]+))$"
)


def serves(path: str) -> bool:
    """Whether ``path`` is a Google route: anything under ``/v1beta``, ``/v1beta1`` or
    ``/v1alpha``, and ``/v1`` model routes, except Anthropic's (``publishers/anthropic``)."""
    route = path.partition("?")[0]
    if "/publishers/anthropic/" in route:
        return False
    return route.startswith(("/v1alpha/", "/v1beta/", "/v1beta1/")) or bool(_ROUTE.match(route))


def google_error(status: int, kind: str, message: str) -> Reply:
    """An error answer in Google's shape; a 429 carries a zero ``RetryInfo``."""
    error: Json = {"code": status, "message": message, "status": kind}
    if status == 429:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0s"}
        ]
    return _json(status, {"error": error})


def _json(status: int, value: object) -> Reply:
    return Reply(status, [json.dumps(value).encode()])


def _obj(value: object) -> Json:
    return cast("Json", value) if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return list(cast("Iterable[Any]", value)) if isinstance(value, list) else []


def _get(obj: Json, name: str) -> Any:
    """Field ``name`` (camelCase) or its snake_case twin."""
    if name in obj:
        return obj[name]
    return obj.get(re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), name))


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _pieces(words: list[str]) -> list[str]:
    return [w + " " for w in words[:-1]] + words[-1:]


def _vector(text: str, dims: object) -> list[float]:
    size = dims if isinstance(dims, int) and dims > 0 else EMBEDDING_DIMS
    return [round((i + 1) / 10 + len(text) / 1000, 4) for i in range(size)]


def _parts(content: object) -> list[Json]:
    return [_obj(p) for p in _list(_obj(content).get("parts"))]


def _text(content: object) -> str:
    """A content's text parts (a plain string counts as the text)."""
    if isinstance(content, str):
        return content
    return "".join(t for p in _parts(content) if isinstance(t := p.get("text"), str))


def _countable(content: object) -> str:
    """Text parts, and each ``functionResponse`` as ``json.dumps`` of its ``response``."""
    if isinstance(content, str):
        return content
    pieces: list[str] = []
    for part in _parts(content):
        if isinstance(text := part.get("text"), str):
            pieces.append(text)
        elif (answer := _get(part, "functionResponse")) is not None:
            pieces.append(json.dumps(_obj(answer).get("response")))
    return "".join(pieces)


@dataclass(frozen=True)
class _Call:
    n: int
    resource: str  # the URL's resource, e.g. "models/gemini-2.5-flash"
    model: str
    verb: str  # "" for an operation GET
    body: Json
    query: str

    @property
    def vertex(self) -> bool:
        return self.resource.startswith(("projects/", "publishers/"))


@dataclass
class _Operation:
    vertex: bool
    videos: int
    fail: bool
    storage: str
    polls: int = 0


@dataclass
class _Turn:
    """One generateContent answer before it is encoded as JSON or SSE chunks."""

    chunks: list[list[Json]]  # the parts of each stream chunk
    counts: list[int]  # candidate tokens in each chunk
    finish: str
    usage: Json  # promptTokenCount and the other non-candidate counts
    blocked: bool = False
    extra: int = 0  # non-candidate tokens in totalTokenCount
    parts: list[Json] = field(default_factory=list[Json])


class GoogleBackend:
    """Computes Gemini API and Vertex AI answers; holds the id counter and the video operations.

    Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = itertools.count(1)
        self._operations: dict[str, _Operation] = {}

    serves = staticmethod(serves)

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Reply:
        with self._lock:
            n = next(self._count)
        route, _, query = path.partition("?")
        m = _ROUTE.match(route)
        if m is None or method != ("GET" if m["op"] else "POST"):
            return google_error(404, "NOT_FOUND", f"Not found: {method} {path}")
        try:
            body = _obj(json.loads(raw or b"{}"))
        except ValueError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        model = unquote(m["model"])
        if failure := _FAILURES.get(model):
            return google_error(*failure)
        call = _Call(n, m["resource"], model, m["verb"] or "", body, query)
        if m["op"]:
            return self._poll(f"{m['resource']}/operations/{m['op']}")
        reply = self._dispatch(call)
        if model == "fail-midstream":
            cut = reply.chunks[: reply.words_at + 2] if reply.stream else [reply.body[:20]]
            return replace(reply, chunks=cut, abort=True)
        return reply

    def _dispatch(self, call: _Call) -> Reply:
        verb = "images" if call.verb == "predict" and call.model.startswith("imagen") else call.verb
        builders: dict[str, Callable[[_Call], Reply]] = {
            "generateContent": lambda c: _render(c, _turn(c), stream=False),
            "streamGenerateContent": lambda c: _render(c, _turn(c), stream=True),
            "countTokens": lambda c: _json(200, {"totalTokens": _tokens(_prompt(c.body))}),
            "images": _images,
            "predict": _embeddings,
            "embedContent": _embeddings,
            "batchEmbedContents": _embeddings,
            "predictLongRunning": self._start,
            "fetchPredictOperation": lambda c: self._poll(str(_get(c.body, "operationName"))),
        }
        if (builder := builders.get(verb)) is None:
            return google_error(404, "NOT_FOUND", f"Unknown method :{call.verb}")
        return builder(call)

    def _start(self, call: _Call) -> Reply:
        instances = _list(call.body.get("instances"))
        instance = _obj(instances[0] if instances else None)
        params = _obj(call.body.get("parameters"))
        count = _get(params, "sampleCount")
        name = f"{call.resource}/operations/op-standin-{call.n}"
        storage = str(_get(params, "storageUri") or VIDEO_BUCKET).rstrip("/")
        fail = "fail" in str(instance.get("prompt") or "").lower()
        videos = count if isinstance(count, int) and count > 0 else 1
        with self._lock:
            self._operations[name] = _Operation(call.vertex, videos, fail, storage)
        return _json(200, {"name": name})

    def _poll(self, name: str) -> Reply:
        with self._lock:
            op = self._operations.get(name)
            if op is not None:
                op.polls += 1
        if op is None:
            return google_error(404, "NOT_FOUND", f"Operation {name} not found.")
        if op.polls == 1:
            return _json(200, {"name": name})
        if op.fail:
            error = {"code": 3, "message": "The video could not be generated (stand-in failure)."}
            return _json(200, {"name": name, "done": True, "error": error})
        op_id = name.rpartition("/")[2]
        if op.vertex:
            videos = [{"gcsUri": f"{op.storage}/{op_id}/sample_{i}.mp4", "mimeType": "video/mp4"}
                      for i in range(op.videos)]  # fmt: skip
            response: Json = {
                "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                "raiMediaFilteredCount": 0,
                "videos": videos,
            }
        else:
            url = "https://generativelanguage.googleapis.com/v1beta/files"
            samples = [{"video": {"uri": f"{url}/{op_id}-{i}:download?alt=media"}}
                       for i in range(op.videos)]  # fmt: skip
            response = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                "PredictLongRunningResponse",
                "generateVideoResponse": {"generatedSamples": samples},
            }
        return _json(200, {"name": name, "done": True, "response": response})


def _prompt(body: Json) -> str:
    system = _get(body, "systemInstruction")
    contents = _list(body.get("contents"))
    return _countable(system) + "".join(_countable(c) for c in contents)


def _last_user_text(contents: list[Json]) -> str:
    users = [c for c in contents if c.get("role", "user") == "user"]
    texts = [c for c in users if any(isinstance(p.get("text"), str) for p in _parts(c))]
    return _text(texts[-1]) if texts else ""


def _turn(call: _Call) -> _Turn:
    body = call.body
    contents = [_obj(c) for c in _list(body.get("contents"))]
    config = _obj(_get(body, "generationConfig"))
    tools = [_obj(t) for t in _list(body.get("tools"))]
    usage: Json = {"promptTokenCount": _tokens(_prompt(body))}
    if _get(body, "cachedContent"):
        usage["promptTokenCount"] += CACHED_TOKENS
        usage["cachedContentTokenCount"] = CACHED_TOKENS
    extra = 0
    if any(_get(t, "googleSearch") is not None for t in tools):
        usage["toolUsePromptTokenCount"] = extra = SEARCH_TOOL_TOKENS
    thinking = _obj(_get(config, "thinkingConfig"))
    budget = _get(thinking, "thinkingBudget")
    include = _get(thinking, "includeThoughts") is True
    if include or (isinstance(budget, int) and (budget > 0 or budget == -1)):
        usage["thoughtsTokenCount"] = THOUGHT_TOKENS
        extra += THOUGHT_TOKENS
    turn = _Turn([], [], "STOP", usage, extra=extra)
    finish = call.model.removeprefix("finish-")
    if finish in _BLOCKED:
        turn.finish, turn.blocked = finish, True
        turn.chunks, turn.counts = [[]], [0]
        return turn
    if include:
        thought = {"text": THINKING_TEXT, "thought": True}
        turn.parts.append(thought)
        turn.chunks.append([thought])
        turn.counts.append(0)
    last = _last_user_text(contents)
    names = [str(_obj(d).get("name") or "") for t in tools
             for d in _list(_get(t, "functionDeclarations"))]  # fmt: skip
    answered = any(_get(p, "functionResponse") is not None for c in contents for p in _parts(c))
    if names and "weather" in last.lower() and not answered:
        part = {"functionCall": {"name": names[0], "args": TOOL_ARGS}}
        turn.parts.append(part)
        turn.chunks.append([part])
        turn.counts.append(len(json.dumps(TOOL_ARGS).split()))
        return turn
    words = f"Echo: {last[:40]}".split()
    limit = _get(config, "maxOutputTokens")
    if isinstance(limit, int) and 0 < limit < len(words):
        words, turn.finish = words[:limit], "MAX_TOKENS"
    if finish in _FINISHES:
        turn.finish = finish
    turn.parts.append({"text": " ".join(words)})
    turn.chunks.extend([{"text": p}] for p in _pieces(words))
    turn.counts.extend([1] * len(words))
    return turn


def _answer(
    call: _Call, turn: _Turn, parts: list[Json], candidates: int | None, *, last: bool
) -> Json:
    candidate: Json = {"index": 0}
    if not turn.blocked:
        candidate["content"] = {"role": "model", "parts": parts}
    if last:
        candidate["finishReason"] = turn.finish
    usage = dict(turn.usage)
    if candidates is not None:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = usage["promptTokenCount"] + (candidates or 0) + turn.extra
    if call.vertex:
        usage["trafficType"] = "ON_DEMAND"
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": call.model,
            "responseId": f"resp-standin-{call.n}"}  # fmt: skip


def _render(call: _Call, turn: _Turn, *, stream: bool) -> Reply:
    if not stream:
        return _json(200, _answer(call, turn, turn.parts, sum(turn.counts), last=True))
    events: list[Json] = []
    sent = 0
    for i, (parts, count) in enumerate(zip(turn.chunks, turn.counts, strict=True)):
        sent += count
        last = i == len(turn.chunks) - 1
        events.append(_answer(call, turn, parts, sent if i or last else None, last=last))
    words_at = 1 if turn.chunks[0][:1] and turn.chunks[0][0].get("thought") else 0
    if "alt=sse" not in call.query.split("&"):
        return Reply(200, [json.dumps(events).encode()], words_at=words_at)
    chunks = [f"data: {json.dumps(e)}\r\n\r\n".encode() for e in events]
    return Reply(200, chunks, "text/event-stream", stream=True, words_at=words_at)


def _embeddings(call: _Call) -> Reply:
    body, verb = call.body, call.verb
    if verb == "predict":
        instances = [_obj(i) for i in _list(body.get("instances"))]
        dims = _get(_obj(body.get("parameters")), "outputDimensionality")
        texts = [str(i.get("content") or "") for i in instances]
        predictions = [{"embeddings": {"values": _vector(t, dims),
                        "statistics": {"token_count": _tokens(t), "truncated": False}}}
                       for t in texts]  # fmt: skip
        metadata = {"billableCharacterCount": sum(len(t) for t in texts)}
        return _json(200, {"predictions": predictions, "metadata": metadata})
    requests = [_obj(r) for r in _list(body.get("requests"))] if verb != "embedContent" else [body]
    embeddings: list[Json] = []
    total = 0
    for request in requests:
        text = _text(request.get("content"))
        config = _obj(_get(request, "embedContentConfig"))
        dims = _get(request, "outputDimensionality") or _get(config, "outputDimensionality")
        embeddings.append({"values": _vector(text, dims)})
        total += _tokens(text)
    if verb == "embedContent":
        result: Json = {"embedding": embeddings[0]}
    else:
        result = {"embeddings": embeddings}
    if call.vertex:  # the Gemini API reports no usage for embeddings
        result["usageMetadata"] = {"promptTokenCount": total, "totalTokenCount": total}
        if verb == "embedContent":
            result["truncated"] = False
    return _json(200, result)


def _images(call: _Call) -> Reply:
    body = call.body
    instances = [_obj(i) for i in _list(body.get("instances"))]
    prompt = str(instances[0].get("prompt") or "") if instances else ""
    params = _obj(body.get("parameters"))
    count = _get(params, "sampleCount")
    count = count if isinstance(count, int) and count > 0 else DEFAULT_IMAGES
    mime = str(_get(_obj(_get(params, "outputOptions")), "mimeType") or "image/png")
    image = {"bytesBase64Encoded": base64.b64encode(IMAGE_BYTES).decode(), "mimeType": mime}
    predictions: list[Json] = [dict(image) for _ in range(count)]
    if "blocked" in prompt.lower():
        predictions.pop()
        if _get(params, "includeRaiReason") is True:
            predictions.append({"raiFilteredReason": RAI_REASON})
    return _json(200, {"predictions": predictions} if predictions else {})
