"""``revenium demo``: the main job, run offline in a few seconds.

It wraps real ``openai`` clients (sync and async), points them at a stand-in server it starts on
127.0.0.1, makes chat, streaming and embedding calls inside sessions that say who each call was
for, then does the same with a real ``anthropic`` client (a message and a
``messages.stream()``) and a real ``google-genai`` client (a call, a stream and a tool loop)
against the same server. It meters everything into a local ledger and prints what was recorded:
one line per call, then the totals. The Anthropic and Google parts are skipped, with a line
saying how to install them, when their SDK is not installed. With ``--live`` and ``OPENAI_API_KEY``
it calls the real APIs, Anthropic's only when ``ANTHROPIC_API_KEY`` is set too, and Gemini's
only with ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``).

The demo never sends anything to a Revenium account, even if a key is configured: its records
go to a ledger file of its own (``--ledger`` to choose it).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import attrs

import revenium
from revenium import sink
from revenium.records import CompletionRecord

if TYPE_CHECKING:
    from anthropic.types import MessageParam
    from openai.types.chat import ChatCompletionMessageParam

    from revenium.records import Record

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a concise support assistant."},
    {"role": "user", "content": "My invoice shows two charges for March. Why?"},
]
ANTHROPIC_MODEL = "claude-haiku-4-5"
ANTHROPIC_MESSAGES: list[MessageParam] = [
    {"role": "user", "content": "My invoice shows two charges for March. Why?"}
]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _line(record: Record) -> str:
    md = record.metadata
    who = md.organization_name or "-"
    if md.subscriber is not None and md.subscriber.id:
        who += f"/{md.subscriber.id}"
    if not isinstance(record, CompletionRecord):
        return f"  {type(record).__name__:<16} {who}"
    tokens = f"in={record.input_token_count} out={record.output_token_count}"
    tokens += " (stream)" if record.is_streamed else ""
    tokens += " estimated" if record.estimated else ""
    label = record.operation_type.value if record.operation_type else "-"
    return f"  {label:<9} {record.provider:<10} {record.model:<24} {who:<16} {tokens}"


def _calls(base_url: str | None, api_key: str, models: tuple[str, str], out: TextIO) -> None:
    import openai  # noqa: PLC0415 - each provider is loaded when its part runs

    chat_model, embedding_model = models
    client = revenium.wrap(
        openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0),
        metadata={"product_name": "support-assistant"},
    )
    with client, revenium.session(organization_name="Acme Corp", subscriber={"id": "u-17"}):
        client.chat.completions.create(model=chat_model, messages=MESSAGES)
        # A host revenium does not know is not asked for stream usage on the caller's behalf;
        # asking explicitly, as here, makes the record exact instead of estimated.
        stream = client.chat.completions.create(
            model=chat_model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        print(f"            streamed reply: {text!r}", file=out)
        client.embeddings.create(model=embedding_model, input=["refund policy", "invoices"])

    async def async_calls() -> None:
        aclient = revenium.wrap(openai.AsyncOpenAI(api_key=api_key, base_url=base_url))
        async with revenium.session(organization_name="Globex", trace_id="demo-trace-2"):
            await asyncio.gather(
                *(
                    aclient.chat.completions.create(model=chat_model, messages=MESSAGES)
                    for _ in range(2)
                )
            )
        await aclient.close()

    asyncio.run(async_calls())


def _anthropic_calls(base_url: str | None, api_key: str, out: TextIO) -> None:
    import anthropic  # noqa: PLC0415 - each provider is loaded when its part runs

    client = revenium.wrap(
        anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0),
        metadata={"product_name": "support-assistant"},
    )
    system = "You are a concise support assistant."
    with client, revenium.session(organization_name="Initech", subscriber={"id": "u-42"}):
        client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=200, system=system, messages=ANTHROPIC_MESSAGES
        )
        with client.messages.stream(
            model=ANTHROPIC_MODEL, max_tokens=200, system=system, messages=ANTHROPIC_MESSAGES
        ) as stream:
            text = "".join(stream.text_stream)
        print(f"            streamed reply: {text!r}", file=out)


GOOGLE_MODEL = "gemini-2.5-flash"
GOOGLE_QUESTION = "My invoice shows two charges for March. Why?"


def _weather(city: str) -> str:
    """The weather in a city (a Python function the Gemini SDK calls for the model)."""
    return f"18C and sunny in {city}"


def _google_calls(base_url: str | None, api_key: str, out: TextIO) -> None:
    from google import genai  # noqa: PLC0415 - each provider is loaded when its part runs
    from google.genai import types  # noqa: PLC0415

    options = types.HttpOptions(base_url=base_url) if base_url else None
    # Any: the SDK's own annotations name types of optional packages (PIL, mcp) that a
    # strict type checker without them reports as unknown.
    client: Any = revenium.wrap(
        genai.Client(api_key=api_key, http_options=options),
        metadata={"product_name": "support-assistant"},
    )
    with client, revenium.session(organization_name="Umbrella", subscriber={"id": "u-7"}):
        client.models.generate_content(model=GOOGLE_MODEL, contents=GOOGLE_QUESTION)
        chunks = client.models.generate_content_stream(model=GOOGLE_MODEL, contents=GOOGLE_QUESTION)
        text = "".join(chunk.text or "" for chunk in chunks)
        print(f"            streamed reply: {text!r}", file=out)
        # A chat with a Python function as a tool: the SDK sends two requests (the model asks
        # for the function, then answers with its result). Each is a record; the second names
        # the first as its parent.
        chat = client.chats.create(
            model=GOOGLE_MODEL, config=types.GenerateContentConfig(tools=[_weather])
        )
        chat.send_message("What is the weather in Paris?")


@attrs.frozen
class _Part:
    """One provider SDK's part of the demo."""

    sdk: str  # as pip names it
    module: str
    extra: str
    name: str  # the provider, for --live
    key: str  # the API key's variable, for --live
    calls: Callable[[str | None, str, TextIO], None]

    def run(self, base_url: str | None, api_key: str | None, out: TextIO) -> None:
        print(f"{self.sdk} SDK:", file=out)
        if not _installed(self.module):
            install = f"pip install 'revenium[{self.extra}]'"
            print(f"  skipped: the {self.sdk} SDK is not installed ({install})", file=out)
        elif api_key is None:
            print(f"  skipped: --live calls {self.name} only when {self.key} is set", file=out)
        else:
            self.calls(base_url, api_key, out)


