"""``revenium doctor``: the effective configuration, and whether it can work.

It shows every setting as the SDK resolves it from the environment (the API key masked), then
checks: the environment's values, the API key's shape, whether the metering and enforcement
hosts answer (a ``HEAD``, or the read-only rules feed: nothing is created), the spool and
ledger files, and the local price data. Any HTTP answer means the host is reachable; what the
answer says is a warning at most. Exit 1 when a check failed, else 0 (warnings included).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO, cast
from urllib.parse import quote

from revenium._cli.common import (
    KEY_PREFIXES,
    CliError,
    file_mode,
    format_when,
    mask_key,
    mode_problem,
    open_readonly,
    write,
    write_json,
)
from revenium._cli.spool import read_status
from revenium._version import __version__

if TYPE_CHECKING:
    import httpx

    from revenium.config import Config

__all__ = ["Check", "configure_parser", "run"]

Status = Literal["ok", "info", "warn", "fail"]
_PACKAGES: Final = ("openai", "anthropic", "google-genai", "genai-prices", "httpx")
_KEY_SHAPE_WARNING: Final = "does not look like a Revenium API key"


@dataclasses.dataclass
class Check:
    """One verdict: ``ok``, ``info`` (nothing to do), ``warn`` (exit 0) or ``fail`` (exit 1)."""

    name: str
    status: Status
    message: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict[str, Any])


class _Collect(logging.Handler):
    """Keeps the warnings the SDK logs while it reads the environment (shown as a check)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _load_config() -> tuple[Config, list[str]]:
    from revenium.config import get_config  # noqa: PLC0415 - read the environment only now

    logger = logging.getLogger("revenium")
    collect = _Collect()
    logger.addHandler(collect)
    try:
        config = get_config()
    finally:
        logger.removeHandler(collect)
    return config, collect.messages


def _shown(value: object) -> object:
    """A JSON-friendly form of a setting, secrets masked."""
    from revenium.attribution import Metadata  # noqa: PLC0415
    from revenium.config import Secret  # noqa: PLC0415

    if isinstance(value, Secret):
        return mask_key(value.reveal())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Metadata):
        return {name: _shown(item) for name, item in value.items().items()}
    if isinstance(value, Mapping):
        items = cast("Mapping[object, object]", value)
        return {str(k): _shown(v) for k, v in items.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)  # a subscriber or credential: their reprs hide the secret parts


def settings(config: Config) -> dict[str, object]:
    """Every setting (as ``configure()`` names it), then the values derived from them."""
    import attrs  # noqa: PLC0415

    shown = {
        field.name: _shown(getattr(config, field.name))
        for field in attrs.fields(type(config))
        if field.name != "on_error"  # code only: never set in a command-line process
    }
    from revenium.spool import default_path  # noqa: PLC0415

    ledger = config.ledger_file
    shown.update(
        meter_url=config.meter_url,
        enforcement_url=config.enforcement_url,
        spool_file=str(default_path(config.spool_directory)),
        ledger_file=None if ledger is None else str(ledger),
    )
    return shown


def _environment(warnings: list[str]) -> Check:
    problems = [m.removeprefix("revenium: ") for m in warnings if _KEY_SHAPE_WARNING not in m]
    names = sorted(n for n in os.environ if n.startswith("REVENIUM_"))
    if problems:
        return Check(
            "environment", "warn", "; ".join(problems), {"variables": names, "ignored": problems}
        )
    if not names:
        return Check("environment", "ok", "no REVENIUM_* variables set: every default applies")
    return Check(
        "environment",
        "ok",
        f"{len(names)} REVENIUM_* variables read, none ignored",
        {"variables": names},
    )


def _api_key(config: Config) -> Check:
    if config.api_key is None:
        where = config.ledger_file
        return Check(
            "api key",
            "info",
            f"not set: records go to the local ledger at {where}",
            {"set": False},
        )
    value = config.api_key.reveal()
    masked = mask_key(value)
    details = {"set": True, "masked": masked}
    if not value.startswith(KEY_PREFIXES):
        return Check(
            "api key",
            "warn",
            f"{masked} does not start with hak_ or rev_: an unusual shape for a Revenium key "
            "(it is sent anyway; the server judges it)",
            details,
        )
    if not all(33 <= ord(c) <= 126 for c in value) or len(value) < 12:
        return Check(
            "api key",
            "warn",
            f"{masked}: too short or contains spaces or non-ASCII characters",
            details,
        )
    return Check("api key", "ok", f"{masked} has the shape of a Revenium key", details)


