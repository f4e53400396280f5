"""Cost controls end to end: the rule poller against a loopback feed, and calls it blocks.

The feed is served by ``metering_server.MeteringServer`` (``GET /v2/api/ai/enforcement-rules/
{team}``); the providers are the real ``openai`` and ``anthropic`` SDKs over in-process
transports that record every request, so a blocked call can be shown to have sent nothing.
The matching rules themselves (every dimension and operator) are tested in isolation against
``revenium.rules``; here, the integration: poller, snapshot, fail modes, disk mirror, bypass,
and ``BudgetExceededError`` at the call expression of every wrapped surface.

Nothing here sleeps for luck: tests wait for a condition (a request the server saw, the rules
installed, a log line) with a deadline. ``quick`` runs the poller's sleeps and retry back-off
50 times faster where a test needs several fetches.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import pathlib
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

import revenium
from revenium import enforcement
from revenium.errors import BudgetExceededError, InternalMeteringError, ReveniumError

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "providers"))
import anthropic_fixtures as an
import openai_fixtures as oa
from metering_server import MeteringServer, Request, Response

HERE = Path(__file__).parent
KEY = "hak_integration_0123456789"
TEAM = "team-1"
USER: Any = [{"role": "user", "content": "hi"}]
KW: Any = {"max_tokens": 100, "messages": USER}
GPT = "gpt-4o"
CLAUDE = an.MODEL  # claude-sonnet-4-6
SPEED = 0.02  # ``quick``: a 1 s poll interval waits 20 ms

GPT_RULE: dict[str, Any] = {
    "ruleId": 7,
    "name": "GPT-4o monthly cap",
    "action": "BLOCK",
    "breached": True,
    "currentValue": 120.5,
    "threshold": 100,
    "resetsAt": "2099-01-01T00:00:00Z",
    "denyMessage": "Ask finance for more budget.",
    "filters": [{"dimension": "MODEL", "operator": "IS", "value": GPT}],
}
CLAUDE_RULE: dict[str, Any] = {
    "ruleId": "rule-claude",
    "name": "Claude weekly cap",
    "breached": True,  # no action: blocks
    "currentValue": "51.25",  # a decimal sent as text
    "threshold": 50,
    "resetsAt": "2099-02-01T00:00:00Z",
    "denyMessage": "Claude is paused until Monday.",
    "filters": [{"dimension": "MODEL", "operator": "IS", "value": CLAUDE}],
}
FEED: dict[str, Any] = {"rules": [GPT_RULE, CLAUDE_RULE]}
EXPECTED: dict[str, dict[str, Any]] = {
    "openai": {
        "rule_name": "GPT-4o monthly cap",
        "rule_id": 7,
        "current_value": 120.5,
        "threshold": 100.0,
        "resets_at": "2099-01-01T00:00:00Z",
        "deny_message": "Ask finance for more budget.",
    },
    "anthropic": {
        "rule_name": "Claude weekly cap",
        "rule_id": "rule-claude",
        "current_value": 51.25,
        "threshold": 50.0,
        "resets_at": "2099-02-01T00:00:00Z",
        "deny_message": "Claude is paused until Monday.",
    },
}


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def server() -> Iterator[MeteringServer]:
    with MeteringServer() as running:
        yield running
        # Deliver what the test left while the server still answers (a fast teardown).
        revenium.shutdown_sync(timeout=5)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The poller's sleeps and retry back-off 50 times shorter (Retry-After scaled too).

    Returns the poller's sleeps between fetches, in seconds as asked (before scaling).
    """
    sleep, backoff = enforcement._sleep, enforcement._backoff
    asked: list[float] = []

    async def quick_sleep(seconds: float) -> None:
        asked.append(seconds)
        await sleep(seconds * SPEED)

    monkeypatch.setattr(enforcement, "_sleep", quick_sleep)
    monkeypatch.setattr(enforcement, "_backoff", lambda state: backoff(state) * SPEED)
    return asked


@pytest.fixture
def warnings_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="revenium")
    return caplog


def enable(server: MeteringServer, **overrides: object) -> None:
    settings: dict[str, object] = {
        "api_key": KEY,
        "base_url": server.url,
        "team_id": TEAM,
        "circuit_breaker_enabled": True,
        "cb_poll_interval_seconds": 1,
    }
    settings.update(overrides)
    revenium.configure(**settings)


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.002)


def fetched_since(since: float) -> bool:
    """Rules from the API were installed after ``since`` (a ``time.time()``)."""
    snapshot = enforcement._state.snapshot
    return snapshot is not None and snapshot.source == "api" and snapshot.fetched_at >= since


def wait_for_fetch(since: float, timeout: float = 5.0) -> None:
    wait_until(lambda: fetched_since(since), "the rules to be installed", timeout)


def logged(caplog: pytest.LogCaptureFixture, text: str, level: int = logging.WARNING) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.levelno == level)


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, count: int = 1) -> None:
    wait_until(lambda: logged(caplog, text) >= count, f"{count} warning(s) with {text!r}")


def load_rules() -> None:
    """Start the poller with an allowed call (a model no rule names) and wait for the rules."""
    since = time.time()
    with revenium.testing.capture():  # its record is not the test's business
        revenium.wrap(oa.sync_client()).chat.completions.create(model="warm-up", messages=USER)
    wait_for_fetch(since)


def openai_call(model: str = GPT, handler: oa.Handler = oa.openai_handler, **kw: Any) -> Any:
    return revenium.wrap(oa.sync_client(handler)).chat.completions.create(
        model=model, messages=USER, **kw
    )


def assert_rule(error: BudgetExceededError, expected: dict[str, Any]) -> None:
    assert {name: getattr(error, name) for name in expected} == expected
    assert error.message == str(error)
    assert expected["rule_name"] in error.message
    assert expected["deny_message"] in error.message


def run(surface: Callable[[Any], Any], handler: Any) -> Any:
    result = surface(handler)
    return asyncio.run(result) if inspect.iscoroutine(result) else result


def hold(release: threading.Event) -> None:
    """A rules responder's body: hold the answer back until the test releases it."""
    release.wait(10)


def _snapshot_feed() -> Any:
    snapshot = enforcement._state.snapshot
    assert snapshot is not None
    return snapshot.feed


def _runtime_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("revenium")]


# ----------------------------------------------------------------------------- the poller


