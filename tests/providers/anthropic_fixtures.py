"""Drive the real ``anthropic`` SDK offline: mock transports backed by the Anthropic stand-in.

``anthropic_handler`` answers exactly as ``StandInServer`` does on its Anthropic routes (both call
:class:`AnthropicBackend`), in-process through ``httpx2.MockTransport``. One handler serves all six
client classes: direct, Bedrock (binary AWS event-stream) and Vertex URLs are told apart by path.
The factories build clients with ``max_retries=0``, so failure models fail fast. Use a fresh
``make_handler()`` when a test asserts ids or prompt-cache state, which live in the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
from anthropic.lib.bedrock import AnthropicBedrock, AsyncAnthropicBedrock
from anthropic.lib.vertex import AnthropicVertex, AsyncAnthropicVertex
from standin_transport import Handler, backend_handler

from revenium.providers._anthropic_standin import AnthropicBackend

__all__ = [
    "BEDROCK_MODEL",
    "BEDROCK_URL",
    "MODEL",
    "USER_TEXT",
    "VERTEX_MODEL",
    "VERTEX_URL",
    "Handler",
    "Recorded",
    "anthropic_handler",
    "async_bedrock_client",
    "async_client",
    "async_vertex_client",
    "bedrock_client",
    "echo",
    "make_handler",
    "recording",
    "sync_client",
    "tokens",
    "vertex_client",
    "words",
]

USER_TEXT = "Hello there, how are you today?"  # the question most tests ask
MODEL = "claude-sonnet-4-6"
BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-6-v1:0"
VERTEX_MODEL = "claude-sonnet-4-6@20260101"
REGION, PROJECT, VERTEX_REGION = "us-east-1", "my-proj", "us-east5"
BEDROCK_URL = f"https://bedrock-runtime.{REGION}.amazonaws.com/model"
VERTEX_URL = (
    f"https://{VERTEX_REGION}-aiplatform.googleapis.com/v1/projects/{PROJECT}"
    f"/locations/{VERTEX_REGION}/publishers/anthropic/models"
)
FAKE_AWS_KEYS = {"aws_access_key": "AKIASTANDINFAKEKEY00", "aws_secret_key": "standin-secret"}


def tokens(text: str) -> int:
    """The stand-in's counting rule: characters // 4, at least 1."""
    return max(1, len(text) // 4)


def echo(text: str) -> str:
    """The stand-in's reply: "Echo: " and the first 40 characters, whitespace collapsed."""
    return " ".join(f"Echo: {text[:40]}".split())


def words(text: str) -> int:
    """Output tokens of a reply: its words."""
    return len(text.split())


def make_handler(backend: AnthropicBackend | None = None) -> Handler:
    """A handler with its own id counter and prompt cache (ids restart at 1)."""
    backend = backend or AnthropicBackend()
    return backend_handler(backend.handle)


anthropic_handler: Handler = make_handler()
"""The shared default handler (one counter and one cache for the whole test session)."""


@dataclass(frozen=True)
class Recorded:
    """One request as the SDK sent it: ``path`` is the raw (still percent-encoded) path."""

    method: str
    url: str
    path: str
    headers: dict[str, str]
    body: bytes


def recording(seen: list[Recorded], handler: Handler | None = None) -> Handler:
    """Wrap ``handler`` (a fresh one by default) to append every request to ``seen``."""
    inner = handler or make_handler()

    def record(request: httpx2.Request) -> httpx2.Response:
        path = request.url.raw_path.decode("ascii")
        seen.append(
            Recorded(request.method, str(request.url), path, dict(request.headers), request.content)
        )
        return inner(request)

    return record


def _sync(handler: Handler) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(handler))


def _async(handler: Handler) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


def _direct_kw(kw: dict[str, Any]) -> dict[str, Any]:
    kw.setdefault("api_key", "sk-ant-test")
    kw.setdefault("base_url", "https://api.anthropic.com")  # ignore ANTHROPIC_BASE_URL
    kw.setdefault("max_retries", 0)
    return kw


def _bedrock_kw(signed: bool, kw: dict[str, Any]) -> dict[str, Any]:
    """Bearer auth with ``api_key`` by default; SigV4 with fake keys when ``signed``."""
    if signed:
        kw.update(FAKE_AWS_KEYS)
    else:
        kw.setdefault("api_key", "bedrock-api-key")
    kw.setdefault("aws_region", REGION)
    kw.setdefault("max_retries", 0)
    return kw


def _vertex_kw(kw: dict[str, Any]) -> dict[str, Any]:
    kw.setdefault("region", VERTEX_REGION)
    kw.setdefault("project_id", PROJECT)
    kw.setdefault("access_token", "ya29.test")
    kw.setdefault("max_retries", 0)
    return kw


def sync_client(handler: Handler = anthropic_handler, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(http_client=_sync(handler), **_direct_kw(kw))


def async_client(handler: Handler = anthropic_handler, **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(http_client=_async(handler), **_direct_kw(kw))


def bedrock_client(
    handler: Handler = anthropic_handler, *, signed: bool = False, **kw: Any
) -> AnthropicBedrock:
    """``signed=True`` signs with fake AWS keys (SigV4 via botocore, offline) instead."""
    return AnthropicBedrock(http_client=_sync(handler), **_bedrock_kw(signed, kw))


def async_bedrock_client(
    handler: Handler = anthropic_handler, *, signed: bool = False, **kw: Any
) -> AsyncAnthropicBedrock:
    return AsyncAnthropicBedrock(http_client=_async(handler), **_bedrock_kw(signed, kw))


def vertex_client(handler: Handler = anthropic_handler, **kw: Any) -> AnthropicVertex:
    return AnthropicVertex(http_client=_sync(handler), **_vertex_kw(kw))


def async_vertex_client(handler: Handler = anthropic_handler, **kw: Any) -> AsyncAnthropicVertex:
    return AsyncAnthropicVertex(http_client=_async(handler), **_vertex_kw(kw))
