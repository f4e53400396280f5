"""Cost controls at run time: the rules snapshot, its poller, its disk mirror, the pre-call check.

When ``REVENIUM_CIRCUIT_BREAKER_ENABLED`` is on, every metered call is checked against the
team's enforcement rules *before* the provider is contacted, and a call a rule blocks raises
:class:`~revenium.BudgetExceededError` at the call expression; the provider receives nothing.

Why it is built this way (the seed SDK refreshed stale rules on the caller's thread, so a
slow rules API slowed every AI call):

- The check (:func:`check`) reads one immutable :class:`~revenium.rules.RuleFeed` through a
  single attribute, takes no lock and does no I/O; with no rules it returns at once.
- The poller runs in the runtime's task group, off the caller's path: it fetches the feed
  every ``cb_poll_interval_seconds``, retries transient failures within a budget (honouring
  ``Retry-After``), keeps the last good rules on any failure and rejects a malformed body as
  a whole. It starts with the first checked call, not at import.
- ``REVENIUM_CACHE_DIR`` mirrors the last good feed to disk (written atomically, mode 0600)
  and the first check loads it, so a restarted process is protected from its first call.
- Until rules have been loaded, ``cb_fail_mode`` decides: ``open`` allows, ``closed`` refuses
  (a sync call may wait ``cb_startup_wait_seconds`` for the first fetch; an async call waits
  without blocking its event loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import anyio
import anyio.to_thread
import attrs

from revenium._diagnostics import logger, report_internal_error, warn_once
from revenium.config import Config, get_config
from revenium.errors import BudgetExceededError
from revenium.rule_check import CallFacts, evaluate, own_entry
from revenium.rules import (
    EMPTY_FEED,
    MalformedFeedError,
    Rule,
    RuleFeed,
    parse_feed,
)

__all__ = ["blocked_count", "check", "needs_first_fetch", "poll_forever", "wait_first_fetch"]

RETRY_BUDGET_SECONDS: Final = 60.0  # a fetch gives up when waiting would take longer
FETCH_ATTEMPTS: Final = 5
FETCH_TIMEOUT_SECONDS: Final = 10.0


@attrs.frozen
class Snapshot:
    """The rules in force and where they came from (``api`` or ``disk``)."""

    feed: RuleFeed
    fetched_at: float
    source: str


class _State:
    """Process-wide: one snapshot per (enforcement URL, team); swapped whole, read lock-free."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.loaded = threading.Event()
        self.lock = threading.RLock()  # _adopt installs the mirror while holding it
        self.key: tuple[str, str | None] | None = None
        self.config_seen: Config | None = None
        self.poller_alive = False
        self.refresh_requested = False
        self.waited = False  # closed mode waits for the first rules once, not per call
        self.blocked = 0
        self.warned: set[tuple[str, str, str]] = set()
        self.waiters: list[Callable[[], None]] = []  # async calls waiting for the first rules
        self.body: object = None  # the last fetched body, to skip recompiling an unchanged feed


_state = _State()


def reinit_after_fork() -> None:
    """The child keeps the parent's rules but has no poller thread of its own yet."""
    _state.lock = threading.RLock()  # _adopt installs the mirror while holding it
    _state.poller_alive = False
    _state.waiters = []  # bound to the parent's event loops
    _state.blocked = 0  # the child's own count
    _state.loaded = threading.Event()  # its lock may have been held at fork time
    if _state.snapshot is not None:
        _state.loaded.set()


def reset() -> None:
    """Forget everything (tests)."""
    global _state  # noqa: PLW0603 - a fresh state, as in a new process
    _state = _State()


def blocked_count() -> int:
    """Calls refused by a cost control in this process (they produced no usage record)."""
    return _state.blocked


# ----------------------------------------------------------------------------- the check


def check(config: Config, facts: Callable[[], CallFacts], *, may_wait: bool) -> None:
    """Raise :class:`BudgetExceededError` when the rules block this call; otherwise return.

    ``facts`` is called only when there are rules to evaluate. Internal failures are reported
    and the call is allowed: a bug here must not stop the user's traffic.
    """
    if config is not _state.config_seen:
        _adopt(config)
    if not _state.poller_alive:
        _start_poller()
    snapshot = _state.snapshot
    if snapshot is None:
        if config.cb_fail_mode == "closed":
            if may_wait and _should_wait(config):
                _state.loaded.wait(config.cb_startup_wait_seconds)
                _state.waited = True
                snapshot = _state.snapshot
            if snapshot is None:
                _refuse_unloaded(config)
        if snapshot is None:
            return
    feed = snapshot.feed
    if feed.inert:
        return
    try:
        call = facts()
        outcome = evaluate(feed, call, datetime.now(UTC))
    except Exception as exc:  # noqa: BLE001 - contained: the call goes ahead
        report_internal_error(exc, "checking cost-control rules", reraise=False)
        return
    for rule in outcome.warnings:
        _once(rule, "warning", f"calls are allowed, the rule's action is {rule.action}")
    for rule in outcome.shadowed:
        _once(rule, "shadow", "it is in shadow mode: it would block this call, which goes ahead")
    if outcome.blocking is not None:
        with _state.lock:
            _state.blocked += 1
        raise _error(outcome.blocking, call)


