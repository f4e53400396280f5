"""A real HTTP server on 127.0.0.1 standing in for the Revenium metering API.

Integration tests and benchmarks point ``REVENIUM_METERING_BASE_URL`` at it. It answers like
the API: 201 with a small JSON body, idempotent replays of a key already seen, and whatever
scripted failures a test asks for (``fail_next``, ``respond_with``), and it records every request
with its headers and parsed body, so tests can count distinct idempotency keys.

It also serves the cost-control rule feed (``GET /v2/api/ai/enforcement-rules/{teamId}``):
``serve_rules`` sets a team's feed (204, no rules, until one is set), ``script_rules`` queues
one-off answers (a 503 with ``Retry-After``, a malformed body), ``rules_responder`` decides
per request (it may block, to hold an answer back). Feed requests are recorded apart, in
``rule_requests``, so they never count as metering requests; ``wait_for_rule_requests`` waits
for them without sleeping for luck.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

RULES_PATH = "/v2/api/ai/enforcement-rules/"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    method: str = "POST"
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)

    @property
    def team(self) -> str | None:
        """The (unquoted) team id of a rule-feed request."""
        if not self.path.startswith(RULES_PATH):
            return None
        return unquote(self.path[len(RULES_PATH) :].split("?", 1)[0])


@dataclass
class Response:
    status: int = 201
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is instead of ``body`` as JSON (a body that is not JSON)
    drop: bool = False  # close the connection without answering (the client sees it hang up)

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.status == 204:
            return b""
        return json.dumps(self.body).encode()


class MeteringServer:
    """Start with ``with MeteringServer() as server:``; ``server.url`` is its base URL."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Request] = []
        self.accepted: dict[str, Any] = {}  # idempotency key -> body of the first 2xx
        self._script: deque[Response] = deque()
        self.responder: Callable[[Request], Response | None] | None = None
        # The rule feed: its own requests, answers per team (None: any team) and script.
        self.rule_requests: list[Request] = []
        self.rules: dict[str | None, Response] = {}
        self.rules_responder: Callable[[Request], Response | None] | None = None
        self._rules_script: deque[Response] = deque()
        self._rules_arrived = threading.Condition()
        self._lock = threading.Lock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> MeteringServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                request = Request(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.command
                )
                self._send(server._respond(request))

            def do_GET(self) -> None:
                if not self.path.startswith(RULES_PATH):
                    self.do_POST()  # as before: any other GET is answered like a POST
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._send(server._respond_rules(Request(self.path, headers, None, "GET")))

            def _send(self, response: Response) -> None:
                if response.drop:
                    self.close_connection = True
                    return
                payload = response.payload()
                self.send_response(response.status)
                if response.status != 204:
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass  # keep test output clean

        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        # A short poll interval: stop() returns within 10 ms instead of half a second.
        threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: clients now get connection errors (the API is "down")."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> MeteringServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- behaviour -----------------------------------------------------------------
    def fail_next(self, count: int, status: int = 503, **headers: str) -> None:
        """Answer the next ``count`` requests with ``status`` (and headers such as Retry-After)."""
        with self._lock:
            for _ in range(count):
                self._script.append(Response(status, {"error": f"scripted {status}"}, headers))

    def _respond(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            scripted = self._script.popleft() if self._script else None
        if scripted is None and self.responder is not None:
            scripted = self.responder(request)
        if scripted is not None:
            return scripted
        key = request.headers.get("idempotency-key", "")
        with self._lock:
            if key in self.accepted and self.accepted[key] != request.body:
                return Response(409, {"error": "idempotency_key_mismatch"})
            self.accepted.setdefault(key, request.body)
        return Response(201, {"id": key, "resourceType": "ai-completion"})

    # -- the rule feed -----------------------------------------------------------------
    def serve_rules(
        self, body: Any, *, team: str | None = None, status: int = 200, **headers: str
    ) -> None:
        """Answer feed requests (for ``team``, or any team) with ``body`` from now on."""
        with self._lock:
            self.rules[team] = Response(status, body, headers)

    def no_rules(self, team: str | None = None) -> None:
        """Answer 204 No Content: the team has no rules in force."""
        with self._lock:
            self.rules[team] = Response(204)

    def script_rules(self, *responses: Response) -> None:
        """Answer the next feed requests, one each, with ``responses`` (then as before)."""
        with self._lock:
            self._rules_script.extend(responses)

    def fail_rules_next(self, count: int, status: int = 503, **headers: str) -> None:
        """Answer the next ``count`` feed requests with ``status`` (and e.g. Retry-After)."""
        self.script_rules(
            *(Response(status, {"error": f"scripted {status}"}, headers) for _ in range(count))
        )

    def _respond_rules(self, request: Request) -> Response:
        with self._lock:
            scripted = self._rules_script.popleft() if self._rules_script else None
        with self._rules_arrived:
            self.rule_requests.append(request)
            self._rules_arrived.notify_all()
        if scripted is None and self.rules_responder is not None:
            scripted = self.rules_responder(request)
        if scripted is not None:
            return scripted
        with self._lock:
            answer = self.rules.get(request.team, self.rules.get(None))
        return answer if answer is not None else Response(204)

    def wait_for_rule_requests(
        self, count: int, *, team: str | None = None, timeout: float = 10.0
    ) -> list[Request]:
        """Wait until ``count`` feed requests (for ``team``, or any) arrived; return them all.

        Raises ``TimeoutError`` when they did not arrive within ``timeout`` seconds.
        """

        def arrived() -> list[Request]:
            return [r for r in self.rule_requests if team is None or r.team == team]

        with self._rules_arrived:
            if not self._rules_arrived.wait_for(lambda: len(arrived()) >= count, timeout):
                seen = len(arrived())
                raise TimeoutError(f"{seen} of {count} rule-feed requests arrived in {timeout}s")
            return arrived()

    # -- assertions ------------------------------------------------------------------
    def bodies(self, path: str | None = None) -> list[Any]:
        """The accepted bodies (one per idempotency key), optionally for one endpoint."""
        with self._lock:
            keys = [r.headers.get("idempotency-key") for r in self.requests]
            by_key = {
                r.headers.get("idempotency-key"): r
                for r in self.requests
                if path is None or r.path.endswith(path)
            }
        return [by_key[k].body for k in dict.fromkeys(keys) if k in by_key and k in self.accepted]
