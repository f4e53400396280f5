"""Meter Claude on AWS Bedrock: provider "AWS", Anthropic's model name, Bedrock's id kept.

``anthropic.AnthropicBedrock`` talks to Bedrock itself: the SDK moves the model into the URL
(``/model/{model id}/invoke``, ``/invoke-with-response-stream`` for a stream), authenticates
(AWS SigV4 through botocore, or ``api_key`` as a bearer token, as here, so no AWS credentials
are needed), and decodes Bedrock's *binary* AWS event stream into the same events as the direct
API. revenium wraps the client like any other Anthropic client; the call you make is the only
call (nothing is re-sent through boto3).

Each record is labelled by the client's class, whatever its ``base_url`` (a VPC endpoint, or
the stand-in here, is still AWS):

- ``provider`` is ``AWS``, the platform that bills the call; ``modelSource`` is ``ANTHROPIC``;
- ``model`` is Anthropic's name, ``claude-sonnet-4-6``, the name the Revenium server prices;
- ``provider_model_id`` keeps the id you passed, here the cross-region inference profile
  ``us.anthropic.claude-sonnet-4-6-v1:0``. It is local-only: you see it in
  ``revenium.testing`` captures and in the ledger, and it is never sent to the Revenium API.

Needs botocore, which decodes Bedrock's event streams: ``pip install 'revenium[bedrock]'``.
The client points at an offline stand-in server that speaks Bedrock's routes and frames.

Run: python examples/anthropic_bedrock.py
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anthropic

import revenium
from revenium.providers._openai_standin import StandInServer

if TYPE_CHECKING:
    from anthropic.types import MessageParam

MODEL_ID = "us.anthropic.claude-sonnet-4-6-v1:0"  # a Bedrock cross-region inference profile
MESSAGES: list[MessageParam] = [
    {"role": "user", "content": "Summarise our refund policy in one line"}
]


def sync_calls(origin: str) -> None:
    client = revenium.wrap(
        anthropic.AnthropicBedrock(base_url=origin, api_key="bedrock-demo", aws_region="us-east-1"),
        metadata={"product_name": "policy-bot"},
    )
    assert type(client) is anthropic.AnthropicBedrock  # still the SDK's own class
    with revenium.session(organization_name="Acme Corp", subscriber={"id": "u-17"}):
        message = client.messages.create(model=MODEL_ID, max_tokens=256, messages=MESSAGES)
        print(f"1. create:                {message.content[0].type} {message.stop_reason}")

        # A Bedrock stream is binary event-stream frames; the SDK decodes them into events.
        with client.messages.stream(model=MODEL_ID, max_tokens=256, messages=MESSAGES) as stream:
            text = stream.get_final_text()
        print(f"2. messages.stream():     {text!r}")

        raw = client.messages.create(model=MODEL_ID, max_tokens=256, messages=MESSAGES, stream=True)
        events = [event.type for event in raw]
        print(f"3. create(stream=True):   {len(events)} events, last {events[-1]}")


async def async_call(origin: str) -> None:
    client = revenium.wrap(
        anthropic.AsyncAnthropicBedrock(
            base_url=origin, api_key="bedrock-demo", aws_region="us-east-1"
        )
    )
    # A plain Bedrock model id (not an inference profile) is normalized the same way.
    message = await client.messages.create(
        model="anthropic.claude-3-5-haiku-20241022-v1:0", max_tokens=256, messages=MESSAGES
    )
    print(f"4. async create:          {message.model}")
    await client.close()


def main() -> None:
    with revenium.testing.capture() as captured, StandInServer() as server:
        sync_calls(server.origin)
        asyncio.run(async_call(server.origin))
        for request in server.requests:
            print(f"  sent POST {request['path']}")

    print(f"\n{len(captured.completions)} records:")
    for n, record in enumerate(captured.completions, start=1):
        print(
            f"  {n}. provider={record.provider} modelSource={record.model_source} "
            f"model={record.model:<25} provider_model_id={record.provider_model_id!s:<40} "
            f"streamed={record.is_streamed!s:<5} stop={record.stop_reason.value} "
            f"in={record.input_token_count} out={record.output_token_count}"
        )


if __name__ == "__main__":
    main()
