"""Drive the real ``openai`` SDK offline: mock transports backed by the stand-in server's logic.

``openai_handler`` answers exactly as ``revenium.providers._openai_standin.StandInServer`` does
(both call the same :class:`Backend`), in-process through ``httpx2.MockTransport``, so the same
assertions hold for socket tests and in-process tests. The factories build clients with
``max_retries=0``, so failure models fail fast.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
from standin_transport import Handler, backend_handler

from revenium.providers._openai_standin import AZURE_FIRST_CHUNK_HEADER, Backend

__all__ = [
    "Handler",
    "async_azure_client",
    "async_client",
    "azure_client",
    "compat_client",
    "make_handler",
    "openai_handler",
    "sync_client",
]

AZURE_ENDPOINT = "https://res.openai.azure.com"


def make_handler(backend: Backend | None = None) -> Handler:
    """A handler with its own id counter and stored responses (ids restart at 1)."""
    backend = backend or Backend()
    return backend_handler(backend.handle)


openai_handler: Handler = make_handler()
"""The shared default handler (one counter for the whole test session)."""


def _transport(handler: Handler) -> httpx2.MockTransport:
    return httpx2.MockTransport(handler)


def sync_client(handler: Handler = openai_handler, **kw: Any) -> openai.OpenAI:
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("base_url", "https://api.openai.com/v1")
    kw.setdefault("max_retries", 0)
    return openai.OpenAI(http_client=httpx2.Client(transport=_transport(handler)), **kw)


def async_client(handler: Handler = openai_handler, **kw: Any) -> openai.AsyncOpenAI:
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("base_url", "https://api.openai.com/v1")
    kw.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(http_client=httpx2.AsyncClient(transport=_transport(handler)), **kw)


def _azure_kw(api_version: str, azure_first_chunk: bool, kw: dict[str, Any]) -> dict[str, Any]:
    headers = dict(kw.pop("default_headers", None) or {})
    if azure_first_chunk:
        headers[AZURE_FIRST_CHUNK_HEADER] = "1"
    kw.setdefault("api_key", "azure-key")
    kw.setdefault("max_retries", 0)
    if "base_url" not in kw:
        kw.setdefault("azure_endpoint", AZURE_ENDPOINT)
    return {"api_version": api_version, "default_headers": headers or None, **kw}


def azure_client(
    handler: Handler = openai_handler,
    *,
    api_version: str = "2024-10-21",
    azure_first_chunk: bool = False,
    **kw: Any,
) -> openai.AzureOpenAI:
    """Azure URLs; responses report ``gpt-4o-2024-08-06`` whatever deployment was asked for.

    ``azure_first_chunk=True`` makes chat/legacy streams start with Azure's empty
    ``prompt_filter_results`` chunk (``choices == []``, ``id == ""``, ``model == ""``).
    """
    options = _azure_kw(api_version, azure_first_chunk, kw)
    return openai.AzureOpenAI(http_client=httpx2.Client(transport=_transport(handler)), **options)


def async_azure_client(
    handler: Handler = openai_handler,
    *,
    api_version: str = "2024-10-21",
    azure_first_chunk: bool = False,
    **kw: Any,
) -> openai.AsyncAzureOpenAI:
    options = _azure_kw(api_version, azure_first_chunk, kw)
    client = httpx2.AsyncClient(transport=_transport(handler))
    return openai.AsyncAzureOpenAI(http_client=client, **options)


def compat_client(base_url: str, handler: Handler = openai_handler, **kw: Any) -> openai.OpenAI:
    """An OpenAI client aimed at a compatible provider, e.g. ``"http://localhost:11434/v1"``."""
    return sync_client(handler, base_url=base_url, **kw)
