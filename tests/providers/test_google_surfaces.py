"""google-genai's ``generate_content``, on the Gemini API, Vertex AI and Vertex express mode,
sync and ``client.aio``: the exact records.

The real SDK runs over an in-process transport backed by the Google stand-in; every expected
number comes from the stand-in's counting rules (``_google_standin``) through the helpers of
``google_fixtures``. Streams are in ``test_google_streams.py``; embeddings, images and videos
in ``test_google_media.py``; the client contract (cloning, fallback, cost controls) in
``test_google_wrap.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import httpx2
import pytest
from google.genai import errors, types
from google_fixtures import (
    FAST_RETRY,
    GOOGLE_ENV,
    LOCATION,
    MODEL,
    MODES,
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
    tokens,
    words,
)

import revenium
from revenium.providers import google as google_adapter
from revenium.providers._google_standin import THINKING_TEXT, TOOL_ARGS
from revenium.records import CompletionRecord, OperationType, StopReason
from revenium.testing import Capture

if TYPE_CHECKING:
    from google import genai

REPLY = echo(USER_TEXT)
WEATHER_REPLY = echo(WEATHER_TEXT)
ANSWER = {"result": WEATHER_REPORT}  # the SDK's functionResponse.response for get_weather
ANSWERED = WEATHER_TEXT + json.dumps(ANSWER)  # the prompt text of the tool loop's 2nd request
TOOL_WORDS = words(json.dumps(TOOL_ARGS))
AFC = types.GenerateContentConfig(tools=[get_weather])
NO_AFC = types.GenerateContentConfig(
    tools=[get_weather],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)
VERTEX_FORMS = [
    f"publishers/google/models/{MODEL}",
    f"projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}",
    f"{MODEL}@001",
]
MODEL_FORMS: dict[str, list[str]] = {
    "gemini": [f"models/{MODEL}"],
    "vertex": [f"models/{MODEL}", *VERTEX_FORMS],
    "express": [f"models/{MODEL}", *VERTEX_FORMS],
}


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads its mode, keys and API version from the environment."""
    for name in GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "aio"])
def colour(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


Generate = Callable[..., Awaitable[types.GenerateContentResponse]]


def generate(client: genai.Client, colour: str) -> Generate:
    """``models.generate_content`` of ``client`` (or of ``client.aio``), awaitable either way."""
    if colour == "aio":
        return client.aio.models.generate_content

    async def call(**kw: Any) -> types.GenerateContentResponse:
        return client.models.generate_content(**kw)

    return call


def only(captured: Capture) -> CompletionRecord:
    assert len(captured.records) == 1, captured.records
    (record,) = captured.completions
    return record


def counts(usage: dict[str, int | None]) -> dict[str, int | None]:
    """The record's token fields for the stand-in's ``usage`` (``expected_usage``): input =
    prompt + tool-use prompt, output = candidates + thoughts, the cache and thoughts alone."""
    prompt, tool = usage["prompt_token_count"] or 0, usage["tool_use_prompt_token_count"] or 0
    candidates, thoughts = usage["candidates_token_count"] or 0, usage["thoughts_token_count"]
    return {
        "input_token_count": prompt + tool,
        "output_token_count": candidates + (thoughts or 0),
        "total_token_count": usage["total_token_count"],
        "cache_read_token_count": usage["cached_content_token_count"],
        "reasoning_token_count": thoughts,
    }


def token_fields(record: CompletionRecord) -> dict[str, int | None]:
    return {name: getattr(record, name) for name in counts(expected_usage("", 0))}


def expect(
    record: CompletionRecord,
    n: int,
    usage: dict[str, int | None],
    *,
    model: str = MODEL,
    provider_model_id: str | None = None,
    operation: OperationType = OperationType.CHAT,
    stop: StopReason = StopReason.END,
) -> None:
    """A successful generateContent record: request ``n`` of its handler, ``usage`` reported."""
    assert (record.provider, record.model_source) == ("Google", "GOOGLE")
    assert (record.model, record.provider_model_id) == (model, provider_model_id)
    assert record.transaction_id == f"resp-standin-{n}"
    assert token_fields(record) == counts(usage)
    assert (record.operation_type, record.stop_reason) == (operation, stop)
    assert (record.is_streamed, record.estimated) == (False, False)
    assert 0 < record.time_to_first_token_ms == record.request_duration_ms  # type: ignore[operator]
    if stop is not StopReason.ERROR:
        assert (record.error_code, record.error_reason) == (None, None)


# -- plain answers, model names, token kinds -------------------------------------------------------


async def test_a_plain_answer_is_one_chat_record(mode: str, colour: str, captured: Capture) -> None:
    client = revenium.wrap(client_for(mode))
    response = await generate(client, colour)(model=MODEL, contents=USER_TEXT)
    assert response.text == REPLY
    record = only(captured)
    expect(record, 1, expected_usage(USER_TEXT, words(REPLY)))
    assert record.transaction_id == response.response_id
    assert record.metadata.parent_transaction_id is None
    assert record.prompts is None  # nothing captured by default


async def test_model_names_are_normalized_and_the_callers_id_kept(
    mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(mode))
    call = generate(client, colour)
    for n, form in enumerate(MODEL_FORMS[mode], start=1):
        await call(model=form, contents=USER_TEXT)
        expect(only(captured), n, expected_usage(USER_TEXT, words(REPLY)), provider_model_id=form)
        captured.clear()


async def test_thinking_cache_and_search_each_count(
    mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(mode))
    call = generate(client, colour)
    budget = types.ThinkingConfig(thinking_budget=1024)
    cases: list[tuple[types.GenerateContentConfig, dict[str, bool]]] = [
        (types.GenerateContentConfig(thinking_config=budget), {"thinking": True}),
        (
            types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(include_thoughts=True)
            ),
            {"thinking": True},
        ),
        (types.GenerateContentConfig(cached_content="cachedContents/standin"), {"cached": True}),
        (
            types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())]),
            {"search": True},
        ),
        (
            types.GenerateContentConfig(
                thinking_config=budget,
                cached_content="cachedContents/standin",
                tools=[types.Tool(google_search=types.GoogleSearch())],
            ),
            {"thinking": True, "cached": True, "search": True},
        ),
    ]
    for n, (config, kinds) in enumerate(cases, start=1):
        response = await call(model=MODEL, contents=USER_TEXT, config=config)
        assert response.text == REPLY  # thoughts are not the answer
        record = only(captured)
        usage = expected_usage(USER_TEXT, words(REPLY), **kinds)
        expect(record, n, usage)
        # The classes that do not overlap: the cache is read once, the reasoning billed once.
        classes = record.token_classes
        cached = usage["cached_content_token_count"] or 0
        thoughts = usage["thoughts_token_count"] or 0
        tool = usage["tool_use_prompt_token_count"] or 0
        assert classes.cache_read == cached
        assert classes.uncached_input == (usage["prompt_token_count"] or 0) - cached + tool
        assert (classes.output, classes.reasoning) == (words(REPLY), thoughts)
        assert classes.input + classes.output + classes.reasoning == record.total_token_count
        captured.clear()