def test_the_poller_starts_with_the_first_wrapped_call_not_at_configure_or_wrap(
    server: MeteringServer,
) -> None:
    server.serve_rules(FEED)
    enable(server, team_id="team a/1 é")
    client = revenium.wrap(oa.sync_client())
    assert _runtime_threads() == []  # no runtime, hence no poller, before the first call
    assert server.rule_requests == []
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    (request,) = server.wait_for_rule_requests(1)
    assert request.method == "GET"
    assert request.path == "/v2/api/ai/enforcement-rules/team%20a%2F1%20%C3%A9"
    assert request.team == "team a/1 é"
    assert request.headers["x-api-key"] == KEY
    assert all(r.path.startswith("/meter/") for r in server.requests)  # no feed GET there


def test_the_enforcement_base_defaults_to_the_metering_origin(server: MeteringServer) -> None:
    enable(server, base_url=f"{server.url}/some/prefix/meter/v2")
    openai_call("gpt-4o-mini")
    (request,) = server.wait_for_rule_requests(1)
    assert request.path == f"/v2/api/ai/enforcement-rules/{TEAM}"


def test_revenium_enforcement_base_url_overrides_the_origin(
    server: MeteringServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MeteringServer() as rules_api:
        rules_api.serve_rules(FEED)
        for name, value in {
            "REVENIUM_METERING_API_KEY": KEY,
            "REVENIUM_METERING_BASE_URL": server.url,
            "REVENIUM_ENFORCEMENT_BASE_URL": f"{rules_api.url}/",
            "REVENIUM_TEAM_ID": TEAM,
            "REVENIUM_CIRCUIT_BREAKER_ENABLED": "true",
            "REVENIUM_CB_FAIL_MODE": "closed",
        }.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(BudgetExceededError) as raised:  # waits for the first rules
            openai_call(GPT)
        assert raised.value.rule_id == 7
        (request,) = rules_api.rule_requests
        assert request.path == f"/v2/api/ai/enforcement-rules/{TEAM}"
        assert request.headers["x-api-key"] == KEY
        assert server.rule_requests == []


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
def test_204_means_no_rules_and_every_call_passes(server: MeteringServer, fail_mode: str) -> None:
    server.no_rules()
    enable(server, cb_fail_mode=fail_mode, cb_startup_wait_seconds=5)
    load_rules()  # a 204 counts as loaded: closed mode lets calls through
    seen: list[an.Recorded] = []
    with revenium.testing.capture() as captured:
        openai_call(GPT, an.recording(seen, oa.make_handler()))
    assert len(seen) == 1
    assert len(captured.completions) == 1
    assert revenium.statistics().blocked == 0


def test_5xx_then_recovery_within_one_fetch_and_at_the_next_poll(
    server: MeteringServer, quick: list[float], warnings_log: pytest.LogCaptureFixture
) -> None:
    server.serve_rules(FEED)
    server.fail_rules_next(2, 503, **{"Retry-After": "0"})
    enable(server, cb_fail_mode="closed", cb_startup_wait_seconds=5)
    with pytest.raises(BudgetExceededError) as raised:  # waits; the third attempt answers
        openai_call(GPT)
    assert raised.value.rule_id == 7  # from the first fetch: its third attempt
    assert len(server.rule_requests) >= 3
    assert logged(warnings_log, "could not fetch the cost-control rules") == 0

    # Every attempt of one fetch fails: the rules stay, and the next poll recovers.
    server.fail_rules_next(enforcement.FETCH_ATTEMPTS, 500)
    wait_for_log(warnings_log, "could not fetch the cost-control rules (HTTP 500)")
    assert "keeping the last good rules" in warnings_log.text
    with pytest.raises(BudgetExceededError):
        openai_call(GPT)
    wait_for_fetch(time.time())  # a later poll succeeds again
    with pytest.raises(BudgetExceededError):
        openai_call(GPT)


def test_retry_after_is_honoured_between_attempts(server: MeteringServer) -> None:
    server.serve_rules(FEED)
    server.fail_rules_next(1, 503, **{"Retry-After": "1"})  # the back-off alone is 0.5 s
    enable(server)
    load_rules()
    first, second = server.rule_requests
    assert second.at - first.at >= 0.95


def test_a_retry_after_beyond_the_budget_ends_the_fetch_at_once(
    server: MeteringServer, warnings_log: pytest.LogCaptureFixture
) -> None:
    server.fail_rules_next(1, 429, **{"Retry-After": "3600"})
    enable(server)
    openai_call("gpt-4o-mini")
    wait_for_log(warnings_log, "could not fetch the cost-control rules (HTTP 429)")
    assert len(server.rule_requests) == 1  # no retry inside the 60 s budget
    assert "keeping the default (no rules yet)" in warnings_log.text


def test_the_poller_fetches_every_poll_interval(
    server: MeteringServer, quick: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVENIUM_CB_POLL_INTERVAL_SECONDS", "7")
    server.serve_rules(FEED)
    revenium.configure(api_key=KEY, base_url=server.url, team_id=TEAM, circuit_breaker_enabled=True)
    load_rules()
    server.wait_for_rule_requests(3)
    assert quick[:2] == [7, 7]


def test_the_poller_restarts_with_the_first_call_after_a_shutdown(server: MeteringServer) -> None:
    server.serve_rules(FEED)
    enable(server, cb_poll_interval_seconds=3600)
    load_rules()
    revenium.shutdown_sync(timeout=5)  # e.g. at the end of a serverless invocation
    assert _runtime_threads() == []
    server.no_rules()  # the budget was raised meanwhile
    with pytest.raises(BudgetExceededError):
        openai_call(GPT)  # the rules in memory still hold...
    server.wait_for_rule_requests(2)  # ...and the call started a new poller
    wait_until(lambda: _snapshot_feed().inert, "the new (empty) feed")
    openai_call(GPT)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(Response(500, {"error": "boom"}), id="500"),
        pytest.param(Response(404, {"error": "no such team"}), id="404"),
        pytest.param(Response(200, {"rules": [{"ruleId": 1, "breached": "yes"}]}), id="malformed"),
        pytest.param(Response(200, raw=b"<html>maintenance</html>"), id="not-json"),
        pytest.param(Response(drop=True), id="connection-dropped"),
    ],
)
def test_a_failed_fetch_keeps_the_last_good_rules(
    server: MeteringServer,
    quick: list[float],
    warnings_log: pytest.LogCaptureFixture,
    failure: Response,
) -> None:
    server.serve_rules(FEED)
    enable(server)
    load_rules()
    server.script_rules(*[failure] * enforcement.FETCH_ATTEMPTS)
    wait_for_log(warnings_log, "keeping the last good rules")
    with pytest.raises(BudgetExceededError) as raised:
        openai_call(GPT)
    assert raised.value.rule_id == 7


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(
            {"rules": [GPT_RULE, {**CLAUDE_RULE, "threshold": "lots"}]},
            "$.rules[1].threshold",
            id="wrong-number",
        ),
        pytest.param(
            [GPT_RULE, {**CLAUDE_RULE, "shadowMode": "no"}],
            "$.rules[1].shadowMode",
            id="wrong-flag-in-a-bare-list",
        ),
        pytest.param(
            {"rules": [GPT_RULE], "departmentBudgetBlocks": {"a@b.c": [1]}},
            "$.departmentBudgetBlocks",
            id="wrong-department-map",
        ),
        pytest.param("rules", "expected an object or a list of rules", id="a-string"),
    ],
)
def test_a_malformed_feed_is_rejected_whole_with_a_warning_naming_the_field(
    server: MeteringServer, warnings_log: pytest.LogCaptureFixture, body: Any, named: str
) -> None:
    server.serve_rules(body)
    enable(server)
    openai_call("gpt-4o-mini")
    wait_for_log(warnings_log, "the rule feed is malformed, rejected as a whole")
    warning = next(r for r in warnings_log.records if "malformed" in r.getMessage())
    assert named in warning.getMessage()
    assert enforcement._state.snapshot is None  # nothing of it installed...
    openai_call(GPT)  # ...so the valid GPT rule beside the bad field blocks nothing


