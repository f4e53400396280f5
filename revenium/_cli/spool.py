"""``revenium spool status|replay|quarantine``: what waits in the durable spool, and acting on it.

``status`` and the quarantine list read the file read-only and never create it. ``replay``
starts the delivery runtime from the environment, flushes (which replays every pending row)
and shuts it down. ``quarantine --requeue`` and ``--purge`` go through
:class:`revenium.spool.Spool`, under its cross-process write lock, so they are safe while an
application is using the same file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from revenium._cli.common import (
    CliError,
    format_age,
    format_when,
    open_readonly,
    render_table,
    table_columns,
    write,
    write_json,
)

if TYPE_CHECKING:
    from revenium.spool import QuarantinedRow, Spool

__all__ = ["SpoolStatus", "configure_parser", "read_status", "run", "spool_path"]

_SCHEMA_VERSION = 1  # revenium.spool's; a newer file is not ours to read
_REASON_WIDTH = 72


@dataclasses.dataclass
class SpoolStatus:
    """The counts of a spool file; ``exists=False`` (all zero) when there is no file yet."""

    path: Path
    exists: bool
    pending: int = 0  # including the leased rows
    leased: int = 0
    quarantined: int = 0
    oldest_created_at: float | None = None  # of the pending rows (the record's own time)

    def to_json(self, now: float) -> dict[str, Any]:
        oldest = self.oldest_created_at
        return {
            "path": str(self.path),
            "exists": self.exists,
            "pending": self.pending,
            "leased": self.leased,
            "quarantined": self.quarantined,
            "oldestPendingAgeSeconds": None if oldest is None else round(now - oldest, 3),
        }


def spool_path() -> Path:
    """The spool file the SDK uses with the current environment."""
    from revenium.config import get_config  # noqa: PLC0415 - read the environment only now
    from revenium.spool import default_path  # noqa: PLC0415

    return default_path(get_config().spool_directory)


def _check_schema(db: sqlite3.Connection, path: Path) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > _SCHEMA_VERSION:
        raise CliError(f"the spool at {path} is from a newer revenium (schema {version})")
    if not {"key", "quarantined", "created_at", "claim_until"} <= table_columns(db, "records"):
        raise CliError(f"{path} is not a revenium spool")


def read_status(path: Path, now: float | None = None) -> SpoolStatus:
    """Count the rows of the spool at ``path`` without changing it (nor creating it)."""
    if not path.exists():
        return SpoolStatus(path, exists=False)
    at = time.time() if now is None else now
    db = open_readonly(path, "spool")
    try:
        _check_schema(db, path)
        pending, leased, quarantined, oldest = db.execute(
            "SELECT COALESCE(SUM(quarantined = 0), 0), "
            "COALESCE(SUM(quarantined = 0 AND claim_until >= ?), 0), "
            "COALESCE(SUM(quarantined = 1), 0), "
            "MIN(CASE WHEN quarantined = 0 THEN created_at END) FROM records",
            (at,),
        ).fetchone()
    except sqlite3.Error as exc:
        raise CliError(f"cannot read the spool at {path}: {exc}") from None
    finally:
        db.close()
    return SpoolStatus(
        path,
        exists=True,
        pending=pending,
        leased=leased,
        quarantined=quarantined,
        oldest_created_at=oldest,
    )


def _open(path: Path) -> Spool:
    """The spool for changes; a file it could not use is an error, never a silent switch."""
    from revenium.spool import Spool  # noqa: PLC0415 - loaded by the commands that change it

    read_status(path)  # a missing, corrupt or foreign file fails here, with its reason
    spool = Spool(path)
    if spool.in_memory:
        spool.close()
        raise CliError(f"cannot open the spool at {path} for writing")
    return spool


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """``revenium spool status|replay|quarantine``, each with ``--json``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="pending, leased and quarantined counts")
    status.add_argument("--json", action="store_true", help="one JSON object")
    replay = actions.add_parser(
        "replay", help="deliver the pending records now (needs REVENIUM_METERING_API_KEY)"
    )
    replay.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long delivery may take (default: 30); the rest stays in the spool",
    )
    replay.add_argument("--json", action="store_true", help="one JSON object")
    quarantine = actions.add_parser(
        "quarantine", help="list the records the API rejected; requeue or purge them"
    )
    change = quarantine.add_mutually_exclusive_group()
    change.add_argument(
        "--requeue",
        nargs="*",
        metavar="KEY",
        help="make these records (all, without a KEY) pending again",
    )
    change.add_argument(
        "--purge",
        nargs="*",
        metavar="KEY",
        help="delete these records (all, without a KEY, with --yes) for good",
    )
    quarantine.add_argument("--yes", action="store_true", help="confirm purging every record")
    quarantine.add_argument(
        "--limit",
        type=int,
        default=100,
        metavar="N",
        help="list at most N records, newest first (default: 100)",
    )
    quarantine.add_argument("--json", action="store_true", help="one JSON document")


def _status(out: TextIO, *, as_json: bool) -> int:
    now = time.time()
    status = read_status(spool_path(), now)
    if as_json:
        write_json(out, status.to_json(now))
        return 0
    if not status.exists:
        write(out, f"No spool file at {status.path}: nothing waits for delivery.")
        return 0
    oldest = status.oldest_created_at
    age = "-" if oldest is None else f"{format_age(now - oldest)} ({format_when(oldest)})"
    rows = [
        ("spool", str(status.path)),
        ("pending", f"{status.pending:,}"),
        (
            "leased",
            f"{status.leased:,}"
            + (" (a running process is delivering them)" if status.leased else ""),
        ),
        ("quarantined", f"{status.quarantined:,}"),
        ("oldest pending", age),
    ]
    for name, value in rows:
        write(out, f"{name:<16}{value}")
    return 0


