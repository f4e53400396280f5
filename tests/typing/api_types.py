"""Checked by mypy and pyright (``nox -s typecheck``), never run: the public API's types."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import assert_type

import revenium
from revenium.testing import Capture


@revenium.metadata(task_type="support")
def handler(x: int) -> str:
    return str(x)


@revenium.meter()
async def async_handler(x: int) -> str:
    return str(x)


@revenium.meter_tool("db", operation="lookup")
def tool(customer: str) -> dict[str, str]:
    return {"id": customer}


@revenium.metadata(agent="gen")
def gen() -> Iterator[int]:
    yield 1


@revenium.meter_tool("feed")
async def agen() -> AsyncIterator[int]:
    yield 1


async def usage() -> None:
    # Decorators keep the decorated function's exact signature.
    assert_type(handler(1), str)
    assert_type(await async_handler(1), str)
    assert_type(tool("c"), dict[str, str])
    assert_type(gen(), Iterator[int])
    assert_type(agen(), AsyncIterator[int])

    with revenium.session(organization_name="Acme") as md:
        assert_type(md, revenium.Metadata)
    async with revenium.session({"organizationName": "Acme"}, trace_id="t") as amd:
        assert_type(amd, revenium.Metadata)

    config = revenium.configure(capture_prompts=True)
    assert_type(config, revenium.Config)
    assert_type(revenium.report_tool_call("t", duration_ms=1), revenium.ToolEventRecord)
    assert_type(revenium.carry_context(handler)(1), str)

    with revenium.testing.capture() as captured:
        assert_type(captured, Capture)
        assert_type(captured.completions, list[revenium.CompletionRecord])

    try:
        pass
    except revenium.BudgetExceededError as exc:
        assert_type(exc.threshold, float | None)


def wrapped_clients() -> None:
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    client = revenium.wrap(openai.OpenAI(api_key="k"), metadata={"organization_name": "Acme"})
    assert_type(client, openai.OpenAI)
    completion = client.chat.completions.create(model="m", messages=[])
    assert_type(completion, ChatCompletion)
    stream = client.chat.completions.create(model="m", messages=[], stream=True)
    assert_type(stream, openai.Stream[ChatCompletionChunk])
    assert_type(revenium.unwrap(client), openai.OpenAI)
    assert_type(revenium.wrap(openai.AzureOpenAI(api_key="k", api_version="v")), openai.AzureOpenAI)


async def wrapped_async_clients() -> None:
    import openai
    from openai.types.chat import ChatCompletionChunk

    client = revenium.wrap(openai.AsyncOpenAI(api_key="k"))
    assert_type(client, openai.AsyncOpenAI)
    stream = await client.chat.completions.create(model="m", messages=[], stream=True)
    assert_type(stream, openai.AsyncStream[ChatCompletionChunk])


def wrapped_anthropic_clients() -> None:
    import anthropic
    from anthropic.lib.bedrock import AnthropicBedrock
    from anthropic.lib.streaming import MessageStream, MessageStreamManager
    from anthropic.lib.vertex import AnthropicVertex
    from anthropic.types import Message, RawMessageStreamEvent

    client = revenium.wrap(anthropic.Anthropic(api_key="k"))
    assert_type(client, anthropic.Anthropic)
    message = client.messages.create(model="m", max_tokens=1, messages=[])
    assert_type(message, Message)
    events = client.messages.create(model="m", max_tokens=1, messages=[], stream=True)
    assert_type(events, anthropic.Stream[RawMessageStreamEvent])
    manager = client.messages.stream(model="m", max_tokens=1, messages=[])
    assert_type(manager, MessageStreamManager[None])
    with manager as stream:
        assert_type(stream, MessageStream[None])
    bedrock = revenium.wrap(AnthropicBedrock(aws_region="us-east-1"))
    assert_type(bedrock, AnthropicBedrock)
    assert_type(revenium.unwrap(bedrock), AnthropicBedrock)
    assert_type(revenium.wrap(AnthropicVertex(region="r", project_id="p")), AnthropicVertex)


async def wrapped_async_anthropic_clients() -> None:
    from anthropic.lib.bedrock import AsyncAnthropicBedrock
    from anthropic.lib.vertex import AsyncAnthropicVertex
    from anthropic.types import Message

    client = revenium.wrap(AsyncAnthropicBedrock(aws_region="us-east-1"))
    assert_type(client, AsyncAnthropicBedrock)
    message = await client.messages.create(model="m", max_tokens=1, messages=[])
    assert_type(message, Message)
    async with client.messages.stream(model="m", max_tokens=1, messages=[]) as stream:
        assert_type(await stream.get_final_text(), str)
    vertex = revenium.wrap(AsyncAnthropicVertex(region="r", project_id="p"))
    assert_type(vertex, AsyncAnthropicVertex)