# ----------------------------------------------------------------------------- blocking


def _openai_sync(h: Any) -> Any:
    return openai_call(GPT, h)


def _openai_dated(h: Any) -> Any:
    return openai_call("gpt-4o-2024-08-06", h)  # a dated snapshot of the same model


def _openai_stream(h: Any) -> Any:
    return list(openai_call(GPT, h, stream=True))


def _openai_helper(h: Any) -> Any:
    manager = revenium.wrap(oa.sync_client(h)).chat.completions.stream(model=GPT, messages=USER)
    with manager as stream:  # the helper sends (and the check runs) when entered
        return stream.get_final_completion()


def _openai_raw(h: Any) -> Any:
    client = revenium.wrap(oa.sync_client(h))
    return client.chat.completions.with_raw_response.create(model=GPT, messages=USER).parse()


def _openai_responses(h: Any) -> Any:
    return revenium.wrap(oa.sync_client(h)).responses.create(model=GPT, input="hi")


async def _openai_async(h: Any) -> Any:
    client = revenium.wrap(oa.async_client(h))
    return await client.chat.completions.create(model=GPT, messages=USER)


async def _openai_async_stream(h: Any) -> Any:
    client = revenium.wrap(oa.async_client(h))
    stream = await client.chat.completions.create(model=GPT, messages=USER, stream=True)
    return [chunk async for chunk in stream]


async def _openai_async_helper(h: Any) -> Any:
    client = revenium.wrap(oa.async_client(h))
    async with client.chat.completions.stream(model=GPT, messages=USER) as stream:
        return await stream.get_final_completion()


async def _openai_async_raw(h: Any) -> Any:
    client = revenium.wrap(oa.async_client(h))
    raw = await client.chat.completions.with_raw_response.create(model=GPT, messages=USER)
    return await raw.parse()


def _anthropic_sync(h: Any) -> Any:
    return revenium.wrap(an.sync_client(h)).messages.create(model=CLAUDE, **KW)


def _anthropic_stream(h: Any) -> Any:
    return list(revenium.wrap(an.sync_client(h)).messages.create(model=CLAUDE, stream=True, **KW))


def _anthropic_manager(h: Any) -> Any:
    revenium.wrap(an.sync_client(h)).messages.stream(model=CLAUDE, **KW)
    raise AssertionError("messages.stream() itself should have raised, before any `with`")


def _anthropic_raw(h: Any) -> Any:
    client = revenium.wrap(an.sync_client(h))
    return client.messages.with_raw_response.create(model=CLAUDE, **KW).parse()


def _anthropic_beta(h: Any) -> Any:
    return revenium.wrap(an.sync_client(h)).beta.messages.create(model=CLAUDE, **KW)


async def _anthropic_async(h: Any) -> Any:
    return await revenium.wrap(an.async_client(h)).messages.create(model=CLAUDE, **KW)


async def _anthropic_async_stream(h: Any) -> Any:
    client = revenium.wrap(an.async_client(h))
    stream = await client.messages.create(model=CLAUDE, stream=True, **KW)
    return [event async for event in stream]


async def _anthropic_async_manager(h: Any) -> Any:
    revenium.wrap(an.async_client(h)).messages.stream(model=CLAUDE, **KW)
    raise AssertionError("messages.stream() itself should have raised, before any `async with`")


def _bedrock(h: Any) -> Any:
    return revenium.wrap(an.bedrock_client(h)).messages.create(model=an.BEDROCK_MODEL, **KW)


def _bedrock_manager(h: Any) -> Any:
    revenium.wrap(an.bedrock_client(h)).messages.stream(model=an.BEDROCK_MODEL, **KW)
    raise AssertionError("messages.stream() itself should have raised")


async def _bedrock_async_stream(h: Any) -> Any:
    client = revenium.wrap(an.async_bedrock_client(h))
    stream = await client.messages.create(model=an.BEDROCK_MODEL, stream=True, **KW)
    return [event async for event in stream]


def _vertex(h: Any) -> Any:
    return revenium.wrap(an.vertex_client(h)).messages.create(model=an.VERTEX_MODEL, **KW)


