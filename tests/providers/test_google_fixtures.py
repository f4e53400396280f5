"""The Google fixtures and the stand-in server drive the real, unwrapped ``google-genai`` SDK.

Every number is computed here from the counting rules documented in ``_google_standin``, so a
change to a rule breaks these tests rather than silently shifting what adapter tests assert.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from google.genai import errors, types
from google_fixtures import (
    API_KEY,
    EXPRESS_URL,
    FAST_RETRY,
    GEMINI_URL,
    GOOGLE_ENV,
    MODEL,
    MODES,
    TOKEN,
    USER_TEXT,
    VERTEX_URL,
    WEATHER_REPORT,
    WEATHER_TEXT,
    Recorded,
    client_for,
    echo,
    expected_usage,
    gemini_client,
    get_weather,
    make_handler,
    recording,
    served_client,
    tokens,
    vertex_client,
    vertex_express_client,
    words,
)

from revenium.providers._google_standin import (
    IMAGE_BYTES,
    RAI_REASON,
    THINKING_TEXT,
    TOOL_ARGS,
    GoogleBackend,
    serves,
)
from revenium.providers._openai_standin import StandInServer

REPLY = echo(USER_TEXT)  # "Echo: Hello there, how are you today?": 7 words
PROMPT = tokens(USER_TEXT)  # 7
URLS = {"gemini": GEMINI_URL, "vertex": VERTEX_URL, "express": EXPRESS_URL}
IMAGEN, VEO = "imagen-4.0-generate-001", "veo-3.0-generate-001"
NO_IMAGEN_WARNING = pytest.mark.filterwarnings("ignore::google.genai._common.ExperimentalWarning")
WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(name="get_weather", description="Weather in a city.")
    ]
)


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads its API version, mode and keys from the environment; URLs are asserted."""
    for name in GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def vector(text: str, dims: int = 8) -> list[float]:
    """The stand-in's embedding rule."""
    return [round((i + 1) / 10 + len(text) / 1000, 4) for i in range(dims)]


def usage_of(u: Any) -> dict[str, Any]:
    fields = expected_usage("", 0)
    return {k: getattr(u, k) for k in fields}


def check_response(r: Any, n: int, *, text: str = REPLY, prompt: str = USER_TEXT) -> None:
    assert (r.text, r.response_id, r.model_version) == (text, f"resp-standin-{n}", MODEL)
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert usage_of(r.usage_metadata) == expected_usage(prompt, words(text))


def check_chunks(chunks: list[Any], *, text: str = REPLY, prompt: str = USER_TEXT) -> None:
    """One chunk per word; usage is the running total, no candidates count in the first chunk."""
    pieces = [w + " " for w in text.split()[:-1]] + text.split()[-1:]
    assert [c.text for c in chunks] == pieces
    assert len({c.response_id for c in chunks}) == 1
    assert {c.model_version for c in chunks} == {MODEL}
    running = [c.usage_metadata.candidates_token_count for c in chunks]
    assert running == [None, *range(2, len(pieces) + 1)]
    p = tokens(prompt)
    totals = [c.usage_metadata.total_token_count for c in chunks]
    assert totals == [p, *(p + k for k in range(2, len(pieces) + 1))]
    assert {c.usage_metadata.prompt_token_count for c in chunks} == {p}
    reasons = [c.candidates[0].finish_reason for c in chunks]
    assert reasons == [None] * (len(pieces) - 1) + [types.FinishReason.STOP]


# -- URLs, auth, and each mode's surfaces ----------------------------------------------------------
def test_urls_bodies_and_auth(mode: str) -> None:
    seen: list[Recorded] = []
    with client_for(mode, recording(seen)) as c:
        c.models.generate_content(model=MODEL, contents=USER_TEXT)
        list(c.models.generate_content_stream(model=MODEL, contents=USER_TEXT))
        assert c.models.count_tokens(model=MODEL, contents=USER_TEXT).total_tokens == PROMPT
        c.models.embed_content(model="gemini-embedding-001", contents="one")
        c.models.embed_content(model="gemini-embedding-001", contents=["one", "two"])
        c.models.embed_content(model="text-embedding-005", contents=["one", "two"])
    url = URLS[mode]
    embed_one = "batchEmbedContents" if mode == "gemini" else "embedContent"
    predict = "batchEmbedContents" if mode == "gemini" else "predict"
    assert [r.url for r in seen] == [
        f"{url}/{MODEL}:generateContent",
        f"{url}/{MODEL}:streamGenerateContent?alt=sse",
        f"{url}/{MODEL}:countTokens",
        f"{url}/gemini-embedding-001:{embed_one}",
        f"{url}/gemini-embedding-001:batchEmbedContents",
        f"{url}/text-embedding-005:{predict}",
    ]
    assert {r.method for r in seen} == {"POST"}
    assert seen[0].body == {"contents": [{"parts": [{"text": USER_TEXT}], "role": "user"}]}
    if mode == "vertex":
        assert {r.headers["authorization"] for r in seen} == {f"Bearer {TOKEN}"}
        assert all("x-goog-api-key" not in r.headers for r in seen)
    else:
        assert {r.headers["x-goog-api-key"] for r in seen} == {API_KEY}
        assert all("authorization" not in r.headers for r in seen)