def needs_first_fetch(config: Config) -> bool:
    """An async call in closed mode should first wait for the rules (without blocking)."""
    if config is not _state.config_seen:
        _adopt(config)  # a new team: its own rules, not the previous team's
    return config.cb_fail_mode == "closed" and _state.snapshot is None and _should_wait(config)


def _should_wait(config: Config) -> bool:
    """Wait for the first fetch once; never when it cannot happen (settings missing)."""
    return (
        not _state.waited
        and config.cb_startup_wait_seconds > 0
        and _missing_settings(config) is None
    )


async def wait_first_fetch(config: Config) -> None:
    """Wait up to ``cb_startup_wait_seconds`` for the first rules, on the caller's event loop.

    No worker thread is borrowed: the poller wakes the waiting task through its own loop
    (asyncio or trio), so neither the application's thread pool nor its loop is held up.
    """
    if config is not _state.config_seen:
        _adopt(config)
    if not _state.poller_alive:
        _start_poller()
    event = anyio.Event()
    wake = _waker(event.set)
    with _state.lock:
        ready = _state.snapshot is not None
        if not ready:
            _state.waiters.append(wake)
    try:
        if not ready:
            with anyio.move_on_after(config.cb_startup_wait_seconds):
                await event.wait()
    finally:
        with _state.lock:
            if wake in _state.waiters:
                _state.waiters.remove(wake)
        _state.waited = True


def _waker(set_event: Callable[[], object]) -> Callable[[], None]:
    """A thread-safe way to run ``set_event`` on the current task's event loop."""
    import sniffio  # noqa: PLC0415 - anyio's own dependency

    if sniffio.current_async_library() == "trio":
        trio: Any = importlib.import_module("trio")  # only under trio, which is not ours
        token = trio.lowlevel.current_trio_token()

        def wake_trio() -> None:
            token.run_sync_soon(set_event)

        return wake_trio
    loop = asyncio.get_running_loop()

    def wake() -> None:
        loop.call_soon_threadsafe(set_event)

    return wake


def _refuse_unloaded(config: Config) -> None:
    with _state.lock:
        _state.blocked += 1
    missing = _missing_settings(config)
    why = f"{missing} not configured" if missing else "no rules fetched yet"
    raise BudgetExceededError(
        f"Request blocked by Revenium cost controls: {why} and REVENIUM_CB_FAIL_MODE=closed"
    )


def _missing_settings(config: Config) -> str | None:
    if config.team_id is None:
        return "REVENIUM_TEAM_ID"
    if config.api_key is None:
        return "REVENIUM_METERING_API_KEY"
    return None


def _error(rule: Rule, call: CallFacts) -> BudgetExceededError:
    name = rule.name or (f"rule {rule.rule_id}" if rule.rule_id is not None else "unnamed rule")
    message = f"Request blocked by Revenium enforcement rule: {name}"
    if rule.deny_message:
        message += f". {rule.deny_message}"
    current = rule.current_value
    entry = own_entry(rule, call) if rule.group_breakdown else None
    if entry is not None and entry.current_value is not None:
        current = entry.current_value  # a grouped rule: the caller's own standing
    return BudgetExceededError(
        message,
        rule_name=rule.name,
        rule_id=rule.rule_id,
        current_value=current,
        threshold=rule.threshold,
        resets_at=rule.resets_at,
        deny_message=rule.deny_message,
    )


def _once(rule: Rule, kind: str, consequence: str) -> None:
    """Rules that do not block are logged once per rule and window, never per call."""
    key = (kind, str(rule.rule_id or rule.name), str(rule.window_end or rule.resets_at))
    if key in _state.warned:
        return
    with _state.lock:
        if key in _state.warned:
            return
        _state.warned.add(key)
    logger.log(
        logging.WARNING if kind == "warning" else logging.INFO,
        "revenium: cost-control rule %r (id %s) is over its threshold (%s of %s); %s",
        rule.name,
        rule.rule_id,
        rule.current_value,
        rule.threshold,
        consequence,
    )