BLOCKED_SURFACES = [
    pytest.param("openai", _openai_sync, id="openai-sync"),
    pytest.param("openai", _openai_dated, id="openai-dated-snapshot"),
    pytest.param("openai", _openai_stream, id="openai-stream"),
    pytest.param("openai", _openai_helper, id="openai-stream-helper"),
    pytest.param("openai", _openai_raw, id="openai-with-raw-response"),
    pytest.param("openai", _openai_responses, id="openai-responses"),
    pytest.param("openai", _openai_async, id="openai-async"),
    pytest.param("openai", _openai_async_stream, id="openai-async-stream"),
    pytest.param("openai", _openai_async_helper, id="openai-async-stream-helper"),
    pytest.param("openai", _openai_async_raw, id="openai-async-with-raw-response"),
    pytest.param("anthropic", _anthropic_sync, id="anthropic-sync"),
    pytest.param("anthropic", _anthropic_stream, id="anthropic-create-stream"),
    pytest.param("anthropic", _anthropic_manager, id="anthropic-messages-stream"),
    pytest.param("anthropic", _anthropic_raw, id="anthropic-with-raw-response"),
    pytest.param("anthropic", _anthropic_beta, id="anthropic-beta"),
    pytest.param("anthropic", _anthropic_async, id="anthropic-async"),
    pytest.param("anthropic", _anthropic_async_stream, id="anthropic-async-create-stream"),
    pytest.param("anthropic", _anthropic_async_manager, id="anthropic-async-messages-stream"),
    pytest.param("anthropic", _bedrock, id="bedrock"),
    pytest.param("anthropic", _bedrock_manager, id="bedrock-messages-stream"),
    pytest.param("anthropic", _bedrock_async_stream, id="bedrock-async-stream"),
    pytest.param("anthropic", _vertex, id="vertex"),
]


@pytest.mark.parametrize(("provider", "surface"), BLOCKED_SURFACES)
def test_a_blocked_call_raises_before_the_provider_sees_anything(
    server: MeteringServer, provider: str, surface: Callable[[Any], Any]
) -> None:
    server.serve_rules(FEED)
    enable(server)
    load_rules()
    before = revenium.statistics().blocked
    seen: list[an.Recorded] = []
    handler = an.recording(seen, oa.make_handler() if provider == "openai" else None)
    with revenium.testing.capture() as captured, pytest.raises(BudgetExceededError) as raised:
        run(surface, handler)
    assert_rule(raised.value, EXPECTED[provider])
    assert seen == []  # the provider's transport received no request
    assert captured.records == []  # it cost nothing: no usage record
    assert revenium.statistics().blocked == before + 1


def _mini(h: Any) -> Any:
    return openai_call("gpt-4o-mini", h)


async def _mini_async_stream(h: Any) -> Any:
    client = revenium.wrap(oa.async_client(h))
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    return [chunk async for chunk in stream]


def _haiku_manager(h: Any) -> Any:
    with revenium.wrap(an.sync_client(h)).messages.stream(model="claude-haiku-4-5", **KW) as s:
        return s.get_final_message()


def _bedrock_haiku(h: Any) -> Any:
    client = revenium.wrap(an.bedrock_client(h))
    return client.messages.create(model="us.anthropic.claude-haiku-4-5-v1:0", **KW)


@pytest.mark.parametrize(
    ("provider", "surface"),
    [
        pytest.param("openai", _mini, id="openai-gpt-4o-mini"),
        pytest.param("openai", _mini_async_stream, id="openai-async-stream-gpt-4o-mini"),
        pytest.param("anthropic", _haiku_manager, id="anthropic-messages-stream-haiku"),
        pytest.param("anthropic", _bedrock_haiku, id="bedrock-haiku"),
    ],
)
def test_other_models_pass_and_are_metered_normally(
    server: MeteringServer, provider: str, surface: Callable[[Any], Any]
) -> None:
    server.serve_rules(FEED)
    enable(server)
    load_rules()
    seen: list[an.Recorded] = []
    handler = an.recording(seen, oa.make_handler() if provider == "openai" else None)
    with revenium.testing.capture() as captured:
        run(surface, handler)
    assert len(seen) == 1
    (record,) = captured.completions
    assert record.model.startswith(("gpt-4o-mini", "claude-haiku-4-5"))  # as reported
    assert revenium.statistics().blocked == 0


def test_budget_exceeded_is_not_an_internal_error_and_nothing_swallows_it(
    server: MeteringServer,
) -> None:
    assert issubclass(BudgetExceededError, ReveniumError)
    assert not issubclass(BudgetExceededError, InternalMeteringError)
    hooked: list[object] = []
    server.serve_rules(FEED)
    enable(server, on_error=lambda exc, where: hooked.append((exc, where)))
    load_rules()
    internal_errors = revenium.statistics().internal_errors  # a process-wide count

    @revenium.meter_tool("lookup")
    def tool() -> Any:
        with revenium.session(organization_name="Acme"):
            return openai_call(GPT)

    with revenium.testing.capture(strict_mode=False) as captured:
        with pytest.raises(BudgetExceededError):
            tool()
        with pytest.raises(BudgetExceededError):
            asyncio.run(_openai_async(oa.openai_handler))
    assert hooked == []
    assert revenium.statistics().internal_errors == internal_errors
    assert captured.completions == []
    (tool_event,) = captured.tool_events  # the tool itself ran and failed
    assert (tool_event.tool_id, tool_event.success) == ("lookup", False)


ORG_RULE: dict[str, Any] = {
    "ruleId": 21,
    "name": "Acme budget",
    "action": "BLOCK",
    "breached": True,
    "filters": [{"dimension": "ORGANIZATION", "operator": "IS", "value": "Acme"}],
}
SUBSCRIBER_RULE: dict[str, Any] = {
    "ruleId": 22,
    "name": "Alice's budget",
    "action": "BLOCK",
    "breached": True,
    "filters": [{"dimension": "SUBSCRIBER", "operator": "IS", "value": "alice@example.com"}],
}


def _blocked_by(call: Callable[[], Any]) -> object:
    """The id of the rule that blocks ``call``, or None when it went through."""
    try:
        call()
    except BudgetExceededError as exc:
        return exc.rule_id
    return None


def test_rules_scoped_by_metadata_block_only_the_matching_calls(server: MeteringServer) -> None:
    server.serve_rules({"rules": [ORG_RULE, SUBSCRIBER_RULE]})
    enable(server)
    load_rules()

    def call(**kw: Any) -> Callable[[], Any]:
        return lambda: openai_call("gpt-4o-mini", **kw)

    with revenium.testing.capture() as captured:
        with revenium.session(organization_name="Acme"):
            assert _blocked_by(call()) == 21
        with revenium.session(organization_name="Globex"):
            assert _blocked_by(call()) is None
        assert _blocked_by(call()) is None  # no organization: only IS_NOT would match
        assert _blocked_by(call(usage_metadata={"organization_name": "Acme"})) == 21
        with revenium.session(subscriber={"email": "Alice@Example.com"}):
            assert _blocked_by(call()) == 22
        with revenium.session(subscriber={"email": "bob@example.com"}):
            assert _blocked_by(call()) is None
        with revenium.session(subscriber={"id": "alice"}):
            assert _blocked_by(call()) is None
        acme = revenium.wrap(oa.sync_client(), metadata={"organization_name": "Acme"})
        assert _blocked_by(lambda: acme.chat.completions.create(model="m", messages=USER)) == 21

        async def acme_in_a_task() -> object:
            async with revenium.session(organization_name="Acme"):
                try:
                    await _openai_async(oa.openai_handler)
                except BudgetExceededError as exc:
                    return exc.rule_id
            return None

        assert asyncio.run(acme_in_a_task()) == 21
    assert len(captured.completions) == 4  # Globex, none, bob, id-only
    assert revenium.statistics().blocked == 5


