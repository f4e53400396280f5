"""A stand-in OpenAI-compatible HTTP server that answers deterministically.

Why it exists: ``revenium demo`` has to show real ``openai`` SDK calls being metered with no network
and no API key, and tests want the SDK to go through real sockets (keep-alive, chunked SSE, abrupt
disconnects), not only through a mock transport. It uses only the standard library, so the demo
needs nothing extra. :class:`Backend` computes the answers. The test fixtures also call it
in-process through an ``httpx2.MockTransport``, so the socket path and the in-process path behave
the same.

Counting rules (exact, so tests can assert numbers): input tokens = characters of the text // 4
(min 1). Output tokens = words of the reply, which is ``"Echo: "`` + the first 40 characters of the
last user text, with whitespace collapsed. The models ``fail-429``, ``fail-500`` and ``fail-400``
answer with OpenAI error JSON. ``fail-midstream`` sends the first chunk and two words, then drops
the connection. Paths may start with ``/v1``, with no prefix (compatible providers), or with Azure's
``/openai/...``. On Azure paths, chat, completions and responses report ``gpt-4o-2024-08-06``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from revenium.providers._anthropic_standin import AnthropicBackend
    from revenium.providers._google_standin import GoogleBackend

__all__ = [
    "AZURE_FIRST_CHUNK_HEADER",
    "AZURE_MODEL",
    "Backend",
    "Reply",
    "StandInServer",
    "error_reply",
    "form_fields",
]

AZURE_FIRST_CHUNK_HEADER = "x-standin-azure-first-chunk"  # "1": streams start like Azure's do
AZURE_MODEL = "gpt-4o-2024-08-06"
CREATED = 1_700_000_000
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
SPEECH_BYTES = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64\x00\x00\x00\x00"
TRANSCRIPT = "hello world"
IMAGE_OUTPUT_TOKENS = 272  # per generated image (gpt-image-*)
IMAGE_INPUT_TOKENS = 323  # for the input image of an edit (gpt-image-*)
TOOL_ARGUMENTS = '{"city":"Paris"}'
Json = dict[str, Any]
_FILTER = {k: {"filtered": False, "severity": "safe"} for k in ("hate", "sexual", "violence")}
_PROMPT_FILTERS: list[Json] = [{"prompt_index": 0, "content_filter_results": _FILTER}]  # Azure
_FAILURES: dict[str, tuple[int, str, str, str | None]] = {
    "fail-429": (429, "Rate limit reached", "requests", "rate_limit_exceeded"),
    "fail-500": (500, "The server had an error processing your request.", "server_error", None),
    "fail-400": (400, "Invalid 'messages'", "invalid_request_error", None),
}
_PREFIX = re.compile(r"^(?:/openai/deployments/[^/]+|/openai/v1|/openai|/v1)?(/.*)$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: ``chunks`` are sent one by one; ``abort`` hangs up after them."""

    status: int
    chunks: list[bytes]
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict[str, str])
    stream: bool = False
    abort: bool = False
    words_at: int = 0  # index of a stream's first word chunk (where fail-midstream cuts)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(frozen=True)
class _Call:
    n: int
    azure: bool
    first_chunk: bool


def _obj(value: object) -> Json:
    return cast("Json", value) if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return list(cast("Iterable[Any]", value)) if isinstance(value, list) else []


def _json(status: int, value: object) -> Reply:
    return Reply(status, [json.dumps(value).encode()])


def error_reply(status: int, message: str, kind: str, code: str | None) -> Reply:
    return _json(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})


def _sse(events: list[Json], *, named: bool = False) -> list[bytes]:
    """SSE frames: ``event:`` lines and no ``[DONE]`` for Responses, the reverse for chunks."""
    if named:
        return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
    return [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]


def _text(content: object) -> str:
    """The text of a message content: a string, or a list of parts that have ``text``."""
    if isinstance(content, str):
        return content
    return "".join(t for p in _list(content) if isinstance(t := _obj(p).get("text"), str))


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _echo(text: str) -> str:
    return " ".join(f"Echo: {text[:40]}".split())