def test_factories_pick_the_mode() -> None:
    assert (gemini_client().vertexai, vertex_client().vertexai) == (False, True)
    assert vertex_express_client().vertexai
    seen: list[Recorded] = []
    with vertex_client(recording(seen), project="other", location="europe-west4") as v:
        v.models.generate_content(model=MODEL, contents=USER_TEXT)
    assert seen[0].url.startswith(
        "https://europe-west4-aiplatform.googleapis.com/v1beta1/projects/other/locations/"
    )


def test_sync_surfaces(mode: str) -> None:
    with client_for(mode) as c:
        r = c.models.generate_content(model=MODEL, contents=USER_TEXT)
        check_response(r, 1)
        traffic = None if mode == "gemini" else types.TrafficType.ON_DEMAND
        assert r.usage_metadata.traffic_type == traffic
        assert r.sdk_http_response.headers["content-type"] == "application/json"
        chunks = list(c.models.generate_content_stream(model=MODEL, contents=USER_TEXT))
        check_chunks(chunks)
        assert chunks[0].response_id == "resp-standin-2"


async def test_async_surfaces(mode: str) -> None:
    c = client_for(mode)
    async with c.aio as aio:
        check_response(await aio.models.generate_content(model=MODEL, contents=USER_TEXT), 1)
        stream = await aio.models.generate_content_stream(model=MODEL, contents=USER_TEXT)
        check_chunks([chunk async for chunk in stream])
        count = await aio.models.count_tokens(model=MODEL, contents=USER_TEXT)
        assert count.total_tokens == PROMPT


def test_one_handler_counts_across_clients() -> None:
    handler = make_handler()
    ids = [
        client_for(m, handler).models.generate_content(model=MODEL, contents="x").response_id
        for m in MODES
    ]
    assert ids == ["resp-standin-1", "resp-standin-2", "resp-standin-3"]


def test_backend_is_thread_safe() -> None:
    backend = GoogleBackend()
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode()
    ids: list[str] = []

    def call() -> None:
        reply = backend.handle("POST", f"/v1/models/{MODEL}:generateContent", {}, body)
        ids.append(json.loads(reply.body)["responseId"])

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == sorted(f"resp-standin-{n}" for n in range(1, 17))


# -- the counting rules, each driven by the request ------------------------------------------------
def test_prompt_counts_system_and_every_turn(mode: str) -> None:
    system = "You answer briefly."
    turns: Any = [
        types.Content(role="user", parts=[types.Part(text="Hi")]),
        types.Content(role="model", parts=[types.Part(text="Hello! What can I do?")]),
        types.Content(role="user", parts=[types.Part(text=USER_TEXT)]),
    ]
    config = types.GenerateContentConfig(system_instruction=system)
    with client_for(mode) as c:
        r = c.models.generate_content(model=MODEL, contents=turns, config=config)
        check_response(r, 1, prompt=system + "Hi" + "Hello! What can I do?" + USER_TEXT)
        count = c.models.count_tokens(model=MODEL, contents=turns)
        assert count.total_tokens == tokens("Hi" + "Hello! What can I do?" + USER_TEXT)
        long_text = "word " * 30  # the echo keeps 40 characters, whitespace collapsed
        long = c.models.generate_content(model=MODEL, contents=long_text)
        assert long.text == echo(long_text) == "Echo: " + " ".join(["word"] * 8)
        assert long.usage_metadata.prompt_token_count == tokens(long_text) == 37


def test_max_output_tokens() -> None:
    with gemini_client() as c:
        config = types.GenerateContentConfig(max_output_tokens=3)
        r = c.models.generate_content(model=MODEL, contents=USER_TEXT, config=config)
        assert (r.text, r.candidates[0].finish_reason) == (
            "Echo: Hello there,", types.FinishReason.MAX_TOKENS
        )  # fmt: skip
        assert usage_of(r.usage_metadata) == expected_usage(USER_TEXT, 3)
        chunks = list(c.models.generate_content_stream(model=MODEL, contents=USER_TEXT,
                                                       config=config))  # fmt: skip
        assert [ch.text for ch in chunks] == ["Echo: ", "Hello ", "there,"]
        assert chunks[-1].candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
        assert chunks[-1].usage_metadata.candidates_token_count == 3
        roomy = types.GenerateContentConfig(max_output_tokens=7)  # not below the word count
        kept = c.models.generate_content(model=MODEL, contents=USER_TEXT, config=roomy)
        assert kept.candidates[0].finish_reason == types.FinishReason.STOP