def test_the_wire_carries_the_counts_the_server_prices(captured: Capture) -> None:
    client = revenium.wrap(client_for("vertex"))
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_budget=1024),
        cached_content="cachedContents/standin",
        tools=[types.Tool(google_search=types.GoogleSearch())],
    )
    client.models.generate_content(model=f"{MODEL}@001", contents=USER_TEXT, config=config)
    usage = expected_usage(USER_TEXT, words(REPLY), cached=True, thinking=True, search=True)
    fields = counts(usage)
    (body,) = captured.bodies()
    assert (body["model"], body["provider"], body["modelSource"]) == (MODEL, "Google", "GOOGLE")
    assert (body["inputTokenCount"], body["outputTokenCount"], body["totalTokenCount"]) == (
        fields["input_token_count"],
        fields["output_token_count"],
        fields["total_token_count"],
    )
    assert (body["cacheReadTokenCount"], body["reasoningTokenCount"]) == (
        fields["cache_read_token_count"],
        fields["reasoning_token_count"],
    )
    assert (body["stopReason"], body["isStreamed"], body["transactionId"]) == (
        "END",
        False,
        "resp-standin-1",
    )
    assert not any("provider_model_id" in k or "providerModelId" in k for k in body)


def test_system_instruction_and_history_are_prompt_tokens(mode: str, captured: Capture) -> None:
    system = "You answer briefly."
    turns: Any = [
        types.Content(role="user", parts=[types.Part(text="Hi")]),
        {"role": "model", "parts": [{"text": "Hello! What can I do?"}]},
        {"role": "user", "parts": [{"text": USER_TEXT}]},
    ]
    client = revenium.wrap(client_for(mode))
    config = types.GenerateContentConfig(system_instruction=system)
    client.models.generate_content(model=MODEL, contents=turns, config=config)
    prompt = system + "Hi" + "Hello! What can I do?" + USER_TEXT
    expect(only(captured), 1, expected_usage(prompt, words(REPLY)))


async def test_a_raw_http_response_is_metered_from_its_body(
    mode: str, colour: str, captured: Capture
) -> None:
    """``should_return_http_response=True``: the SDK returns the raw body unparsed (no
    ``usage_metadata``); the record reads the usage, id and finish reason from the body."""
    client = revenium.wrap(client_for(mode))
    config = types.GenerateContentConfig(should_return_http_response=True)
    response = await generate(client, colour)(model=MODEL, contents=USER_TEXT, config=config)
    assert response.usage_metadata is None
    assert response.sdk_http_response is not None
    assert response.sdk_http_response.body is not None
    body = json.loads(response.sdk_http_response.body)
    usage = expected_usage(USER_TEXT, words(REPLY))
    assert body["usageMetadata"]["promptTokenCount"] == usage["prompt_token_count"]
    expect(only(captured), 1, usage)
    captured.clear()
    # a function call read from the raw body is a tool call
    config = types.GenerateContentConfig(
        tools=[get_weather],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        should_return_http_response=True,
    )
    await generate(client, colour)(model=MODEL, contents=WEATHER_TEXT, config=config)
    expect(
        only(captured),
        2,
        expected_usage(WEATHER_TEXT, TOOL_WORDS),
        operation=OperationType.TOOL_CALL,
    )


