"""Streamed Anthropic messages: one record per stream, whichever way the stream ends.

``messages.create(stream=True)`` returns the SDK's own ``anthropic.Stream``, and
``messages.stream()`` the SDK's own ``MessageStreamManager``: revenium meters them from the
inside, so ``text_stream``, ``get_final_message()`` and the other helpers keep working. Each
request yields exactly one record, whether the stream is read to its end, broken out of, left
by a ``with`` block, or never iterated at all (``get_final_message()`` reads it for you).

An Anthropic stream reports its usage twice: ``message_start`` (input and cache counts) and
``message_delta`` (the final output count), near the end. A stream read to its end is recorded
exactly. One that stops before ``message_delta`` is recorded with stop reason ``CANCELLED``,
its input count still exact (``message_start`` arrived) and its output *estimated* from the
text received (about four characters a token), marked ``estimated`` locally. Unlike OpenAI
streams, nothing has to be added to the request for the counts to arrive.

``messages.stream()`` sends nothing by itself: the request goes out when the ``with`` block is
entered, and is timed from there. Time to first token is measured to the first content delta.

The stand-in server runs on 127.0.0.1, and a direct ``Anthropic`` client is labelled by its
host, so the records say ``provider=127.0.0.1`` (``ANTHROPIC`` on api.anthropic.com).

Run: python examples/anthropic_streaming.py
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anthropic

import revenium
from revenium.providers._openai_standin import StandInServer

if TYPE_CHECKING:
    from anthropic.types import MessageParam

MODEL = "claude-sonnet-4-6"
MESSAGES: list[MessageParam] = [
    {"role": "user", "content": "Write nine short words about the sea for me, please"}
]


def sync_streams(client: anthropic.Anthropic) -> None:
    # 1. create(stream=True), read to the end: exact counts.
    stream = client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True)
    text = "".join(
        event.delta.text
        for event in stream
        if event.type == "content_block_delta" and event.delta.type == "text_delta"
    )
    print(f"1. create(stream=True), exhausted: {text!r}")

    # 2. create(stream=True), broken out of after a few events, then closed: CANCELLED,
    # input exact (message_start arrived), output estimated from the text read so far.
    stream = client.messages.create(model=MODEL, max_tokens=256, messages=MESSAGES, stream=True)
    for n, _event in enumerate(stream):
        if n == 5:
            break
    stream.close()
    print("2. create(stream=True), break + close()")

    # 3. messages.stream() with text_stream: the SDK helper, read to the end.
    with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as helper:
        pieces = list(helper.text_stream)
    print(f"3. messages.stream(), text_stream: {len(pieces)} pieces")

    # 4. get_final_message() without iterating: it reads the stream to its end itself.
    with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as helper:
        final = helper.get_final_message()
    print(f"4. get_final_message():            {final.usage.output_tokens} output tokens")

    # 5. A with block left early: CANCELLED, estimated, one record all the same.
    with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as helper:
        for _text in helper.text_stream:
            break
    print("5. messages.stream(), left early")


async def async_stream(origin: str) -> None:
    client = revenium.wrap(anthropic.AsyncAnthropic(base_url=origin, api_key="sk-ant-demo"))
    # messages.stream() is a plain method on the async client too; `async with` sends it.
    async with client.messages.stream(model=MODEL, max_tokens=256, messages=MESSAGES) as helper:
        async for _text in helper.text_stream:
            pass
        reply = await helper.get_final_text()
    print(f"6. async messages.stream():        {reply!r}")

    stream = await client.messages.create(
        model=MODEL, max_tokens=256, messages=MESSAGES, stream=True
    )
    async with stream:
        async for _event in stream:
            break  # leaving `async with` closes it: CANCELLED, estimated
    print("7. async create(stream=True), closed early")
    await client.close()


def main() -> None:
    with revenium.testing.capture() as captured, StandInServer() as server:
        client = revenium.wrap(anthropic.Anthropic(base_url=server.origin, api_key="sk-ant-demo"))
        sync_streams(client)
        asyncio.run(async_stream(server.origin))

    print(f"\n{len(captured.completions)} records:")
    for n, record in enumerate(captured.completions, start=1):
        print(
            f"  {n}. provider={record.provider} stop={record.stop_reason.value:<9} "
            f"streamed={record.is_streamed} estimated={record.estimated!s:<5} "
            f"in={record.input_token_count} out={record.output_token_count} "
            f"ttft={record.time_to_first_token_ms:.1f}ms "
            f"duration={record.request_duration_ms:.1f}ms"
        )


if __name__ == "__main__":
    main()