def test_thinking(mode: str) -> None:
    shown = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    with client_for(mode) as c:
        r = c.models.generate_content(model=MODEL, contents=USER_TEXT, config=shown)
        parts = r.candidates[0].content.parts
        assert [(p.text, p.thought) for p in parts] == [(THINKING_TEXT, True), (REPLY, None)]
        assert r.text == REPLY  # the SDK's .text skips thoughts
        assert usage_of(r.usage_metadata) == expected_usage(USER_TEXT, 7, thinking=True)
        assert r.usage_metadata.total_token_count == PROMPT + 7 + 3
        chunks = list(c.models.generate_content_stream(model=MODEL, contents=USER_TEXT,
                                                       config=shown))  # fmt: skip
        first = chunks[0]
        assert [(p.text, p.thought) for p in first.candidates[0].content.parts] == [
            (THINKING_TEXT, True)
        ]
        assert (first.usage_metadata.candidates_token_count,
                first.usage_metadata.thoughts_token_count,
                first.usage_metadata.total_token_count) == (None, 3, PROMPT + 3)  # fmt: skip
        assert [ch.usage_metadata.candidates_token_count for ch in chunks[1:]] == list(range(1, 8))
        assert {ch.usage_metadata.thoughts_token_count for ch in chunks} == {3}
        assert chunks[-1].usage_metadata.total_token_count == PROMPT + 7 + 3
        for budget, thoughts in ((1024, 3), (-1, 3), (0, None)):
            config = types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(thinking_budget=budget)
            )
            hidden = c.models.generate_content(model=MODEL, contents=USER_TEXT, config=config)
            assert [p.text for p in hidden.candidates[0].content.parts] == [REPLY]
            assert hidden.usage_metadata.thoughts_token_count == thoughts


def test_cached_content(mode: str) -> None:
    config = types.GenerateContentConfig(cached_content="cachedContents/standin-cache")
    with client_for(mode) as c:
        r = c.models.generate_content(model=MODEL, contents=USER_TEXT, config=config)
        assert usage_of(r.usage_metadata) == expected_usage(USER_TEXT, 7, cached=True)
        assert (r.usage_metadata.prompt_token_count,
                r.usage_metadata.cached_content_token_count) == (PROMPT + 4, 4)  # fmt: skip
        chunks = list(c.models.generate_content_stream(model=MODEL, contents=USER_TEXT,
                                                       config=config))  # fmt: skip
        assert {ch.usage_metadata.cached_content_token_count for ch in chunks} == {4}
        assert chunks[-1].usage_metadata.total_token_count == PROMPT + 4 + 7


def test_google_search_tool(mode: str) -> None:
    search = types.Tool(google_search=types.GoogleSearch())
    config = types.GenerateContentConfig(tools=[search])
    with client_for(mode) as c:
        r = c.models.generate_content(model=MODEL, contents=USER_TEXT, config=config)
        assert usage_of(r.usage_metadata) == expected_usage(USER_TEXT, 7, search=True)
        assert r.usage_metadata.total_token_count == PROMPT + 7 + 7
        chunks = list(c.models.generate_content_stream(model=MODEL, contents=USER_TEXT,
                                                       config=config))  # fmt: skip
        assert chunks[0].usage_metadata.total_token_count == PROMPT + 7
        assert {ch.usage_metadata.tool_use_prompt_token_count for ch in chunks} == {7}


def test_function_call_then_answer(mode: str) -> None:
    config = types.GenerateContentConfig(tools=[WEATHER_TOOL])
    with client_for(mode) as c:
        r = c.models.generate_content(model=MODEL, contents=WEATHER_TEXT, config=config)
        assert r.function_calls
        call = r.function_calls[0]
        assert (call.name, call.args) == ("get_weather", TOOL_ARGS)
        assert r.candidates[0].finish_reason == types.FinishReason.STOP
        assert usage_of(r.usage_metadata) == expected_usage(WEATHER_TEXT, 2)
        assert words(json.dumps(TOOL_ARGS)) == 2
        chunks = list(c.models.generate_content_stream(model=MODEL, contents=WEATHER_TEXT,
                                                       config=config))  # fmt: skip
        assert len(chunks) == 1  # a function call is one chunk, with the full counts
        assert chunks[0].function_calls
        assert chunks[0].usage_metadata.candidates_token_count == 2
        answer = {"result": WEATHER_REPORT}
        turns: Any = [
            types.Content(role="user", parts=[types.Part(text=WEATHER_TEXT)]),
            types.Content(role="model", parts=[types.Part(function_call=call)]),
            types.Content(
                role="user",
                parts=[types.Part.from_function_response(name="get_weather", response=answer)],
            ),
        ]
        done = c.models.generate_content(model=MODEL, contents=turns, config=config)
        check_response(done, 3, text=echo(WEATHER_TEXT), prompt=WEATHER_TEXT + json.dumps(answer))
        plain = c.models.generate_content(model=MODEL, contents=WEATHER_TEXT)  # no tools
        assert plain.text == echo(WEATHER_TEXT)


