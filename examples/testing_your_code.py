"""How to assert, in your own tests, what your code meters (no network, no ledger).

Run: python examples/testing_your_code.py   (or copy the test into your pytest suite)
"""

from __future__ import annotations

import revenium


@revenium.meter_tool("refund-api", operation="refund")
def refund(order_id: str) -> bool:
    return order_id.startswith("ord-")


def answer_ticket(org: str, order_id: str) -> bool:
    with revenium.session(organization_name=org, product_name="support"):
        return refund(order_id)


def test_refunds_are_attributed_to_the_customer() -> None:
    with revenium.testing.capture() as captured:  # strict: metering bugs raise here
        assert answer_ticket("Acme", "ord-1")
    (event,) = captured.tool_events
    assert event.tool_id == "refund-api"
    assert event.metadata.organization_name == "Acme"
    assert event.metadata.product_name == "support"


if __name__ == "__main__":
    test_refunds_are_attributed_to_the_customer()
    print("ok: the refund was metered once, for Acme")
