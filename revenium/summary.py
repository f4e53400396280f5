"""The terminal summary: one line per metered call on stderr, and totals by model at shutdown.

``REVENIUM_PRINT_SUMMARY=human`` (or ``true``/``1``/``yes``/``on``) prints readable lines,
``json`` prints one JSON object per line (for ``jq`` or a log shipper), ``off`` (the default)
prints nothing. The seed SDK removed its version because it priced each call synchronously
and stalled the caller; here the runtime prints, off the caller's path, with local
estimates (:mod:`revenium.pricing`) that need no network.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

import attrs

from revenium.pricing import CostEstimate, estimate
from revenium.records import AudioRecord, CompletionRecord, ImageRecord, Record, VideoRecord

__all__ = ["SummaryPrinter", "format_usd"]

_Call = CompletionRecord | ImageRecord | AudioRecord | VideoRecord


def format_usd(amount: Decimal | None) -> str:
    """``$0.000123``: enough digits for a single call's fraction of a cent."""
    if amount is None:
        return "-"
    if 0 < amount < Decimal("0.000001"):
        return "<$0.000001"  # a handful of embedding tokens: not nothing
    if amount >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.6f}"


@attrs.define
class _Total:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: Decimal = Decimal(0)
    unpriced: int = 0


def _tokens(record: Record) -> tuple[int, int]:
    if isinstance(record, CompletionRecord):
        return record.input_token_count, record.output_token_count
    return 0, 0


class SummaryPrinter:
    """Prints each record as it is delivered, and the totals by model when closed."""

    def __init__(
        self,
        mode: str,
        stream: TextIO | None = None,
        price: Callable[[Record], CostEstimate] = estimate,
    ) -> None:
        self.mode = mode
        self._json = mode == "json"
        self._stream = stream
        self._price = price
        self._totals: dict[tuple[str, str], _Total] = {}
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr  # read late: tests and apps may swap stderr
        if stream is None:  # no stderr at all (pythonw, a service started with 2>&-)
            return
        try:
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - a broken stderr must never cost a record
            pass

    def add(self, record: Record) -> None:
        """One line for a metered AI call (tool events are not calls to a provider)."""
        if not isinstance(record, _Call):
            return
        cost = self._price(record)
        tokens_in, tokens_out = _tokens(record)
        with self._lock:
            total = self._totals.setdefault((record.model, record.provider), _Total())
            total.calls += 1
            total.input_tokens += tokens_in
            total.output_tokens += tokens_out
            if cost.usd is None:
                total.unpriced += 1
            else:
                total.usd += cost.usd
        self._write(self._json_line(record, cost) if self._json else self._human(record, cost))

    def _human(self, record: _Call, cost: CostEstimate) -> str:
        seconds = record.request_duration_ms / 1000
        parts = [f"revenium: {record.model} ({record.provider})"]
        if isinstance(record, CompletionRecord):
            parts.append(f"in={record.input_token_count} out={record.output_token_count}")
            if record.estimated:
                parts.append("(estimated)")
        else:
            parts.append(type(record).__name__.removesuffix("Record").lower())
        parts.append(f"{seconds:.2f}s")
        parts.append(format_usd(cost.usd) if cost.priced else "cost: -")
        trace = record.metadata.trace_id
        if trace:
            parts.append(f"trace={trace}")
        return " ".join(parts)

    def _json_line(self, record: _Call, cost: CostEstimate) -> str:
        tokens_in, tokens_out = _tokens(record)
        body: dict[str, Any] = {
            "model": record.model,
            "provider": record.provider,
            "kind": type(record).__name__.removesuffix("Record").lower(),
            "inputTokenCount": tokens_in,
            "outputTokenCount": tokens_out,
            "totalTokenCount": tokens_in + tokens_out,
            "durationSeconds": round(record.request_duration_ms / 1000, 3),
            "estimatedCostUsd": None if cost.usd is None else float(cost.usd),
            "costSource": cost.source,
            "costNote": cost.note,
            "traceId": record.metadata.trace_id,
            "transactionId": record.transaction_id,
        }
        return json.dumps(body, separators=(",", ":"))

    def close(self) -> None:
        """The totals by model (once; nothing when no call was metered)."""
        with self._lock:
            totals, self._totals = self._totals, {}
        if not totals:
            return
        rows = sorted(totals.items())
        if self._json:
            by_model = [
                {
                    "model": model,
                    "provider": provider,
                    "calls": t.calls,
                    "inputTokenCount": t.input_tokens,
                    "outputTokenCount": t.output_tokens,
                    "estimatedCostUsd": float(t.usd) if t.calls > t.unpriced else None,
                    "unpricedCalls": t.unpriced,
                }
                for (model, provider), t in rows
            ]
            self._write(json.dumps({"summary": by_model}, separators=(",", ":")))
            return
        width = max(len(model) for (model, _), _ in rows)
        lines = [f"revenium: totals by model ({sum(t.calls for _, t in rows)} calls)"]
        for (model, provider), t in rows:
            cost = format_usd(t.usd) if t.calls > t.unpriced else "-"
            if t.unpriced and t.calls > t.unpriced:
                cost += f" ({t.unpriced} unpriced)"
            lines.append(
                f"  {model:<{width}}  {provider:<10} calls={t.calls:<5} in={t.input_tokens:<8} "
                f"out={t.output_tokens:<8} {cost}"
            )
        grand = sum((t.usd for _, t in rows), Decimal(0))
        lines.append(
            f"  {'total':<{width}}  {'':<10} {'':<11} {'':<11} {'':<12} {format_usd(grand)}"
        )
        self._write("\n".join(lines))