def test_automatic_function_calling(mode: str) -> None:
    seen: list[Recorded] = []
    config = types.GenerateContentConfig(tools=[get_weather])
    answered = WEATHER_TEXT + json.dumps({"result": WEATHER_REPORT})
    with client_for(mode, recording(seen)) as c:
        r = c.models.generate_content(model=MODEL, contents=WEATHER_TEXT, config=config)
        # Two HTTP calls; the response the caller gets carries only the second one's usage.
        assert len(seen) == 2
        check_response(r, 2, text=echo(WEATHER_TEXT), prompt=answered)
        assert r.automatic_function_calling_history
        assert len(r.automatic_function_calling_history) == 3
        sent = seen[1].body["contents"]
        assert sent[1]["parts"][0]["functionCall"] == {"args": TOOL_ARGS, "name": "get_weather"}
        assert sent[2]["parts"][0]["functionResponse"]["response"] == {"result": WEATHER_REPORT}
        chunks = list(c.models.generate_content_stream(model=MODEL, contents=WEATHER_TEXT,
                                                       config=config))  # fmt: skip
        assert len(seen) == 4  # the stream yields the call chunk, then the answer's chunks
        assert chunks[0].function_calls
        assert chunks[0].usage_metadata.candidates_token_count == 2
        check_chunks(chunks[1:], text=echo(WEATHER_TEXT), prompt=answered)


# -- finish reasons and failures -------------------------------------------------------------------
@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT",
                                    "SPII"])  # fmt: skip
def test_blocked_finish_reasons(mode: str, reason: str) -> None:
    with client_for(mode) as c:
        r = c.models.generate_content(model=f"finish-{reason}", contents=USER_TEXT)
        assert r.candidates[0].finish_reason == types.FinishReason(reason)
        assert (r.candidates[0].content, r.text) == (None, None)
        assert usage_of(r.usage_metadata) == expected_usage(USER_TEXT, 0)
        chunks = list(c.models.generate_content_stream(model=f"finish-{reason}",
                                                       contents=USER_TEXT))  # fmt: skip
        assert len(chunks) == 1
        assert chunks[0].candidates[0].finish_reason == types.FinishReason(reason)
        assert chunks[0].usage_metadata.candidates_token_count == 0


@pytest.mark.parametrize("reason", ["MALFORMED_FUNCTION_CALL", "OTHER"])
def test_other_finish_reasons(reason: str) -> None:
    with gemini_client() as c:
        r = c.models.generate_content(model=f"finish-{reason}", contents=USER_TEXT)
        assert (r.text, r.candidates[0].finish_reason) == (REPLY, types.FinishReason(reason))
        assert r.usage_metadata.candidates_token_count == 7


FAILURES: list[tuple[str, type[errors.APIError], str]] = [
    ("fail-400", errors.ClientError, "INVALID_ARGUMENT"),
    ("fail-403", errors.ClientError, "PERMISSION_DENIED"),
    ("fail-429", errors.ClientError, "RESOURCE_EXHAUSTED"),
    ("fail-500", errors.ServerError, "INTERNAL"),
    ("fail-503", errors.ServerError, "UNAVAILABLE"),
]


@pytest.mark.parametrize(("model", "error", "status"), FAILURES)
def test_fail_models(mode: str, model: str, error: type[errors.APIError], status: str) -> None:
    seen: list[Recorded] = []
    code = int(model.removeprefix("fail-"))
    with client_for(mode, recording(seen)) as c:
        calls: list[Callable[[], object]] = [
            lambda: c.models.generate_content(model=model, contents=USER_TEXT),
            # A stream is a lazy generator: the request goes out at the first chunk.
            lambda: next(c.models.generate_content_stream(model=model, contents=USER_TEXT)),
            lambda: c.models.embed_content(model=model, contents="x"),
        ]
        for call in calls:
            with pytest.raises(error) as caught:
                call()
            assert (caught.value.code, caught.value.status) == (code, status)
            assert caught.value.message
    assert len(seen) == 3  # no retries


async def test_fail_models_async(mode: str) -> None:
    async with client_for(mode).aio as aio:
        for model, error, status in FAILURES:
            with pytest.raises(error) as caught:
                await aio.models.generate_content(model=model, contents=USER_TEXT)
            assert caught.value.status == status
            # The request goes out at the first chunk, not when the stream is awaited.
            stream = await aio.models.generate_content_stream(model=model, contents=USER_TEXT)
            with pytest.raises(error):
                await stream.__anext__()