_ANTHROPIC = _Part(
    "anthropic", "anthropic", "anthropic", "Anthropic", "ANTHROPIC_API_KEY", _anthropic_calls
)
_GOOGLE = _Part("google-genai", "google.genai", "google", "Gemini", "GEMINI_API_KEY", _google_calls)


def _totals(ledger: Path, out: TextIO) -> None:
    """The summary table of the demo's own ledger, costs included (``revenium summary``)."""
    from revenium._cli.summary import print_table  # noqa: PLC0415

    print(f"\nTotals by model, from the ledger (revenium summary --ledger {ledger}):", file=out)
    print_table(ledger, out, indent="  ")


def run(out: TextIO, *, live: bool = False, ledger: Path | None = None) -> int:
    """Run the demo; returns the process exit code."""
    if not _installed("openai"):
        print("revenium demo needs the openai SDK: pip install 'revenium[openai]'", file=out)
        return 1
    if live and not os.environ.get("OPENAI_API_KEY"):
        print("revenium demo --live needs OPENAI_API_KEY in the environment", file=out)
        return 2
    ledger = ledger or Path(tempfile.mkdtemp(prefix="revenium-demo-")) / "ledger.sqlite3"
    revenium.configure(api_key=None, ledger_path=ledger)
    produced: list[Record] = []

    def show(record: Record) -> None:
        produced.append(record)
        print(_line(record), file=out)

    sink.add_listener(show)
    try:
        print("Metered calls (kind, provider, model, for whom, tokens):", file=out)
        if not live:
            print("(offline: the stand-in server's host, 127.0.0.1, is the provider)", file=out)
        print("openai SDK:", file=out)
        models = ("gpt-4o-mini", "text-embedding-3-small")
        if live:
            _calls(None, os.environ["OPENAI_API_KEY"], models, out)
            _ANTHROPIC.run(None, os.environ.get("ANTHROPIC_API_KEY") or None, out)
            google_key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
            _GOOGLE.run(None, google_key or None, out)
        else:
            from revenium.providers._openai_standin import StandInServer  # noqa: PLC0415

            with StandInServer() as server:
                _calls(server.base_url, "sk-demo", models, out)
                # Anthropic clients take the server root (their paths start with /v1 already).
                _ANTHROPIC.run(server.origin, "sk-ant-demo", out)
                _GOOGLE.run(server.origin, "gemini-demo", out)
        report = revenium.shutdown_sync(timeout=10)
    finally:
        sink.remove_listener(show)
    print(
        f"\n{len(produced)} calls metered; {report.ledger_written} written to the ledger at "
        f"{ledger}; {report.dropped} dropped.",
        file=out,
    )
    _totals(ledger, out)
    return 0 if report.ledger_written == len(produced) and report.ok else 1