def _pieces(words: list[str]) -> list[str]:
    return [w + " " for w in words[:-1]] + words[-1:]


def _served(body: Json, call: _Call) -> str:
    model = str(body.get("model") or "")
    return AZURE_MODEL if call.azure else model if _DATE.search(model) else f"{model}-2024-07-18"


def _limit(words: list[str], limit: object) -> tuple[list[str], bool]:
    """Truncate to ``limit`` words; the flag says it was cut (finish "length" / "incomplete")."""
    if isinstance(limit, int) and 0 <= limit < len(words):
        return words[:limit], True
    return words, False


def _usage(prompt: int, completion: int) -> Json:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}}  # fmt: skip


def _sample(prop: Json, echo: str) -> object:
    kinds = [prop.get("type"), *(_obj(o).get("type") for o in _list(prop.get("anyOf")))]
    kind = next((k for k in kinds if k not in (None, "null")), None)
    samples: dict[object, object] = {"string": echo, "integer": 1, "number": 1.0, "boolean": True}
    return samples.get(kind, [] if kind == "array" else {} if kind == "object" else None)


def _structured(fmt: object, echo: str) -> str | None:
    """JSON text for a ``json_object`` / ``json_schema`` format (chat or Responses shape)."""
    spec = _obj(fmt)
    if spec.get("type") == "json_object":
        return json.dumps({"answer": echo})
    if spec.get("type") != "json_schema":
        return None
    schema = _obj(
        spec["schema"] if "schema" in spec else _obj(spec.get("json_schema")).get("schema")
    )
    props = _obj(schema.get("properties"))
    return json.dumps({name: _sample(_obj(p), echo) for name, p in props.items()})


def form_fields(content_type: str, raw: bytes) -> dict[str, str]:
    """The non-file fields of a multipart/form-data body; tolerates anything."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    fields: dict[str, str] = {}
    for part in raw.split(b"--" + m.group(1).encode()) if m else []:
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'\bname="([^"]*)"', head)
        if name and b"filename=" not in head:
            fields[name.group(1).decode()] = value.removesuffix(b"\r\n").decode("utf-8", "replace")
    return fields


def _chunked(body: Json, call: _Call, events: list[Json], usage: Json, *, lead: int) -> Reply:
    """Chat/legacy SSE: a usage chunk only with include_usage; Azure's empty first chunk."""
    if _obj(body.get("stream_options")).get("include_usage"):
        events = [{**e, "usage": None} for e in events]
        events.append({**events[-1], "choices": [], "usage": usage})
    head: list[Json] = []
    if call.first_chunk:
        head.append({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                     "prompt_filter_results": _PROMPT_FILTERS})  # fmt: skip
    chunks = _sse(head + events)
    return Reply(200, chunks, "text/event-stream", stream=True, words_at=len(head) + lead)