def test_retries_are_fast_when_asked() -> None:
    seen: list[Recorded] = []
    with gemini_client(recording(seen), retry_options=FAST_RETRY) as c:
        started = time.monotonic()
        with pytest.raises(errors.ClientError, match="RESOURCE_EXHAUSTED"):
            c.models.generate_content(model="fail-429", contents=USER_TEXT)
        assert len(seen) == 3
        with pytest.raises(errors.ServerError):
            c.models.generate_content(model="fail-503", contents=USER_TEXT)
        assert len(seen) == 6
        with pytest.raises(errors.ClientError):  # a 400 is not retried
            c.models.generate_content(model="fail-400", contents=USER_TEXT)
        assert len(seen) == 7
        assert time.monotonic() - started < 2
    with gemini_client(recording(seen)) as c, pytest.raises(errors.ClientError) as caught:
        c.models.generate_content(model="fail-429", contents=USER_TEXT)
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "0s"
    assert len(seen) == 8


def test_fail_midstream(mode: str) -> None:
    with client_for(mode) as c:
        got: list[str | None] = []
        # A dropped stream surfaces as the raw httpx2 error: the SDK does not wrap it.
        with pytest.raises(httpx2.RemoteProtocolError):
            got.extend(
                ch.text
                for ch in c.models.generate_content_stream(model="fail-midstream",
                                                           contents=USER_TEXT)
            )  # fmt: skip
        assert got == ["Echo: ", "Hello "]
        with pytest.raises(httpx2.RemoteProtocolError):  # not a stream: the body is cut short
            c.models.generate_content(model="fail-midstream", contents=USER_TEXT)


async def test_fail_midstream_async(mode: str) -> None:
    async with client_for(mode).aio as aio:
        stream = await aio.models.generate_content_stream(
            model="fail-midstream", contents=USER_TEXT
        )
        got: list[str | None] = []

        async def drain() -> None:
            async for chunk in stream:
                got.append(chunk.text)

        with pytest.raises(httpx2.RemoteProtocolError):
            await drain()
        assert got == ["Echo: ", "Hello "]


