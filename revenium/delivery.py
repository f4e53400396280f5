"""One record to the Revenium metering API: the HTTP attempt, its verdict, and the retries.

The runtime calls :meth:`Sender.deliver` for each envelope. This module decides what a
response *means*, because that decides whether a record is delivered, retried, parked or
quarantined, and a wrong guess either loses billing data or retries a hopeless request forever:

- 2xx: delivered.
- 408, 429, 5xx, ``409 idempotency_key_in_progress``, connection errors, timeouts: transient;
  retried with exponential backoff and jitter, ``Retry-After`` honoured up to a cap.
- 401, 403, 404 and redirects: the configuration is wrong (key rotated, wrong URL). Retrying
  the same request cannot help; the runtime pauses delivery and keeps the records spooled.
- any other 4xx (400, 409 mismatch, 413, 422): this record is bad. It is quarantined with the
  status and the server's reason, never retried on its own, never silently dropped.

During a 429/503 storm every sender waits on one shared gate (``Retry-After`` from any
response holds them all), instead of each record hammering the server on its own schedule.
The ``Idempotency-Key`` header is the record's own UUID and never changes across attempts.
"""

from __future__ import annotations

import enum
import math
import random
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import anyio
import attrs
import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt
from tenacity.wait import wait_exponential, wait_random

from revenium._diagnostics import logger
from revenium._version import __version__
from revenium.capture import mask_secrets

if TYPE_CHECKING:
    from revenium.config import Config
    from revenium.spool import Envelope

__all__ = ["Attempt", "Sender", "Verdict", "parse_retry_after"]

RETRY_AFTER_CAP: Final = 60.0
_REASON_LIMIT: Final = 2_000
USER_AGENT: Final = f"revenium-python/{__version__}"


class Verdict(enum.Enum):
    """What to do with an envelope after an attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    QUARANTINE = "quarantine"
    MISCONFIGURED = "misconfigured"


@attrs.frozen
class Attempt:
    """The outcome of one HTTP attempt (or of the last one, after retries)."""

    verdict: Verdict
    status: int | None = None
    reason: str = ""
    retry_after: float | None = None
    attempts: int = 1


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _reason(response: httpx.Response) -> str:
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.HTTPError):
        text = ""
    return (text.strip() or response.reason_phrase or f"HTTP {response.status_code}")[
        :_REASON_LIMIT
    ]


def classify(response: httpx.Response) -> Attempt:
    """Turn a response into a verdict (see the module docstring for the table)."""
    status = response.status_code
    if 200 <= status < 300:
        return Attempt(Verdict.DELIVERED, status)
    reason = _reason(response)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status in {408, 429} or status >= 500:
        return Attempt(Verdict.RETRY, status, reason, retry_after)
    if status == 409 and "in_progress" in reason.replace(" ", "_").lower():
        return Attempt(Verdict.RETRY, status, reason, retry_after or 1.0)
    if status in {401, 403, 404} or 300 <= status < 400:
        return Attempt(Verdict.MISCONFIGURED, status, reason)
    return Attempt(Verdict.QUARANTINE, status, reason)


def _proxy_for(url: str) -> httpx.Proxy | None:
    """The proxy the environment asks for (``HTTPS_PROXY``, ``NO_PROXY``...), as httpx's
    client would pick it; the raw transport does not read the environment itself."""
    parts = urlsplit(url)
    if proxy_bypass(parts.hostname or ""):
        return None
    proxy = getproxies().get(parts.scheme) or getproxies().get("all")
    return httpx.Proxy(proxy) if proxy else None


class Sender:
    """Posts envelopes over one pooled httpx transport (keep-alive, bounded connections).

    The transport is driven directly rather than through ``httpx.AsyncClient``: the client's
    layers (auth, cookies, redirects, event hooks, one INFO log line per request) cost about
    a fifth of the CPU per record and buy nothing for one POST to one host (see
    ``docs/benchmarks.md``). Proxies from the environment are honoured as the client would.
    """

    def __init__(self, config: Config) -> None:
        self._transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=config.max_concurrency,
                max_keepalive_connections=config.max_concurrency,
            ),
            proxy=_proxy_for(config.meter_url),
        )
        self._timeout = httpx.Timeout(
            config.timeout_seconds, connect=config.connect_timeout_seconds
        ).as_dict()
        self._resume_at = 0.0  # the shared gate: nobody sends before this monotonic time
        self.retried = 0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    def hold_all(self, seconds: float) -> None:
        """Make every sender wait ``seconds`` before its next attempt (a storm or an outage)."""
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    async def attempt(self, envelope: Envelope, config: Config) -> Attempt:
        """One POST, no retries: used for probes and spool replay."""
        wait = self._resume_at - time.monotonic()
        if wait > 0:
            await anyio.sleep(wait)
        if config.api_key is None:
            return Attempt(Verdict.MISCONFIGURED, None, "no API key configured")
        url = config.meter_url + envelope.path
        if logger.isEnabledFor(10):  # DEBUG; the body is masked, the key is never logged
            logger.debug(
                "revenium: POST %s Idempotency-Key=%s %s",
                url,
                envelope.key,
                mask_secrets(envelope.body.decode("utf-8", "replace")),
            )
        request = httpx.Request(
            "POST",
            url,
            content=envelope.body,
            headers={
                "user-agent": USER_AGENT,
                "content-type": "application/json",
                "accept": "application/json",
                "x-api-key": config.api_key.reveal(),
                "idempotency-key": envelope.key,
            },
            extensions={"timeout": self._timeout},
        )
        try:
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            reason = config.api_key.redact(f"{type(exc).__name__}: {exc}")
            return Attempt(Verdict.RETRY, None, reason[:_REASON_LIMIT])
        result = classify(response)
        if result.status in {429, 503} and result.retry_after:
            self.hold_all(result.retry_after)
        return result

    async def deliver(self, envelope: Envelope, config: Config) -> Attempt:
        """Attempt with retries (``config.max_retries``) for transient failures only."""
        first = await self.attempt(envelope, config)
        if first.verdict is not Verdict.RETRY or config.max_retries == 0:
            return first  # the common case skips building a retry controller
        counter = {"attempts": 1}

        async def retry() -> Attempt:
            counter["attempts"] += 1
            self.retried += 1
            return await self.attempt(envelope, config)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(config.max_retries),
            wait=_backoff,
            retry=retry_if_result(_is_transient),
            retry_error_callback=_last_result,
            sleep=anyio.sleep,
        )
        # tenacity waits only *between* its own attempts; this is the wait before the first.
        jitter = random.uniform(0, 0.25)  # noqa: S311 - jitter, not cryptography
        await anyio.sleep(max(first.retry_after or 0.0, 0.25 + jitter))
        result: Attempt = await retrying(retry)
        return attrs.evolve(result, attempts=counter["attempts"])


_JITTERED: Final = wait_exponential(multiplier=0.25, max=10.0) + wait_random(0, 0.25)


def _is_transient(result: Attempt) -> bool:
    return result.verdict is Verdict.RETRY


def _backoff(state: RetryCallState) -> float:
    """Exponential backoff with jitter, but never shorter than the server's ``Retry-After``."""
    backoff = _JITTERED(state)
    outcome = state.outcome
    if outcome is not None and not outcome.failed:
        last = outcome.result()
        if isinstance(last, Attempt) and last.retry_after is not None:
            return max(backoff, last.retry_after)
    return backoff


def _last_result(state: RetryCallState) -> Attempt:
    """When retries run out, hand back the last verdict (the runtime spools the envelope)."""
    assert state.outcome is not None
    result = state.outcome.result()
    assert isinstance(result, Attempt)
    return result
