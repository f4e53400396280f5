"""The OpenAI fixtures and the stand-in server drive the real, unwrapped ``openai`` SDK offline."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pydantic
import pytest
from openai_fixtures import (
    Handler,
    async_azure_client,
    async_client,
    azure_client,
    compat_client,
    make_handler,
    openai_handler,
    sync_client,
)

from revenium.providers._openai_standin import AZURE_MODEL, PNG_B64, SPEECH_BYTES, StandInServer

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

USER: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Hello there, how are you today?"}  # 31 chars
]
REPLY = "Echo: Hello there, how are you today?"  # 7 words
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


class Answer(pydantic.BaseModel):
    answer: str


def recording(urls: list[str]) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        urls.append(str(request.url))
        return openai_handler(request)

    return handler


@pytest.fixture
def client() -> Iterator[openai.OpenAI]:
    with sync_client(make_handler()) as c:
        yield c


# -- chat ------------------------------------------------------------------------------------------
def test_chat_exact_numbers(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert (r.id, r.model, r.system_fingerprint) == (
        "chatcmpl-standin-1",
        "gpt-4o-mini-2024-07-18",
        "fp_standin",
    )
    assert r.choices[0].message.content == REPLY
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (7, 7, 14)
    assert r.usage.prompt_tokens_details
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details
    assert r.usage.completion_tokens_details.reasoning_tokens == 0
    assert r._request_id == "req_standin_1"  # pyright: ignore[reportPrivateUsage]
    dated = client.chat.completions.create(model="gpt-4o-2024-08-06", messages=USER)
    assert dated.model == "gpt-4o-2024-08-06"
    assert dated.id == "chatcmpl-standin-2"


def test_chat_length_and_max_completion_tokens(client: openai.OpenAI) -> None:
    for r in (
        client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=3),
        client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_completion_tokens=3),
    ):
        assert r.choices[0].finish_reason == "length"
        assert r.choices[0].message.content == "Echo: Hello there,"
        assert r.usage
        assert r.usage.completion_tokens == 3


def test_chat_stream_usage_chunk_only_with_include_usage(client: openai.OpenAI) -> None:
    plain = list(client.chat.completions.create(model="m", messages=USER, stream=True))
    assert [c.choices[0].delta.content for c in plain] == [
        "",
        "Echo: ",
        "Hello ",
        "there, ",
        "how ",
        "are ",
        "you ",
        "today?",
        None,
    ]
    assert plain[0].choices[0].delta.role == "assistant"
    assert plain[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.choices for c in plain)

    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len(chunks) == len(plain) + 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 14
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_tool_call(client: openai.OpenAI) -> None:
    ask: Any = [{"role": "user", "content": "What's the weather in Paris?"}]
    r = client.chat.completions.create(model="gpt-4o", messages=ask, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.id == "call_1"
    assert call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Paris"}')
    assert r.usage
    assert r.usage.completion_tokens == 4
    with client.chat.completions.stream(model="gpt-4o", messages=ask, tools=[WEATHER_TOOL]) as s:
        final = s.get_final_completion()
    tool_calls = final.choices[0].message.tool_calls
    assert tool_calls
    assert tool_calls[0].function.arguments == '{"city":"Paris"}'
    assert final.choices[0].finish_reason == "tool_calls"


def test_chat_parse_and_stream_helper(client: openai.OpenAI) -> None:
    parsed = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
        response_format=Answer,
    )
    assert parsed.choices[0].message.parsed == Answer(answer="Echo: Hi")
    assert parsed.usage
    assert parsed.usage.completion_tokens == 3

    with client.chat.completions.stream(model="m", messages=USER) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == REPLY
    assert final.usage is None
    with client.chat.completions.stream(
        model="m",
        messages=USER,
        stream_options={"include_usage": True},
        response_format=Answer,
    ) as s:
        structured = s.get_final_completion()
    assert structured.usage
    assert structured.usage.total_tokens == 7 + 8
    assert structured.choices[0].message.parsed == Answer(answer=REPLY)


async def test_async_chat() -> None:
    async with async_client(make_handler()) as c:
        r = await c.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert r.choices[0].message.content == REPLY
        assert r.id == "chatcmpl-standin-1"
        stream = await c.chat.completions.create(
            model="m",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        assert chunks[-1].choices == []
        assert chunks[-1].usage
        assert chunks[-1].usage.total_tokens == 14
        plain = await c.chat.completions.create(model="m", messages=USER, stream=True)
        assert all([chunk.usage is None async for chunk in plain])
        async with c.chat.completions.stream(model="m", messages=USER) as s:
            assert (await s.get_final_completion()).choices[0].message.content == REPLY


# -- legacy completions ----------------------------------------------------------------------------
def test_completions(client: openai.OpenAI) -> None:
    r = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test")
    assert r.choices[0].text == "Echo: Say this is a test"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (4, 6)
    many = client.completions.create(model="m", prompt=["one", "two"], max_tokens=1)
    assert [(c.index, c.text, c.finish_reason) for c in many.choices] == [
        (0, "Echo:", "length"),
        (1, "Echo:", "length"),
    ]
    plain = list(client.completions.create(model="m", prompt="a b", stream=True))
    assert "".join(c.choices[0].text for c in plain) == "Echo: a b"
    assert all(c.usage is None and c.choices for c in plain)
    assert plain[-1].choices[0].finish_reason == "stop"
    full = list(
        client.completions.create(
            model="m", prompt="a b", stream=True, stream_options={"include_usage": True}
        )
    )
    assert full[-1].choices == []
    assert full[-1].usage
    assert full[-1].usage.completion_tokens == 3


# -- responses -------------------------------------------------------------------------------------
def test_responses_create_stream_parse(client: openai.OpenAI) -> None:
    r = client.responses.create(model="gpt-5", input="Hello there, how are you today?")
    assert (r.id, r.status, r.output_text) == ("resp_standin_1", "completed", REPLY)
    assert r.usage
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (
        7,
        7,
        14,
    )
    assert r.usage.input_tokens_details.cached_tokens == 0
    assert r.usage.output_tokens_details.reasoning_tokens == 0

    items: Any = [
        {"role": "system", "content": "Be brief."},  # 9 chars
        {"role": "user", "content": [{"type": "input_text", "text": "Hi there"}]},  # 8 chars
    ]
    listed = client.responses.create(model="gpt-5", input=items)
    assert listed.output_text == "Echo: Hi there"
    assert listed.usage
    assert listed.usage.input_tokens == 17 // 4

    with client.responses.stream(model="gpt-5", input="one two three") as s:
        kinds = [event.type for event in s]
        final = s.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.output_text.delta") == 4
    assert kinds[-1] == "response.completed"
    assert final.output_text == "Echo: one two three"
    assert final.usage
    assert final.usage.output_tokens == 4

    raw = list(client.responses.create(model="gpt-5", input="x", stream=True))
    assert raw[0].type == "response.created"
    assert raw[0].response.usage is None
    assert raw[-1].type == "response.completed"
    assert raw[-1].response.usage is not None

    parsed = client.responses.parse(model="gpt-5", input="Hi", text_format=Answer)
    assert parsed.output_parsed == Answer(answer="Echo: Hi")


def test_responses_incomplete(client: openai.OpenAI) -> None:
    r = client.responses.create(model="gpt-5", input="a b c d", max_output_tokens=2)
    assert r.status == "incomplete"
    assert r.incomplete_details
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output_text == "Echo: a"
    assert r.usage
    assert r.usage.output_tokens == 2
    events = list(
        client.responses.create(model="gpt-5", input="a b", max_output_tokens=1, stream=True)
    )
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.usage
    assert events[-1].response.usage.output_tokens == 1


def test_responses_background_then_retrieve(client: openai.OpenAI) -> None:
    queued = client.responses.create(model="gpt-5", input="later please", background=True)
    assert queued.status == "queued"
    assert queued.usage is None
    done = client.responses.retrieve(queued.id)
    assert done.id == queued.id
    assert done.status == "completed"
    assert done.output_text == "Echo: later please"
    assert done.usage
    assert done.usage.total_tokens == 6
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_nope")


async def test_async_responses() -> None:
    async with async_client(make_handler()) as c:
        r = await c.responses.create(model="gpt-5", input="x")
        assert r.usage
        assert r.usage.total_tokens == 1 + 2
        async with c.responses.stream(model="gpt-5", input="x y") as s:
            final = await s.get_final_response()
        assert final.output_text == "Echo: x y"


# -- embeddings, images, audio ---------------------------------------------------------------------
def test_embeddings(client: openai.OpenAI) -> None:
    one = client.embeddings.create(model="text-embedding-3-small", input="abcdefgh")
    assert one.model == "text-embedding-3-small"
    assert len(one.data) == 1
    assert len(one.data[0].embedding) == 8  # the SDK asked for base64 and decoded it
    assert one.data[0].embedding == pytest.approx([(i + 1) / 10 + 0.008 for i in range(8)])
    assert (one.usage.prompt_tokens, one.usage.total_tokens) == (2, 2)
    many = client.embeddings.create(
        model="text-embedding-3-small", input=["a", "abcdefgh"], encoding_format="float"
    )
    assert [d.index for d in many.data] == [0, 1]
    assert many.usage.prompt_tokens == 1 + 2
    assert many.data[0].embedding == [0.101, 0.201, 0.301, 0.401, 0.501, 0.601, 0.701, 0.801]


def test_images(client: openai.OpenAI) -> None:
    dalle = client.images.generate(model="dall-e-3", prompt="a cat")
    assert dalle.usage is None
    assert dalle.data
    assert dalle.data[0].url
    gpt = client.images.generate(model="gpt-image-1", prompt="a cat in a hat", n=2)
    assert gpt.data
    assert [d.b64_json for d in gpt.data] == [PNG_B64, PNG_B64]
    assert gpt.usage
    assert (gpt.usage.input_tokens, gpt.usage.output_tokens) == (3, 544)
    assert gpt.usage.input_tokens_details.text_tokens == 3
    edit = client.images.edit(
        model="gpt-image-1", image=("a.png", io.BytesIO(b"\x89PNG")), prompt="make it blue"
    )
    assert edit.data
    assert len(edit.data) == 1
    assert edit.usage
    assert edit.usage.input_tokens_details.image_tokens == 323
    assert edit.usage.total_tokens == 3 + 323 + 272


def test_audio(client: openai.OpenAI) -> None:
    speech = client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="hi")
    assert speech.content == SPEECH_BYTES
    audio = ("a.mp3", io.BytesIO(b"ID3fake"))
    tokens = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio)
    assert tokens.text == "hello world"
    assert tokens.usage
    assert tokens.usage.type == "tokens"
    assert tokens.usage.input_tokens == 14
    assert tokens.usage.total_tokens == 16
    assert tokens.usage.input_token_details
    assert tokens.usage.input_token_details.audio_tokens == 14
    duration = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert duration.usage
    assert duration.usage.type == "duration"
    assert duration.usage.seconds == 3
    text = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert text == "hello world"
    # Deprecated in openai 3.x (whisper-1 only), with a runtime DeprecationWarning.
    with pytest.warns(DeprecationWarning, match="deprecated"):
        translation = client.audio.translations.create(model="whisper-1", file=audio)  # pyright: ignore[reportDeprecated]
    assert translation.text == "hello world"
    # ``Translation`` declares no ``usage``: it survives only as a pydantic extra.
    assert translation.model_extra == {"usage": {"type": "duration", "seconds": 3}}


# -- Azure and compatible providers ----------------------------------------------------------------
def test_azure_urls_and_model() -> None:
    urls: list[str] = []
    az = azure_client(recording(urls))
    r = az.chat.completions.create(model="my-deployment", messages=USER)
    assert r.model == AZURE_MODEL
    assert r.model_extra
    assert "prompt_filter_results" in r.model_extra
    assert az.responses.create(model="my-deployment", input="x").model == AZURE_MODEL
    az.embeddings.create(model="emb-deployment", input="x")
    assert urls == [
        "https://res.openai.azure.com/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21",
        "https://res.openai.azure.com/openai/responses?api-version=2024-10-21",
        "https://res.openai.azure.com/openai/deployments/emb-deployment/embeddings?api-version=2024-10-21",
    ]
    dep = azure_client(recording(urls), azure_deployment="dep2", api_version="2025-01-01")
    dep.chat.completions.create(model="ignored", messages=USER)
    assert urls[-1] == (
        "https://res.openai.azure.com/openai/deployments/dep2/chat/completions"
        "?api-version=2025-01-01"
    )


def test_azure_first_chunk() -> None:
    chunks = list(
        azure_client(azure_first_chunk=True).chat.completions.create(
            model="dep",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    first = chunks[0]
    assert (first.choices, first.id, first.model) == ([], "", "")
    assert first.model_extra
    assert "prompt_filter_results" in first.model_extra
    assert first.usage is None
    assert chunks[1].model == AZURE_MODEL
    assert chunks[-1].usage
    assert chunks[-1].choices == []
    plain = list(azure_client().chat.completions.create(model="d", messages=USER, stream=True))
    assert plain[0].choices
    assert plain[0].model == AZURE_MODEL


async def test_async_azure() -> None:
    urls: list[str] = []
    async with async_azure_client(recording(urls), azure_first_chunk=True) as az:
        stream = await az.chat.completions.create(model="dep", messages=USER, stream=True)
        chunks = [c async for c in stream]
    assert chunks[0].choices == []
    assert chunks[1].model == AZURE_MODEL
    assert urls == [
        "https://res.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2024-10-21"
    ]


def test_compat_clients() -> None:
    urls: list[str] = []
    for base in ("https://api.perplexity.ai", "http://localhost:11434/v1"):
        r = compat_client(base, recording(urls)).chat.completions.create(
            model="sonar", messages=USER
        )
        assert r.choices[0].message.content == REPLY
    assert urls == [
        "https://api.perplexity.ai/chat/completions",
        "http://localhost:11434/v1/chat/completions",
    ]


# -- failures --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("fail-429", openai.RateLimitError, 429),
        ("fail-500", openai.InternalServerError, 500),
        ("fail-400", openai.BadRequestError, 400),
    ],
)
def test_failure_models(
    client: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as caught:
        client.chat.completions.create(model=model, messages=USER)
    assert caught.value.status_code == status
    assert caught.value.request_id
    with pytest.raises(error):  # a stream fails at call time, before any iteration
        client.chat.completions.create(model=model, messages=USER, stream=True)
    with pytest.raises(error):
        client.responses.create(model=model, input="x")
    with pytest.raises(error):
        client.embeddings.create(model=model, input="x")


def test_failure_bodies(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="fail-429", messages=USER)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    assert caught.value.message == "Error code: 429 - Rate limit reached"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="fail-400", messages=USER)
    assert bad.value.type == "invalid_request_error"
    assert bad.value.code is None
    with pytest.raises(openai.NotFoundError):
        client.models.list()  # not served: 404 with OpenAI error JSON


def test_fail_midstream(client: openai.OpenAI) -> None:
    got: list[str | None] = []
    stream = client.chat.completions.create(model="fail-midstream", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError) as caught:
        got.extend(c.choices[0].delta.content for c in stream)
    assert got == ["", "Echo: ", "Hello "]
    assert type(caught.value) is openai.APIConnectionError  # not APITimeoutError
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    events: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        events.extend(
            e.type
            for e in client.responses.create(model="fail-midstream", input="a b c", stream=True)
        )
    assert events[-2:] == ["response.output_text.delta"] * 2
    with pytest.raises(openai.APIConnectionError):  # not a stream: the body is cut short
        client.chat.completions.create(model="fail-midstream", messages=USER)


async def test_fail_midstream_async() -> None:
    async with async_client(make_handler()) as c:
        stream = await c.chat.completions.create(model="fail-midstream", messages=USER, stream=True)
        with pytest.raises(openai.APIConnectionError):
            [chunk async for chunk in stream]


# -- the stand-in server over real sockets ---------------------------------------------------------
def test_standin_server_with_the_real_sdk() -> None:
    with (
        StandInServer() as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as c,
    ):
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.base_url.endswith("/v1")
        r = c.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert r.choices[0].message.content == REPLY
        assert r.usage
        assert r.usage.total_tokens == 14
        chunks = list(
            c.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks[:-1]) == REPLY
        assert chunks[-1].usage
        assert chunks[-1].usage.total_tokens == 14
        e = c.embeddings.create(model="text-embedding-3-small", input=["abcd", "efgh"])
        assert len(e.data) == 2
        assert e.usage.prompt_tokens == 2
        queued = c.responses.create(model="gpt-5", input="x", background=True)
        assert c.responses.retrieve(queued.id).status == "completed"
        audio = ("a.mp3", io.BytesIO(b"ID3fake"))
        assert c.audio.transcriptions.create(model="whisper-1", file=audio).text == "hello world"
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model="fail-429", messages=USER)
        stream = c.chat.completions.create(model="fail-midstream", messages=USER, stream=True)
        with pytest.raises(openai.APIConnectionError) as caught:
            list(stream)
        assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
        assert c.chat.completions.create(model="m", messages=USER).id

    paths = [(q["method"], q["path"]) for q in server.requests]
    assert paths[:4] == [("POST", "/v1/chat/completions")] * 2 + [
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/responses"),
    ]
    assert paths[4] == ("GET", f"/v1/responses/{queued.id}")
    assert server.requests[0]["body"]["messages"] == USER
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-test"
    assert server.requests[5]["body"] is None  # multipart


def test_socket_and_in_process_answers_are_identical() -> None:
    handler = make_handler()
    calls: list[dict[str, Any]] = [
        {"model": "gpt-4o-mini", "messages": USER},
        {"model": "gpt-4o-mini", "messages": USER, "stream": True},
    ]
    with StandInServer() as server, httpx2.Client(trust_env=False) as http:
        for body in calls:
            url = f"{server.base_url}/chat/completions"
            over_socket = http.post(url, json=body)
            in_process = handler(httpx2.Request("POST", url, json=body))
            in_process.read()
            assert over_socket.status_code == in_process.status_code == 200
            assert over_socket.content == in_process.content
            assert over_socket.headers["x-request-id"] == in_process.headers["x-request-id"]
        missing = http.post(f"{server.base_url}/nope", json={})
        assert missing.status_code == 404
        assert json.loads(missing.content)["error"]["message"]
        assert http.get(f"{server.base_url}/chat/completions").status_code == 404
