"""Drive the real ``google-genai`` SDK offline: mock transports backed by the Google stand-in.

A handler answers exactly as ``StandInServer`` does on its Google routes (both call
:class:`GoogleBackend`), in-process through ``httpx2.MockTransport``. One handler serves the three
client modes: the Gemini API (``gemini_client``), Vertex AI with a project, a location and fake
credentials (``vertex_client``) and Vertex express mode (``vertex_express_client``); the URL tells
them apart. Every factory passes both a sync and an async ``httpx2`` client, so ``client.aio``
never falls back to aiohttp, and sets ``NO_RETRY`` (one attempt: failure models fail at once;
pass ``retry_options=FAST_RETRY`` to test retries without sleeping). Without a handler, each
client gets a fresh backend, so ``responseId`` numbers start at 1 for it.

The SDK reads ``GOOGLE_GENAI_API_VERSION`` and friends (``GOOGLE_ENV``) from the environment; tests
that assert URLs should clear them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import google.auth.credentials
import httpx2
from google import genai
from google.genai import types
from standin_transport import Handler, backend_handler

from revenium.providers._google_standin import (
    CACHED_TOKENS,
    SEARCH_TOOL_TOKENS,
    THOUGHT_TOKENS,
    GoogleBackend,
)
from revenium.providers._openai_standin import StandInServer

__all__ = [
    "API_KEY",
    "EXPRESS_URL",
    "FAST_RETRY",
    "GEMINI_URL",
    "GOOGLE_ENV",
    "LOCATION",
    "MODEL",
    "MODES",
    "NO_RETRY",
    "PROJECT",
    "TOKEN",
    "USER_TEXT",
    "VERTEX_URL",
    "WEATHER_REPORT",
    "WEATHER_TEXT",
    "FakeCredentials",
    "Handler",
    "Recorded",
    "ServedClient",
    "client_for",
    "echo",
    "expected_usage",
    "gemini_client",
    "get_weather",
    "make_handler",
    "recording",
    "served_client",
    "tokens",
    "vertex_client",
    "vertex_express_client",
    "words",
]

USER_TEXT = "Hello there, how are you today?"  # the question most tests ask
WEATHER_TEXT = "What is the weather in Paris?"
WEATHER_REPORT = "18C, sunny"
MODEL = "gemini-2.5-flash"
API_KEY = "AIza-standin-key"
TOKEN = "ya29.test"
PROJECT, LOCATION = "my-proj", "us-central1"
GEMINI_URL = "https://generativelanguage.googleapis.com/v1/models"
VERTEX_URL = (
    f"https://{LOCATION}-aiplatform.googleapis.com/v1beta1/projects/{PROJECT}"
    f"/locations/{LOCATION}/publishers/google/models"
)
EXPRESS_URL = "https://aiplatform.googleapis.com/v1beta1/publishers/google/models"
MODES = ("gemini", "vertex", "express")
NO_RETRY = types.HttpRetryOptions(attempts=1)
FAST_RETRY = types.HttpRetryOptions(attempts=3, initial_delay=0, max_delay=0, jitter=0)
GOOGLE_ENV = (
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_HTTP_CLIENT",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_USE_MTLS_ENDPOINT",
)


def tokens(text: str) -> int:
    """The stand-in's counting rule: characters // 4, at least 1."""
    return max(1, len(text) // 4)


def echo(text: str) -> str:
    """The stand-in's reply: "Echo: " and the first 40 characters, whitespace collapsed."""
    return " ".join(f"Echo: {text[:40]}".split())


def words(text: str) -> int:
    """Candidate tokens of a reply: its words."""
    return len(text.split())


def expected_usage(
    prompt: str,
    candidates: int,
    *,
    cached: bool = False,
    thinking: bool = False,
    search: bool = False,
) -> dict[str, int | None]:
    """The usage fields the stand-in reports (snake_case, as the SDK's types name them).

    ``prompt`` is the prompt text (system instruction and contents, concatenated).
    """
    prompt_count = tokens(prompt) + (CACHED_TOKENS if cached else 0)
    thoughts = THOUGHT_TOKENS if thinking else None
    tool = SEARCH_TOOL_TOKENS if search else None
    return {
        "prompt_token_count": prompt_count,
        "candidates_token_count": candidates,
        "cached_content_token_count": CACHED_TOKENS if cached else None,
        "thoughts_token_count": thoughts,
        "tool_use_prompt_token_count": tool,
        "total_token_count": prompt_count + candidates + (thoughts or 0) + (tool or 0),
    }


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return WEATHER_REPORT if city == "Paris" else "unknown"


def make_handler(backend: GoogleBackend | None = None) -> Handler:
    """A handler with its own id counter and video operations (ids restart at 1)."""
    backend = backend or GoogleBackend()
    return backend_handler(backend.handle)


@dataclass(frozen=True)
class Recorded:
    """One request as the SDK sent it: ``body`` is the parsed JSON (None when empty)."""

    method: str
    url: str
    path: str  # raw, still percent-encoded, with the query
    headers: dict[str, str]
    body: Any


def recording(seen: list[Recorded], handler: Handler | None = None) -> Handler:
    """Wrap ``handler`` (a fresh one by default) to append every request to ``seen``."""
    inner = handler or make_handler()

    def record(request: httpx2.Request) -> httpx2.Response:
        raw = request.read()
        body = json.loads(raw) if raw else None
        path = request.url.raw_path.decode("ascii")
        seen.append(Recorded(request.method, str(request.url), path, dict(request.headers), body))
        return inner(request)

    return record


class FakeCredentials(google.auth.credentials.Credentials):
    """Google credentials that always hold the valid token ``ya29.test``; never refreshed."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.token = TOKEN

    def refresh(self, request: object) -> None:
        self.token = TOKEN

    @property
    def expired(self) -> bool:
        return False

    @property
    def valid(self) -> bool:
        return True


def _mode_kw(mode: str, kw: dict[str, Any]) -> dict[str, Any]:
    if mode == "gemini":
        kw.setdefault("vertexai", False)  # ignore GOOGLE_GENAI_USE_VERTEXAI
        kw.setdefault("api_key", API_KEY)
    elif mode == "vertex":
        kw.setdefault("vertexai", True)
        kw.setdefault("project", PROJECT)
        kw.setdefault("location", LOCATION)
        kw.setdefault("credentials", FakeCredentials())
    elif mode == "express":
        kw.setdefault("vertexai", True)
        kw.setdefault("api_key", API_KEY)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return kw


def client_for(
    mode: str,
    handler: Handler | None = None,
    *,
    retry_options: types.HttpRetryOptions | None = NO_RETRY,
    **kw: Any,
) -> genai.Client:
    """A client in ``mode`` ("gemini", "vertex" or "express") answered by ``handler``."""
    h = handler or make_handler()
    options = types.HttpOptions(
        httpx_client=httpx2.Client(transport=httpx2.MockTransport(h)),
        httpx_async_client=httpx2.AsyncClient(transport=httpx2.MockTransport(h)),
        retry_options=retry_options,
    )
    return genai.Client(http_options=options, **_mode_kw(mode, kw))


def gemini_client(handler: Handler | None = None, **kw: Any) -> genai.Client:
    """The Gemini API (``api_key``): ``https://generativelanguage.googleapis.com/v1/...``."""
    return client_for("gemini", handler, **kw)


def vertex_client(handler: Handler | None = None, **kw: Any) -> genai.Client:
    """Vertex AI with project ``my-proj``, location ``us-central1`` and ``FakeCredentials``."""
    return client_for("vertex", handler, **kw)


def vertex_express_client(handler: Handler | None = None, **kw: Any) -> genai.Client:
    """Vertex AI express mode (``vertexai=True`` with an ``api_key``, no project)."""
    return client_for("express", handler, **kw)


class ServedClient:
    """A client of a loopback ``StandInServer``, over real sockets; closes what it opened.

    ``with served_client(server) as client:`` for sync calls, ``async with`` for ``client.aio``
    (it awaits the async close). With ``aiohttp=True`` no async httpx2 client is passed, so the
    SDK's ``client.aio`` uses aiohttp (when installed).
    """

    def __init__(self, server: StandInServer, mode: str, *, aiohttp: bool, **kw: Any) -> None:
        self._sync = httpx2.Client(trust_env=False)
        self._async = None if aiohttp else httpx2.AsyncClient(trust_env=False)
        options = types.HttpOptions(
            base_url=server.origin,
            httpx_client=self._sync,
            httpx_async_client=self._async,
            retry_options=NO_RETRY,
        )
        self.client = genai.Client(http_options=options, **_mode_kw(mode, kw))

    def __enter__(self) -> genai.Client:
        return self.client

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.client.close()
        self._sync.close()

    async def __aenter__(self) -> genai.Client:
        return self.client

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.client.aio.aclose()
        if self._async is not None:
            await self._async.aclose()
        self.__exit__(kind, exc, tb)


def served_client(
    server: StandInServer, mode: str = "gemini", *, aiohttp: bool = False, **kw: Any
) -> ServedClient:
    """``with served_client(server, "vertex") as client:``: ``base_url=server.origin``."""
    return ServedClient(server, mode, aiohttp=aiohttp, **kw)
