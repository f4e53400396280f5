"""Attach business metadata to everything a request does: sessions, decorators, nesting.

Run: python examples/sessions_and_decorators.py   (offline; prints the records produced)
"""

from __future__ import annotations

import asyncio

import revenium


@revenium.meter_tool("crm", operation="lookup")
def lookup_customer(customer_id: str) -> dict[str, str]:
    return {"id": customer_id, "plan": "pro"}


@revenium.metadata(task_type="ticket-triage", agent="triage-bot")
async def triage(ticket_id: str) -> str:
    customer = lookup_customer("CUST-1")  # inherits the session and the decorator's metadata
    await asyncio.sleep(0)
    return f"{ticket_id} for {customer['id']}"


async def handle_request(org: str, user_id: str) -> str:
    # Everything inside this block is attributed to this organization and subscriber,
    # even when hundreds of such requests run concurrently.
    async with revenium.session(organization_name=org, subscriber={"id": user_id}):
        return await triage(f"T-{user_id}")


async def main() -> None:
    with revenium.testing.capture() as captured:
        await asyncio.gather(handle_request("Acme", "u1"), handle_request("Globex", "u2"))
    for event in captured.tool_events:
        md = event.metadata
        print(
            f"{event.tool_id}/{event.operation}: org={md.organization_name} "
            f"subscriber={md.subscriber.id if md.subscriber else None} task={md.task_type} "
            f"agent={md.agent}"
        )


if __name__ == "__main__":
    asyncio.run(main())