def test_calls_that_selective_metering_skips_are_still_checked(server: MeteringServer) -> None:
    server.serve_rules(FEED)
    enable(server, selective_metering=True)
    load_rules()
    seen: list[an.Recorded] = []
    handler = an.recording(seen, oa.make_handler())
    with revenium.testing.capture() as captured:
        with pytest.raises(BudgetExceededError):
            openai_call(GPT, handler)  # not metered, but checked
        openai_call("gpt-4o-mini", handler)  # allowed, and not metered
        assert captured.records == []
        with revenium.meter():
            with pytest.raises(BudgetExceededError):
                openai_call(GPT, handler)
            openai_call("gpt-4o-mini", handler)
    assert len(seen) == 2
    assert len(captured.completions) == 1
    assert revenium.statistics().blocked == 2


# ----------------------------------------------------------------------------- warnings


def _warning_rule(action: str, window: str) -> dict[str, Any]:
    return {
        "ruleId": 31,
        "name": "Soft cap",
        "action": action,
        "breached": True,
        "currentValue": 90,
        "threshold": 80,
        "resetsAt": window,
        "windowEnd": window,
        "filters": [{"dimension": "MODEL", "operator": "IS", "value": GPT}],
    }


@pytest.mark.parametrize("action", ["WARN_ONLY", "THROTTLE", "NOTIFY"])
def test_warning_rules_log_once_per_window_and_never_block(
    server: MeteringServer, warnings_log: pytest.LogCaptureFixture, action: str
) -> None:
    server.serve_rules({"rules": [_warning_rule(action, "2099-01-01T00:00:00Z")]})
    enable(server)
    load_rules()
    with revenium.testing.capture() as captured:
        for _ in range(5):
            openai_call(GPT)
        for _ in range(3):
            asyncio.run(_openai_async(oa.openai_handler))
    assert len(captured.completions) == 8
    assert logged(warnings_log, "'Soft cap'") == 1
    assert action in warnings_log.text
    assert revenium.statistics().blocked == 0


def test_a_warning_rule_logs_again_in_its_next_window(
    server: MeteringServer, quick: list[float], warnings_log: pytest.LogCaptureFixture
) -> None:
    server.serve_rules({"rules": [_warning_rule("WARN_ONLY", "2099-01-01T00:00:00Z")]})
    enable(server)
    load_rules()
    for _ in range(3):
        openai_call(GPT)
    assert logged(warnings_log, "'Soft cap'") == 1
    since = time.time()
    server.serve_rules({"rules": [_warning_rule("WARN_ONLY", "2099-02-01T00:00:00Z")]})
    wait_until(
        lambda: fetched_since(since) and len(server.rule_requests) >= 2, "the next window's feed"
    )
    wait_for_fetch(time.time())  # a fetch that surely served the new window
    for _ in range(3):
        openai_call(GPT)
    assert logged(warnings_log, "'Soft cap'") == 2


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({**GPT_RULE, "shadowMode": True}, id="shadow-mode"),
        pytest.param({**GPT_RULE, "windowEnd": "2020-01-01T00:00:00Z"}, id="expired-window"),
        pytest.param(
            {**GPT_RULE, "windowEnd": "2020-01-01T00:00:00.123456789Z"}, id="expired-nanoseconds"
        ),
    ],
)
def test_shadow_mode_and_expired_windows_never_block(
    server: MeteringServer, caplog: pytest.LogCaptureFixture, rule: dict[str, Any]
) -> None:
    caplog.set_level(logging.INFO, logger="revenium")
    server.serve_rules({"rules": [rule]})
    enable(server, cb_fail_mode="closed", cb_startup_wait_seconds=5)
    with revenium.testing.capture() as captured:
        openai_call(GPT)
        asyncio.run(_openai_async(oa.openai_handler))
        openai_call(GPT)
    assert len(server.rule_requests) >= 1
    assert len(captured.completions) == 3
    assert revenium.statistics().blocked == 0
    shadowed = logged(caplog, "in shadow mode", logging.INFO)
    assert shadowed == (1 if rule.get("shadowMode") else 0)  # once, not per call


# ----------------------------------------------------------------------------- fail modes


def test_open_mode_allows_calls_until_the_first_rules_arrive(server: MeteringServer) -> None:
    release = threading.Event()
    server.serve_rules(FEED)
    server.rules_responder = lambda request: hold(release)
    enable(server)  # fail mode open: the default
    try:
        openai_call("gpt-4o-mini")
        server.wait_for_rule_requests(1)  # the first fetch is under way, held by the server
        with revenium.testing.capture() as captured:
            openai_call(GPT)  # no rules yet: allowed
        assert len(captured.completions) == 1
        since = time.time()
    finally:
        release.set()
    wait_for_fetch(since)
    with pytest.raises(BudgetExceededError):
        openai_call(GPT)


def test_closed_mode_a_sync_call_waits_for_the_first_fetch(server: MeteringServer) -> None:
    def slow(request: Request) -> None:
        time.sleep(0.3)  # a slow API, not luck: the call must wait this long

    server.serve_rules(FEED)
    server.rules_responder = slow
    enable(server, cb_fail_mode="closed", cb_startup_wait_seconds=5)
    seen: list[an.Recorded] = []
    started = time.monotonic()
    with revenium.testing.capture() as captured:
        openai_call("gpt-4o-mini", an.recording(seen, oa.make_handler()))
    assert time.monotonic() - started >= 0.3
    assert len(seen) == 1
    assert len(captured.completions) == 1
    with pytest.raises(BudgetExceededError) as raised:
        openai_call(GPT)
    assert raised.value.rule_id == 7


