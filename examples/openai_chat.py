"""Meter OpenAI chat completions, sync and async, and say who each call was for.

The clients are real ``openai.OpenAI`` / ``openai.AsyncOpenAI`` objects pointed at an offline
stand-in server, so nothing leaves the machine. Records go to a local ledger in a temporary
directory (``api_key=None`` keeps them away from the Revenium API even when
``REVENIUM_METERING_API_KEY`` is set); the script prints the ledger's rows at the end.

Metadata comes from three places, lowest first: ``wrap(metadata=...)`` (the client's
defaults), ``revenium.session(...)`` / ``@revenium.metadata`` (who this work is for), and the
seed SDK's per-call ``usage_metadata=`` keyword, which is removed before OpenAI sees it.

Run: python examples/openai_chat.py
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

import openai

import revenium
from revenium.providers._openai_standin import StandInServer

MESSAGES = [
    {"role": "system", "content": "You are a concise support assistant."},
    {"role": "user", "content": "Why does my invoice show two charges for March?"},
]


@revenium.metadata(task_type="billing-question", agent="support-bot")
def answer(client: openai.OpenAI) -> str:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    return completion.choices[0].message.content or ""


def sync_calls(base_url: str) -> None:
    client = revenium.wrap(
        openai.OpenAI(base_url=base_url, api_key="sk-demo"),
        metadata={"product_name": "support-assistant"},  # a default for every call it makes
    )
    assert type(client) is openai.OpenAI  # the same class as the client you passed in
    with revenium.session(organization_name="Acme Corp", subscriber={"id": "u-17"}):
        print(f"reply: {answer(client)!r}")
        # The seed SDK's per-call keyword still works at runtime (type checkers reject it;
        # sessions are the typed way). It wins over every other source, for this call only.
        client.chat.completions.create(  # type: ignore[call-overload]
            model="gpt-4o-mini",
            messages=MESSAGES,
            usage_metadata={"trace_id": "ticket-4711", "agent": "escalation-bot"},
        )


async def async_calls(base_url: str) -> None:
    client = revenium.wrap(
        openai.AsyncOpenAI(base_url=base_url, api_key="sk-demo"),
        metadata={"product_name": "support-assistant"},
    )
    async with revenium.session(organization_name="Globex", trace_id="batch-9"):
        await asyncio.gather(
            *(client.chat.completions.create(model="gpt-4o", messages=MESSAGES) for _ in range(2))
        )
    await client.close()


def print_ledger(ledger: Path) -> None:
    db = sqlite3.connect(ledger)
    try:
        rows = db.execute(
            "SELECT provider, model, organization_name, product_name, subscriber, trace_id, "
            "json_extract(body, '$.agent'), input_tokens, output_tokens "
            "FROM records ORDER BY recorded_at"
        ).fetchall()
    finally:
        db.close()
    # An OpenAI-compatible host revenium does not know is labelled with its host name.
    print(f"ledger rows ({len(rows)}):")
    for provider, model, org, product, subscriber, trace, agent, tokens_in, tokens_out in rows:
        print(
            f"  {provider} {model:<24} org={org} product={product} subscriber={subscriber} "
            f"trace={trace} agent={agent} in={tokens_in} out={tokens_out}"
        )


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        ledger = Path(directory) / "ledger.sqlite3"
        revenium.configure(api_key=None, ledger_path=ledger)
        with StandInServer() as server:
            sync_calls(server.base_url)
            asyncio.run(async_calls(server.base_url))
        report = revenium.shutdown_sync(timeout=10)  # deliver everything to the ledger
        print(f"written to the ledger: {report.ledger_written}; nothing lost: {report.ok}")
        print_ledger(ledger)


if __name__ == "__main__":
    main()