def test_a_function_call_answer_is_a_tool_call(mode: str, captured: Capture) -> None:
    declared = types.Tool(
        function_declarations=[types.FunctionDeclaration(name="get_weather", description="x")]
    )
    client = revenium.wrap(client_for(mode))
    config = types.GenerateContentConfig(tools=[declared])
    response = client.models.generate_content(model=MODEL, contents=WEATHER_TEXT, config=config)
    assert response.function_calls
    expect(
        only(captured),
        1,
        expected_usage(WEATHER_TEXT, TOOL_WORDS),
        operation=OperationType.TOOL_CALL,
    )
    captured.clear()
    client.models.generate_content(model=MODEL, contents=USER_TEXT, config=config)
    assert only(captured).operation_type is OperationType.CHAT  # tools offered, not used


# -- finish reasons ------------------------------------------------------------------------------

REFUSALS = ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"]


@pytest.mark.parametrize("reason", REFUSALS)
async def test_a_refused_answer_is_an_error_with_its_reason(
    mode: str, colour: str, reason: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(mode))
    model = f"finish-{reason}"
    response = await generate(client, colour)(model=model, contents=USER_TEXT)
    assert response.text is None
    record = only(captured)
    expect(record, 1, expected_usage(USER_TEXT, 0), model=model, stop=StopReason.ERROR)
    assert (record.error_code, record.error_reason) == (None, f"finish_reason {reason}")


async def test_a_refusal_with_thinking_still_bills_the_thoughts(
    colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for("gemini"))
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=64))
    await generate(client, colour)(model="finish-SAFETY", contents=USER_TEXT, config=config)
    record = only(captured)
    usage = expected_usage(USER_TEXT, 0, thinking=True)
    expect(record, 1, usage, model="finish-SAFETY", stop=StopReason.ERROR)
    assert record.token_classes.reasoning == usage["thoughts_token_count"]


@pytest.mark.parametrize(
    ("model", "config", "stop", "error_reason", "candidates"),
    [
        (MODEL, None, StopReason.END, None, words(REPLY)),
        (
            MODEL,
            types.GenerateContentConfig(max_output_tokens=3),
            StopReason.TOKEN_LIMIT,
            None,
            3,  # the first maxOutputTokens words
        ),
        (
            "finish-MALFORMED_FUNCTION_CALL",
            None,
            StopReason.ERROR,
            "finish_reason MALFORMED_FUNCTION_CALL",
            words(REPLY),
        ),
        ("finish-OTHER", None, StopReason.END, None, words(REPLY)),
    ],
    ids=["STOP", "MAX_TOKENS", "MALFORMED_FUNCTION_CALL", "OTHER"],
)
async def test_finish_reasons_map_to_the_apis_stop_reasons(
    mode: str,
    colour: str,
    model: str,
    config: types.GenerateContentConfig | None,
    stop: StopReason,
    error_reason: str | None,
    candidates: int,
    captured: Capture,
) -> None:
    client = revenium.wrap(client_for(mode))
    await generate(client, colour)(model=model, contents=USER_TEXT, config=config)
    record = only(captured)
    expect(record, 1, expected_usage(USER_TEXT, candidates), model=model, stop=stop)
    assert (record.error_code, record.error_reason) == (None, error_reason)


@pytest.mark.filterwarnings("ignore:BRAND_NEW_REASON is not a valid FinishReason:UserWarning")
def test_an_unknown_finish_reason_is_end_with_one_warning(
    captured: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    def brand_new(request: httpx2.Request) -> httpx2.Response:
        candidate = {
            "index": 0,
            "content": {"role": "model", "parts": [{"text": "hi"}]},
            "finishReason": "BRAND_NEW_REASON",
        }
        usage = {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}
        body = {"candidates": [candidate], "usageMetadata": usage, "responseId": "r-1"}
        return httpx2.Response(200, json=body)

    client = revenium.wrap(client_for("gemini", brand_new))
    for _ in range(3):
        client.models.generate_content(model=MODEL, contents=USER_TEXT)
    assert [r.stop_reason for r in captured.completions] == [StopReason.END] * 3
    assert [r.model for r in captured.completions] == [MODEL] * 3  # no modelVersion: the ask
    warnings = [r for r in caplog.records if "BRAND_NEW_REASON" in r.getMessage()]
    assert len(warnings) == 1


def _blocked_prompt(request: httpx2.Request) -> httpx2.Response:
    """The API's answer to a blocked prompt: no candidate, the block reason, the prompt billed
    (the stand-in has no such answer)."""
    prompt = tokens(USER_TEXT)
    return httpx2.Response(
        200,
        json={
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
            "modelVersion": MODEL,
            "responseId": "resp-standin-1",
        },
    )


async def test_a_blocked_prompt_is_an_error(mode: str, colour: str, captured: Capture) -> None:
    client = revenium.wrap(client_for(mode, _blocked_prompt))
    response = await generate(client, colour)(model=MODEL, contents=USER_TEXT)
    assert response.prompt_feedback is not None
    assert response.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    record = only(captured)
    expect(record, 1, expected_usage(USER_TEXT, 0), stop=StopReason.ERROR)
    assert record.error_code is None
    assert record.error_reason is not None
    assert "PROHIBITED_CONTENT" in record.error_reason


# -- provider errors -----------------------------------------------------------------------------

FAILURES: list[tuple[str, type[errors.APIError]]] = [
    ("fail-400", errors.ClientError),
    ("fail-403", errors.ClientError),
    ("fail-429", errors.ClientError),
    ("fail-500", errors.ServerError),
    ("fail-503", errors.ServerError),
]


def expect_failure(record: CompletionRecord, model: str, error: errors.APIError) -> None:
    assert (record.model, record.provider, record.model_source) == (model, "Google", "GOOGLE")
    assert (record.stop_reason, record.error_code) == (StopReason.ERROR, error.code)
    assert record.error_reason == f"{type(error).__name__}: {error.message}"
    assert (record.input_token_count, record.output_token_count) == (0, 0)
    assert (record.transaction_id, record.operation_type) == (None, OperationType.CHAT)


@pytest.mark.parametrize(("model", "kind"), FAILURES)
async def test_a_provider_error_is_one_error_record_and_reaches_the_caller(
    mode: str, colour: str, model: str, kind: type[errors.APIError], captured: Capture
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    with pytest.raises(kind) as raised:
        await generate(client, colour)(model=model, contents=USER_TEXT)
    assert raised.value.code == int(model.removeprefix("fail-"))
    expect_failure(only(captured), model, raised.value)
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("model", "kind", "attempts"),
    [
        ("fail-429", errors.ClientError, FAST_RETRY.attempts),
        ("fail-503", errors.ServerError, FAST_RETRY.attempts),
        ("fail-400", errors.ClientError, 1),  # not retried
    ],
)
async def test_the_sdks_retries_are_one_call_and_one_record(
    colour: str,
    model: str,
    kind: type[errors.APIError],
    attempts: int,
    captured: Capture,
) -> None:
    """The SDK retries inside its API client, under the per-request hook: one record a call."""
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen), retry_options=FAST_RETRY))
    with pytest.raises(kind) as raised:
        await generate(client, colour)(model=model, contents=USER_TEXT)
    assert len(seen) == attempts
    expect_failure(only(captured), model, raised.value)