async def test_closed_mode_an_async_call_waits_without_blocking_its_loop(
    server: MeteringServer,
) -> None:
    release = threading.Event()
    server.serve_rules(FEED)
    server.rules_responder = lambda request: hold(release)
    enable(server, cb_fail_mode="closed", cb_startup_wait_seconds=10)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.002)
            ticks += 1
            if ticks == 20:  # only a loop that keeps running can let the rules through
                release.set()

    task = asyncio.create_task(ticker())
    try:
        seen: list[an.Recorded] = []
        client = revenium.wrap(oa.async_client(an.recording(seen, oa.make_handler())))
        with revenium.testing.capture() as captured:
            await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
            with pytest.raises(BudgetExceededError) as raised:
                await client.chat.completions.create(model=GPT, messages=USER)
    finally:
        task.cancel()
        release.set()
    assert ticks >= 20
    assert len(seen) == 1
    assert len(captured.completions) == 1
    assert raised.value.rule_id == 7


async def test_closed_mode_an_async_call_does_not_need_a_worker_thread_to_wait(
    server: MeteringServer,
) -> None:
    server.no_rules()
    enable(server, cb_fail_mode="closed", cb_startup_wait_seconds=5)
    limiter = anyio.to_thread.current_default_thread_limiter()
    busy = threading.Event()
    workers = [
        asyncio.create_task(anyio.to_thread.run_sync(busy.wait, 10))
        for _ in range(int(limiter.total_tokens))
    ]
    try:
        deadline = time.monotonic() + 5
        while limiter.borrowed_tokens < limiter.total_tokens:  # the application's threads
            assert time.monotonic() < deadline, "the application's threads did not start"
            await asyncio.sleep(0.001)
        client = revenium.wrap(oa.async_client())
        with anyio.fail_after(1):  # the rules arrive within milliseconds
            await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    finally:
        busy.set()
        await asyncio.gather(*workers)


def test_closed_mode_refuses_when_the_rules_never_arrive(
    server: MeteringServer, quick: list[float]
) -> None:
    server.serve_rules({"error": "down"}, status=500)
    enable(server, cb_fail_mode="closed", cb_startup_wait_seconds=1)
    seen: list[an.Recorded] = []
    handler = an.recording(seen, oa.make_handler())
    with revenium.testing.capture() as captured:
        started = time.monotonic()
        with pytest.raises(BudgetExceededError) as raised:
            openai_call("gpt-4o-mini", handler)
        assert time.monotonic() - started >= 1  # the first call waited for the rules
        started = time.monotonic()
        with pytest.raises(BudgetExceededError):
            asyncio.run(_openai_async(handler))
        with pytest.raises(BudgetExceededError):
            openai_call("gpt-4o-mini", handler)
        assert time.monotonic() - started < 0.5  # later calls do not wait again
    error = raised.value
    assert "no rules fetched yet" in error.message
    assert "REVENIUM_CB_FAIL_MODE=closed" in error.message
    assert (error.rule_id, error.rule_name, error.threshold) == (None, None, None)
    assert seen == []
    assert captured.records == []
    assert revenium.statistics().blocked == 3
    assert len(server.rule_requests) >= enforcement.FETCH_ATTEMPTS


def test_closed_mode_without_a_team_id_refuses_and_logs_one_error(
    server: MeteringServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="revenium")
    monkeypatch.setenv("REVENIUM_METERING_API_KEY", KEY)
    monkeypatch.setenv("REVENIUM_METERING_BASE_URL", server.url)
    monkeypatch.setenv("REVENIUM_CIRCUIT_BREAKER_ENABLED", "1")
    monkeypatch.setenv("REVENIUM_CB_FAIL_MODE", "closed")
    for _ in range(3):
        with pytest.raises(BudgetExceededError) as raised:
            openai_call("gpt-4o-mini")
        assert "REVENIUM_TEAM_ID not configured" in raised.value.message
    with pytest.raises(BudgetExceededError):
        asyncio.run(_openai_async(oa.openai_handler))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "REVENIUM_TEAM_ID" in errors[0].getMessage()
    assert "refused" in errors[0].getMessage()
    assert server.rule_requests == []  # nothing to fetch without a team


def test_closed_mode_without_a_team_id_refuses_at_once(
    server: MeteringServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVENIUM_METERING_API_KEY", KEY)
    monkeypatch.setenv("REVENIUM_METERING_BASE_URL", server.url)
    monkeypatch.setenv("REVENIUM_CIRCUIT_BREAKER_ENABLED", "1")
    monkeypatch.setenv("REVENIUM_CB_FAIL_MODE", "closed")
    monkeypatch.setenv("REVENIUM_CB_STARTUP_WAIT_SECONDS", "1")
    for call in (
        lambda: openai_call("gpt-4o-mini"),
        lambda: asyncio.run(_openai_async(oa.openai_handler)),
    ):
        started = time.monotonic()
        with pytest.raises(BudgetExceededError, match="REVENIUM_TEAM_ID"):
            call()
        assert time.monotonic() - started < 0.5


def test_open_mode_without_a_team_id_lets_calls_through_and_logs_one_error(
    server: MeteringServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="revenium")
    monkeypatch.setenv("REVENIUM_METERING_API_KEY", KEY)
    monkeypatch.setenv("REVENIUM_METERING_BASE_URL", server.url)
    monkeypatch.setenv("REVENIUM_CIRCUIT_BREAKER_ENABLED", "true")
    with revenium.testing.capture() as captured:
        for _ in range(3):
            openai_call(GPT)
    assert len(captured.completions) == 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "REVENIUM_TEAM_ID" in errors[0].getMessage()


def test_configure_enabling_cost_controls_without_a_team_id_raises() -> None:
    with pytest.raises(ValueError, match="team"):
        revenium.configure(circuit_breaker_enabled=True)
    assert revenium.configure(circuit_breaker_enabled=True, team_id=TEAM).team_id == TEAM


# ----------------------------------------------------------------------------- disk mirror


def _mirror_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("revenium_enforcement_rules.*.json")) if cache.exists() else []


