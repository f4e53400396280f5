"""revenium.wrap on the real google-genai SDK: the client contract.

``wrap(genai.Client)`` returns a new ``genai.Client`` sharing the original's API client, with
metered ``models``, ``operations``, ``aio.models`` and ``aio.operations`` of its own; the
original is never touched. Here: the clone's type and lifetime (garbage collection must not
close the original's connections), metadata, cost controls, the fallback when the SDK's
per-request method is never reached, and ``client.aio`` over aiohttp.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from google import genai
from google.genai import types
from google_fixtures import (
    API_KEY,
    GOOGLE_ENV,
    LOCATION,
    MODEL,
    MODES,
    NO_RETRY,
    PROJECT,
    USER_TEXT,
    WEATHER_REPORT,
    WEATHER_TEXT,
    Recorded,
    client_for,
    echo,
    expected_usage,
    get_weather,
    make_handler,
    recording,
    served_client,
    words,
)

import revenium
from revenium import _diagnostics, enforcement
from revenium.attribution import Metadata
from revenium.errors import BudgetExceededError
from revenium.providers import google as adapter
from revenium.providers._openai_standin import StandInServer
from revenium.records import CompletionRecord, OperationType, StopReason
from revenium.rules import parse_feed
from revenium.testing import Capture

REPLY = echo(USER_TEXT)
WEATHER_REPLY = echo(WEATHER_TEXT)
ANSWERED = WEATHER_TEXT + json.dumps({"result": WEATHER_REPORT})  # the loop's 2nd prompt
AFC = types.GenerateContentConfig(tools=[get_weather])
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The SDK subclasses aiohttp.ClientSession inside a method; aiohttp 3.10+ warns at each subclass.
AIOHTTP_SUBCLASS = pytest.mark.filterwarnings(
    "ignore:Inheritance class .* from ClientSession:DeprecationWarning"
)
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads its mode, keys and API version (and its HTTP client proxies) from the
    environment."""
    for name in (*GOOGLE_ENV, *PROXY_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "aio"])
