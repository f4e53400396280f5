"""Streamed OpenAI chat: one record per stream, whichever way the stream ends.

A stream read to the end, a stream you ``break`` out of and close, a ``with`` block left early
and the ``chat.completions.stream()`` helper each yield exactly one record. A stream that ends
before the provider reported its usage is recorded with stop reason CANCELLED and token counts
*estimated* from the text (about four characters a token), marked ``estimated`` locally.

The stand-in server runs on 127.0.0.1, a host revenium does not know, so it does not ask the
stream for its usage on your behalf (it does for api.openai.com, Azure and the other known
hosts). Passing ``stream_options={"include_usage": True}`` yourself makes the record exact.

Run: python examples/openai_streaming.py
"""

from __future__ import annotations

import asyncio

import openai

import revenium
from revenium.providers._openai_standin import StandInServer

MESSAGES = [{"role": "user", "content": "Write five short words about the sea for me"}]
WITH_USAGE = {"include_usage": True}


def sync_streams(client: openai.OpenAI) -> None:
    # 1. Read to the end, with the usage chunk asked for: exact counts.
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=WITH_USAGE
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    print(f"1. exhausted:           {text!r}")

    # 2. Read to the end without usage: the stream finished, only the counts are estimated.
    for _chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ):
        pass
    print("2. exhausted, no usage")

    # 3. Break after a few chunks, then close: CANCELLED, output estimated from the text read.
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=WITH_USAGE
    )
    for n, _chunk in enumerate(stream):
        if n == 3:
            break
    stream.close()
    print("3. break + close()")

    # 4. Leave a `with` block early: the same.
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=WITH_USAGE
    ) as stream:
        next(iter(stream))
    print("4. with-block left early")

    # 5. The SDK's stream helper calls the metered create() underneath.
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, stream_options=WITH_USAGE
    ) as helper:
        final = helper.get_final_completion()
    print(f"5. stream() helper:     {final.choices[0].message.content!r}")


async def async_stream(base_url: str) -> None:
    client = revenium.wrap(openai.AsyncOpenAI(base_url=base_url, api_key="sk-demo"))
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=WITH_USAGE
    )
    async with stream:
        async for _chunk in stream:
            break  # leaving `async with` closes it: CANCELLED, estimated
    print("6. async, closed early")
    await client.close()


def main() -> None:
    with revenium.testing.capture() as captured, StandInServer() as server:
        client = revenium.wrap(openai.OpenAI(base_url=server.base_url, api_key="sk-demo"))
        sync_streams(client)
        asyncio.run(async_stream(server.base_url))
    print(f"\n{len(captured.completions)} records:")
    for n, record in enumerate(captured.completions, start=1):
        print(
            f"  {n}. stop={record.stop_reason.value:<9} estimated={record.estimated!s:<5} "
            f"in={record.input_token_count} out={record.output_token_count} "
            f"ttft={record.time_to_first_token_ms:.1f}ms "
            f"duration={record.request_duration_ms:.1f}ms"
        )


if __name__ == "__main__":
    main()
