"""Meter Gemini calls made with ``google-genai``: one record per request, even in a tool loop.

``revenium.wrap(genai.Client())`` returns a ``genai.Client`` whose ``models``, ``chats`` and
``aio`` are metered. This example makes, through the wrapped client:

1. a ``generate_content`` call, inside a session naming the customer;
2. a ``generate_content_stream`` (a generator: nothing is sent before the first ``next()``);
3. a chat whose Python function tool makes the SDK send two requests (the model asks for the
   function, the SDK calls it and sends its result back): two records, the second naming the
   first as its ``parentTransactionId``, each with its own tokens;
4. an async call on ``client.aio``;
5. the same call on Vertex AI (express mode: ``vertexai=True`` with an API key).

Every record says ``provider: Google``, ``modelSource: GOOGLE``. Gemini counts thinking tokens
outside its candidates count; the record's output includes them (``reasoning`` shows them).

The clients point at an offline stand-in of Google's APIs on a loopback port; with a real key
drop ``http_options`` (and set ``GEMINI_API_KEY``).

Run: python examples/google_gemini.py
"""

from __future__ import annotations

import asyncio

from google import genai
from google.genai import types

import revenium
from revenium.providers._openai_standin import StandInServer

MODEL = "gemini-2.5-flash"


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"18C and sunny in {city}"


def gemini_calls(client: genai.Client) -> None:
    with revenium.session(organization_name="Acme Corp", subscriber={"id": "u-17"}):
        response = client.models.generate_content(
            model=MODEL,
            contents="Summarise our refund policy in one line",
            config=types.GenerateContentConfig(
                system_instruction="You are a concise support assistant.",
                thinking_config=types.ThinkingConfig(thinking_budget=512),
            ),
        )
        print(f"1. generate_content:  {response.text!r}")

        chunks = client.models.generate_content_stream(model=MODEL, contents="Say hello")
        print(f"2. stream:            {''.join(c.text or '' for c in chunks)!r}")

        chat = client.chats.create(
            model=MODEL, config=types.GenerateContentConfig(tools=[get_weather])
        )
        answer = chat.send_message("What is the weather in Paris?")
        print(f"3. chat with a tool:  {answer.text!r}")


async def async_call(client: genai.Client) -> None:
    response = await client.aio.models.generate_content(model=MODEL, contents="Hello from asyncio")
    print(f"4. client.aio:        {response.text!r}")


def main() -> None:
    with revenium.testing.capture() as captured, StandInServer() as server:
        options = types.HttpOptions(base_url=server.origin)
        client = revenium.wrap(
            genai.Client(api_key="gemini-demo-key", http_options=options),
            metadata={"product_name": "support-bot"},
        )
        assert type(client) is genai.Client  # still the SDK's own class
        gemini_calls(client)
        asyncio.run(async_call(client))

        vertex = revenium.wrap(
            genai.Client(vertexai=True, api_key="vertex-demo-key", http_options=options)
        )
        response = vertex.models.generate_content(model=MODEL, contents="Hello from Vertex")
        print(f"5. Vertex express:    {response.text!r}")
        for request in server.requests:
            print(f"  sent {request['method']} {request['path']}")

    print(f"\n{len(captured.completions)} records:")
    for n, record in enumerate(captured.completions, start=1):
        parent = record.metadata.parent_transaction_id
        print(
            f"  {n}. {record.operation_type.value if record.operation_type else '-':<9} "
            f"provider={record.provider} model={record.model} id={record.transaction_id} "
            f"streamed={record.is_streamed!s:<5} in={record.input_token_count} "
            f"out={record.output_token_count} reasoning={record.reasoning_token_count} "
            f"org={record.metadata.organization_name} parent={parent}"
        )


if __name__ == "__main__":
    main()
