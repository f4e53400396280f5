"""The Anthropic fixtures and the stand-in server drive the real, unwrapped ``anthropic`` SDK.

Every number is computed here from the counting rule documented in ``_anthropic_standin``, so a
change to the rule breaks these tests rather than silently shifting what adapter tests assert.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest
from anthropic_fixtures import (
    BEDROCK_MODEL,
    BEDROCK_URL,
    MODEL,
    USER_TEXT,
    VERTEX_MODEL,
    VERTEX_URL,
    Recorded,
    async_bedrock_client,
    async_client,
    async_vertex_client,
    bedrock_client,
    echo,
    make_handler,
    recording,
    sync_client,
    tokens,
    vertex_client,
    words,
)

from revenium.providers._anthropic_standin import (
    SIGNATURE,
    THINKING_TEXT,
    TOOL_INPUT,
    bedrock_model_name,
)
from revenium.providers._openai_standin import StandInServer

USER: Any = [{"role": "user", "content": USER_TEXT}]
WEATHER: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS: Any = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]
METRICS = "amazon-bedrock-invocationMetrics"


REPLY = echo(USER_TEXT)
THOUGHT = words(THINKING_TEXT)


class Answer(pydantic.BaseModel):
    answer: str


@dataclass(frozen=True)
class Platform:
    name: str
    sync: Callable[..., Any]
    async_: Callable[..., Any]
    model: str


PLATFORMS = [
    Platform("direct", sync_client, async_client, MODEL),
    Platform("bedrock", bedrock_client, async_bedrock_client, BEDROCK_MODEL),
    Platform(
        "bedrock-sigv4",
        partial(bedrock_client, signed=True),
        partial(async_bedrock_client, signed=True),
        BEDROCK_MODEL,
    ),
    Platform("vertex", vertex_client, async_vertex_client, VERTEX_MODEL),
]


@pytest.fixture(params=PLATFORMS, ids=lambda p: p.name)
def platform(request: pytest.FixtureRequest) -> Platform:
    return request.param  # type: ignore[no-any-return]


def check_message(m: Any, n: int, *, text: str = REPLY) -> None:
    assert (m.id, m.model, m.stop_reason, m.stop_sequence) == (
        f"msg_standin_{n}", MODEL, "end_turn", None
    )  # fmt: skip
    assert [(b.type, b.text) for b in m.content] == [("text", text)]
    u = m.usage
    assert (u.input_tokens, u.output_tokens) == (tokens(USER_TEXT), words(text))
    assert (u.cache_creation_input_tokens, u.cache_read_input_tokens) == (0, 0)
    assert m._request_id == f"req_standin_{n}"


def check_events(events: list[Any], platform: str) -> None:
    """Raw events as the SDK yields them (it drops ``ping``), one text delta per word."""
    kinds = [e.type for e in events]
    middle = ["content_block_start"] + ["content_block_delta"] * words(REPLY)
    assert kinds == [
        "message_start",
        *middle,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta, stop = events[0].message, events[-2], events[-1]
    assert (start.usage.input_tokens, start.usage.output_tokens, start.model) == (7, 1, MODEL)
    assert (delta.delta.stop_reason, delta.usage.output_tokens) == ("end_turn", words(REPLY))
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == REPLY
    metrics = (stop.model_extra or {}).get(METRICS)
    if platform.startswith("bedrock"):
        out = words(REPLY)
        assert metrics == {"inputTokenCount": tokens(USER_TEXT), "outputTokenCount": out,
                           "invocationLatency": 50 + 10 * out, "firstByteLatency": 50}  # fmt: skip
    else:
        assert metrics is None


# -- every surface, every client class -------------------------------------------------------------
def test_sync_surfaces(platform: Platform) -> None:
    with platform.sync(make_handler()) as c:
        kw: Any = {"model": platform.model, "max_tokens": 100, "messages": USER}
        check_message(c.messages.create(**kw), 1)
        with c.messages.create(**kw, stream=True) as stream:
            assert stream.response.headers["request-id"] == "req_standin_2"
            check_events(list(stream), platform.name)
        with c.messages.stream(**kw) as s:
            assert "".join(s.text_stream) == REPLY
            final = s.get_final_message()  # usage merged: output from message_delta
            assert (final.usage.input_tokens, final.usage.output_tokens) == (7, words(REPLY))
            assert s.request_id == "req_standin_3"
        parsed = c.messages.parse(**kw, output_format=Answer)
        assert parsed.parsed_output == Answer(answer=REPLY)
        assert parsed.usage.output_tokens == words(json.dumps({"answer": REPLY}))
        check_message(c.beta.messages.create(**kw, betas=["context-1m-2025-08-07"]), 5)
        with c.beta.messages.stream(**kw) as bs:
            assert bs.get_final_message().usage.output_tokens == words(REPLY)


async def test_async_surfaces(platform: Platform) -> None:
    async with platform.async_(make_handler()) as c:
        kw: Any = {"model": platform.model, "max_tokens": 100, "messages": USER}
        check_message(await c.messages.create(**kw), 1)
        stream = await c.messages.create(**kw, stream=True)
        check_events([e async for e in stream], platform.name)
        async with c.messages.stream(**kw) as s:  # .stream() is not awaited
            assert "".join([t async for t in s.text_stream]) == REPLY
            assert (await s.get_final_message()).usage.output_tokens == words(REPLY)
        parsed = await c.messages.parse(**kw, output_format=Answer)
        assert parsed.parsed_output == Answer(answer=REPLY)
        check_message(await c.beta.messages.create(**kw, betas=["context-1m-2025-08-07"]), 5)


# -- what the platform clients send ----------------------------------------------------------------
def test_urls_bodies_and_auth() -> None:
    seen: list[Recorded] = []
    handler = recording(seen)
    kw: Any = {"max_tokens": 100, "messages": USER}
    arn = f"arn:aws:bedrock:us-east-1:123:inference-profile/{BEDROCK_MODEL}"
    with bedrock_client(handler) as b, bedrock_client(handler, signed=True) as signed:
        assert b.messages.create(model=arn, **kw).model == MODEL
        with b.messages.stream(model=BEDROCK_MODEL, **kw) as s:
            assert s.response.headers["content-type"] == "application/vnd.amazon.eventstream"
            s.until_done()
        raw = signed.messages.with_raw_response.create(model=BEDROCK_MODEL, **kw)
        assert raw.headers["x-amzn-bedrock-input-token-count"] == str(tokens(USER_TEXT))
        assert raw.headers["x-amzn-bedrock-output-token-count"] == str(words(REPLY))
        with pytest.raises(anthropic.AnthropicError, match="not supported in Bedrock"):
            b.messages.count_tokens(model=BEDROCK_MODEL, messages=USER)
    with vertex_client(handler) as v:
        v.messages.create(model=VERTEX_MODEL, **kw)
        v.messages.create(model=VERTEX_MODEL, **kw, stream=True).close()
        assert v.messages.count_tokens(model=VERTEX_MODEL, messages=USER).input_tokens == 7
    with sync_client(handler) as d:
        d.beta.messages.create(model=MODEL, **kw, betas=["context-1m-2025-08-07"])
    assert [r.url for r in seen] == [
        f"{BEDROCK_URL}/arn:aws:bedrock:us-east-1:123:inference-profile%2F{BEDROCK_MODEL}/invoke",
        f"{BEDROCK_URL}/{BEDROCK_MODEL}/invoke-with-response-stream",
        f"{BEDROCK_URL}/{BEDROCK_MODEL}/invoke",
        f"{VERTEX_URL}/{VERTEX_MODEL}:rawPredict",
        f"{VERTEX_URL}/{VERTEX_MODEL}:streamRawPredict",
        f"{VERTEX_URL}/count-tokens:rawPredict",
        "https://api.anthropic.com/v1/messages",  # beta: an anthropic-beta header, no ?beta=true
    ]
    bodies = [json.loads(r.body) for r in seen]
    assert all("model" not in b and "stream" not in b for b in bodies[:3])  # both in the URL
    assert "anthropic_version" in bodies[0]
    assert "stream" not in bodies[3]  # sent only when given; Vertex keeps it in the body
    assert (bodies[4]["stream"], bodies[5]["model"]) == (True, VERTEX_MODEL)
    auth = [r.headers["authorization"] for r in seen]
    assert auth[:2] == ["Bearer bedrock-api-key"] * 2
    assert auth[2].startswith("AWS4-HMAC-SHA256 Credential=AKIASTANDINFAKEKEY00/")
    assert auth[3:6] == ["Bearer ya29.test"] * 3
    assert auth[6] == "Bearer sk-ant-test"  # 2.14 sends api_key as a Bearer token
    assert seen[6].headers["anthropic-beta"] == "context-1m-2025-08-07"


@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        (BEDROCK_MODEL, MODEL),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku-20241022"),
        (f"arn:aws:bedrock:eu-west-1:1:inference-profile/eu.anthropic.{MODEL}-v1:0", MODEL),
        ("global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
        ("fail-429", "fail-429"),
    ],
)
def test_bedrock_model_name(model_id: str, name: str) -> None:
    assert bedrock_model_name(model_id) == name


async def test_count_tokens() -> None:
    system = "Be brief."
    with sync_client(make_handler()) as c:
        count = c.messages.count_tokens(model=MODEL, system=system, messages=USER)
        assert count.input_tokens == tokens(system + USER_TEXT)
        beta = c.beta.messages.count_tokens(model=MODEL, messages=USER)
        assert beta.input_tokens == tokens(USER_TEXT)
    async with async_client(make_handler()) as a:
        assert (await a.messages.count_tokens(model=MODEL, messages=USER)).input_tokens == 7


# -- features, each driven by the request ----------------------------------------------------------
PLAIN, CACHED_5M, CACHED_1H = "You answer briefly.", "A" * 4000, "B" * 8000
SYSTEM: Any = [
    {"type": "text", "text": PLAIN},
    {"type": "text", "text": CACHED_5M, "cache_control": {"type": "ephemeral"}},
    {"type": "text", "text": CACHED_1H, "cache_control": {"type": "ephemeral", "ttl": "1h"}},
]


def test_prompt_caching_writes_then_reads(platform: Platform) -> None:
    with platform.sync(make_handler()) as c:
        kw: Any = {"model": platform.model, "max_tokens": 100, "messages": USER, "system": SYSTEM}
        first = c.messages.create(**kw).usage
        assert first.input_tokens == tokens(PLAIN + USER_TEXT)  # cache traffic excluded
        created = tokens(CACHED_5M) + tokens(CACHED_1H)
        assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (created, 0)
        assert first.cache_creation
        assert first.cache_creation.ephemeral_5m_input_tokens == tokens(CACHED_5M)
        assert first.cache_creation.ephemeral_1h_input_tokens == tokens(CACHED_1H)
        with c.messages.stream(**kw) as s:  # the stream reports it in message_start
            second = s.get_final_message().usage
        assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, created)
        assert second.input_tokens == first.input_tokens
        assert second.output_tokens == words(REPLY)
        fresh: Any = [{**SYSTEM[1], "text": "C" * 400}, SYSTEM[2]]
        third = c.messages.create(**{**kw, "system": fresh}).usage
        assert (third.cache_creation_input_tokens, third.cache_read_input_tokens) == (
            100, tokens(CACHED_1H)
        )  # fmt: skip
        assert third.input_tokens == tokens(USER_TEXT)


def test_max_tokens_and_stop_sequences() -> None:
    with sync_client(make_handler()) as c:
        kw: Any = {"model": MODEL, "messages": USER}
        cut = c.messages.create(**kw, max_tokens=3)
        assert (cut.stop_reason, cut.usage.output_tokens) == ("max_tokens", 3)
        assert cut.content[0].type == "text"
        assert cut.content[0].text == " ".join(REPLY.split()[:3])
        stop = c.messages.create(**kw, max_tokens=100, stop_sequences=["today", "how"])
        assert (stop.stop_reason, stop.stop_sequence) == ("stop_sequence", "how")  # earliest
        kept = REPLY[: REPLY.index("how")]
        assert stop.content[0].type == "text"
        assert stop.content[0].text == kept
        assert stop.usage.output_tokens == words(kept)
        both = c.messages.create(**kw, max_tokens=2, stop_sequences=["today"])
        assert (both.stop_reason, both.stop_sequence, both.usage.output_tokens) == (
            "max_tokens", None, 2
        )  # fmt: skip
        with c.messages.stream(**kw, max_tokens=100, stop_sequences=["how"]) as s:
            assert "".join(s.text_stream) == kept
            final = s.get_final_message()
        assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "how")
        events = list(c.messages.create(**kw, max_tokens=2, stream=True))
        assert sum(e.type == "content_block_delta" for e in events) == 2
        assert events[-2].delta.stop_reason == "max_tokens"


def test_tool_use(platform: Platform) -> None:
    with platform.sync(make_handler()) as c:
        kw: Any = {"model": platform.model, "max_tokens": 100, "tools": TOOLS}
        m = c.messages.create(**kw, messages=WEATHER)
        assert m.stop_reason == "tool_use"
        block = m.content[0]
        assert block.type == "tool_use"
        assert (block.id, block.name, block.input) == ("toolu_standin_1", "get_weather", TOOL_INPUT)
        assert m.usage.output_tokens == words(json.dumps(TOOL_INPUT))
        events = list(c.messages.create(**kw, messages=WEATHER, stream=True))
        assert events[1].content_block.type == "tool_use"
        deltas = [e.delta for e in events if e.type == "content_block_delta"]
        assert {d.type for d in deltas} == {"input_json_delta"}
        assert json.loads("".join(d.partial_json for d in deltas)) == TOOL_INPUT
        with c.messages.stream(**kw, messages=WEATHER) as s:
            assert s.get_final_message().content[0].input == TOOL_INPUT
        result = {"type": "tool_result", "tool_use_id": block.id, "content": "18C, sunny"}
        turn: Any = [*WEATHER, {"role": "assistant", "content": [block.model_dump()]},
                     {"role": "user", "content": [result]}]  # fmt: skip
        answer = c.messages.create(**kw, messages=turn)  # a tool result ends the loop
        assert answer.stop_reason == "end_turn"
        assert answer.content[0].type == "text"
        assert answer.content[0].text == echo("18C, sunny")
        assert answer.usage.input_tokens == tokens(WEATHER[0]["content"] + "18C, sunny")
        no_tools = c.messages.create(model=platform.model, max_tokens=100, messages=WEATHER)
        assert no_tools.stop_reason == "end_turn"


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}]
)
def test_thinking(thinking: Any) -> None:
    with sync_client(make_handler()) as c:
        kw: Any = {"model": MODEL, "max_tokens": 2000, "messages": USER, "thinking": thinking}
        m = c.messages.create(**kw)
        assert [b.type for b in m.content] == ["thinking", "text"]
        assert m.content[0].type == "thinking"
        assert (m.content[0].thinking, m.content[0].signature) == (THINKING_TEXT, SIGNATURE)
        assert m.usage.output_tokens == words(REPLY) + THOUGHT
        assert m.usage.output_tokens_details
        assert m.usage.output_tokens_details.thinking_tokens == THOUGHT
        events = list(c.messages.create(**kw, stream=True))
        kinds = [e.delta.type for e in events if e.type == "content_block_delta"]
        assert kinds == ["thinking_delta"] * THOUGHT + ["signature_delta"] + ["text_delta"] * 7
        with c.messages.stream(**kw) as s:
            final = s.get_final_message()
        assert final.content[0].type == "thinking"
        assert (final.content[0].thinking, final.content[0].signature) == (THINKING_TEXT, SIGNATURE)
        assert final.usage.output_tokens_details
        assert final.usage.output_tokens_details.thinking_tokens == THOUGHT
        off = c.messages.create(**{**kw, "thinking": {"type": "disabled"}})
        assert [b.type for b in off.content] == ["text"]
        assert off.usage.output_tokens_details is None


def test_refusal_and_pause_turn() -> None:
    with sync_client(make_handler()) as c:
        refused = c.messages.create(model="refuse", max_tokens=100, messages=USER)
        assert refused.stop_reason == "refusal"
        assert refused.stop_details
        assert refused.stop_details.type == "refusal"
        with c.messages.stream(model="refuse", max_tokens=100, messages=USER) as s:
            assert s.get_final_message().stop_reason == "refusal"
        paused = c.messages.create(model="pause", max_tokens=100, messages=USER)
        assert paused.stop_reason == "pause_turn"


# -- failures --------------------------------------------------------------------------------------
FAILURES: list[tuple[str, type[anthropic.APIStatusError], str]] = [
    ("fail-400", anthropic.BadRequestError, "invalid_request_error"),
    ("fail-401", anthropic.AuthenticationError, "authentication_error"),
    ("fail-429", anthropic.RateLimitError, "rate_limit_error"),
    ("fail-500", anthropic.InternalServerError, "api_error"),
    ("fail-529", anthropic.OverloadedError, "overloaded_error"),
]


@pytest.mark.parametrize(("model", "error", "kind"), FAILURES)
def test_fail_models(
    platform: Platform, model: str, error: type[anthropic.APIStatusError], kind: str
) -> None:
    with platform.sync(make_handler()) as c:
        for stream in (False, True):  # a stream's request is sent, and fails, at call time
            with pytest.raises(error) as caught:
                c.messages.create(model=model, max_tokens=10, messages=USER, stream=stream)
            assert type(caught.value) is error
            assert (caught.value.type, caught.value.request_id) == (
                kind,
                f"req_standin_{stream + 1}",
            )
            assert caught.value.status_code == int(model.removeprefix("fail-"))
        if model == "fail-429":
            assert caught.value.response.headers["retry-after"] == "0"


async def test_fail_models_async(platform: Platform) -> None:
    async with platform.async_(make_handler()) as c:
        for model, error, _ in FAILURES:
            with pytest.raises(error):
                await c.messages.create(model=model, max_tokens=10, messages=USER)


def test_fail_midstream(platform: Platform) -> None:
    with platform.sync(make_handler()) as c:
        kw: Any = {"model": "fail-midstream", "max_tokens": 100, "messages": USER}
        seen: list[str] = []
        # A dropped stream surfaces as the raw httpx2 error: the SDK does not wrap it.
        with pytest.raises(httpx2.RemoteProtocolError):
            seen.extend(e.type for e in c.messages.create(**kw, stream=True))
        assert seen == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
        ]
        with pytest.raises(httpx2.RemoteProtocolError), c.messages.stream(**kw) as s:
            s.until_done()
        with pytest.raises(anthropic.APIConnectionError):  # not a stream: the body is cut short
            c.messages.create(**kw)


async def test_fail_midstream_async(platform: Platform) -> None:
    async with platform.async_(make_handler()) as c:
        stream = await c.messages.create(
            model="fail-midstream", max_tokens=100, messages=USER, stream=True
        )
        with pytest.raises(httpx2.RemoteProtocolError):
            [e async for e in stream]


def test_fail_error_event(platform: Platform) -> None:
    kind = (
        "modelStreamErrorException" if platform.name.startswith("bedrock") else "overloaded_error"
    )
    with platform.sync(make_handler()) as c:
        kw: Any = {"model": "fail-error-event", "max_tokens": 100, "messages": USER}
        seen: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as caught:
            seen.extend(e.type for e in c.messages.create(**kw, stream=True))
        # The HTTP status was 200, so the SDK raises the base class, not OverloadedError.
        assert (type(caught.value), caught.value.status_code) == (anthropic.APIStatusError, 200)
        assert caught.value.type == kind
        assert seen == ["message_start", "content_block_start", "content_block_delta"]
        with pytest.raises(anthropic.OverloadedError):  # a plain call is refused at once
            c.messages.create(**kw)


# -- the stand-in server over real sockets ---------------------------------------------------------
def test_standin_server_serves_openai_and_anthropic() -> None:
    kw: Any = {"max_tokens": 100, "messages": USER}
    with (
        StandInServer() as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as oai,
        anthropic.Anthropic(base_url=server.origin, api_key="sk-ant-test", max_retries=0) as c,
    ):
        chat = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert chat.choices[0].message.content == REPLY
        check_message(c.messages.create(model=MODEL, **kw), 1)
        check_events(list(c.messages.create(model=MODEL, stream=True, **kw)), "direct")
        with c.messages.stream(model=MODEL, **kw) as s:
            assert "".join(s.text_stream) == REPLY
            assert s.get_final_message().usage.output_tokens == words(REPLY)
        bedrock = anthropic.AnthropicBedrock(
            base_url=server.origin, api_key="k", aws_region="us-east-1", max_retries=0
        )
        with bedrock, bedrock.messages.stream(model=BEDROCK_MODEL, **kw) as s:
            assert "".join(s.text_stream) == REPLY
        vertex = anthropic.AnthropicVertex(
            base_url=f"{server.origin}/v1", region="us-east5", project_id="p", access_token="t"
        )
        with vertex:
            assert vertex.messages.create(model=VERTEX_MODEL, **kw).model == MODEL
        stream = c.messages.create(model="fail-midstream", stream=True, **kw)
        with pytest.raises(httpx2.RemoteProtocolError):
            list(stream)
        assert c.messages.create(model=MODEL, **kw).id == "msg_standin_7"  # the server lives on
    paths = [q["path"] for q in server.requests]
    assert paths[:4] == ["/v1/chat/completions"] + ["/v1/messages"] * 3
    assert paths[4] == f"/model/{BEDROCK_MODEL}/invoke-with-response-stream"
    assert paths[5].endswith(f"/publishers/anthropic/models/{VERTEX_MODEL}:rawPredict")


def test_socket_and_in_process_answers_are_identical() -> None:
    handler = make_handler()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("/v1/messages", {"model": MODEL, "max_tokens": 9, "messages": USER}),
        ("/v1/messages", {"model": MODEL, "max_tokens": 9, "messages": USER, "stream": True}),
        (
            f"/model/{BEDROCK_MODEL}/invoke-with-response-stream",
            {"max_tokens": 9, "messages": USER},
        ),
        ("/v1/messages/count_tokens", {"model": MODEL, "messages": USER}),
    ]
    with StandInServer() as server, httpx2.Client(trust_env=False) as http:
        for path, body in calls:
            over_socket = http.post(server.origin + path, json=body)
            in_process = handler(httpx2.Request("POST", server.origin + path, json=body))
            in_process.read()
            assert over_socket.status_code == in_process.status_code == 200
            assert over_socket.content == in_process.content
            assert over_socket.headers["request-id"] == in_process.headers["request-id"]
            assert over_socket.headers["content-type"] == in_process.headers["content-type"]
        missing = http.post(f"{server.origin}/v1/messages/nope", json={})
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found_error"