def colour(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server() -> Iterator[StandInServer]:
    with StandInServer() as running:
        yield running


def generate(client: genai.Client, colour: str) -> Callable[..., Awaitable[Any]]:
    """``models.generate_content`` of ``client`` (or of ``client.aio``), awaitable either way."""
    if colour == "aio":
        return client.aio.models.generate_content

    async def call(**kw: Any) -> Any:
        return client.models.generate_content(**kw)

    return call


async def send(chat: Any, colour: str, message: str) -> Any:
    """``chat.send_message`` (a chat of ``client.aio`` is awaited)."""
    if colour == "aio":
        return await chat.send_message(message)
    return chat.send_message(message)


def only(captured: Capture) -> CompletionRecord:
    assert len(captured.records) == 1, captured.records
    (record,) = captured.completions
    return record


def own_client(server: StandInServer, mode: str = "gemini") -> genai.Client:
    """A client of the loopback server with the SDK's own HTTP clients (none injected)."""
    options = types.HttpOptions(base_url=server.origin, retry_options=NO_RETRY)
    if mode == "vertex":
        return genai.Client(http_options=options, vertexai=True, api_key=API_KEY)
    return genai.Client(http_options=options, vertexai=False, api_key=API_KEY)


def install_rules(*rules: dict[str, Any]) -> None:
    """Cost controls on, with these breached rules in force (installed offline, no poller)."""
    settings = revenium.configure(
        circuit_breaker_enabled=True, team_id="team-1", cb_poll_interval_seconds=3600
    )
    enforcement._adopt(settings)
    feed = parse_feed({"rules": [{"breached": True, **rule} for rule in rules]})
    enforcement._install(enforcement.Snapshot(feed, 0.0, "test"))
    enforcement._state.poller_alive = True  # no poller: nothing to fetch


def block_every_call() -> None:
    """One breached rule without filters: it matches every call."""
    install_rules({"ruleId": 1, "name": "Everything"})


# -- the clone ----------------------------------------------------------------------------------


def test_wrap_returns_a_genai_client_and_leaves_the_original_unmetered(
    mode: str, captured: Capture
) -> None:
    original = client_for(mode)
    wrapped = revenium.wrap(original)
    assert type(wrapped) is genai.Client
    assert wrapped is not original
    assert revenium.unwrap(wrapped) is original
    assert revenium.unwrap(original) is original
    assert wrapped._api_client is original._api_client  # one set of connections
    for resource in ("models", "operations"):
        assert getattr(wrapped, resource) is not getattr(original, resource)
        assert getattr(wrapped.aio, resource) is not getattr(original.aio, resource)
    original.models.generate_content(model=MODEL, contents=USER_TEXT)
    original.chats.create(model=MODEL).send_message(USER_TEXT)
    assert captured.records == []
    assert not hasattr(original, "_revenium_state")
    assert "_generate_content" not in vars(original.models)  # nothing installed on it
    assert "generate_content" not in vars(original.aio.models)
    wrapped.models.generate_content(model=MODEL, contents=USER_TEXT)
    assert only(captured).transaction_id == "resp-standin-3"


async def test_the_original_aio_stays_unmetered(captured: Capture) -> None:
    original = client_for("vertex")
    wrapped = revenium.wrap(original)
    await original.aio.models.generate_content(model=MODEL, contents=USER_TEXT)
    await original.aio.chats.create(model=MODEL).send_message(USER_TEXT)
    assert captured.records == []
    await wrapped.aio.models.generate_content(model=MODEL, contents=USER_TEXT)
    await wrapped.aio.chats.create(model=MODEL).send_message(USER_TEXT)
    assert [r.transaction_id for r in captured.completions] == ["resp-standin-3", "resp-standin-4"]


async def test_every_metered_surface_of_the_clone(colour: str, captured: Capture) -> None:
    client = revenium.wrap(client_for("gemini"))
    aio = colour == "aio"
    models: Any = client.aio.models if aio else client.models
    chats: Any = client.aio.chats if aio else client.chats

    async def run(value: Any) -> Any:
        return await value if aio else value

    await run(models.generate_content(model=MODEL, contents=USER_TEXT))
    await run(chats.create(model=MODEL).send_message(USER_TEXT))
    await run(models.embed_content(model="gemini-embedding-001", contents="x"))
    # counting tokens costs nothing: not metered
    counted = await run(models.count_tokens(model=MODEL, contents=USER_TEXT))
    assert counted.total_tokens
    assert [r.operation_type for r in captured.completions] == [
        OperationType.CHAT,
        OperationType.CHAT,
        OperationType.EMBED,
    ]


def test_wrapping_twice_meters_once_and_merges_metadata(captured: Capture) -> None:
    original = client_for("vertex")
    once = revenium.wrap(original, metadata={"organization_name": "Acme"})
    twice = revenium.wrap(once, metadata={"product_name": "bot"})
    assert revenium.unwrap(twice) is original
    assert type(twice) is genai.Client
    twice.models.generate_content(model=MODEL, contents=WEATHER_TEXT, config=AFC)
    assert len(captured.records) == 2  # the tool loop's two requests, each metered once
    for record in captured.completions:
        assert (record.metadata.organization_name, record.metadata.product_name) == (
            "Acme",
            "bot",
        )
    captured.clear()
    once.models.generate_content(model=MODEL, contents=USER_TEXT)
    assert only(captured).metadata == Metadata(organization_name="Acme")


def test_wrap_metadata_under_sessions_and_per_call_metadata(captured: Capture) -> None:
    seen: list[Recorded] = []
    wrapped = revenium.wrap(
        client_for("express", recording(seen)), metadata={"product_name": "bot", "agent": "w"}
    )
    with revenium.session(organization_name="Acme", agent="s"):
        wrapped.models.generate_content(
            model=MODEL, contents=USER_TEXT, usage_metadata={"task_type": "qa", "agent": "c"}
        )
    md = only(captured).metadata
    assert (md.organization_name, md.product_name, md.task_type, md.agent) == (
        "Acme",
        "bot",
        "qa",
        "c",
    )
    assert "usage_metadata" not in str(seen[0].body)  # never reaches the provider


def test_invalid_wrap_metadata_raises_at_wrap_time() -> None:
    with pytest.raises(ValueError, match=r"^revenium\.wrap\(metadata=\.\.\.\)"):
        revenium.wrap(client_for("gemini"), metadata={"trace_type": "no spaces"})


def test_only_the_client_itself_can_be_wrapped() -> None:
    client = genai.Client(api_key=API_KEY, vertexai=False)
    for part in (client.aio, client.models, client.aio.models):
        with pytest.raises(TypeError) as raised:
            revenium.wrap(part)
        message = str(raised.value)
        assert f"does not support {type(part).__module__}.{type(part).__qualname__}" in message
        assert "google.genai.Client" in message.partition("supported clients: ")[2]
    client.close()


# -- lifetime: the clone shares the original's connections ---------------------------------------


def test_collecting_the_clone_leaves_the_originals_own_connections_open(
    server: StandInServer, captured: Capture
) -> None:
    original = own_client(server)
    api = original._api_client
    assert api._http_options.httpx_client is None  # the SDK made its HTTP client itself
    wrapped = revenium.wrap(original)
    wrapped.models.generate_content(model=MODEL, contents=USER_TEXT)
    assert len(captured.records) == 1
    del wrapped
    gc.collect()
    assert not api._httpx_client.is_closed
    assert original.models.generate_content(model=MODEL, contents=USER_TEXT).text == REPLY
    assert len(captured.records) == 1  # the original's call: not metered
    original.close()
    assert api._httpx_client.is_closed


def test_collecting_the_clone_leaves_injected_clients_open(captured: Capture) -> None:
    original = client_for("vertex")
    http = original._api_client._httpx_client
    revenium.wrap(original).models.generate_content(model=MODEL, contents=USER_TEXT)
    gc.collect()
    assert not http.is_closed
    assert original.models.generate_content(model=MODEL, contents=USER_TEXT).text == REPLY


def test_the_clone_closes_when_asked(server: StandInServer, captured: Capture) -> None:
    with revenium.wrap(own_client(server, "vertex")) as client:
        api = client._api_client
        client.models.generate_content(model=MODEL, contents=USER_TEXT)
        assert not api._httpx_client.is_closed
    assert api._httpx_client.is_closed  # the SDK's own client, shared: closed at exit
    assert len(captured.records) == 1
    other = revenium.wrap(own_client(server))
    other.close()
    assert other._api_client._httpx_client.is_closed


def test_a_close_from_the_callers_own_finalizer_closes(server: StandInServer) -> None:
    class Service:
        def __init__(self, client: genai.Client) -> None:
            self.client = client

        def __del__(self) -> None:
            self.client.close()

    original = own_client(server)  # kept by its owner
    service = Service(revenium.wrap(original))
    del service
    gc.collect()  # the service's finalizer asks the wrapped client to close
    assert original._api_client._httpx_client.is_closed


@AIOHTTP_SUBCLASS
async def test_the_clones_aio_closes_when_asked(server: StandInServer) -> None:
    original = own_client(server)  # no async client injected: aiohttp, when installed
    api = original._api_client
    async with revenium.wrap(original).aio as aio:
        await aio.models.generate_content(model=MODEL, contents=USER_TEXT)
        assert not api._async_resources_are_closed()
    assert api._async_resources_are_closed()
    original.close()


# -- cost controls -------------------------------------------------------------------------------


async def test_a_blocking_rule_refuses_before_any_request(colour: str, captured: Capture) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("vertex", recording(seen)))
    block_every_call()
    for config in (None, AFC):
        with pytest.raises(BudgetExceededError) as raised:
            await generate(client, colour)(model=MODEL, contents=WEATHER_TEXT, config=config)
        assert raised.value.rule_name == "Everything"
    chat: Any = (client.aio if colour == "aio" else client).chats.create(model=MODEL)
    with pytest.raises(BudgetExceededError):
        await send(chat, colour, USER_TEXT)
    assert seen == []  # nothing was sent
    assert captured.records == []  # and nothing was paid
    # the original client is not metered, so not checked either
    await generate(revenium.unwrap(client), colour)(model=MODEL, contents=USER_TEXT)
    assert len(seen) == 1


