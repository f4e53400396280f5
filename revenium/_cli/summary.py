"""``revenium summary``: calls, tokens and estimated cost from the local ledger, grouped.

Reads the ledger read-only (it never creates or changes the file) and aggregates in SQL, so a
ledger of millions of rows is summarised without loading it. Costs are the local estimates the
runtime stored with each record (``cost_usd``, :mod:`revenium.pricing`); a record without one
(no price known, the ``[prices]`` extra missing, or written before estimates existed) is
counted as *unpriced*, with the stored reason, and its tokens are counted all the same. Tool
events are not AI calls: they are left out of the table and counted below it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TextIO

from revenium._cli.common import (
    CliError,
    format_when,
    open_readonly,
    parse_since,
    render_table,
    table_columns,
    write,
    write_json,
)

__all__ = ["Group", "Report", "configure_parser", "load", "print_table", "run"]

# --by choice -> the SQL expression it groups by (never user input: a fixed table).
GROUPINGS: Final = {
    "model": "model",
    "provider": "provider",
    "organization": "organization_name",
    "product": "product_name",
    "subscriber": "subscriber",
    "trace": "trace_id",
    "day": "substr(recorded_at, 1, 10)",
}
# Columns added by later versions: an older ledger is read with NULL in their place.
_LATER_COLUMNS: Final = ("cache_creation_tokens", "cost_usd", "cost_note")
_NO_NOTE: Final = "recorded before local cost estimates existed"
_HUMAN_HEADERS: Final = ("calls", "input", "output", "cache read", "cache write", "est. cost")
_CSV_HEADERS: Final = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "estimated_cost_usd",
    "unpriced_calls",
)


@dataclasses.dataclass
class Group:
    """One row of the summary: the calls that share a key (``None``: the field was not set)."""

    key: str | None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0  # the sum over the priced calls
    unpriced: int = 0
    estimated: int = 0  # calls whose token counts are estimates (abandoned streams)

    @property
    def cost(self) -> Decimal | None:
        """The estimated cost, ``None`` when no call of the group is priced."""
        if self.unpriced == self.calls:
            return None
        return Decimal(repr(round(self.cost_usd, 12)))

    def add(self, other: Group) -> None:
        for field in dataclasses.fields(self)[1:]:
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


@dataclasses.dataclass
class Report:
    """The summary of one ledger: rows, their total, and why calls are unpriced."""

    ledger: Path
    by: str
    since: datetime | None
    groups: list[Group]
    total: Group
    unpriced_reasons: list[tuple[str, int]]
    tool_events: int


def format_timestamp(when: datetime) -> str:
    """``2026-11-27T09:30:00.000Z``, as the ledger writes ``recorded_at`` (text order is time)."""
    from revenium.wire import format_timestamp as wire_format  # noqa: PLC0415 - loaded when run

    return wire_format(when)


def _expression(name: str, present: set[str]) -> str:
    return name if name in present else "NULL"


def load(ledger: Path, by: str, since: datetime | None = None) -> Report:
    """Aggregate the ledger at ``ledger``; raises :class:`CliError` for a file it cannot read."""
    db = open_readonly(ledger, "ledger")
    try:
        return _load(db, ledger, by, since)
    except sqlite3.Error as exc:
        raise CliError(f"cannot read the ledger at {ledger}: {exc}") from None
    finally:
        db.close()


def _load(db: sqlite3.Connection, ledger: Path, by: str, since: datetime | None) -> Report:
    present = table_columns(db, "records")
    if not {"kind", "recorded_at", "model", "input_tokens"} <= present:
        raise CliError(f"{ledger} is not a revenium ledger")
    cache_write, cost, note = (_expression(c, present) for c in _LATER_COLUMNS)
    where = "kind != 'tool'"
    params: list[object] = []
    if since is not None:
        where += " AND recorded_at >= ?"
        params.append(format_timestamp(since))
    rows = db.execute(
        f"""SELECT {GROUPINGS[by]} AS k, COUNT(*), COALESCE(SUM(input_tokens), 0),
            COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cache_read_tokens), 0),
            COALESCE(SUM({cache_write}), 0), COALESCE(SUM(reasoning_tokens), 0),
            COALESCE(SUM({cost}), 0.0), COUNT(*) - COUNT({cost}), COALESCE(SUM(estimated), 0)
        FROM records WHERE {where} GROUP BY k ORDER BY k IS NULL, k""",  # noqa: S608 - fixed names
        params,
    ).fetchall()
    groups = [Group(None if r[0] is None else str(r[0]), *r[1:]) for r in rows]
    total = Group("total")
    for group in groups:
        total.add(group)
    reasons = db.execute(
        f"SELECT COALESCE({note}, ''), COUNT(*) FROM records WHERE {where} AND {cost} IS NULL "  # noqa: S608
        "GROUP BY 1 ORDER BY 2 DESC, 1",
        params,
    ).fetchall()
    tools_where = "kind = 'tool'" + (" AND recorded_at >= ?" if since is not None else "")
    (tools,) = db.execute(f"SELECT COUNT(*) FROM records WHERE {tools_where}", params).fetchone()  # noqa: S608
    return Report(
        ledger=ledger,
        by=by,
        since=since,
        groups=groups,
        total=total,
        unpriced_reasons=[(reason or _NO_NOTE, count) for reason, count in reasons],
        tool_events=tools,
    )


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def table_lines(report: Report, *, indent: str = "") -> list[str]:
    """The table, a total row, and a line per reason some calls are unpriced."""
    from revenium.summary import format_usd  # noqa: PLC0415 - loaded when run

    unpriced = report.total.unpriced > 0
    headers = [report.by, *_HUMAN_HEADERS, *(["unpriced"] if unpriced else [])]

    def cells(group: Group, label: str) -> list[str]:
        row = [
            label,
            f"{group.calls:,}",
            f"{group.input_tokens:,}",
            f"{group.output_tokens:,}",
            f"{group.cache_read_tokens:,}",
            f"{group.cache_creation_tokens:,}",
            format_usd(group.cost),
        ]
        return [*row, f"{group.unpriced:,}"] if unpriced else row

    rows = [cells(g, "(none)" if g.key is None else g.key) for g in report.groups]
    lines = render_table(headers, [*rows, cells(report.total, "total")], indent=indent)
    for reason, count in report.unpriced_reasons:
        lines.append(f"{indent}unpriced: {_plural(count, 'call')}: {reason}")
    if report.total.estimated:
        lines.append(
            f"{indent}estimated tokens: {_plural(report.total.estimated, 'call')} (streams "
            "closed before the provider reported usage)"
        )
    if report.tool_events:
        lines.append(f"{indent}not shown: {_plural(report.tool_events, 'tool event')}")
    return lines


def _counts(group: Group) -> dict[str, Any]:
    cost = group.cost
    return {
        "calls": group.calls,
        "inputTokenCount": group.input_tokens,
        "outputTokenCount": group.output_tokens,
        "cacheReadTokenCount": group.cache_read_tokens,
        "cacheCreationTokenCount": group.cache_creation_tokens,
        "reasoningTokenCount": group.reasoning_tokens,
        "estimatedCostUsd": None if cost is None else float(cost),
        "unpricedCalls": group.unpriced,
        "callsWithEstimatedTokens": group.estimated,
    }


def to_json(report: Report) -> dict[str, Any]:
    """One document: the grouping, the rows, the totals and the unpriced reasons."""
    return {
        "ledger": str(report.ledger),
        "by": report.by,
        "since": None if report.since is None else format_timestamp(report.since),
        "rows": [{report.by: g.key, **_counts(g)} for g in report.groups],
        "totals": {**_counts(report.total), "toolEvents": report.tool_events},
        "unpriced": [{"reason": r, "calls": n} for r, n in report.unpriced_reasons],
    }


def write_csv(report: Report, out: TextIO) -> None:
    """A header and one row per group (no total row: a spreadsheet adds its own)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([report.by, *_CSV_HEADERS])
    for g in report.groups:
        cost = g.cost
        writer.writerow(
            [
                g.key or "",
                g.calls,
                g.input_tokens,
                g.output_tokens,
                g.cache_read_tokens,
                g.cache_creation_tokens,
                g.reasoning_tokens,
                "" if cost is None else format(cost, "f"),
                g.unpriced,
            ]
        )