async def test_the_callers_exception_is_the_sdks_own_object(
    colour: str, captured: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = errors.ClientError(
        429, {"error": {"code": 429, "message": "Slow down.", "status": "RESOURCE_EXHAUSTED"}}
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    async def refuse_async(*args: object, **kwargs: object) -> None:
        raise error

    client = revenium.wrap(client_for("vertex"))
    api = client._api_client  # shared with the original: patched for this test only
    monkeypatch.setattr(api, "request", refuse)
    monkeypatch.setattr(api, "async_request", refuse_async)
    with pytest.raises(errors.ClientError) as raised:
        await generate(client, colour)(model=MODEL, contents=USER_TEXT)
    assert raised.value is error
    record = only(captured)
    assert (record.error_code, record.error_reason) == (429, "ClientError: Slow down.")


# -- automatic function calling: one record per request, linked ---------------------------------


def expect_tool_loop(
    first: CompletionRecord, second: CompletionRecord, *, parent: str | None = None
) -> None:
    """The two requests of the weather tool loop, requests 1 and 2 of their handler."""
    expect(first, 1, expected_usage(WEATHER_TEXT, TOOL_WORDS), operation=OperationType.TOOL_CALL)
    expect(second, 2, expected_usage(ANSWERED, words(WEATHER_REPLY)))
    assert first.metadata.parent_transaction_id == parent
    expected_parent = first.transaction_id if parent is None else parent
    assert second.metadata.parent_transaction_id == expected_parent
    assert second.request_time >= first.request_time


async def test_afc_meters_each_request_and_links_the_later_ones(
    mode: str, colour: str, captured: Capture
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    response = await generate(client, colour)(model=MODEL, contents=WEATHER_TEXT, config=AFC)
    assert len(seen) == 2
    # the caller gets the SDK's own response: the last request's
    assert (response.text, response.response_id) == (WEATHER_REPLY, "resp-standin-2")
    assert response.automatic_function_calling_history
    assert len(response.automatic_function_calling_history) == 3
    assert len(captured.records) == 2
    first, second = captured.completions
    expect_tool_loop(first, second)
    assert second.transaction_id == response.response_id


async def test_afc_the_callers_parent_wins_on_every_request(colour: str, captured: Capture) -> None:
    client = revenium.wrap(client_for("vertex"), metadata={"product_name": "bot"})
    with revenium.session(parent_transaction_id="outer", organization_name="Acme"):
        await generate(client, colour)(model=MODEL, contents=WEATHER_TEXT, config=AFC)
    first, second = captured.completions
    expect_tool_loop(first, second, parent="outer")
    for record in (first, second):
        assert (record.metadata.organization_name, record.metadata.product_name) == (
            "Acme",
            "bot",
        )
    captured.clear()
    call_metadata = {"parentTransactionId": "from-call", "agent": "a"}
    await generate(client, colour)(
        model=MODEL, contents=WEATHER_TEXT, config=AFC, usage_metadata=call_metadata
    )
    assert [(r.metadata.parent_transaction_id, r.metadata.agent) for r in captured.completions] == [
        ("from-call", "a"),
        ("from-call", "a"),
    ]


async def test_afc_disabled_is_one_request_and_one_record(
    mode: str, colour: str, captured: Capture
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(mode, recording(seen)))
    response = await generate(client, colour)(model=MODEL, contents=WEATHER_TEXT, config=NO_AFC)
    assert response.function_calls
    assert len(seen) == 1
    expect(
        only(captured),
        1,
        expected_usage(WEATHER_TEXT, TOOL_WORDS),
        operation=OperationType.TOOL_CALL,
    )


async def test_afc_a_failed_later_request_is_its_own_linked_error(
    colour: str, captured: Capture
) -> None:
    inner = make_handler()
    sent: list[httpx2.Request] = []

    def overloaded_second(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        if len(sent) == 2:
            error = {"code": 503, "message": "Overloaded.", "status": "UNAVAILABLE"}
            return httpx2.Response(503, json={"error": error})
        return inner(request)

    client = revenium.wrap(client_for("gemini", overloaded_second))
    with pytest.raises(errors.ServerError) as raised:
        await generate(client, colour)(model=MODEL, contents=WEATHER_TEXT, config=AFC)
    assert len(captured.records) == 2  # the call's failure is its request's: not recorded twice
    first, second = captured.completions
    expect(first, 1, expected_usage(WEATHER_TEXT, TOOL_WORDS), operation=OperationType.TOOL_CALL)
    expect_failure(second, MODEL, raised.value)
    assert second.metadata.parent_transaction_id == first.transaction_id


def _continued(request: httpx2.Request) -> httpx2.Response:
    """The API cutting its answer in two (``CONTINUATION`` and a token), then finishing it
    when the SDK sends the token back (the stand-in has no such answers)."""
    body = json.loads(request.read())
    resumed = "continuationToken" in json.dumps(body)
    text = "and the rest." if resumed else "The first part,"
    candidate: dict[str, Any] = {
        "index": 0,
        "content": {"role": "model", "parts": [{"text": text}]},
        "finishReason": "STOP" if resumed else "CONTINUATION",
    }
    if not resumed:
        candidate["continuationToken"] = "dG9rZW4="  # base64
    prompt, candidates = tokens(USER_TEXT), words(text)
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates,
    }
    return httpx2.Response(
        200,
        json={
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": MODEL,
            "responseId": f"resp-standin-{2 if resumed else 1}",
        },
    )


async def test_automatic_continuation_meters_each_request_and_links_them(
    colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for("vertex", _continued))
    response = await generate(client, colour)(model=MODEL, contents=USER_TEXT)
    assert response.text == "The first part,and the rest."  # the SDK merges the two answers
    first, second = captured.completions
    expect(
        first,
        1,
        expected_usage(USER_TEXT, words("The first part,")),
        stop=StopReason.COMPLETION_LIMIT,
    )
    expect(second, 2, expected_usage(USER_TEXT, words("and the rest.")))
    assert second.metadata.parent_transaction_id == first.transaction_id
    # the merged response adds the two requests' usage: so do the records
    usage = response.usage_metadata
    assert usage is not None
    assert first.total_token_count + second.total_token_count == usage.total_token_count  # type: ignore[operator]
    assert first.input_token_count + second.input_token_count == usage.prompt_token_count


async def test_concurrent_tool_loops_are_linked_within_each_call(captured: Capture) -> None:
    """Each task has its own call group and tool-loop chain (context variables)."""
    client = revenium.wrap(client_for("gemini"))

    async def models_call(agent: str) -> None:
        await client.aio.models.generate_content(
            model=MODEL, contents=WEATHER_TEXT, config=AFC, usage_metadata={"agent": agent}
        )

    async def chat_call(agent: str) -> None:
        with revenium.session(agent=agent):
            await client.aio.chats.create(model=MODEL, config=AFC).send_message(WEATHER_TEXT)

    agents = ["m1", "m2", "m3", "c1", "c2"]
    await asyncio.gather(
        *(models_call(a) for a in agents if a.startswith("m")),
        *(chat_call(a) for a in agents if a.startswith("c")),
    )
    assert len(captured.records) == 2 * len(agents)
    for agent in agents:
        mine = [r for r in captured.completions if r.metadata.agent == agent]
        assert [r.operation_type for r in mine] == [OperationType.TOOL_CALL, OperationType.CHAT]
        assert mine[0].metadata.parent_transaction_id is None
        assert mine[1].metadata.parent_transaction_id == mine[0].transaction_id


def test_tool_loops_in_threads_are_linked_within_each_call(captured: Capture) -> None:
    client = revenium.wrap(client_for("vertex"))

    def models_call(agent: str) -> None:
        client.models.generate_content(
            model=MODEL, contents=WEATHER_TEXT, config=AFC, usage_metadata={"agent": agent}
        )

    def chat_call(agent: str) -> None:
        with revenium.session(agent=agent):
            client.chats.create(model=MODEL, config=AFC).send_message(WEATHER_TEXT)

    agents = ["m1", "m2", "c1", "c2"]
    threads = [
        threading.Thread(target=models_call if a.startswith("m") else chat_call, args=(a,))
        for a in agents
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(captured.records) == 2 * len(agents)
    for agent in agents:
        mine = [r for r in captured.completions if r.metadata.agent == agent]
        assert [r.operation_type for r in mine] == [OperationType.TOOL_CALL, OperationType.CHAT]
        assert mine[1].metadata.parent_transaction_id == mine[0].transaction_id


async def send(client: genai.Client, colour: str, message: str, **kw: Any) -> Any:
    """One ``send_message`` of a new chat on ``client`` (or on ``client.aio``)."""
    if colour == "aio":
        return await client.aio.chats.create(model=MODEL, **kw).send_message(message)
    return client.chats.create(model=MODEL, **kw).send_message(message)


async def test_chats_are_metered_one_record_per_request(
    mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(mode))
    response = await send(client, colour, USER_TEXT)
    assert response.text == REPLY
    expect(only(captured), 1, expected_usage(USER_TEXT, words(REPLY)))
    captured.clear()
    answer = await send(client, colour, WEATHER_TEXT, config=AFC)
    assert answer.text == WEATHER_REPLY
    assert len(captured.records) == 2
    first, second = captured.completions
    expect(first, 2, expected_usage(WEATHER_TEXT, TOOL_WORDS), operation=OperationType.TOOL_CALL)
    expect(second, 3, expected_usage(ANSWERED, words(WEATHER_REPLY)))
    assert first.metadata.parent_transaction_id is None


async def test_a_chats_tool_loop_is_linked_across_its_calls(colour: str, captured: Capture) -> None:
    """A chat runs its tool loop itself, one public call per request: still one chain."""
    client = revenium.wrap(client_for("gemini"))
    with revenium.session(organization_name="Acme"):
        await send(client, colour, WEATHER_TEXT, config=AFC)
    first, second = captured.completions
    expect_tool_loop(first, second)
    assert {r.metadata.organization_name for r in (first, second)} == {"Acme"}
    captured.clear()
    with revenium.session(parent_transaction_id="outer"):
        await send(client, colour, WEATHER_TEXT, config=AFC)
    assert [r.metadata.parent_transaction_id for r in captured.completions] == ["outer"] * 2


async def test_a_manual_tool_loop_on_one_contents_list_is_linked(
    colour: str, captured: Capture
) -> None:
    """The caller runs the loop, appending the function's answer to the same contents."""
    client = revenium.wrap(client_for("vertex"))
    call = generate(client, colour)
    contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=WEATHER_TEXT)])]
    asked = await call(model=MODEL, contents=contents, config=NO_AFC)
    assert asked.candidates
    assert asked.candidates[0].content
    contents.append(asked.candidates[0].content)
    answer = types.Part.from_function_response(name="get_weather", response=ANSWER)
    contents.append(types.Content(role="user", parts=[answer]))
    await call(model=MODEL, contents=contents, config=NO_AFC)
    first, second = captured.completions
    expect_tool_loop(first, second)
    captured.clear()
    # a new question on the same list starts a new chain
    contents.append(types.Content(role="user", parts=[types.Part(text=USER_TEXT)]))
    await call(model=MODEL, contents=contents, config=NO_AFC)
    assert only(captured).metadata.parent_transaction_id is None