def _request(
    client: httpx.Client, method: str, url: str, config: Config
) -> tuple[int | None, float, str]:
    """``(status, milliseconds, detail)``: status ``None`` when the host did not answer."""
    import httpx  # noqa: PLC0415

    from revenium.delivery import USER_AGENT  # noqa: PLC0415

    assert config.api_key is not None
    headers = {
        "user-agent": USER_AGENT,
        "accept": "application/json",
        "x-api-key": config.api_key.reveal(),
    }
    started = time.perf_counter()
    try:
        response = client.request(method, url, headers=headers)
    except (httpx.HTTPError, ValueError) as exc:  # ValueError: a key no header can carry
        elapsed = (time.perf_counter() - started) * 1000
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None, elapsed, config.api_key.redact(text)
    elapsed = (time.perf_counter() - started) * 1000
    return response.status_code, elapsed, response.headers.get("location", "")


def _reached(name: str, method: str, url: str, answer: tuple[int | None, float, str]) -> Check:
    status, ms, detail = answer
    details: dict[str, Any] = {"url": url, "method": method, "latencyMs": round(ms, 1)}
    if status is None:
        return Check(name, "fail", f"{url} did not answer ({detail})", {**details, "error": detail})
    details["httpStatus"] = status
    message = f"{method} {url} answered HTTP {status} in {ms:.0f} ms"
    if 300 <= status < 400:
        target = f" to {detail}" if detail else ""
        return Check(
            name,
            "warn",
            f"{message}: a redirect{target}, which the SDK does not follow; "
            "set the base URL to where it leads",
            details,
        )
    return Check(name, "ok", message, details)


def _hosts(config: Config) -> list[Check]:
    if config.api_key is None:
        skipped = "no API key: delivery goes to the local ledger; host not checked"
        return [Check("metering host", "info", skipped), Check("enforcement host", "info", skipped)]
    import httpx  # noqa: PLC0415

    timeout = httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        meter = _reached(
            "metering host",
            "HEAD",
            config.meter_url,
            _request(client, "HEAD", config.meter_url, config),
        )
        if config.team_id is None:
            url = config.enforcement_url
            enforcement = _reached(
                "enforcement host", "HEAD", url, _request(client, "HEAD", url, config)
            )
        else:
            team = quote(config.team_id, safe="")
            url = f"{config.enforcement_url}/v2/api/ai/enforcement-rules/{team}"
            enforcement = _reached(
                "enforcement host", "GET", url, _request(client, "GET", url, config)
            )
            status = enforcement.details.get("httpStatus")
            if status in {401, 403, 404}:
                enforcement.status = "warn"
                enforcement.message += (
                    f": the rules feed of team {config.team_id} refused the key or does not know "
                    "the team (cost controls cannot load their rules)"
                )
    return [meter, enforcement]


def _cost_controls(config: Config) -> Check | None:
    if not config.circuit_breaker_enabled:
        return None
    missing = [
        name
        for name, value in (
            ("REVENIUM_TEAM_ID", config.team_id),
            ("REVENIUM_METERING_API_KEY", config.api_key),
        )
        if value is None
    ]
    if missing:
        return Check(
            "cost controls",
            "fail",
            f"enabled, but {' and '.join(missing)} not set: no rules can be fetched "
            f"(fail mode {config.cb_fail_mode})",
        )
    bypass = "; REVENIUM_BYPASS is on: no call is checked" if config.bypass else ""
    return Check(
        "cost controls",
        "warn" if config.bypass else "ok",
        f"enabled for team {config.team_id}, fail mode {config.cb_fail_mode}{bypass}",
    )