def test_unknown_routes(mode: str) -> None:
    with client_for(mode) as c, pytest.raises(errors.ClientError) as caught:
        c.models.get(model=MODEL)  # GET .../models/{m}: not a route of the stand-in
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    handler = make_handler()
    for method, url, content in [
        ("POST", f"{GEMINI_URL}/{MODEL}:nope", b"{}"),
        ("GET", f"{GEMINI_URL}/{MODEL}:generateContent", b""),
        ("POST", "https://generativelanguage.googleapis.com/v1/files", b"{}"),
        ("GET", f"{GEMINI_URL}/{VEO}/operations/op-unknown", b""),
        ("POST", f"{VERTEX_URL}/{VEO}:fetchPredictOperation", b'{"operationName": "x"}'),
    ]:
        response = handler(httpx2.Request(method, url, content=content))
        response.read()
        assert response.status_code == 404
        assert response.json()["error"]["status"] == "NOT_FOUND"
    bad = handler(httpx2.Request("POST", f"{GEMINI_URL}/{MODEL}:generateContent", content=b"{"))
    bad.read()
    assert (bad.status_code, bad.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")


def test_stream_without_sse_is_a_json_array() -> None:
    handler = make_handler()
    body = {"contents": [{"role": "user", "parts": [{"text": USER_TEXT}]}]}
    url = f"{GEMINI_URL}/{MODEL}:streamGenerateContent"
    response = handler(httpx2.Request("POST", url, json=body))
    response.read()
    chunks = response.json()
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == [
        "Echo: ", "Hello ", "there, ", "how ", "are ", "you ", "today?"
    ]  # fmt: skip
    sse = handler(httpx2.Request("POST", url + "?alt=sse", json=body))
    frames = b"".join(sse.iter_bytes()).split(b"\r\n\r\n")
    assert frames[-1] == b""
    assert all(f.startswith(b"data: {") for f in frames[:-1])
    assert sse.headers["content-type"] == "text/event-stream"


# -- embeddings, images and videos -----------------------------------------------------------------
def test_embeddings_gemini_api() -> None:
    seen: list[Recorded] = []
    with gemini_client(recording(seen)) as c:
        config = types.EmbedContentConfig(output_dimensionality=4)
        r = c.models.embed_content(model="gemini-embedding-001", contents=["one", "three"],
                                   config=config)  # fmt: skip
        assert [e.values for e in r.embeddings] == [vector("one", 4), vector("three", 4)]
        assert [e.statistics for e in r.embeddings] == [None, None]
        assert (r.usage_metadata, r.metadata) == (None, None)  # the Gemini API reports no usage
        single = c.models.embed_content(model="text-embedding-004", contents="one")
        assert [e.values for e in single.embeddings] == [vector("one")]
    assert [r.url.rpartition(":")[2] for r in seen] == ["batchEmbedContents"] * 2
    assert seen[0].body["requests"][0]["outputDimensionality"] == 4


@pytest.mark.parametrize("mode", ["vertex", "express"])
def test_embeddings_vertex(mode: str) -> None:
    texts = ["hello world", "a much longer sentence to embed"]
    with client_for(mode) as c:
        one = c.models.embed_content(model="gemini-embedding-001", contents=texts[0])
        assert [e.values for e in one.embeddings] == [vector(texts[0])]
        assert one.embeddings[0].statistics.token_count == tokens(texts[0])
        assert one.usage_metadata.prompt_token_count == tokens(texts[0])
        assert one.truncated is False
        batch = c.models.embed_content(
            model="gemini-embedding-001",
            contents=texts,
            config=types.EmbedContentConfig(output_dimensionality=3),
        )
        assert [e.values for e in batch.embeddings] == [vector(t, 3) for t in texts]
        assert batch.usage_metadata.prompt_token_count == sum(tokens(t) for t in texts)
        predicted = c.models.embed_content(model="text-embedding-005", contents=texts)
        stats = [e.statistics for e in predicted.embeddings]
        assert [(s.token_count, s.truncated) for s in stats] == [(tokens(t), False) for t in texts]
        assert predicted.metadata.billable_character_count == sum(len(t) for t in texts)
        assert [e.values for e in predicted.embeddings] == [vector(t) for t in texts]
        assert predicted.usage_metadata is None


@NO_IMAGEN_WARNING
@pytest.mark.parametrize("mode", ["vertex", "express"])
def test_images(mode: str) -> None:
    seen: list[Recorded] = []
    with client_for(mode, recording(seen)) as c:
        r = c.models.generate_images(model=IMAGEN, prompt="a cat")
        assert r.generated_images
        assert [g.image.image_bytes for g in r.generated_images] == [IMAGE_BYTES] * 4
        assert {g.image.mime_type for g in r.generated_images} == {"image/png"}
        assert seen[-1].body == {"instances": [{"prompt": "a cat"}]}  # no sampleCount: 4
        config = types.GenerateImagesConfig(number_of_images=2, output_mime_type="image/jpeg")
        two = c.models.generate_images(model=IMAGEN, prompt="a cat", config=config)
        assert two.generated_images
        assert [g.image.mime_type for g in two.generated_images] == ["image/jpeg"] * 2
        assert seen[-1].body["parameters"]["sampleCount"] == 2
        reasons = types.GenerateImagesConfig(number_of_images=3, include_rai_reason=True)
        shown = c.models.generate_images(model=IMAGEN, prompt="blocked cat", config=reasons)
        assert shown.generated_images
        # The SDK gives a filtered image an empty Image (not None): test its bytes.
        got = [(g.image and g.image.image_bytes, g.rai_filtered_reason)
               for g in shown.generated_images]  # fmt: skip
        assert got == [(IMAGE_BYTES, None), (IMAGE_BYTES, None), (None, RAI_REASON)]
        dropped = c.models.generate_images(model=IMAGEN, prompt="Blocked cat")
        assert dropped.generated_images
        assert len(dropped.generated_images) == 3
        assert [r.url for r in seen] == [f"{URLS[mode]}/{IMAGEN}:predict"] * 4


@NO_IMAGEN_WARNING
async def test_images_async_and_not_on_gemini_api() -> None:
    async with vertex_client().aio as aio:
        r = await aio.models.generate_images(model=IMAGEN, prompt="a cat")
        assert r.generated_images
        assert len(r.generated_images) == 4
    with gemini_client() as c, pytest.raises(ValueError, match="only supported"):
        c.models.generate_images(model=IMAGEN, prompt="a cat")  # the SDK refuses, sends nothing


@pytest.mark.parametrize("mode", ["vertex", "express"])
def test_videos_vertex(mode: str) -> None:
    seen: list[Recorded] = []
    resource = URLS[mode].partition("/v1beta1/")[2]
    with client_for(mode, recording(seen)) as c:
        source = types.GenerateVideosSource(prompt="a cat")
        op = c.models.generate_videos(model=VEO, source=source)
        assert (op.name, op.done) == (f"{resource}/{VEO}/operations/op-standin-1", None)
        assert c.operations.get(op).done is None  # the first poll: still running
        done = c.operations.get(op)
        assert done.done
        assert done.result
        assert done.result.generated_videos
        videos = [v.video for v in done.result.generated_videos]
        assert [(v.uri, v.mime_type) for v in videos if v] == [
            ("gs://standin-bucket/videos/op-standin-1/sample_0.mp4", "video/mp4")
        ]
        assert c.operations.get(done).done  # every later poll: done
        config = types.GenerateVideosConfig(number_of_videos=2, output_gcs_uri="gs://mine/out/")
        two = c.models.generate_videos(model=VEO, source=source, config=config)
        c.operations.get(two)
        result = c.operations.get(two).result
        assert result
        assert result.generated_videos
        assert [v.video.uri for v in result.generated_videos if v.video] == [
            "gs://mine/out/op-standin-5/sample_0.mp4", "gs://mine/out/op-standin-5/sample_1.mp4"
        ]  # fmt: skip
        failed = c.models.generate_videos(
            model=VEO, source=types.GenerateVideosSource(prompt="this will fail")
        )
        c.operations.get(failed)
        broken = c.operations.get(failed)
        assert (broken.done, broken.result) == (True, None)
        assert broken.error
        assert broken.error["code"] == 3
    url = URLS[mode]
    assert [r.url for r in seen[:4]] == [f"{url}/{VEO}:predictLongRunning"] + [
        f"{url}/{VEO}:fetchPredictOperation"
    ] * 3
    assert seen[1].body == {"operationName": op.name}
    assert seen[0].body == {"instances": [{"prompt": "a cat"}]}


async def test_videos_async() -> None:
    async with vertex_client().aio as aio:
        source = types.GenerateVideosSource(prompt="a cat")
        op = await aio.models.generate_videos(model=VEO, source=source)
        assert not (await aio.operations.get(op)).done
        done = await aio.operations.get(op)
        assert done.result
        assert done.result.generated_videos
        assert len(done.result.generated_videos) == 1


def test_videos_gemini_api_operations() -> None:
    """The SDK refuses ``generate_videos`` on the Gemini API; its operation polling still works."""
    seen: list[Recorded] = []
    handler = recording(seen)
    with gemini_client(handler) as c:
        with pytest.raises(ValueError, match="only supported"):
            c.models.generate_videos(model=VEO, source=types.GenerateVideosSource(prompt="a cat"))
        body = {"instances": [{"prompt": "a cat"}], "parameters": {"sampleCount": 2}}
        start = handler(httpx2.Request("POST", f"{GEMINI_URL}/{VEO}:predictLongRunning", json=body))
        start.read()
        name = start.json()["name"]
        assert name == f"models/{VEO}/operations/op-standin-1"
        op = types.GenerateVideosOperation(name=name)
        assert c.operations.get(op).done is None
        done = c.operations.get(op)
        assert done.result
        assert done.result.generated_videos
        uris = [v.video.uri for v in done.result.generated_videos if v.video]
        base = "https://generativelanguage.googleapis.com/v1beta/files/op-standin-1"
        assert uris == [f"{base}-0:download?alt=media", f"{base}-1:download?alt=media"]
    polled = ("GET", f"{GEMINI_URL}/{VEO}/operations/op-standin-1")
    assert [(r.method, r.url) for r in seen[1:]] == [polled] * 2


# -- routing and the stand-in server over real sockets ---------------------------------------------
@pytest.mark.parametrize(
    ("path", "google"),
    [
        (f"/v1/models/{MODEL}:generateContent", True),
        (f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", True),
        (f"/v1beta1/projects/p/locations/l/publishers/google/models/{MODEL}:predict", True),
        (f"/v1/projects/p/locations/l/publishers/google/models/{MODEL}:generateContent", True),
        (f"/v1beta1/publishers/google/models/{MODEL}:generateContent", True),
        (f"/v1/models/{VEO}/operations/op-1", True),
        ("/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude:rawPredict", False),
        ("/v1beta/models", True),  # the Gemini API's list route: a Google 404
        ("/v1/models/gpt-4o", False),  # OpenAI's model route stays with OpenAI
        ("/v1/messages", False),
        ("/v1/chat/completions", False),
        ("/openai/deployments/d/chat/completions", False),
        ("/model/anthropic.claude-v1:0/invoke", False),
    ],
)
def test_serves(path: str, google: bool) -> None:
    assert serves(path) is google


def test_standin_server_serves_google() -> None:
    with StandInServer() as server:
        with served_client(server) as c:
            check_response(c.models.generate_content(model=MODEL, contents=USER_TEXT), 1)
            check_chunks(list(c.models.generate_content_stream(model=MODEL, contents=USER_TEXT)))
            with pytest.raises(httpx2.RemoteProtocolError):
                list(c.models.generate_content_stream(model="fail-midstream", contents=USER_TEXT))
            with pytest.raises(errors.ClientError):
                c.models.generate_content(model="fail-429", contents=USER_TEXT)
            assert c.models.generate_content(model=MODEL, contents="x").response_id == (
                "resp-standin-5"
            )  # the server lives on
        with served_client(server, "vertex") as v:
            assert v.models.generate_content(model=MODEL, contents=USER_TEXT).text == REPLY
            op = v.models.generate_videos(model=VEO, source=types.GenerateVideosSource(prompt="x"))
            v.operations.get(op)
            assert v.operations.get(op).done
        with served_client(server, "express") as e:
            assert e.models.embed_content(model="text-embedding-005", contents="x").embeddings
        with httpx2.Client(trust_env=False) as http:
            claude = "/v1/projects/p/locations/r/publishers/anthropic/models/claude-x:rawPredict"
            body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 10,
                    "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
            anthropic = http.post(server.origin + claude, json=body)
            assert anthropic.json()["type"] == "message"  # still the Anthropic backend
            chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            openai = http.post(server.base_url + "/chat/completions", json=chat)
            assert openai.json()["object"] == "chat.completion"
    paths = [q["path"] for q in server.requests]
    assert paths[0] == f"/v1/models/{MODEL}:generateContent"
    assert paths[5] == (
        f"/v1beta1/projects/my-proj/locations/us-central1/publishers/google/models/{MODEL}"
        ":generateContent"
    )
    assert paths[-3] == "/v1beta1/publishers/google/models/text-embedding-005:predict"


async def test_standin_server_async() -> None:
    with StandInServer() as server:
        async with served_client(server, "vertex") as c:
            r = await c.aio.models.generate_content(model=MODEL, contents=USER_TEXT)
            check_response(r, 1)
            stream = await c.aio.models.generate_content_stream(model=MODEL, contents=USER_TEXT)
            check_chunks([chunk async for chunk in stream])


# The SDK subclasses aiohttp.ClientSession inside a method; aiohttp 3.10+ warns at each subclass.
@pytest.mark.filterwarnings("ignore:Inheritance class .* from ClientSession:DeprecationWarning")
async def test_standin_server_async_aiohttp() -> None:
    """Without an async httpx2 client the SDK's ``client.aio`` uses aiohttp, when installed."""
    aiohttp = pytest.importorskip("aiohttp")
    with StandInServer() as server:
        async with served_client(server, aiohttp=True) as c:
            assert c._api_client._use_aiohttp()
            r = await c.aio.models.generate_content(model=MODEL, contents=USER_TEXT)
            check_response(r, 1)
            stream = await c.aio.models.generate_content_stream(model=MODEL, contents=USER_TEXT)
            check_chunks([chunk async for chunk in stream])
            with pytest.raises(errors.ServerError):
                await c.aio.models.generate_content(model="fail-503", contents=USER_TEXT)
            cut = await c.aio.models.generate_content_stream(
                model="fail-midstream", contents=USER_TEXT
            )
            got: list[str | None] = []

            async def drain() -> None:
                async for chunk in cut:
                    got.append(chunk.text)

            # aiohttp's own error, not httpx2's: the SDK does not wrap either.
            with pytest.raises(aiohttp.ClientPayloadError):
                await drain()
            assert got == ["Echo: ", "Hello "]
            with pytest.raises(aiohttp.ClientPayloadError):
                await c.aio.models.generate_content(model="fail-midstream", contents=USER_TEXT)


def test_socket_and_in_process_answers_are_identical() -> None:
    handler = make_handler()
    contents = [{"role": "user", "parts": [{"text": USER_TEXT}]}]
    calls: list[tuple[str, dict[str, Any]]] = [
        (f"/v1/models/{MODEL}:generateContent", {"contents": contents}),
        (f"/v1/models/{MODEL}:streamGenerateContent?alt=sse", {"contents": contents}),
        ("/v1beta1/publishers/google/models/text-embedding-005:predict",
         {"instances": [{"content": "hi"}]}),
        (f"/v1beta1/publishers/google/models/{VEO}:predictLongRunning",
         {"instances": [{"prompt": "x"}]}),
        (f"/v1beta1/publishers/google/models/{VEO}:fetchPredictOperation",
         {"operationName": f"publishers/google/models/{VEO}/operations/op-standin-4"}),
    ]  # fmt: skip
    with StandInServer() as server, httpx2.Client(trust_env=False) as http:
        for path, body in calls:
            over_socket = http.post(server.origin + path, json=body)
            in_process = handler(httpx2.Request("POST", server.origin + path, json=body))
            in_process.read()
            assert over_socket.status_code == in_process.status_code == 200
            assert over_socket.content == in_process.content
            assert over_socket.headers["content-type"] == in_process.headers["content-type"]
        missing = http.post(f"{server.origin}/v1beta/models/{MODEL}:nope", json={})
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, 404)