async def test_unrelated_calls_are_never_linked_by_a_reused_contents_list(
    colour: str, captured: Capture
) -> None:
    """A function result joins the tool loop of the answer it sends back (that very turn),
    never the last call on this thread: not when its contents list has the id of the one a
    previous request handler freed, nor when it is that same list, refilled."""
    handler = make_handler()  # one server: response ids never repeat
    tenant_a = revenium.wrap(client_for("gemini", handler), metadata={"organization_name": "A"})
    tenant_b = revenium.wrap(client_for("gemini", handler), metadata={"organization_name": "B"})
    call_a, call_b = generate(tenant_a, colour), generate(tenant_b, colour)
    question = types.Content(role="user", parts=[types.Part(text=WEATHER_TEXT)])
    answer = types.Part.from_function_response(name="get_weather", response=ANSWER)
    result = types.Content(role="user", parts=[answer])

    async def handle_a() -> types.Content:  # tenant A: its model asks for get_weather
        history = [question]
        asked = await call_a(model=MODEL, contents=history, config=NO_AFC)
        assert asked.candidates
        assert asked.candidates[0].content
        return asked.candidates[0].content

    async def handle_b(turn: types.Content) -> None:  # tenant B, next: its own function's result
        history = [question, turn, result]
        await call_b(model=MODEL, contents=history, config=NO_AFC)

    a_turn = await handle_a()
    b_turn = a_turn.model_copy(deep=True)  # B's model asked the same: equal, not the same turn
    assert b_turn == a_turn
    await handle_b(b_turn)
    buffer: list[Any] = [question]  # one list, reused for the next two unrelated calls
    await call_a(model=MODEL, contents=buffer, config=NO_AFC)
    buffer[:] = [question, b_turn, result]
    await call_b(model=MODEL, contents=buffer, config=NO_AFC)
    # tenant A sending back its own first answer's turn does join that answer's loop
    await call_a(model=MODEL, contents=[question, a_turn, result], config=NO_AFC)
    records = captured.completions
    assert [r.metadata.organization_name for r in records] == ["A", "B", "A", "B", "A"]
    asked_a, first_b, _, second_b, answered_a = records
    assert [r.metadata.parent_transaction_id for r in records[:4]] == [None] * 4
    assert answered_a.metadata.parent_transaction_id == asked_a.transaction_id
    for record in (first_b, second_b, answered_a):
        assert record.operation_type is OperationType.CHAT
        assert token_fields(record) == counts(expected_usage(ANSWERED, words(WEATHER_REPLY)))