# ----------------------------------------------------------------------------- the snapshot


def _adopt(config: Config) -> None:
    """A new configuration: a different team or URL starts from that team's own rules."""
    if config is not get_config():
        return  # a caller still holding the configuration replaced meanwhile: not news
    with _state.lock:
        key = (config.enforcement_url, config.team_id)
        if key != _state.key:
            _state.key = key
            _state.snapshot = None
            _state.loaded = threading.Event()
            _state.waited = False
            missing = _missing_settings(config)
            if missing is not None:
                logger.error(
                    "revenium: cost controls are enabled but %s is not set, so no rules can be "
                    "fetched; calls are checked against the rules saved in REVENIUM_CACHE_DIR "
                    "if any, otherwise %s",
                    missing,
                    "refused (REVENIUM_CB_FAIL_MODE=closed)"
                    if config.cb_fail_mode == "closed"
                    else "allowed",
                )
            disk = _load_mirror(config)
            if disk is not None:
                _install(disk)
        _state.config_seen = config
        _state.refresh_requested = True  # a new team, or bypass lifted: fetch now


def _compile(feed: RuleFeed) -> None:
    """Build what the per-call check reads (the index) before callers can see the feed."""
    _ = feed.inert, feed.no_departments, feed.index


def _install(snapshot: Snapshot) -> None:
    with _state.lock:
        _state.snapshot = snapshot
        waiters, _state.waiters = _state.waiters, []
    _state.loaded.set()
    for wake in waiters:
        try:
            wake()
        except RuntimeError:  # that caller's event loop has closed meanwhile
            continue


def _mirror_path(config: Config) -> Path | None:
    if config.cache_dir is None:
        return None
    digest = hashlib.sha256(f"{config.enforcement_url}|{config.team_id}".encode()).hexdigest()
    return config.cache_dir / f"revenium_enforcement_rules.{digest[:16]}.json"


def _load_mirror(config: Config) -> Snapshot | None:
    """The last good feed a previous process saved, if any (and if it is still readable)."""
    path = _mirror_path(config)
    if path is None:
        return None
    try:
        if not path.exists():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        feed = parse_feed(saved["body"]) if saved["body"] is not None else EMPTY_FEED
        _compile(feed)
        return Snapshot(feed, float(saved["fetchedAt"]), "disk")
    except Exception as exc:  # noqa: BLE001 - unreadable, corrupt, too deep: ignored, loudly
        warn_once(
            f"rules-mirror:{path}",
            "revenium: ignoring the saved cost-control rules at %s (%s); waiting for a fetch",
            path,
            exc,
        )
        return None


def _save_mirror(config: Config, body: object, fetched_at: float) -> None:
    """Write atomically (a temporary file renamed over the old one), readable by the owner only."""
    path = _mirror_path(config)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = json.dumps({"fetchedAt": fetched_at, "body": body}).encode()
    descriptor = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- the poller


def _start_poller() -> None:
    with _state.lock:
        if _state.poller_alive:
            return
        _state.poller_alive = True
    try:
        from revenium import lifecycle  # noqa: PLC0415 - the runtime, only with cost controls

        started = lifecycle.spawn("rule poller", poll_forever)
    except Exception as exc:  # noqa: BLE001 - contained: the next check tries again
        _state.poller_alive = False
        report_internal_error(exc, "starting the cost-control poller", reraise=False)
        return

    def not_started(future: Any) -> None:
        # The runtime stopped before the poller could start (a shutdown racing this call):
        # the next check starts one on the next runtime.
        if future.cancelled() or future.exception() is not None:
            _state.poller_alive = False

    started.add_done_callback(not_started)


async def poll_forever() -> None:
    """Fetch the rules now and every poll interval, for as long as the runtime runs."""
    import httpx  # noqa: PLC0415 - loaded with the runtime

    client = httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False)
    try:
        while True:
            _state.refresh_requested = False  # before reading the config: no lost wake-up
            config = get_config()
            delay = config.cb_poll_interval_seconds
            try:
                if config is not _state.config_seen:
                    _adopt(config)
                if _enabled(config) and _missing_settings(config) is None:
                    delay = max(delay, await refresh(config, client))
            except Exception as exc:  # noqa: BLE001 - one failed round; the last rules stay
                report_internal_error(exc, "fetching the cost-control rules", reraise=False)
            await _sleep(delay)
    finally:
        _state.poller_alive = False  # cancelled (shutdown): the next check starts another
        with anyio.CancelScope(shield=True):
            await client.aclose()