def _replay(out: TextIO, *, timeout: float, as_json: bool) -> int:
    import revenium  # noqa: PLC0415 - the runtime loads only for this action
    from revenium.config import get_config  # noqa: PLC0415

    config = get_config()
    path = spool_path()
    if config.api_key is None:
        raise CliError(
            "no API key: set REVENIUM_METERING_API_KEY to deliver the spooled records"
            f" at {path} (nothing was sent)"
        )
    before = read_status(path)
    if before.pending == 0:
        result = {"path": str(path), "before": 0, "delivered": 0, "remaining": 0}
        if as_json:
            write_json(out, {**result, "quarantined": 0, "paused": None, "lastError": None})
        else:
            write(out, f"Nothing to replay: no pending records in {path}.")
        return 0
    if not as_json:
        write(out, f"Replaying {before.pending:,} records from {path} to {config.meter_url} ...")
        out.flush()
    revenium.flush_sync(timeout)
    stats = revenium.statistics()
    report = revenium.shutdown_sync(timeout=min(timeout, 5.0))
    remaining = read_status(path).pending
    document = {
        "path": str(path),
        "before": before.pending,
        "delivered": report.delivered,
        "quarantined": report.quarantined,
        "remaining": remaining,
        "paused": stats.paused,
        "lastError": stats.last_error,
    }
    if as_json:
        write_json(out, document)
    else:
        line = (
            f"Delivered {report.delivered:,}; {report.quarantined:,} rejected into the "
            f"quarantine; {remaining:,} remain in the spool."
        )
        if remaining and (stats.paused or stats.last_error):
            why = f"delivery paused ({stats.paused})" if stats.paused else "the last failure"
            line += f" {why[0].upper()}{why[1:]}: {stats.last_error or 'no details'}."
        write(out, line)
    return 1 if remaining and report.delivered == 0 else 0


def _reason(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _REASON_WIDTH else one_line[: _REASON_WIDTH - 1] + "…"


def _model(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    model = cast("dict[str, object]", value).get("model")
    return model if isinstance(model, str) else None


def _list(out: TextIO, *, limit: int, as_json: bool) -> int:
    path = spool_path()
    status = read_status(path)
    rows: list[QuarantinedRow] = []
    if status.quarantined:
        spool = _open(path)
        try:
            rows = spool.quarantined(limit)
        finally:
            spool.close()
    if as_json:
        write_json(
            out,
            {
                "path": str(path),
                "quarantined": status.quarantined,
                "records": [
                    {
                        "key": r.envelope.key,
                        "endpoint": r.envelope.path,
                        "model": _model(r.envelope.body),
                        "status": r.status,
                        "reason": r.reason,
                        "quarantinedAt": format_when(r.quarantined_at),
                        "body": r.envelope.body.decode("utf-8", "replace"),
                    }
                    for r in rows
                ],
            },
        )
        return 0
    if not rows:
        write(out, f"No quarantined records in {path}.")
        return 0
    shown = f", the newest {len(rows)} shown" if len(rows) < status.quarantined else ""
    write(out, f"{status.quarantined:,} quarantined records in {path}{shown}:")
    table = [
        [
            r.envelope.key,
            str(r.status),
            format_when(r.quarantined_at),
            r.envelope.path,
            _model(r.envelope.body) or "-",
            _reason(r.reason),
        ]
        for r in rows
    ]
    headers = ["key", "status", "quarantined at", "endpoint", "model", "reason"]
    for line in render_table(headers, table, left=6):
        write(out, line)
    write(out, "Requeue with `revenium spool quarantine --requeue [KEY ...]`, then replay.")
    return 0


def _change(out: TextIO, action: str, keys: list[str], *, purge_all: bool, as_json: bool) -> int:
    if action == "purge" and not keys and not purge_all:
        raise CliError(
            "purging every quarantined record needs --yes (or name the keys to purge)", code=2
        )
    path = spool_path()
    wanted = list(dict.fromkeys(keys))
    changed = 0
    if read_status(path).exists:
        spool = _open(path)
        try:
            method = spool.purge if action == "purge" else spool.requeue
            changed = method(wanted or None)
        finally:
            spool.close()
    missing = len(wanted) - changed if wanted else 0
    done = "purged" if action == "purge" else "requeued"
    if as_json:
        write_json(out, {"path": str(path), done: changed, "notFound": missing})
    else:
        line = f"{done.capitalize()} {changed:,} quarantined records in {path}."
        if missing:
            line += f" {missing:,} of the keys given are not in the quarantine."
        if action == "requeue" and changed:
            line += " `revenium spool replay` delivers them now."
        write(out, line)
    return 1 if missing else 0


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Dispatch ``status``, ``replay`` and ``quarantine``."""
    if args.action == "status":
        return _status(out, as_json=args.json)
    if args.action == "replay":
        if args.timeout <= 0:
            raise CliError("--timeout must be more than 0 seconds", code=2)
        return _replay(out, timeout=args.timeout, as_json=args.json)
    if args.limit < 1:
        raise CliError("--limit must be at least 1", code=2)
    if args.requeue is not None:
        return _change(out, "requeue", args.requeue, purge_all=False, as_json=args.json)
    if args.purge is not None:
        return _change(out, "purge", args.purge, purge_all=args.yes, as_json=args.json)
    if args.yes:
        raise CliError("--yes goes with --purge", code=2)
    return _list(out, limit=args.limit, as_json=args.json)
