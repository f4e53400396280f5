"""The delivery runtime's life, offline: records go to the local SQLite ledger (no API key).

Shows that the runtime starts by itself on the first record, that ``await revenium.shutdown()``
delivers everything and returns a ``DeliveryReport`` without blocking the event loop, what
``revenium.statistics()`` counts, and what the ledger holds afterwards (read with ``sqlite3``).
No network is used: ``api_key=None`` keeps records out of the Revenium API even when
``REVENIUM_METERING_API_KEY`` is set, and the ledger lives in a temporary directory.

Run: python examples/delivery_lifecycle.py
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

import revenium


@revenium.meter_tool("customer-db", operation="lookup")
async def lookup(customer_id: str) -> dict[str, str]:
    await asyncio.sleep(0.001)  # stands in for a paid database or API call
    return {"id": customer_id, "plan": "pro"}


async def handle_ticket(ledger: Path) -> None:
    revenium.configure(api_key=None, ledger_path=ledger)  # no key: the ledger is the destination
    async with revenium.session(organization_name="Acme", trace_id="ticket-7"):
        await lookup("c-1")  # the first record starts the runtime (never at import)
        await lookup("c-2")
        revenium.report_tool_call("search-api", operation="query", duration_ms=12.5)

    report = await revenium.shutdown(timeout=5)  # flush, stop, report; the loop keeps running
    print(f"report: {report}")
    print(f"nothing lost: {report.ok}")
    print(f"statistics: {revenium.statistics()}")


def print_ledger(ledger: Path) -> None:
    db = sqlite3.connect(ledger)
    try:
        rows = db.execute(
            "SELECT kind, organization_name, model FROM records ORDER BY recorded_at"
        ).fetchall()
    finally:
        db.close()
    print(f"ledger rows ({len(rows)}):")
    for kind, organization, tool_id in rows:  # for tool events, `model` holds the tool id
        print(f"  kind={kind} organization_name={organization} tool={tool_id}")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        ledger = Path(directory) / "ledger.sqlite3"
        asyncio.run(handle_ticket(ledger))
        print_ledger(ledger)


if __name__ == "__main__":
    main()