def test_rules_match_the_normalized_model_and_the_google_provider(captured: Capture) -> None:
    install_rules(
        {
            "ruleId": 1,
            "name": "Flash cap",
            "filters": [{"dimension": "MODEL", "operator": "IS", "value": MODEL}],
        },
        {
            "ruleId": 2,
            "name": "Google cap",
            "filters": [
                {"dimension": "PROVIDER", "operator": "IS", "value": "Google"},
                {"dimension": "ORGANIZATION", "operator": "IS", "value": "Capped"},
            ],
        },
    )
    forms = {
        "gemini": [MODEL, f"models/{MODEL}"],
        "vertex": [
            f"publishers/google/models/{MODEL}",
            f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}",
            f"{MODEL}@001",
        ],
    }
    for mode, models in forms.items():
        seen: list[Recorded] = []
        client = revenium.wrap(client_for(mode, recording(seen)))
        for model in models:
            with pytest.raises(BudgetExceededError) as raised:
                client.models.generate_content(model=model, contents=USER_TEXT)
            assert raised.value.rule_name == "Flash cap"
        assert seen == []
        client.models.generate_content(model="gemini-2.5-pro", contents=USER_TEXT)  # allowed
        with revenium.session(organization_name="Capped"), pytest.raises(BudgetExceededError) as r:
            client.models.generate_content(model="gemini-2.5-pro", contents=USER_TEXT)
        assert r.value.rule_name == "Google cap"
        assert len(seen) == 1
    assert [r.model for r in captured.completions] == ["gemini-2.5-pro"] * 2


