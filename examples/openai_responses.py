"""Meter the OpenAI Responses API: create, stream, and a background response.

- ``responses.create`` is one record, with the usage the response reports.
- ``responses.stream`` (the SDK helper) is one record, read from the ``response.completed``
  event; leaving it early is one CANCELLED, estimated record. revenium never adds
  ``include_usage`` to a Responses request: the usage always arrives in the final event.
- ``responses.create(background=True)`` returns a queued response and makes no record yet.
  The response is metered when ``responses.retrieve`` on a wrapped client sees it finished.
  The record's idempotency key is derived from the response id, so a second retrieve (or
  another process polling the same id) makes a record with the same key, which the server
  and the ledger count once.

Run: python examples/openai_responses.py
"""

from __future__ import annotations

import time

import openai

import revenium
from revenium.providers._openai_standin import StandInServer


def calls(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o-mini",
        instructions="Answer in one short sentence.",
        input="What is a token?",
    )
    print(f"create:     {response.output_text!r}")

    with client.responses.stream(model="gpt-4o-mini", input="Name three rivers") as stream:
        final = stream.get_final_response()
    print(f"stream:     {final.output_text!r}")

    with client.responses.stream(model="gpt-4o-mini", input="Count to twenty slowly") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                break  # leaving the block early closes the stream
    print("stream:     left early")

    job = client.responses.create(model="gpt-4o-mini", input="Summarise a report", background=True)
    print(f"background: {job.id} is {job.status}")
    while job.status in {"queued", "in_progress"}:
        time.sleep(0.05)
        job = client.responses.retrieve(job.id)
    print(f"background: {job.id} is {job.status}: {job.output_text!r}")
    client.responses.retrieve(job.id)  # seen finished again: the same idempotency key


def main() -> None:
    with revenium.testing.capture() as captured, StandInServer() as server:
        client = revenium.wrap(openai.OpenAI(base_url=server.base_url, api_key="sk-demo"))
        calls(client)
    print(f"\n{len(captured.completions)} records:")
    for record in captured.completions:
        print(
            f"  {record.transaction_id or '-':<16} stop={record.stop_reason.value:<9} "
            f"streamed={record.is_streamed!s:<5} estimated={record.estimated!s:<5} "
            f"in={record.input_token_count} out={record.output_token_count} "
            f"key={record.idempotency_key[:8]}"
        )
    keys = {record.idempotency_key for record in captured.completions}
    print(f"distinct idempotency keys: {len(keys)} (the server and the ledger keep one per key)")


if __name__ == "__main__":
    main()
