"""``revenium demo``: the main job, run offline in a few seconds.

Until provider adapters exist, the demo meters what the foundation can meter on its own: a
decorated tool call and a manually reported one, inside a session carrying business metadata,
and prints the exact wire body of each record produced.
"""

from __future__ import annotations

import json
import time
from typing import TextIO

import revenium
from revenium import sink
from revenium.records import Record


@revenium.meter_tool("customer-db", operation="lookup", agent="support-bot")
def lookup_customer(customer_id: str) -> dict[str, str]:
    """Stands in for a paid tool: a CRM lookup."""
    time.sleep(0.01)
    return {"id": customer_id, "plan": "enterprise"}


def run(out: TextIO) -> int:
    """Meter two tool calls in a session and print each record's wire body to ``out``."""
    from revenium.wire import endpoint_for, to_wire  # noqa: PLC0415 - keep CLI start-up light

    produced: list[Record] = []

    def show(record: Record) -> None:
        produced.append(record)
        print(f"POST {{meter}}{endpoint_for(record)}", file=out)
        print(f"Idempotency-Key: {record.idempotency_key}", file=out)
        print(json.dumps(to_wire(record), indent=2, sort_keys=True), file=out)
        print(file=out)

    sink.add_listener(show)
    try:
        with revenium.session(
            organization_name="Acme Corp",
            product_name="support-assistant",
            subscriber={"id": "user-42", "email": "jane@acme.example"},
            trace_id="demo-trace-1",
        ):
            lookup_customer("CUST-7")
            revenium.report_tool_call(
                "web-search",
                operation="query",
                duration_ms=412,
                usage_metadata={"results": 10},
            )
    finally:
        sink.remove_listener(show)
    print(f"{len(produced)} records metered.", file=out)
    return 0 if len(produced) == 2 else 1