# -- the per-request hook never reached: the call's response, and one warning ------------------


def fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "revenium"
        and r.levelno == logging.WARNING
        and "_generate_content" in r.getMessage()
    ]


@pytest.mark.parametrize("mode", ["gemini", "vertex"])
async def test_without_the_per_request_hook_each_call_meters_its_response(
    mode: str,
    colour: str,
    captured: Capture,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An SDK version whose ``generate_content`` sends its requests without calling
    ``_generate_content``: simulated by taking the hook off the clone's models, so the SDK's
    own (unmetered) method sends them."""
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    models: Any = client.aio.models if colour == "aio" else client.models
    monkeypatch.delattr(models, "_generate_content")
    call = generate(client, colour)
    response = await call(model=MODEL, contents=USER_TEXT)
    record = only(captured)
    assert record.transaction_id == response.response_id == "resp-standin-1"
    usage = expected_usage(USER_TEXT, words(REPLY))
    assert (record.input_token_count, record.output_token_count, record.total_token_count) == (
        usage["prompt_token_count"],
        usage["candidates_token_count"],
        usage["total_token_count"],
    )
    assert (record.stop_reason, record.operation_type) == (StopReason.END, OperationType.CHAT)
    captured.clear()
    # a tool loop: two requests, one record, of the last request (all the response has)
    answer = await call(model=MODEL, contents=WEATHER_TEXT, config=AFC)
    assert len(seen) == 3
    record = only(captured)
    assert record.transaction_id == answer.response_id == "resp-standin-3"
    assert record.input_token_count == expected_usage(ANSWERED, 0)["prompt_token_count"]
    assert record.output_token_count == words(WEATHER_REPLY)
    assert record.metadata.parent_transaction_id is None
    captured.clear()
    await call(model=MODEL, contents=USER_TEXT)
    assert len(captured.records) == 1
    (warning,) = fallback_warnings(caplog)  # once, not per call
    assert "generate_content" in warning.getMessage()


# -- client.aio over aiohttp ---------------------------------------------------------------------


def comparable(record: CompletionRecord) -> CompletionRecord:
    """The record without what differs from run to run (timings and its random key)."""
    return attrs.evolve(
        record,
        request_time=EPOCH,
        request_duration_ms=1.0,
        time_to_first_token_ms=1.0,
        idempotency_key="k",
    )


@AIOHTTP_SUBCLASS
async def test_aio_over_aiohttp_makes_the_same_records_as_over_httpx(captured: Capture) -> None:
    pytest.importorskip("aiohttp")
    records: dict[bool, list[CompletionRecord]] = {}
    for use_aiohttp in (False, True):
        with StandInServer() as server:  # a fresh backend: the same response ids
            async with served_client(server, "vertex", aiohttp=use_aiohttp) as original:
                api = original._api_client
                assert api._use_aiohttp() is use_aiohttp
                client = revenium.wrap(original)
                await client.aio.models.generate_content(model=MODEL, contents=USER_TEXT)
                await client.aio.models.generate_content(
                    model=MODEL, contents=WEATHER_TEXT, config=AFC
                )
                assert bool(api._aiohttp_sessions) is use_aiohttp  # who really sent them
        records[use_aiohttp] = list(captured.completions)
        captured.clear()
    assert len(records[True]) == 3
    assert [comparable(r) for r in records[True]] == [comparable(r) for r in records[False]]
    first, second = records[True][1:]
    assert second.metadata.parent_transaction_id == first.transaction_id


# -- containment ---------------------------------------------------------------------------------


def test_an_internal_failure_never_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(adapter, "_tokens", broken)
    before = _diagnostics.internal_error_count()
    with revenium.testing.capture(strict_mode=False) as captured:
        client = revenium.wrap(client_for("gemini", make_handler()))
        response = client.models.generate_content(model=MODEL, contents=USER_TEXT)
    assert response.text == REPLY  # the caller got the provider's answer
    assert captured.records == []
    assert _diagnostics.internal_error_count() == before + 1
