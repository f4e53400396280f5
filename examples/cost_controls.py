"""Cost controls, offline: a budget rule stops gpt-4o calls before OpenAI sees them.

With cost controls on, revenium fetches your team's enforcement rules from the Revenium API
in the background and checks every wrapped call against them *before* the provider is
contacted. A call that a BLOCK rule catches raises ``revenium.BudgetExceededError`` at the
call expression: the provider receives no request, and the call produces no usage record.

Nothing leaves the machine. Two servers run on 127.0.0.1:

- a tiny stand-in for the Revenium API (standard library only, below). It serves the rule
  feed at ``GET /v2/api/ai/enforcement-rules/team-42``: one BLOCK rule for ``gpt-4o`` and
  one WARN_ONLY rule for the organization Acme. It also accepts the usage records that
  revenium posts to ``/meter/v2/ai/completions``, because cost controls need an API key, and
  with a key records go to the API;
- the OpenAI stand-in server that revenium's own demo uses, as the provider.

The feed is fetched from the origin of ``base_url``, so one stand-in serves both. Set
``enforcement_base_url`` when the rules API lives somewhere else.

Run: python examples/cost_controls.py
"""

from __future__ import annotations

import json
import logging
import stat
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai

import revenium
from revenium.providers._openai_standin import StandInServer

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

TEAM = "team-42"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Summarize this quarter's support tickets."}
]


def rule_feed() -> dict[str, Any]:
    """What the Revenium API publishes for the team: the rules whose budgets are exhausted."""
    now = datetime.now(UTC).replace(microsecond=0)
    window_end = (now + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    return {
        "compiledAt": now.isoformat().replace("+00:00", "Z"),
        "rules": [
            {
                "ruleId": 7,
                "name": "Monthly GPT-4o cap",
                "action": "BLOCK",
                "breached": True,
                "currentValue": 512.3,
                "threshold": 500.0,
                "resetsAt": window_end,
                "windowEnd": window_end,
                "denyMessage": "Use gpt-4o-mini, or ask finance to raise the cap.",
                "filters": [{"dimension": "MODEL", "operator": "IS", "value": "gpt-4o"}],
            },
            {
                "ruleId": 8,
                "name": "Acme soft limit",
                "action": "WARN_ONLY",
                "breached": True,
                "currentValue": 91.5,
                "threshold": 90.0,
                "resetsAt": window_end,
                "windowEnd": window_end,
                "filters": [{"dimension": "ORGANIZATION", "operator": "IS", "value": "Acme"}],
            },
        ],
    }


class FakeRevenium:
    """The two Revenium API routes this example needs, on 127.0.0.1."""

    def __init__(self) -> None:
        self.feed_requests = 0
        self.records: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == f"/v2/api/ai/enforcement-rules/{TEAM}":
                    fake.feed_requests += 1
                    self._answer(200, rule_feed())
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if self.path.startswith("/meter/v2/"):
                    fake.records.append(body)
                    self._answer(201, {"id": self.headers.get("idempotency-key")})
                else:
                    self._answer(404, {"error": "not found"})

            def _answer(self, status: int, body: object) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass  # keep the example's output to what it does

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def ask(client: openai.OpenAI, model: str) -> str:
    completion = client.chat.completions.create(model=model, messages=MESSAGES)
    return completion.choices[0].message.content or ""


def calls(client: openai.OpenAI) -> None:
    with revenium.session(organization_name="Acme", subscriber={"email": "dana@acme.example"}):
        # The first checked call starts the poller. In closed fail mode it waits (up to
        # cb_startup_wait_seconds) for the first rules instead of going ahead unchecked. The
        # WARN_ONLY rule matches Acme: one warning on stderr, and the call goes ahead.
        print(f"1. gpt-4o-mini, allowed: {ask(client, 'gpt-4o-mini')!r}")

        try:
            ask(client, "gpt-4o")
        except revenium.BudgetExceededError as exc:
            print("2. gpt-4o, blocked before any request was sent:")
            print(f"   message       {exc.message}")
            print(f"   rule          {exc.rule_name!r} (id {exc.rule_id})")
            print(f"   spend         {exc.current_value} of {exc.threshold}")
            print(f"   resets at     {exc.resets_at}")
            print(f"   deny message  {exc.deny_message!r}")

        # A rule naming a model also catches its dated snapshots, never another model.
        try:
            ask(client, "gpt-4o-2024-08-06")
        except revenium.BudgetExceededError as exc:
            print(f"3. gpt-4o-2024-08-06, blocked by the same rule: {exc.rule_name!r}")

        print(f"4. gpt-4o-mini again, allowed, no second warning: {ask(client, 'gpt-4o-mini')!r}")

    print(f"blocked calls so far: {revenium.statistics().blocked}")

    # Incident response: turn every check into a no-op, from the next call on.
    revenium.configure(bypass=True)
    print(f"5. gpt-4o with bypass=True, allowed: {ask(client, 'gpt-4o')!r}")
    revenium.configure(bypass=False)  # the incident is over: checks resume with the next call


def show_mirror(cache: Path) -> None:
    for path in sorted(cache.glob("revenium_enforcement_rules.*.json")):
        mode = stat.S_IMODE(path.stat().st_mode)
        print(f"rules mirrored to disk: {path.name} (mode {mode:o})")


def main() -> None:
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(message)s")
    api = FakeRevenium()
    try:
        with tempfile.TemporaryDirectory() as directory, StandInServer() as provider:
            tmp = Path(directory)
            revenium.configure(
                api_key="hak_example_0123456789abcdef",
                base_url=f"{api.url}/meter",  # records, and (from its origin) the rule feed
                circuit_breaker_enabled=True,
                team_id=TEAM,
                cb_fail_mode="closed",  # refuse calls until the first rules are loaded
                cache_dir=tmp / "cache",  # a restarted process starts with the last rules
                spool_dir=tmp / "spool",
                ledger_path=tmp / "ledger.sqlite3",  # a local copy of every record, too
            )
            client = revenium.wrap(openai.OpenAI(base_url=provider.base_url, api_key="sk-demo"))
            calls(client)
            report = revenium.shutdown_sync(timeout=10)
            show_mirror(tmp / "cache")
            print(f"requests the provider received: {len(provider.requests)} (of 5 calls)")
            print(
                f"usage records the Revenium API received: {len(api.records)} "
                f"(delivered {report.delivered}; none for a blocked call)"
            )
            print(f"rule feed requests: {api.feed_requests}")
    finally:
        api.stop()


if __name__ == "__main__":
    main()