def _creatable(path: Path) -> bool:
    """Whether the SDK could create ``path`` (its nearest existing directory is writable)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)


def _file_checks(path: Path) -> tuple[Status, list[str], dict[str, Any]]:
    problem = mode_problem(path)
    details: dict[str, Any] = {"path": str(path), "exists": True, "mode": file_mode(path)}
    return ("warn", [problem], details) if problem else ("ok", [], details)


def _spool(config: Config) -> Check:
    from revenium.spool import default_path  # noqa: PLC0415

    path = default_path(config.spool_directory)
    if not path.exists():
        return _not_yet("spool", path, "created when a record must wait")
    status, notes, details = _file_checks(path)
    try:
        counts = read_status(path)
    except CliError as exc:
        return Check("spool", "fail", exc.message, details)
    details.update(pending=counts.pending, leased=counts.leased, quarantined=counts.quarantined)
    message = (
        f"{path}: {counts.pending:,} pending, {counts.quarantined:,} quarantined, "
        f"mode {details['mode']}"
    )
    if counts.quarantined:
        notes.append("see `revenium spool quarantine`")
    if counts.pending and config.api_key is None:
        status = "warn"
        notes.append("records wait but no API key is set to deliver them")
    return Check("spool", status, "; ".join([message, *notes]), details)


def _not_yet(name: str, path: Path, when: str) -> Check:
    """A store that does not exist yet: fine, if it can be created when it is needed."""
    if not _creatable(path):
        return Check(name, "fail", f"{path} cannot be created (directory not writable)")
    return Check(
        name, "ok", f"no file yet at {path} ({when})", {"path": str(path), "exists": False}
    )


def _ledger(config: Config) -> Check:
    path = config.ledger_file
    if path is None:
        return Check(
            "ledger",
            "info",
            "none: records go to the Revenium API only (REVENIUM_LEDGER_PATH keeps a copy)",
        )
    if not path.exists():
        return _not_yet("ledger", path, "created by the first record")
    status, notes, details = _file_checks(path)
    try:
        db = open_readonly(path, "ledger")
    except CliError as exc:
        return Check("ledger", "fail", exc.message, details)
    try:
        rows, last = db.execute("SELECT COUNT(*), MAX(recorded_at) FROM records").fetchone()
    except sqlite3.Error as exc:
        return Check("ledger", "fail", f"cannot read the ledger at {path}: {exc}", details)
    finally:
        db.close()
    details.update(records=rows, lastRecordedAt=last)
    latest = f", the latest from {last}" if last else ""
    message = f"{path}: {rows:,} records{latest}, mode {details['mode']}"
    return Check("ledger", status, "; ".join([message, *notes]), details)


def _prices() -> Check:
    from revenium.pricing import price_source  # noqa: PLC0415

    source = price_source()
    if source is None:
        return Check(
            "cost estimates",
            "info",
            "off: pip install 'revenium[prices]' for local cost estimates",
        )
    return Check("cost estimates", "ok", f"local estimates from {source}", {"source": source})


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"revenium": __version__, "python": sys.version.split()[0]}
    for package in _PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def checks(config: Config, warnings: list[str]) -> list[Check]:
    """Every check, in the order they are printed."""
    found = [_environment(warnings), _api_key(config), *_hosts(config)]
    controls = _cost_controls(config)
    if controls is not None:
        found.append(controls)
    found += [_spool(config), _ledger(config), _prices()]
    return found


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """``revenium doctor [--json]``."""
    parser.add_argument("--json", action="store_true", help="one JSON document")


def _text(value: object) -> str:
    if value is None or value == {}:
        return "-"
    if isinstance(value, dict):
        items = cast("dict[str, object]", value)
        return ", ".join(f"{k}={v}" for k, v in items.items())
    return str(value)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Print the configuration and the checks; 1 when a check failed."""
    config, warnings = _load_config()
    found = checks(config, warnings)
    failed = sum(c.status == "fail" for c in found)
    warned = sum(c.status == "warn" for c in found)
    if args.json:
        write_json(
            out,
            {
                "versions": _versions(),
                "settings": settings(config),
                "checks": [dataclasses.asdict(c) for c in found],
                "ok": failed == 0,
            },
        )
        return 1 if failed else 0
    versions = ", ".join(f"{k} {v}" for k, v in _versions().items() if v and k != "revenium")
    write(out, f"revenium {__version__} doctor, {format_when(time.time())} ({versions})")
    write(out)
    write(out, "Settings (secrets masked; docs/configuration.md explains each one):")
    shown = settings(config)
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        write(out, f"  {name:<{width}}  {_text(value)}")
    write(out)
    write(out, "Checks:")
    width = max(len(c.name) for c in found)
    for check in found:
        write(out, f"  {check.status.upper():<4}  {check.name:<{width}}  {check.message}")
    write(out)
    if failed:
        write(out, f"{failed} check(s) failed, {warned} warning(s).")
    elif warned:
        write(out, f"No check failed; {warned} warning(s).")
    else:
        write(out, "Everything looks fine.")
    return 1 if failed else 0