async def test_a_chats_tool_loop_stays_linked_when_its_function_calls_the_model(
    colour: str, captured: Capture
) -> None:
    """A sub-agent: the chat's function makes a metered call of its own (a list of contents)
    between the chat's two requests. The chat's second request is still linked to its first;
    the function's call is a chain of its own."""
    client = revenium.wrap(client_for("gemini"))
    summary = "Summarize the forecast for Paris"

    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        client.models.generate_content(model=MODEL, contents=[summary])
        return WEATHER_REPORT if city == "Paris" else "unknown"

    async def get_weather_async(city: str) -> str:
        """Get the current weather in a city."""
        await client.aio.models.generate_content(model=MODEL, contents=[summary])
        return WEATHER_REPORT if city == "Paris" else "unknown"

    tool = get_weather_async if colour == "aio" else get_weather
    answer = await send(
        client, colour, WEATHER_TEXT, config=types.GenerateContentConfig(tools=[tool])
    )
    assert answer.text == WEATHER_REPLY
    assert len(captured.records) == 3
    by_id = {r.transaction_id: r for r in captured.completions}
    first, nested, second = (by_id[f"resp-standin-{n}"] for n in (1, 2, 3))
    expect(first, 1, expected_usage(WEATHER_TEXT, TOOL_WORDS), operation=OperationType.TOOL_CALL)
    expect(nested, 2, expected_usage(summary, words(echo(summary))))
    expect(second, 3, expected_usage(ANSWERED, words(WEATHER_REPLY)))
    assert (first.metadata.parent_transaction_id, nested.metadata.parent_transaction_id) == (
        None,
        None,
    )
    assert second.metadata.parent_transaction_id == first.transaction_id


