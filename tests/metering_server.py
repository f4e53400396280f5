"""A real HTTP server on 127.0.0.1 standing in for the Revenium metering API.

Integration tests and benchmarks point ``REVENIUM_METERING_BASE_URL`` at it. It answers like
the API: 201 with a small JSON body, idempotent replays of a key already seen, and whatever
scripted failures a test asks for (``fail_next``, ``respond_with``), and it records every request
with its headers and parsed body, so tests can count distinct idempotency keys.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Response:
    status: int = 201
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class MeteringServer:
    """Start with ``with MeteringServer() as server:``; ``server.url`` is its base URL."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Request] = []
        self.accepted: dict[str, Any] = {}  # idempotency key -> body of the first 2xx
        self._script: deque[Response] = deque()
        self.responder: Callable[[Request], Response | None] | None = None
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
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                response = server._respond(request)
                payload = json.dumps(response.body).encode()
                self.send_response(response.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST  # noqa: N815 - the name http.server dispatches to

            def log_message(self, *args: Any) -> None:
                pass  # keep test output clean

        ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
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