def test_the_fetched_feed_is_mirrored_to_disk_atomically_and_owner_only(
    server: MeteringServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    renames: list[tuple[Path, Path, int, bytes]] = []
    replace = pathlib.Path.replace

    def spy(self: Path, target: Any) -> Path:
        renames.append((self, Path(target), stat.S_IMODE(self.stat().st_mode), self.read_bytes()))
        return replace(self, target)

    monkeypatch.setattr(pathlib.Path, "replace", spy)
    server.serve_rules(FEED)
    enable(server, cache_dir=cache)
    load_rules()
    wait_until(lambda: _mirror_files(cache), "the mirror file")
    (mirror,) = _mirror_files(cache)
    assert stat.S_IMODE(mirror.stat().st_mode) == 0o600
    saved = json.loads(mirror.read_text())
    assert saved["body"] == FEED
    assert isinstance(saved["fetchedAt"], float)
    assert sorted(cache.iterdir()) == [mirror]  # no temporary file left behind
    (source, _, mode, content) = next(r for r in renames if r[1] == mirror)
    assert source.parent == cache  # written beside it, then renamed over it
    assert source.name.startswith(".")
    assert mode == 0o600
    assert json.loads(content) == saved


_RESTARTED = """
import json, sys
sys.path.insert(0, {providers!r})
import revenium
from openai_fixtures import make_handler, sync_client

seen = []
provider = make_handler()


def recording(request):
    seen.append(request)
    return provider(request)


client = revenium.wrap(sync_client(recording))
try:
    client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "hi"}}])
    outcome = {{"blocked": False}}
except revenium.BudgetExceededError as exc:
    outcome = {{"blocked": True, "rule_id": exc.rule_id, "message": exc.message}}
outcome["sent"] = len(seen)
print(json.dumps(outcome))
"""


@pytest.mark.parametrize("fail_mode", ["closed", "open"])
def test_a_restarted_process_is_protected_from_its_first_call_by_the_mirror(
    server: MeteringServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_mode: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENIUM_")}
    env.update(
        REVENIUM_METERING_API_KEY=KEY,
        REVENIUM_METERING_BASE_URL=server.url,
        REVENIUM_TEAM_ID=TEAM,
        REVENIUM_CIRCUIT_BREAKER_ENABLED="true",
        REVENIUM_CB_FAIL_MODE=fail_mode,
        REVENIUM_CB_STARTUP_WAIT_SECONDS="5",
        REVENIUM_CACHE_DIR=str(tmp_path / "cache"),
        REVENIUM_SPOOL_DIR=str(tmp_path / "spool"),
        REVENIUM_SHUTDOWN_TIMEOUT_SECONDS="1",
    )
    for name, value in env.items():
        if name.startswith("REVENIUM_"):
            monkeypatch.setenv(name, value)
    server.serve_rules(FEED)
    load_rules()  # this process fetches the rules and mirrors them
    wait_until(lambda: _mirror_files(tmp_path / "cache"), "the mirror file")
    server.stop()  # the API is gone for the next process
    code = textwrap.dedent(_RESTARTED.format(providers=str(HERE / "providers")))
    done = subprocess.run([sys.executable, "-c", code], env=env, timeout=60, check=False,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["blocked"], outcome
    assert outcome["rule_id"] == 7
    assert outcome["sent"] == 0


def _restart() -> None:
    """As a new process would start: no runtime, no rules in memory (the disk keeps its own)."""
    revenium.shutdown_sync(timeout=5)
    enforcement.reset()


def test_a_mirrored_204_protects_a_closed_restart_too(
    server: MeteringServer, tmp_path: Path
) -> None:
    server.no_rules()
    enable(server, cb_fail_mode="closed", cache_dir=tmp_path / "cache", cb_startup_wait_seconds=5)
    load_rules()
    wait_until(lambda: _mirror_files(tmp_path / "cache"), "the mirror file")
    _restart()
    server.stop()
    enable(server, cb_startup_wait_seconds=0)  # a new config object, as read by a new process
    with revenium.testing.capture() as captured:
        openai_call(GPT)  # "no rules" came from the disk: allowed at once, without waiting
    assert len(captured.completions) == 1


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
def test_a_corrupt_mirror_is_ignored_with_a_warning(
    server: MeteringServer,
    tmp_path: Path,
    quick: list[float],
    warnings_log: pytest.LogCaptureFixture,
    fail_mode: str,
) -> None:
    cache = tmp_path / "cache"
    server.serve_rules(FEED)
    enable(server, cache_dir=cache, cb_fail_mode=fail_mode, cb_startup_wait_seconds=0.3)
    load_rules()
    wait_until(lambda: _mirror_files(cache), "the mirror file")
    (mirror,) = _mirror_files(cache)
    _restart()
    mirror.write_text('{"fetchedAt": 1, "body": {"rules": [{"ruleId": [')
    server.serve_rules({"error": "down"}, status=500)
    enable(server, cb_poll_interval_seconds=2)  # a new config object, as read by a new process
    if fail_mode == "closed":
        with pytest.raises(BudgetExceededError, match="no rules fetched yet"):
            openai_call(GPT)
    else:
        with revenium.testing.capture() as captured:
            openai_call(GPT)
        assert len(captured.completions) == 1
    (warning,) = [r for r in warnings_log.records if "ignoring the saved" in r.getMessage()]
    assert str(mirror) in warning.getMessage()


# ----------------------------------------------------------------------------- bypass


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
def test_revenium_bypass_turns_the_checks_into_no_ops(
    server: MeteringServer, monkeypatch: pytest.MonkeyPatch, fail_mode: str
) -> None:
    server.serve_rules(FEED)
    for name, value in {
        "REVENIUM_METERING_API_KEY": KEY,
        "REVENIUM_METERING_BASE_URL": server.url,
        "REVENIUM_TEAM_ID": TEAM,
        "REVENIUM_CIRCUIT_BREAKER_ENABLED": "true",
        "REVENIUM_CB_FAIL_MODE": fail_mode,
        "REVENIUM_CB_STARTUP_WAIT_SECONDS": "10",
        "REVENIUM_BYPASS": "true",
    }.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    with revenium.testing.capture() as captured:
        openai_call(GPT)
        asyncio.run(_openai_async(oa.openai_handler))
        _anthropic_sync(an.anthropic_handler)
    assert time.monotonic() - started < 5  # no wait for rules, even in closed mode
    assert len(captured.completions) == 3
    assert server.rule_requests == []  # no fetch is needed
    assert revenium.statistics().blocked == 0


def test_configure_bypass_during_an_incident(server: MeteringServer) -> None:
    server.serve_rules(FEED)
    enable(server)
    load_rules()
    with pytest.raises(BudgetExceededError):
        openai_call(GPT)
    revenium.configure(bypass=True)
    with revenium.testing.capture() as captured:
        openai_call(GPT)
        asyncio.run(_openai_async(oa.openai_handler))
    assert len(captured.completions) == 2
    revenium.configure(bypass=False)
    with pytest.raises(BudgetExceededError):
        openai_call(GPT)
    assert revenium.statistics().blocked == 2


# ----------------------------------------------------------------------------- team changes


def test_changing_the_team_switches_to_that_teams_rules(server: MeteringServer) -> None:
    server.serve_rules(FEED, team="team-a")
    server.no_rules(team="team-b")
    # A long poll interval: the new team's rules must come from the switch, not the schedule.
    enable(server, team_id="team-a", cb_poll_interval_seconds=3600, cb_fail_mode="closed",
           cb_startup_wait_seconds=5)  # fmt: skip
    load_rules()
    assert _blocked_by(lambda: openai_call(GPT)) == 7
    revenium.configure(team_id="team-b")
    started = time.monotonic()
    with revenium.testing.capture() as captured:
        openai_call(GPT)  # closed mode: waits for team-b's rules, which block nothing
    assert time.monotonic() - started < 3
    assert len(captured.completions) == 1
    assert [r.team for r in server.rule_requests] == ["team-a", "team-b"]
    revenium.configure(team_id="team-a")
    assert _blocked_by(lambda: openai_call(GPT)) == 7
    assert [r.team for r in server.rule_requests] == ["team-a", "team-b", "team-a"]


async def test_closed_mode_an_async_call_after_a_team_change_waits_for_that_teams_rules(
    server: MeteringServer,
) -> None:
    server.serve_rules(FEED, team="team-a")
    server.no_rules(team="team-b")
    enable(server, team_id="team-a", cb_poll_interval_seconds=3600, cb_fail_mode="closed",
           cb_startup_wait_seconds=5)  # fmt: skip
    client = revenium.wrap(oa.async_client())
    await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    revenium.configure(team_id="team-b")
    with revenium.testing.capture() as captured:
        await client.chat.completions.create(model=GPT, messages=USER)  # team-b: no rules
    assert len(captured.completions) == 1


def test_a_fetch_for_the_old_team_still_in_flight_is_not_applied_to_the_new_team(
    server: MeteringServer,
) -> None:
    release_a, release_b = threading.Event(), threading.Event()

    def hold(request: Request) -> None:
        (release_a if request.team == "team-a" else release_b).wait(10)

    server.serve_rules(FEED, team="team-a")
    server.no_rules(team="team-b")
    server.rules_responder = hold
    enable(server, team_id="team-a", cb_poll_interval_seconds=3600)
    try:
        openai_call("gpt-4o-mini")
        server.wait_for_rule_requests(1, team="team-a")  # team-a's answer is held back
        revenium.configure(team_id="team-b")
        openai_call("gpt-4o-mini")  # adopts team-b: no rules of its own yet
        release_a.set()  # team-a's rules arrive now, after the switch...
        server.wait_for_rule_requests(1, team="team-b")  # ...and the poller moved on to team-b
        with revenium.testing.capture() as captured:
            openai_call(GPT)  # team-b has no rules: team-a's must not block it
        assert len(captured.completions) == 1
    finally:
        release_a.set()
        release_b.set()


# ----------------------------------------------------------------------------- review fixes


def test_an_unexpected_fetch_failure_never_multiplies_the_poller(
    server: MeteringServer, quick: list[float]
) -> None:
    # a 200 whose gzip body is corrupt (a broken proxy): httpx raises a DecodingError
    server.serve_rules(None)
    server.rules[None] = Response(200, raw=b"not gzip at all", headers={"content-encoding": "gzip"})
    enable(server, cb_poll_interval_seconds=60)
    client = revenium.wrap(oa.sync_client())
    with revenium.testing.capture(strict_mode=False) as captured:
        for _ in range(40):  # each call checks the rules; none may start another poller
            client.chat.completions.create(model="gpt-4o-mini", messages=USER)
            time.sleep(0.005)
    assert len(captured.completions) == 40  # and every call is still metered
    # one poller: its first fetch (up to 5 attempts), then it sleeps the 60 s interval
    assert len(server.rule_requests) <= 5
    assert enforcement._state.poller_alive


def test_a_cache_dir_the_sdk_cannot_use_never_breaks_or_unmeters_a_call(
    server: MeteringServer, tmp_path: Path
) -> None:
    server.serve_rules(FEED)
    # a name the file system refuses (ENAMETOOLONG on exists()): the mirror is unusable
    enable(server, cache_dir=tmp_path / ("x" * 300))
    with revenium.testing.capture(strict_mode=False) as captured:
        openai_call(model="gpt-4o-mini")

        async def async_call() -> None:
            client = revenium.wrap(oa.async_client())
            await client.chat.completions.create(model="gpt-4o-mini", messages=USER)

        asyncio.run(async_call())
    assert len(captured.completions) == 2


def test_a_closed_mode_async_call_survives_an_unusable_cache_dir(
    server: MeteringServer, tmp_path: Path
) -> None:
    server.serve_rules(FEED)
    enable(server, cache_dir=tmp_path / ("x" * 300), cb_fail_mode="closed")

    async def calls() -> None:
        client = revenium.wrap(oa.async_client())
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # allowed
        with pytest.raises(BudgetExceededError):
            await client.chat.completions.create(model=GPT, messages=USER)

    asyncio.run(calls())


def test_a_bedrock_application_profile_cannot_escape_a_model_rule(server: MeteringServer) -> None:
    server.serve_rules(FEED)  # CLAUDE_RULE: claude-sonnet-4-6
    enable(server)
    load_rules()
    seen: list[an.Recorded] = []
    client = revenium.wrap(an.bedrock_client(an.recording(seen)))
    profile = "arn:aws:bedrock:us-east-1:123:application-inference-profile/a1b2c3"
    with pytest.raises(BudgetExceededError):  # the ARN names no model: the rule stays in force
        client.messages.create(model=profile, **KW)
    with pytest.raises(BudgetExceededError):  # a context-window variant is the same model
        client.messages.create(model="anthropic.claude-sonnet-4-6-v1:0:200k", **KW)
    assert seen == []


def test_an_async_stream_manager_entered_twice_sends_once_and_records_once() -> None:
    seen: list[an.Recorded] = []
    client = revenium.wrap(an.async_client(an.recording(seen)))

    async def twice() -> None:
        manager = client.messages.stream(model=CLAUDE, **KW)
        async with manager as stream:
            await stream.get_final_message()
        with pytest.raises(RuntimeError):  # the SDK's own: a coroutine cannot be reused
            async with manager:
                pass

    with revenium.testing.capture() as captured:
        asyncio.run(twice())
    assert len(seen) == 1
    assert [r.stop_reason.value for r in captured.completions] == ["END"]