def print_table(ledger: Path, out: TextIO, *, by: str = "model", indent: str = "") -> None:
    """The human table for ``ledger`` (the demo ends with it)."""
    for line in table_lines(load(ledger, by), indent=indent):
        write(out, line)


def default_ledger() -> Path:
    """The ledger the SDK writes with the current environment, or a :class:`CliError`."""
    from revenium.config import get_config  # noqa: PLC0415 - read the environment only now

    path = get_config().ledger_file
    if path is None:
        raise CliError(
            "no local ledger: with REVENIUM_METERING_API_KEY set, records go to the Revenium "
            "API only (set REVENIUM_LEDGER_PATH to keep a local ledger too, or pass --ledger)"
        )
    return path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """``revenium summary [--ledger PATH] [--since DATE] [--by KEY] [--json|--csv]``."""
    parser.add_argument(
        "--ledger",
        type=Path,
        metavar="PATH",
        help="the ledger file (default: REVENIUM_LEDGER_PATH, else the user data directory)",
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="DATE",
        help="only records from then on: YYYY-MM-DD (UTC) or an ISO datetime",
    )
    parser.add_argument(
        "--by", choices=list(GROUPINGS), default="model", help="group by (default: model)"
    )
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="one JSON document")
    formats.add_argument("--csv", action="store_true", help="CSV: a header and one row per group")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Print the summary; 0, or a :class:`CliError` for a missing or unreadable ledger."""
    ledger: Path = args.ledger.expanduser() if args.ledger is not None else default_ledger()
    report = load(ledger, args.by, args.since)
    if args.json:
        write_json(out, to_json(report))
    elif args.csv:
        write_csv(report, out)
    else:
        since = "" if report.since is None else f" since {format_when(report.since)}"
        if not report.groups:
            write(out, f"No calls in the ledger at {ledger}{since}.")
            return 0
        calls = _plural(report.total.calls, "call")
        write(out, f"{calls} in the ledger at {ledger}{since}, by {report.by}:")
        for line in table_lines(report):
            write(out, line)
    return 0