class Backend:
    """Computes the replies; holds the id counter and the stored responses. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = itertools.count(1)
        self._responses: dict[str, Json] = {}

    def handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> Reply:
        with self._lock:
            n = next(self._count)
        reply = self._handle(n, method, path, {k.lower(): v for k, v in headers.items()}, raw)
        return replace(reply, headers={"x-request-id": f"req_standin_{n}", **reply.headers})

    def _handle(self, n: int, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        route = path.partition("?")[0]
        endpoint = m.group(1) if (m := _PREFIX.match(route)) else route
        call = _Call(n, route.startswith("/openai/"), headers.get(AZURE_FIRST_CHUNK_HEADER) == "1")
        if method == "GET" and endpoint.startswith("/responses/"):
            with self._lock:
                stored = self._responses.get(endpoint.removeprefix("/responses/"))
            if stored is None:
                return error_reply(404, "No response found", "invalid_request_error", None)
            return _json(200, stored)
        builders: dict[str, Callable[[Json, _Call], Reply]] = {
            "/chat/completions": self._chat,
            "/completions": self._completions,
            "/responses": self._response,
            "/embeddings": self._embeddings,
            "/images/generations": self._images,
            "/images/edits": self._images,
            "/audio/speech": lambda _body, _call: Reply(200, [SPEECH_BYTES], "audio/mpeg"),
            "/audio/transcriptions": self._transcription,
            "/audio/translations": self._transcription,
        }
        builder = builders.get(endpoint) if method == "POST" else None
        if builder is None:
            message = f"Invalid URL ({method} {path})"
            return error_reply(404, message, "invalid_request_error", "unknown_url")
        content_type = headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            body: Json = {"_form": True, **form_fields(content_type, raw)}
        else:
            try:
                body = _obj(json.loads(raw or b"{}"))
            except ValueError:
                return error_reply(400, "Invalid JSON body", "invalid_request_error", None)
        model = str(body.get("model") or "")
        if model in _FAILURES:
            return error_reply(*_FAILURES[model])
        reply = builder(body, call)
        if model == "fail-midstream":
            cut = reply.chunks[: reply.words_at + 2] if reply.stream else [reply.body[:20]]
            reply = replace(reply, chunks=cut, abort=True)
        return reply

    def _chat(self, body: Json, call: _Call) -> Reply:
        messages = [_obj(x) for x in _list(body.get("messages"))]
        users = [_text(x.get("content")) for x in messages if x.get("role") == "user"]
        last = users[-1] if users else ""
        tools = [_obj(t) for t in _list(body.get("tools"))]
        base = {"id": f"chatcmpl-standin-{call.n}", "created": CREATED,
                "model": _served(body, call), "system_fingerprint": "fp_standin"}  # fmt: skip
        message: Json = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if tools and "weather" in last.lower():
            name = str(_obj(tools[0].get("function")).get("name") or tools[0].get("name") or "")
            head = {"id": "call_1", "type": "function"}
            message["tool_calls"] = [
                {**head, "function": {"name": name, "arguments": TOOL_ARGUMENTS}}
            ]
            finish, completion = "tool_calls", _tokens(TOOL_ARGUMENTS)
            started = {"index": 0, **head, "function": {"name": name, "arguments": ""}}
            first: Json = {"role": "assistant", "content": None, "tool_calls": [started]}
            pieces = ('{"city":', '"Paris"}')
            deltas: list[Json] = [
                {"tool_calls": [{"index": 0, "function": {"arguments": a}}]} for a in pieces
            ]
        else:
            echo = _echo(last)
            text = _structured(body.get("response_format"), echo) or echo
            limit = body.get("max_completion_tokens", body.get("max_tokens"))
            words, cut = _limit(text.split(), limit)
            message["content"] = " ".join(words)
            finish, completion = ("length" if cut else "stop"), len(words)
            first = {"role": "assistant", "content": ""}
            deltas = [{"content": p} for p in _pieces(words)]
        usage = _usage(_tokens("".join(_text(x.get("content")) for x in messages)), completion)
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            result = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            if call.azure:
                choice["content_filter_results"] = _FILTER
                result["prompt_filter_results"] = _PROMPT_FILTERS
            return _json(200, result)

        def chunk(delta: Json, finish_reason: str | None = None) -> Json:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "object": "chat.completion.chunk", "choices": [choice]}

        events = [chunk(first), *map(chunk, deltas), chunk({}, finish)]
        return _chunked(body, call, events, usage, lead=1)

    def _completions(self, body: Json, call: _Call) -> Reply:
        prompt = body.get("prompt", "")
        prompts = [prompt] if isinstance(prompt, str) else [_text(p) for p in _list(prompt)]
        base = {"id": f"cmpl-standin-{call.n}", "object": "text_completion", "created": CREATED,
                "model": _served(body, call)}  # fmt: skip
        choices: list[Json] = []
        events: list[Json] = []
        for index, text in enumerate(prompts or [""]):
            words, cut = _limit(_echo(text).split(), body.get("max_tokens"))
            finish = "length" if cut else "stop"
            for piece, reason in [*((p, None) for p in _pieces(words)), ("", finish)]:
                choice = {"index": index, "text": piece, "logprobs": None, "finish_reason": reason}
                events.append({**base, "choices": [choice]})
            choices.append({**events[-1]["choices"][0], "text": " ".join(words)})
        completion = sum(len(str(c["text"]).split()) for c in choices)
        usage = _usage(_tokens("".join(prompts)), completion)
        if not body.get("stream"):
            return _json(200, {**base, "choices": choices, "usage": usage})
        return _chunked(body, call, events, usage, lead=0)

    def _response(self, body: Json, call: _Call) -> Reply:
        given = body.get("input", "")
        items = [_obj(x) for x in _list(given)]
        texts = [_text(x.get("content", x.get("output"))) for x in items]
        users = [t for x, t in zip(items, texts, strict=True) if x.get("role", "user") == "user"]
        echo = _echo(given if isinstance(given, str) else (users[-1] if users else ""))
        text = _structured(_obj(body.get("text")).get("format"), echo) or echo
        words, cut = _limit(text.split(), body.get("max_output_tokens"))
        text, rid = " ".join(words), f"resp_standin_{call.n}"
        status = "incomplete" if cut else "completed"
        part: Json = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item: Json = {"type": "message", "id": f"msg_standin_{call.n}", "status": status,
                      "role": "assistant", "content": [part]}  # fmt: skip
        tokens_in = _tokens(given if isinstance(given, str) else "".join(texts))
        usage = {"input_tokens": tokens_in, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": len(words), "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": tokens_in + len(words)}  # fmt: skip
        final: Json = {
            "id": rid, "object": "response", "created_at": CREATED, "status": status,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None, "error": None,
            "model": _served(body, call), "output": [item], "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": body.get("tools") or [], "usage": usage,
            "background": bool(body.get("background")), "service_tier": "default",
            "text": body.get("text") or {"format": {"type": "text"}},
        }  # fmt: skip
        with self._lock:
            self._responses[rid] = final  # GET /responses/{id} answers it, terminal at once
        pending: Json = {**final, "status": "in_progress", "incomplete_details": None,
                         "output": [], "usage": None}  # fmt: skip
        if not body.get("stream"):
            return _json(200, {**pending, "status": "queued"} if body.get("background") else final)
        seq = itertools.count()
        at = {"item_id": item["id"], "output_index": 0, "content_index": 0}

        def event(kind: str, **fields: object) -> Json:
            return {"type": f"response.{kind}", "sequence_number": next(seq), **fields}

        events = [
            event("created", response=pending),
            event("in_progress", response=pending),
            event("output_item.added", output_index=0,
                  item={**item, "status": "in_progress", "content": []}),
            event("content_part.added", **at, part={**part, "text": ""}),
            *(event("output_text.delta", **at, delta=p, logprobs=[]) for p in _pieces(words)),
            event("output_text.done", **at, text=text, logprobs=[]),
            event("content_part.done", **at, part=part),
            event("output_item.done", output_index=0, item=item),
            event(status, response=final),
        ]  # fmt: skip
        return Reply(200, _sse(events, named=True), "text/event-stream", stream=True, words_at=4)

    def _embeddings(self, body: Json, call: _Call) -> Reply:
        given = body.get("input", "")
        inputs = [given] if isinstance(given, str) else _list(given)
        if inputs and all(isinstance(x, int) for x in inputs):
            inputs = [inputs]  # a single input given as a token array
        dims = body["dimensions"] if isinstance(body.get("dimensions"), int) else 8
        data: list[Json] = []
        total = 0
        for index, value in enumerate(inputs):
            size = len(_list(value)) if isinstance(value, list) else len(str(value))
            total += max(1, size) if isinstance(value, list) else _tokens(str(value))
            vector: object = [round((i + 1) / 10 + size / 1000, 4) for i in range(dims)]
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dims}f", *_list(vector))).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        usage = {"prompt_tokens": total, "total_tokens": total}
        return _json(
            200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        )

    def _images(self, body: Json, call: _Call) -> Reply:
        model = str(body.get("model") or "dall-e-2")
        count = int(n) if (n := str(body.get("n") or 1)).isdigit() else 1
        fmt = body.get("response_format") or (
            "b64_json" if model.startswith("gpt-image") else "url"
        )
        url = f"https://standin.invalid/images/{call.n}"
        data = [{"b64_json": PNG_B64} if fmt == "b64_json" else {"url": f"{url}-{i}.png"}
                for i in range(count)]  # fmt: skip
        result: Json = {"created": CREATED, "data": data}
        if model.startswith("gpt-image"):
            text = _tokens(str(body.get("prompt") or ""))
            image = IMAGE_INPUT_TOKENS if body.get("_form") else 0  # an edit has an input image
            output = IMAGE_OUTPUT_TOKENS * count
            details = {"text_tokens": text, "image_tokens": image}
            result["usage"] = {"input_tokens": text + image, "output_tokens": output,
                               "total_tokens": text + image + output,
                               "input_tokens_details": details}  # fmt: skip
        return _json(200, result)

    def _transcription(self, body: Json, call: _Call) -> Reply:
        fmt = str(body.get("response_format") or "json")
        if fmt in ("text", "srt", "vtt"):
            return Reply(200, [TRANSCRIPT.encode()], "text/plain; charset=utf-8")
        result: Json = {"text": TRANSCRIPT, "usage": {"type": "duration", "seconds": 3}}
        if str(body.get("model") or "").startswith("gpt-4o"):
            details = {"audio_tokens": 14, "text_tokens": 0}
            result["usage"] = {"type": "tokens", "input_tokens": 14, "output_tokens": 2,
                               "total_tokens": 16, "input_token_details": details}  # fmt: skip
        if fmt == "verbose_json":
            result.update(language="english", duration=3.0, segments=[])
        return _json(200, result)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    standin: StandInServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # each SSE chunk leaves at once

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def _read_body(self) -> bytes:
        if "chunked" not in self.headers.get("transfer-encoding", "").lower():
            return self.rfile.read(int(self.headers.get("content-length") or 0))
        parts: list[bytes] = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)

    def _serve(self, method: str) -> None:
        server = self.server
        assert isinstance(server, _HTTPServer)
        raw = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        parsed: object = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw) if raw else None
        record = {"method": method, "path": self.path, "body": parsed, "headers": headers}
        server.standin.requests.append(record)
        standin = server.standin
        # Google first: Anthropic claims every /v1/projects/ path, Google none under anthropic/.
        backend: Backend | AnthropicBackend | GoogleBackend = standin.backend
        if standin.google.serves(self.path):
            backend = standin.google
        elif standin.anthropic.serves(self.path):
            backend = standin.anthropic
        reply = backend.handle(method, self.path, headers, raw)
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if not (reply.stream or reply.abort):
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in reply.chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if reply.abort:
            self.close_connection = True  # hang up without the terminating chunk
        else:
            self.wfile.write(b"0\r\n\r\n")


class StandInServer:
    """``with StandInServer() as server:``, then ``OpenAI(base_url=server.base_url, ...)``.

    It also answers the Anthropic Messages API routes (direct, Bedrock and Vertex shapes; see
    ``_anthropic_standin``) and Google's Gemini API and Vertex AI routes (see ``_google_standin``),
    so one loopback server serves every SDK: ``Anthropic(base_url=server.origin, ...)``, and
    ``genai.Client(..., http_options={"base_url": server.origin})``.
    """

    def __init__(self, *, port: int = 0) -> None:
        # Imported here: those modules build on this one's Reply.
        from revenium.providers._anthropic_standin import AnthropicBackend  # noqa: PLC0415
        from revenium.providers._google_standin import GoogleBackend  # noqa: PLC0415

        self.requests: list[dict[str, Any]] = []
        self.backend = Backend()
        self.anthropic: AnthropicBackend = AnthropicBackend()
        self.google: GoogleBackend = GoogleBackend()
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StandInServer:
        if self._httpd is None:
            httpd = _HTTPServer(("127.0.0.1", self._port), _Handler)
            httpd.standin = self
            self._port = httpd.server_address[1]
            self._thread = threading.Thread(
                target=httpd.serve_forever, args=(0.05,), name="openai-standin", daemon=True
            )  # a short poll interval keeps stop() fast
            self._httpd = httpd
            self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread, self._httpd, self._thread = self._httpd, self._thread, None, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def origin(self) -> str:
        """The server root: the ``base_url`` for Anthropic and Bedrock clients (Vertex: + /v1)."""
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
