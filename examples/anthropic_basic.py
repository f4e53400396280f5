"""Meter Anthropic messages: plain, structured, tool use, prompt caching, sync and async.

The clients are real ``anthropic.Anthropic`` / ``anthropic.AsyncAnthropic`` objects pointed at
an offline stand-in server, so nothing leaves the machine and no API key is needed. What it
shows, and why it matters for billing:

- ``messages.create`` inside a ``revenium.session(...)``: each record says who the call was
  for (``wrap(metadata=...)`` gives the client's defaults, the session adds the customer).
- ``messages.parse`` with a pydantic ``output_format``: metered like ``create``, and you still
  get the parsed object back.
- Tool use: a response that calls a tool is recorded as ``TOOL_CALL``, the final answer as
  ``CHAT``. The request (tools, tool choice...) reaches Anthropic exactly as you wrote it.
- Prompt caching: a ``system`` block with ``cache_control`` is written to the cache on the
  first call and read from it on the next. Anthropic's ``input_tokens`` *excludes* cache
  traffic, and the record keeps it that way: cache writes and reads have fields of their own
  (``cacheCreationTokenCount``, with its 5-minute / 1-hour split, and
  ``cacheReadTokenCount``), so the server prices each at its own rate.

The stand-in runs on 127.0.0.1, and a direct ``Anthropic`` client is labelled by the host of its
``base_url`` (``provider`` is ``ANTHROPIC`` only for api.anthropic.com), so these records say
``provider=127.0.0.1``; ``modelSource`` is still ``ANTHROPIC``, read from the ``claude-`` model
name. Records are captured in memory with ``revenium.testing.capture()`` and printed at the end.

Run: python examples/anthropic_basic.py
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anthropic
import pydantic

import revenium
from revenium.providers._openai_standin import StandInServer

if TYPE_CHECKING:
    from anthropic.types import MessageParam, TextBlockParam, ToolParam

MODEL = "claude-sonnet-4-6"
QUESTION: list[MessageParam] = [
    {"role": "user", "content": "Why does my invoice show two charges for March?"}
]
WEATHER_TOOL: ToolParam = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
# A long, stable instruction block worth caching; the cache_control marker makes it cacheable.
POLICY: list[TextBlockParam] = [
    {
        "type": "text",
        "text": "You are the billing assistant of Acme Corp. Refund policy: " + "... " * 200,
        "cache_control": {"type": "ephemeral"},
    }
]


class Answer(pydantic.BaseModel):
    summary: str
    confidence: float


def sync_calls(origin: str) -> None:
    client = revenium.wrap(
        anthropic.Anthropic(base_url=origin, api_key="sk-ant-demo"),
        metadata={"product_name": "support-assistant"},  # a default for every call it makes
    )
    assert type(client) is anthropic.Anthropic  # the same class as the client you passed in
    with revenium.session(organization_name="Acme Corp", subscriber={"id": "u-17"}):
        # 1. A plain message.
        message = client.messages.create(model=MODEL, max_tokens=256, messages=QUESTION)
        print(f"1. create:        {message.content[0].type} {message.stop_reason}")

        # 2. Structured output: the SDK parses the reply into your pydantic model.
        parsed = client.messages.parse(
            model=MODEL, max_tokens=256, messages=QUESTION, output_format=Answer
        )
        print(f"2. parse:         {parsed.parsed_output!r}")

        # 3. Tool use: the first turn calls the tool (TOOL_CALL), the second answers (CHAT).
        ask: list[MessageParam] = [
            {"role": "user", "content": "What is the weather in Paris right now?"}
        ]
        turn = client.messages.create(
            model=MODEL, max_tokens=256, messages=ask, tools=[WEATHER_TOOL]
        )
        call = next(block for block in turn.content if block.type == "tool_use")
        print(f"3. tool use:      {call.name}({call.input}) stop={turn.stop_reason}")
        answered = client.messages.create(
            model=MODEL,
            max_tokens=256,
            tools=[WEATHER_TOOL],
            messages=[
                *ask,
                {"role": "assistant", "content": turn.content},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}
                    ],
                },
            ],
        )
        print(f"   tool result:   {answered.stop_reason}")

    # 4. Prompt caching, for another customer: the first call writes the policy block to the
    # cache, the second reads it back.
    with revenium.session(organization_name="Globex", trace_id="cache-demo"):
        for attempt in ("write", "read"):
            cached = client.messages.create(
                model=MODEL, max_tokens=256, system=POLICY, messages=QUESTION
            )
            usage = cached.usage
            print(
                f"{'4. cache ' + attempt + ':':<17} input={usage.input_tokens} "
                f"cache_write={usage.cache_creation_input_tokens} "
                f"cache_read={usage.cache_read_input_tokens}"
            )


async def async_calls(origin: str) -> None:
    client = revenium.wrap(
        anthropic.AsyncAnthropic(base_url=origin, api_key="sk-ant-demo"),
        metadata={"product_name": "support-assistant"},
    )
    async with revenium.session(organization_name="Initech", trace_id="batch-9"):
        replies = await asyncio.gather(
            *(
                client.messages.create(model="claude-haiku-4-5", max_tokens=256, messages=QUESTION)
                for _ in range(2)
            )
        )
    print(f"5. async:         {len(replies)} messages")
    await client.close()


def main() -> None:
    with revenium.testing.capture() as captured, StandInServer() as server:
        sync_calls(server.origin)  # Anthropic clients take the server root, not .../v1
        asyncio.run(async_calls(server.origin))

    print(f"\n{len(captured.completions)} records:")
    for n, record in enumerate(captured.completions, start=1):
        md = record.metadata
        who = md.organization_name or "-"
        if md.subscriber is not None and md.subscriber.id:
            who += f"/{md.subscriber.id}"
        kind = record.operation_type.value if record.operation_type else "-"
        print(
            f"  {n}. {kind:<9} provider={record.provider} modelSource={record.model_source} "
            f"model={record.model:<17} for={who:<14} stop={record.stop_reason.value:<12} "
            f"in={record.input_token_count} out={record.output_token_count} "
            f"cache_write={record.cache_creation_token_count} "
            f"(5m={record.cache_creation_5m_token_count}) "
            f"cache_read={record.cache_read_token_count} total={record.total_token_count}"
        )


if __name__ == "__main__":
    main()
