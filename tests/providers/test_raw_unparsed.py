"""A raw response the caller reads as bytes or lines, never parsing it, is still one record.

``with_streaming_response`` hands the caller the HTTP body; a caller who reads it with
``iter_lines()`` or ``read()`` paid for the call all the same. Over a real socket (the
stand-in server), the body is not read until the caller reads it, as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

import revenium
from revenium.providers._openai_standin import StandInServer
from revenium.records import StopReason
from revenium.testing import Capture

KW: Any = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hello there friend"}],  # 18 characters
}


@pytest.fixture(scope="module")
def server() -> Iterator[StandInServer]:
    with StandInServer() as running:
        yield running


def test_lines_read_without_parsing_are_one_estimated_record(
    server: StandInServer, captured: Capture
) -> None:
    with revenium.wrap(anthropic.Anthropic(base_url=server.origin, api_key="k")) as client:
        with client.messages.with_streaming_response.create(**KW) as response:
            assert list(response.iter_lines())
        with client.messages.with_streaming_response.create(**KW, stream=True) as response:
            assert list(response.iter_lines())
    records = captured.completions
    assert [(r.stop_reason, r.estimated, r.is_streamed) for r in records] == [
        (StopReason.END, True, False),
        (StopReason.END, True, True),
    ]
    assert {(r.input_token_count, r.output_token_count) for r in records} == {(5, 0)}  # 18/4


def test_a_parsed_streaming_response_stays_exact(server: StandInServer, captured: Capture) -> None:
    client = revenium.wrap(anthropic.Anthropic(base_url=server.origin, api_key="k"))
    with client, client.messages.with_streaming_response.create(**KW) as response:
        message = response.parse()
    (record,) = captured.completions
    assert (record.estimated, record.output_token_count) == (False, message.usage.output_tokens)


def test_a_body_read_whole_without_parsing_keeps_its_exact_usage(
    server: StandInServer, captured: Capture
) -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    chat = revenium.wrap(openai.OpenAI(base_url=server.base_url, api_key="k"))
    stream = chat.chat.completions.with_streaming_response.create
    with chat, stream(model="gpt-4o-mini", messages=messages) as response:
        assert response.read()  # the whole body, in memory: parsed at close
    claude = revenium.wrap(anthropic.Anthropic(base_url=server.origin, api_key="k"))
    with claude, claude.messages.with_streaming_response.create(**KW) as response:
        response.read()
        message = response.parse()  # read first, parsed after: still exact, once
    openai_record, anthropic_record = captured.completions
    assert (openai_record.model, openai_record.estimated) == ("gpt-4o-mini-2024-07-18", False)
    assert openai_record.output_token_count > 0
    assert (anthropic_record.estimated, anthropic_record.output_token_count) == (
        False, message.usage.output_tokens
    )  # fmt: skip


def test_async_lines_read_without_parsing_are_one_record(
    server: StandInServer, captured: Capture
) -> None:
    async def read() -> None:
        client = revenium.wrap(anthropic.AsyncAnthropic(base_url=server.origin, api_key="k"))
        async with client.messages.with_streaming_response.create(**KW) as response:
            async for _line in response.iter_lines():
                pass
        await client.close()

    asyncio.run(read())
    (record,) = captured.completions
    assert (record.estimated, record.input_token_count) == (True, 5)