def _failing_tool_loop(monkeypatch: pytest.MonkeyPatch, reader: str) -> None:
    """The adapter's tool-loop reader ``reader`` raises, on every client wrapped from now on
    (``revenium.wrap`` installs the endpoints of ``google.ADAPTER``)."""

    def broken(_: object) -> object:
        raise RuntimeError("adapter bug")

    adapter = google_adapter.ADAPTER
    endpoints = tuple(
        attrs.evolve(e, tool_loop=attrs.evolve(e.tool_loop, **{reader: broken}))
        if e.tool_loop is not None
        else e
        for e in adapter.endpoints
    )
    assert any(e.tool_loop is not None for e in endpoints)
    monkeypatch.setattr(google_adapter, "ADAPTER", attrs.evolve(adapter, endpoints=endpoints))


@pytest.mark.parametrize(
    ("reader", "surface"),
    [
        ("answered", "send_message"),
        ("answered", "send_message_stream"),
        ("asked", "send_message"),
    ],
)
async def test_a_fault_in_the_adapters_tool_loop_readers_is_contained(
    reader: str,
    surface: str,
    colour: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Adapter code reading a chat's turns raises: the caller gets its answer, each request
    is still metered (unlinked), and the fault is reported (log, statistics, hook)."""
    _failing_tool_loop(monkeypatch, reader)
    reported: list[tuple[BaseException, str]] = []
    revenium.configure(on_error=lambda error, where: reported.append((error, where)))
    before = revenium.statistics().internal_errors
    with revenium.testing.capture(strict_mode=False) as capture:  # production's handling
        client = revenium.wrap(client_for("gemini"))
        if colour == "aio":
            chat: Any = client.aio.chats.create(model=MODEL, config=AFC)
            if surface == "send_message":
                text = (await chat.send_message(WEATHER_TEXT)).text
            else:
                stream = await chat.send_message_stream(WEATHER_TEXT)
                text = "".join([c.text or "" async for c in stream])
        else:
            chat = client.chats.create(model=MODEL, config=AFC)
            if surface == "send_message":
                text = chat.send_message(WEATHER_TEXT).text
            else:
                text = "".join(c.text or "" for c in chat.send_message_stream(WEATHER_TEXT))
        assert text == WEATHER_REPLY
        records = capture.completions
        assert len(capture.records) == 2
    first, second = records
    assert token_fields(first) == counts(expected_usage(WEATHER_TEXT, TOOL_WORDS))
    assert token_fields(second) == counts(expected_usage(ANSWERED, words(WEATHER_REPLY)))
    assert (first.operation_type, second.operation_type) == (
        OperationType.TOOL_CALL,
        OperationType.CHAT,
    )
    assert reported
    assert all(str(error) == "adapter bug" for error, _ in reported)
    assert revenium.statistics().internal_errors - before == len(reported)
    logged = [
        r
        for r in caplog.records
        if r.name == "revenium" and r.levelno == logging.WARNING and "adapter bug" in r.getMessage()
    ]
    assert len(logged) == len(reported)


def test_a_chat_keeps_its_history_in_later_prompts(captured: Capture) -> None:
    client = revenium.wrap(client_for("gemini"))
    chat = client.chats.create(model=MODEL)
    chat.send_message(USER_TEXT)
    follow_up = "And tomorrow?"
    chat.send_message(follow_up)
    first, second = captured.completions
    expect(first, 1, expected_usage(USER_TEXT, words(REPLY)))
    expect(second, 2, expected_usage(USER_TEXT + REPLY + follow_up, words(echo(follow_up))))


# -- prompt capture ------------------------------------------------------------------------------


def test_prompt_capture_of_contents_system_and_output(mode: str, captured: Capture) -> None:
    revenium.configure(capture_prompts=True)
    client = revenium.wrap(client_for(mode))
    shown = types.ThinkingConfig(include_thoughts=True)
    config = types.GenerateContentConfig(system_instruction="Be brief.", thinking_config=shown)
    response = client.models.generate_content(model=MODEL, contents=USER_TEXT, config=config)
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert [p.text for p in parts] == [THINKING_TEXT, REPLY]  # type: ignore[union-attr]
    prompts = only(captured).prompts
    assert prompts is not None
    assert prompts.system_prompt == "Be brief."
    assert json.loads(prompts.input_messages or "") == [USER_TEXT]
    assert prompts.output_response == REPLY  # the thought summary is not the answer
    captured.clear()

    turns: list[Any] = [
        types.Content(role="user", parts=[types.Part(text="Hi")]),
        {"role": "model", "parts": [{"text": "Hello"}]},
        types.Content(role="user", parts=[types.Part(text=USER_TEXT)]),
    ]
    system = types.Content(parts=[types.Part(text="Be brief."), types.Part(text="Be kind.")])
    config = types.GenerateContentConfig(system_instruction=system)
    client.models.generate_content(model=MODEL, contents=turns, config=config)
    prompts = only(captured).prompts
    assert prompts is not None
    assert prompts.system_prompt == "Be brief.\nBe kind."
    expected = [
        t if isinstance(t, dict) else t.model_dump(mode="json", exclude_none=True) for t in turns
    ]
    assert json.loads(prompts.input_messages or "") == expected
    assert prompts.output_response == REPLY


async def test_prompt_capture_reads_a_camel_case_dict_config(
    colour: str, captured: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK accepts a dict config in camelCase (``systemInstruction``), as the API spells
    it. Its per-request method gets the config parsed; without that hook (an SDK version that
    sends its requests another way) the record reads the caller's own dict."""
    revenium.configure(capture_prompts=True)
    client = revenium.wrap(client_for("gemini"))
    call = generate(client, colour)
    for hooked in (True, False):
        if not hooked:
            models: Any = client.aio.models if colour == "aio" else client.models
            monkeypatch.delattr(models, "_generate_content")
        for system in ("Be brief.", {"parts": [{"text": "Be brief."}]}):
            config: Any = {"systemInstruction": system}
            await call(model=MODEL, contents=USER_TEXT, config=config)
            record = only(captured)
            assert record.prompts is not None
            assert record.prompts.system_prompt == "Be brief."
            usage = expected_usage("Be brief." + USER_TEXT, words(REPLY))
            assert token_fields(record) == counts(usage)
            captured.clear()


async def test_prompt_capture_each_afc_request_has_its_own_contents(
    colour: str, captured: Capture
) -> None:
    revenium.configure(capture_prompts=True)
    client = revenium.wrap(client_for("express"))
    await generate(client, colour)(model=MODEL, contents=WEATHER_TEXT, config=AFC)
    first, second = (r.prompts for r in captured.completions)
    assert first is not None
    assert second is not None
    assert json.loads(first.input_messages or "") == [WEATHER_TEXT]
    assert first.output_response is None  # a function call: no answer text
    assert json.loads(second.input_messages or "") == [
        {"role": "user", "parts": [{"text": WEATHER_TEXT}]},
        {"role": "model", "parts": [{"function_call": {"name": "get_weather", "args": TOOL_ARGS}}]},
        {
            "role": "user",
            "parts": [{"function_response": {"name": "get_weather", "response": ANSWER}}],
        },
    ]
    assert second.output_response == WEATHER_REPLY


async def test_prompt_capture_of_a_chats_tool_loop_freezes_each_request(
    colour: str, captured: Capture
) -> None:
    """A chat appends to the contents it sent: each record keeps what its request sent."""
    revenium.configure(capture_prompts=True)
    client = revenium.wrap(client_for("gemini"))
    await send(client, colour, WEATHER_TEXT, config=AFC)
    first, second = (r.prompts for r in captured.completions)
    assert first is not None
    assert second is not None
    user = {"role": "user", "parts": [{"text": WEATHER_TEXT}]}
    assert json.loads(first.input_messages or "") == [user]
    sent = json.loads(second.input_messages or "")
    assert len(sent) == 3
    assert sent[0] == user
    assert sent[2]["parts"][0]["function_response"]["response"] == ANSWER


# -- the request itself --------------------------------------------------------------------------


def test_requests_are_sent_exactly_as_written(mode: str, captured: Capture) -> None:
    seen: list[Recorded] = []
    handler = recording(seen, make_handler())
    plain, wrapped = client_for(mode, handler), revenium.wrap(client_for(mode, handler))
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        max_output_tokens=50,
        thinking_config=types.ThinkingConfig(thinking_budget=128),
        tools=[get_weather],
    )
    plain.models.generate_content(model=MODEL, contents=WEATHER_TEXT, config=config)
    wrapped.models.generate_content(
        model=MODEL, contents=WEATHER_TEXT, config=config, usage_metadata={"agent": "a"}
    )
    assert len(seen) == 4  # two tool loops of two requests
    for unwrapped_request, wrapped_request in ((seen[0], seen[2]), (seen[1], seen[3])):
        assert wrapped_request.url == unwrapped_request.url
        assert wrapped_request.body == unwrapped_request.body
    assert [r.metadata.agent for r in captured.completions] == ["a", "a"]