def _enabled(config: Config) -> bool:
    return config.circuit_breaker_enabled and not config.bypass


async def _sleep(seconds: float) -> None:
    """Sleep, but wake early when the configuration asks for another team's rules."""
    deadline = time.monotonic() + seconds
    # The request comes from the callers' threads: a flag read each second costs less than a
    # cross-thread wake-up of the runtime's loop, and a new team's rules wait at most 1 s.
    while not _state.refresh_requested and (left := deadline - time.monotonic()) > 0:  # noqa: ASYNC110
        await anyio.sleep(min(left, 1.0))


async def refresh(config: Config, client: Any) -> float:
    """One fetch with retries; returns the least time to wait before the next one."""
    from tenacity import (  # noqa: PLC0415 - with the poller
        AsyncRetrying,
        retry_if_result,
        stop_after_attempt,
        stop_before_delay,
    )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(FETCH_ATTEMPTS) | stop_before_delay(RETRY_BUDGET_SECONDS),
        wait=_backoff,
        retry=retry_if_result(lambda result: result.retry),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        sleep=anyio.sleep,
    )
    key = (config.enforcement_url, config.team_id)
    result: _Fetched = await retrying(_fetch, config, client)
    if result.feed is not None:
        fetched_at = time.time()
        current = _state.snapshot
        # an unchanged feed keeps its compiled index: nothing to rebuild after every poll
        feed = current.feed if current is not None and _state.body == result.body else result.feed
        _compile(feed)  # here, on the runtime's thread, never on a caller's
        with _state.lock:
            if _state.key != key:
                return 0.0  # the team (or URL) changed meanwhile: not its rules
            _state.body = result.body
            _install(Snapshot(feed, fetched_at, "api"))
        try:
            await anyio.to_thread.run_sync(_save_mirror, config, result.body, fetched_at)
        except OSError as exc:
            warn_once(
                f"rules-mirror-write:{config.cache_dir}",
                "revenium: cannot save the cost-control rules to %s (%s)",
                config.cache_dir,
                exc,
            )
        return 0.0
    logger.warning(
        "revenium: could not fetch the cost-control rules (%s); keeping the %s",
        result.reason,
        "last good rules" if _state.snapshot is not None else "default (no rules yet)",
    )
    return result.retry_after or 0.0


@attrs.frozen
class _Fetched:
    feed: RuleFeed | None = None
    body: object = None
    retry: bool = False
    retry_after: float | None = None
    reason: str = ""


def _backoff(state: Any) -> float:
    """Exponential from 0.5 s to 8 s, but never sooner than the server's ``Retry-After``."""
    base: float = min(0.5 * 2 ** (state.attempt_number - 1), 8.0)
    outcome = state.outcome
    if outcome is not None and not outcome.failed:
        last = outcome.result()
        if isinstance(last, _Fetched) and last.retry_after is not None:
            return max(base, last.retry_after)
    return base


async def _fetch(config: Config, client: Any) -> _Fetched:
    import httpx  # noqa: PLC0415 - with the poller

    from revenium.delivery import USER_AGENT, parse_retry_after  # noqa: PLC0415

    assert config.api_key is not None
    assert config.team_id is not None
    url = f"{config.enforcement_url}/v2/api/ai/enforcement-rules/{quote(config.team_id, safe='')}"
    headers = {
        "x-api-key": config.api_key.reveal(),
        "accept": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:  # transport, decoding, a broken proxy: retried
        return _Fetched(retry=True, reason=config.api_key.redact(f"{type(exc).__name__}: {exc}"))
    return _read(response, parse_retry_after)


def _read(response: Any, parse_retry_after: Callable[[str | None], float | None]) -> _Fetched:
    """What a response means: rules, no rules (204), retry later, or a failure to report."""
    status = response.status_code
    if status == 204:
        return _Fetched(feed=EMPTY_FEED, body=None)
    if status in {408, 429} or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return _Fetched(retry=True, retry_after=retry_after, reason=f"HTTP {status}")
    if status != 200:
        return _Fetched(reason=f"HTTP {status}: {response.text[:200]}")
    try:
        body = response.json()
        return _Fetched(feed=parse_feed(body), body=body)
    except MalformedFeedError as exc:
        return _Fetched(reason="the rule feed is malformed, rejected as a whole: " + str(exc))
    except (ValueError, RecursionError) as exc:
        return _Fetched(reason=f"the rule feed is not JSON: {type(exc).__name__}: {exc}")
