"""Meter your own paid tools next to your model calls: a decorator, or a manual report.

Run: python examples/tool_metering.py   (offline; prints the wire body of each event)
"""

from __future__ import annotations

import json
import time

import revenium


@revenium.meter_tool("web-scraper", operation="scrape", agent="research-bot")
def scrape(url: str) -> str:
    time.sleep(0.005)
    return f"<html>{url}</html>"


@revenium.meter_tool("pdf-pages", operation="extract")
def pages(n: int):  # a generator tool is reported once, when it finishes
    yield from range(n)


def main() -> None:
    with revenium.testing.capture() as captured, revenium.session(trace_id="research-42"):
        scrape("https://example.com")
        for _ in pages(3):
            pass
        started = time.perf_counter()
        time.sleep(0.002)  # e.g. a call to a paid search API you time yourself
        revenium.report_tool_call(
            "search-api",
            operation="query",
            duration_ms=(time.perf_counter() - started) * 1000,
            usage_metadata={"results": 10, "cost_units": 1},
        )
    for body in captured.bodies():
        print(json.dumps(body, sort_keys=True))


if __name__ == "__main__":
    main()
