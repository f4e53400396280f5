"""Meter Claude on Google Vertex AI: provider "Google", the ``@`` version kept locally.

``anthropic.AnthropicVertex`` sends ``messages.create`` to Vertex's
``.../publishers/anthropic/models/{model}:rawPredict`` (``:streamRawPredict`` for a stream)
with a Google access token: from google-auth, or ``access_token=`` as here, so no Google
credentials are needed. revenium wraps it like any other Anthropic client.

Each record is labelled by the client's class, whatever its ``base_url``:

- ``provider`` is ``Google``, the platform that bills the call; ``modelSource`` is
  ``ANTHROPIC``;
- ``model`` is Anthropic's name without Vertex's version suffix: ``claude-sonnet-4-6@20260101``
  is recorded as ``claude-sonnet-4-6``, the name the Revenium server prices;
- ``provider_model_id`` keeps the id you passed, ``claude-sonnet-4-6@20260101``. It is
  local-only (captures and the ledger), never sent to the Revenium API.

The client points at an offline stand-in server that speaks Vertex's routes. With real
credentials, install ``revenium[vertex]`` (google-auth) and drop ``base_url``/``access_token``.

Run: python examples/anthropic_vertex.py
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import anthropic

import revenium
from revenium.providers._openai_standin import StandInServer

if TYPE_CHECKING:
    from anthropic.types import MessageParam

MODEL_ID = "claude-sonnet-4-6@20260101"  # Vertex names models with an @ version
MESSAGES: list[MessageParam] = [
    {"role": "user", "content": "Summarise our refund policy in one line"}
]


def sync_calls(origin: str) -> None:
    client = revenium.wrap(
        anthropic.AnthropicVertex(
            base_url=origin + "/v1",  # Vertex's base_url ends in /v1; omit it for the real one
            region="us-east5",
            project_id="my-proj",
            access_token="ya29.demo",  # omit it to get a token from google-auth
        ),
        metadata={"product_name": "policy-bot"},
    )
    assert type(client) is anthropic.AnthropicVertex  # still the SDK's own class
    with revenium.session(organization_name="Acme Corp", subscriber={"id": "u-17"}):
        message = client.messages.create(model=MODEL_ID, max_tokens=256, messages=MESSAGES)
        print(f"1. create:            {message.content[0].type} {message.stop_reason}")

        with client.messages.stream(model=MODEL_ID, max_tokens=256, messages=MESSAGES) as stream:
            text = "".join(stream.text_stream)
        print(f"2. messages.stream(): {text!r}")


async def async_call(origin: str) -> None:
    client = revenium.wrap(
        anthropic.AsyncAnthropicVertex(
            base_url=origin + "/v1",
            region="us-east5",
            project_id="my-proj",
            access_token="ya29.demo",
        )
    )
    message = await client.messages.create(model=MODEL_ID, max_tokens=256, messages=MESSAGES)
    print(f"3. async create:      {message.model}")
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
            f"model={record.model} provider_model_id={record.provider_model_id} "
            f"streamed={record.is_streamed!s:<5} stop={record.stop_reason.value} "
            f"in={record.input_token_count} out={record.output_token_count}"
        )


if __name__ == "__main__":
    main()
