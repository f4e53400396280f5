"""Property tests: whatever an OpenAI(-compatible) server answers, metering never changes it.

A provider, a proxy or a compatible host may send usage that is missing, ``null``, of the wrong
type, negative or absurdly large, and choices, finish reasons, models and ids the schema does
not allow. The ``openai`` SDK builds its objects without strict validation, so all of that
reaches the caller, and the wrapped client must hand over exactly what the unwrapped one does,
raise exactly what it raises, and still meter the call once.

Each example answers a wrapped and an unwrapped client with the same body. Inputs are drawn
in two families: *typed* (every field has the type the API documents, with odd values) and
*garbage* (arbitrary JSON where the SDK still parses). On typed inputs the record's numbers are
checked and no internal error may be counted; on garbage, only the contract with the caller.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import revenium
from revenium import _diagnostics
from revenium.records import CompletionRecord, OperationType, StopReason
from revenium.testing import Capture

sys.path.insert(0, str(Path(__file__).parent))
from openai_fixtures import async_client, sync_client

FUZZ = settings(
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MESSAGES: Any = [{"role": "user", "content": "Say something short"}]
REQUEST_MODEL = "m"
DONE = "[DONE]"
STOPS = {
    "stop": StopReason.END,
    "length": StopReason.TOKEN_LIMIT,
    "tool_calls": StopReason.END_SEQUENCE,
    "function_call": StopReason.END_SEQUENCE,
    "content_filter": StopReason.ERROR,
    "timeout": StopReason.TIMEOUT,
}

# ----------------------------------------------------------------------------- strategies

_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
garbage = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
# Token counts: plausible, negative, zero, beyond int64.
counts = st.integers(0, 5_000) | st.integers(-10, -1) | st.integers(2**62, 2**80)
maybe_text = st.none() | st.text(max_size=20)
finish_reasons = st.none() | st.sampled_from([*STOPS, "", "something_new"]) | st.text(max_size=10)


def _details(key: str) -> st.SearchStrategy[Any]:
    return st.none() | st.fixed_dictionaries({}, optional={key: st.none() | counts})


usage_dicts = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": counts,
        "completion_tokens": counts,
        "total_tokens": counts,
        "prompt_tokens_details": _details("cached_tokens"),
        "completion_tokens_details": _details("reasoning_tokens"),
    },
)
typed_usage = st.none() | usage_dicts
garbage_usage = garbage | st.dictionaries(
    st.sampled_from(
        ["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "x"]
    ),
    garbage,
)
tool_call = st.fixed_dictionaries(
    {
        "id": st.text(max_size=6),
        "type": st.just("function"),
        "function": st.fixed_dictionaries({"name": st.text(max_size=6), "arguments": st.text()}),
    }
)
typed_message = st.fixed_dictionaries(
    {"role": st.just("assistant")},
    optional={
        "content": maybe_text,
        "refusal": maybe_text,
        "tool_calls": st.lists(tool_call, max_size=2),
    },
)
typed_choice = st.fixed_dictionaries(
    {"index": st.integers(0, 3), "message": typed_message},
    optional={"finish_reason": finish_reasons, "logprobs": st.none()},
)
garbage_choice = garbage | st.dictionaries(
    st.sampled_from(["index", "message", "finish_reason", "delta", "text"]), garbage
)


def _completion(
    choices: Any, usage: Any, scalar: Any, *, typed: bool
) -> st.SearchStrategy[dict[str, Any]]:
    required: dict[str, Any] = {"object": st.just("chat.completion"), "created": st.just(1)}
    optional: dict[str, Any] = {"id": scalar, "model": scalar, "system_fingerprint": scalar}
    # A typed completion always has its choices list (``choices`` is required by the schema).
    (required if typed else optional)["choices"] = choices
    return st.fixed_dictionaries(required, optional={**optional, "usage": usage})


typed_completion = _completion(
    st.lists(typed_choice, max_size=3), typed_usage, maybe_text, typed=True
)
garbage_completion = _completion(
    garbage | st.lists(garbage_choice, max_size=3), garbage_usage, garbage, typed=False
)

typed_delta = st.fixed_dictionaries(
    {},
    optional={
        "role": st.just("assistant"),
        "content": maybe_text,
        "refusal": st.none(),
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {"index": st.just(0)},
                optional={"function": st.fixed_dictionaries({"arguments": st.text(max_size=6)})},
            ),
            max_size=1,
        ),
    },
)
typed_chunk_choice = st.fixed_dictionaries(
    {"index": st.integers(0, 3), "delta": typed_delta},
    optional={"finish_reason": finish_reasons, "logprobs": st.none()},
)
typed_chunk = st.fixed_dictionaries(
    {
        "object": st.just("chat.completion.chunk"),
        "created": st.just(1_700_000_000),
        "choices": st.lists(typed_chunk_choice, max_size=2),
    },
    optional={"id": maybe_text, "model": maybe_text, "usage": typed_usage},
)
garbage_chunk = st.fixed_dictionaries(
    {"object": st.just("chat.completion.chunk")},
    optional={
        "id": garbage,
        "model": garbage,
        "choices": garbage | st.lists(garbage_choice | typed_chunk_choice, max_size=2),
        "usage": garbage_usage,
    },
)


@st.composite
def sse_sequences(draw: st.DrawFn, chunk: st.SearchStrategy[Any]) -> list[Any]:
    """Chunks, maybe a ``[DONE]`` somewhere (at the end, early, or none), maybe an error event."""
    events: list[Any] = draw(st.lists(chunk, max_size=6))
    if draw(st.booleans()):  # the usual last chunk of a stream asked for usage
        last: dict[str, Any] = {**(events[-1] if events else {}), "choices": []}
        events.append({**last, "usage": draw(usage_dicts)})
    if draw(st.booleans()):
        events.insert(draw(st.integers(0, len(events))), {"error": {"message": "overloaded"}})
    done = draw(st.sampled_from(["end", "none", "anywhere"]))
    if done == "end":
        events.append(DONE)
    elif done == "anywhere":
        events.insert(draw(st.integers(0, len(events))), DONE)
    return events


# ----------------------------------------------------------------------------- the rig


class Rig:
    """A wrapped and an unwrapped client of one colour, both answered from ``self.body``."""

    def __init__(self, colour: str) -> None:
        self.colour = colour
        self.body: Any = None
        make = sync_client if colour == "sync" else async_client
        self.plain = make(self.handler)
        self.wrapped = revenium.wrap(make(self.handler))

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        if isinstance(self.body, list):
            frames = [
                f"data: {item if item == DONE else json.dumps(item)}\n\n".encode()
                for item in self.body
            ]
            headers = {"content-type": "text/event-stream"}
            return httpx2.Response(200, headers=headers, content=b"".join(frames))
        return httpx2.Response(200, json=self.body)


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest) -> Rig:
    return Rig(request.param)


def _dump(value: Any) -> Any:
    """A comparable form of what the SDK returned (its model dump, warnings off)."""
    if isinstance(value, openai.BaseModel):
        return value.model_dump(warnings=False)
    return value


_INT64_MAX = 2**63 - 1  # a count beyond what the server stores is clamped, not sent as is


def _non_negative(value: object) -> int | None:
    """A count as the record should carry it: whole numbers (``3.0`` too), clamped."""
    if type(value) is float and value.is_integer():
        value = int(value)
    return min(value, _INT64_MAX) if type(value) is int and value >= 0 else None


def _positive(value: object) -> int:
    return _non_negative(value) or 0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _outcome(call: Any) -> tuple[Any, type[BaseException] | None]:
    try:
        return call(), None
    except Exception as error:  # compared between the two clients
        return None, type(error)


def _assert_wire_safe(captured: Capture) -> None:
    for body in captured.bodies():
        json.dumps(body)  # what the runtime would send: always JSON


def _assert_usage(record: CompletionRecord, usage: dict[str, Any]) -> None:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    assert record.input_token_count == _positive(usage.get("prompt_tokens"))
    assert record.output_token_count == _positive(usage.get("completion_tokens"))
    assert record.total_token_count == _non_negative(usage.get("total_tokens"))
    assert record.cache_read_token_count == _non_negative(prompt_details.get("cached_tokens"))
    assert record.reasoning_token_count == _non_negative(completion_details.get("reasoning_tokens"))


# ----------------------------------------------------------------------------- non-streamed


def _create(rig: Rig, client: Any) -> Any:
    result = client.chat.completions.create(model=REQUEST_MODEL, messages=MESSAGES)
    return asyncio.run(result) if rig.colour == "async" else result


def _check_completion(rig: Rig, body: dict[str, Any], *, typed: bool) -> None:
    rig.body = body
    expected, expected_error = _outcome(lambda: _create(rig, rig.plain))
    before = _diagnostics.internal_error_count()
    with revenium.testing.capture(strict_mode=False) as captured:
        got, error = _outcome(lambda: _create(rig, rig.wrapped))
    assert error is expected_error
    assert type(got) is type(expected)
    assert _dump(got) == _dump(expected)
    assert len(captured.records) <= 1
    _assert_wire_safe(captured)
    event(f"records={len(captured.records)}, error={error is not None}")
    if error is not None:
        return
    assert len(captured.records) == 1  # the SDK returned normally: a paid call
    if not typed:
        return
    assert _diagnostics.internal_error_count() == before
    (record,) = captured.completions
    usage = body.get("usage") or {}
    _assert_usage(record, usage)
    assert record.estimated is False
    assert record.is_streamed is False
    assert record.transaction_id == _text(body.get("id"))
    assert record.model == (_text(body.get("model")) or REQUEST_MODEL)
    choices = body["choices"]
    finish = choices[0].get("finish_reason") if choices else None
    assert record.stop_reason is STOPS.get(finish, StopReason.END)  # type: ignore[arg-type]
    tools = any(c["message"].get("tool_calls") for c in choices)
    assert record.operation_type is (OperationType.TOOL_CALL if tools else OperationType.CHAT)
    assert record.system_fingerprint == _text(body.get("system_fingerprint"))


@FUZZ
@given(body=typed_completion)
def test_typed_but_odd_completions_are_passed_through_and_metered_exactly(
    rig: Rig, body: dict[str, Any]
) -> None:
    _check_completion(rig, body, typed=True)


@FUZZ
@given(body=garbage_completion)
def test_garbage_completions_are_passed_through_and_metered_once(
    rig: Rig, body: dict[str, Any]
) -> None:
    _check_completion(rig, body, typed=False)


@pytest.mark.parametrize("choices", ["missing", None, {"0": {}}], ids=["missing", "null", "dict"])
def test_a_completion_without_a_choices_list_is_still_metered(choices: object) -> None:
    rig = Rig("sync")
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    if choices != "missing":
        body["choices"] = choices
    rig.body = body
    with revenium.testing.capture() as captured:
        rig.wrapped.chat.completions.create(model=REQUEST_MODEL, messages=MESSAGES)
    (record,) = captured.completions
    assert (record.input_token_count, record.output_token_count) == (3, 2)


# ----------------------------------------------------------------------------- streamed

MODES = {
    # how the caller asks: the stream_options they pass (None: not passed, so injected)
    "injected": None,
    "asked": {"include_usage": True},
    "declined": {"include_usage": False},
}


def _is_usage_only(chunk: Any) -> bool:
    return getattr(chunk, "usage", None) is not None and not getattr(chunk, "choices", None)


def _stream_request(stream_options: dict[str, bool] | None) -> dict[str, Any]:
    request: dict[str, Any] = {"model": REQUEST_MODEL, "messages": MESSAGES, "stream": True}
    if stream_options is not None:
        request["stream_options"] = stream_options
    return request


def _consume_sync(stream: Any, limit: int | None) -> tuple[list[Any], type[BaseException] | None]:
    seen: list[Any] = []
    error: type[BaseException] | None = None
    iterator = iter(stream)
    try:
        while limit is None or len(seen) < limit:
            try:
                seen.append(next(iterator))
            except StopIteration:
                break
    except Exception as exc:  # compared between the two clients
        error = type(exc)
    stream.close()
    return seen, error


async def _consume_async(
    stream: Any, limit: int | None
) -> tuple[list[Any], type[BaseException] | None]:
    seen: list[Any] = []
    error: type[BaseException] | None = None
    iterator = stream.__aiter__()
    try:
        while limit is None or len(seen) < limit:
            try:
                seen.append(await iterator.__anext__())
            except StopAsyncIteration:
                break
    except Exception as exc:  # compared between the two clients
        error = type(exc)
    await stream.close()
    return seen, error


def _stream(
    rig: Rig, client: Any, request: dict[str, Any], limit: int | None
) -> tuple[list[Any], type[BaseException] | None]:
    if rig.colour == "sync":
        return _consume_sync(client.chat.completions.create(**request), limit)

    async def run() -> tuple[list[Any], type[BaseException] | None]:
        return await _consume_async(await client.chat.completions.create(**request), limit)

    return asyncio.run(run())


def _check_stream(
    rig: Rig, events: list[Any], mode: str, limit: int | None, *, typed: bool
) -> None:
    rig.body = events
    options = MODES[mode]
    # What the wrapper really sends, unwrapped: injected means include_usage True.
    plain_request = _stream_request(options if options is not None else {"include_usage": True})
    plain, plain_error = _stream(rig, rig.plain, plain_request, None)
    shown_at = [i for i, c in enumerate(plain) if not (mode == "injected" and _is_usage_only(c))]
    visible = [plain[i] for i in shown_at]
    before = _diagnostics.internal_error_count()
    with revenium.testing.capture(strict_mode=False) as captured:
        seen, error = _stream(rig, rig.wrapped, _stream_request(options), limit)
    assert [type(c) for c in seen] == [type(c) for c in visible[: len(seen)]]
    assert [_dump(c) for c in seen] == [_dump(c) for c in visible[: len(seen)]]
    if limit is None or limit > len(visible):
        assert len(seen) == len(visible)
        assert error is plain_error
    else:
        assert len(seen) == limit
        assert error is None
    assert len(captured.records) == 1  # whether exhausted, failed or closed early
    event(f"mode={mode}, closed early={limit is not None and limit <= len(visible)}")
    event(f"error={error is not None}, chunks hidden={len(plain) - len(visible)}")
    event(f"estimated={captured.completions[0].estimated}")
    _assert_wire_safe(captured)
    (record,) = captured.completions
    assert record.is_streamed is True
    assert record.time_to_first_token_ms is not None
    assert 0 < record.time_to_first_token_ms <= record.request_duration_ms
    if not typed:
        return
    assert _diagnostics.internal_error_count() == before
    # What the meter read: every chunk when the caller went on to the end (or the error), else
    # up to the last one the caller took (a hidden chunk after it was never read).
    if limit is None or limit > len(visible):
        read = plain
    else:
        read = plain[: shown_at[limit - 1] + 1] if limit else []
    usages = [c.usage for c in read if c.usage is not None]
    assert record.estimated is (not usages)
    if usages:
        raw = [e for e in events if isinstance(e, dict) and e.get("usage") is not None]
        _assert_usage(record, raw[len(usages) - 1]["usage"])
    ids = [c.id for c in read if isinstance(c.id, str) and c.id]
    assert record.transaction_id == (ids[0] if ids else None)
    models = [c.model for c in read if isinstance(c.model, str) and c.model]
    assert record.model == (models[0] if models else REQUEST_MODEL)
    finishes = [ch.finish_reason for c in read for ch in c.choices if ch.finish_reason]
    if error is not None:
        if not usages:  # (after a complete usage chunk, the record keeps the provider's word)
            assert record.stop_reason is StopReason.ERROR
            assert record.error_reason is not None
    elif finishes:
        assert record.stop_reason is STOPS.get(finishes[-1], StopReason.END)
    elif usages:
        assert record.stop_reason is StopReason.END  # complete usage and no finish_reason
    else:
        # No finish reason and no usage: read to its end is END, closed early CANCELLED.
        read_to_the_end = limit is None or limit > len(visible)
        expected = StopReason.END if read_to_the_end else StopReason.CANCELLED
        assert record.stop_reason is expected


limits = st.none() | st.integers(0, 3)


@FUZZ
@given(events=sse_sequences(typed_chunk), mode=st.sampled_from(list(MODES)), limit=limits)
def test_typed_but_odd_streams_are_passed_through_and_metered_once(
    rig: Rig, events: list[Any], mode: str, limit: int | None
) -> None:
    _check_stream(rig, events, mode, limit, typed=True)


@FUZZ
@given(events=sse_sequences(garbage_chunk), mode=st.sampled_from(list(MODES)), limit=limits)
def test_garbage_streams_are_passed_through_and_metered_once(
    rig: Rig, events: list[Any], mode: str, limit: int | None
) -> None:
    _check_stream(rig, events, mode, limit, typed=False)


# ----------------------------------------------------------------------------- pinned examples


@pytest.fixture
def sync_rig() -> Rig:
    return Rig("sync")


def _chunk(choices: list[Any], usage: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return body


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_a_malformed_choice_does_not_lose_the_usage_on_its_chunk(sync_rig: Rig) -> None:
    sync_rig.body = [
        _chunk([{"index": 0, "delta": {"content": "hi"}}]),
        _chunk([{"index": 0, "delta": None, "finish_reason": "stop"}], usage=USAGE),
        DONE,
    ]
    before = _diagnostics.internal_error_count()
    with revenium.testing.capture(strict_mode=False) as captured:
        list(sync_rig.wrapped.chat.completions.create(**_stream_request(None)))
    (record,) = captured.completions
    assert record.estimated is False
    assert (record.input_token_count, record.output_token_count) == (3, 2)
    assert record.stop_reason is StopReason.END  # the finish reason beside it is read too
    assert _diagnostics.internal_error_count() == before


def test_an_exhausted_stream_without_finish_reason_is_not_cancelled(sync_rig: Rig) -> None:
    sync_rig.body = [_chunk([{"index": 0, "delta": {"content": "hi there"}}]), DONE]
    with revenium.testing.capture() as captured:
        chunks = list(
            sync_rig.wrapped.chat.completions.create(**_stream_request({"include_usage": False}))
        )
    assert len(chunks) == 1
    (record,) = captured.completions
    assert record.estimated is True
    assert record.stop_reason is StopReason.END  # read to its end: not CANCELLED
