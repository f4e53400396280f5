"""The revenium command line: the demo, summary, doctor and spool, through real processes.

Every command runs as ``python -m revenium ...`` in a clean environment (no REVENIUM_* but
what the test sets, HOME and the XDG directories in the test's own directory), against files
the test builds with the SDK's own ``Ledger`` and ``Spool`` and a loopback metering server.
The expected costs are worked out here from per-token rates, so a double-counted cache shows.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from metering_server import MeteringServer, Response
from test_ledger import OLD_SCHEMA

from revenium import demo, pricing
from revenium.attribution import Metadata, Subscriber
from revenium.cli import main
from revenium.ledger import Ledger
from revenium.pricing import price_source
from revenium.records import CompletionRecord, Record, ToolEventRecord
from revenium.spool import Envelope, Spool, SpoolCounts, default_path
from revenium.summary import format_usd
from revenium.wire import endpoint_for, to_wire


def test_demo_meters_real_openai_and_anthropic_calls_into_its_own_ledger(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ledger = tmp_path / "demo.sqlite3"
    assert main(["demo", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    calls = out.partition("Totals by model")[0]
    openai_part, _, rest = calls.partition("anthropic SDK:")
    anthropic_part, _, google_part = rest.partition("google-genai SDK:")
    assert openai_part.count("  CHAT ") == 4
    assert openai_part.count("  EMBED ") == 1
    assert "Acme Corp/u-17" in openai_part
    assert "Globex" in openai_part
    # The Anthropic part: one message and one messages.stream(), inside a session.
    assert anthropic_part.count("  CHAT ") == 2
    assert anthropic_part.count("claude-haiku-4-5") == 2
    assert anthropic_part.count("Initech/u-42") == 2
    assert "(stream)" in anthropic_part
    # The Google part: a call, a stream, and a chat whose Python tool sends two requests,
    # each its own record (the first the tool call, the second linked to it).
    assert google_part.count("  CHAT ") == 3
    assert google_part.count("  TOOL_CALL ") == 1
    assert google_part.count("Google     gemini-2.5-flash") == 4
    assert google_part.count("Umbrella/u-7") == 4
    assert "(stream)" in google_part
    assert f"11 calls metered; 11 written to the ledger at {ledger}; 0 dropped." in out
    db = sqlite3.connect(ledger)
    rows = db.execute("SELECT organization_name, product_name FROM records").fetchall()
    db.close()
    assert sorted(rows) == [
        *[("Acme Corp", "support-assistant")] * 3,
        *[("Globex", None)] * 2,
        *[("Initech", "support-assistant")] * 2,
        *[("Umbrella", "support-assistant")] * 4,
    ]
    # The demo ends with the summary table of its own ledger, costs included. Offline, the
    # provider is the stand-in's host: genai-prices finds the chat models by name alone.
    if price_source() is None:
        pytest.skip("the [prices] extra is not installed")
    mini = 4 * (20 * RATES["gpt-4o-mini"][0] + 8 * RATES["gpt-4o-mini"][3])
    haiku = 2 * (20 * RATES["claude-haiku-4-5"][0] + 8 * RATES["claude-haiku-4-5"][3])
    # the four Gemini records: 11+11+7+16 input and 8+8+2+7 output tokens
    gemini = 45 * RATES["gemini-2.5-flash"][0] + 25 * RATES["gemini-2.5-flash"][3]
    assert (
        format_usd(mini),
        format_usd(haiku),
        format_usd(gemini),
        format_usd(mini + haiku + gemini),
    ) == ("$0.000031", "$0.000120", "$0.000076", "$0.000227")
    # the embedding's few tokens cost a fraction of a micro-dollar: shown, not as nothing
    table = f"""
Totals by model, from the ledger (revenium summary --ledger {ledger}):
  model                   calls  input  output  cache read  cache write   est. cost
  claude-haiku-4-5            2     40      16           0            0   $0.000120
  gemini-2.5-flash            4     45      25           0            0   $0.000076
  gpt-4o-mini-2024-07-18      4     80      32           0            0   $0.000031
  text-embedding-3-small      1      5       0           0            0  <$0.000001
  total                      11    170      73           0            0   $0.000227
"""
    assert out.endswith(table)


def test_demo_without_the_prices_extra_says_how_to_get_costs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(pricing, "_library", lambda: None)  # genai-prices not installed
    ledger = tmp_path / "demo.sqlite3"
    assert main(["demo", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    table = out.split("Totals by model, from the ledger")[1].splitlines()
    assert table[-2].split() == ["total", "11", "170", "73", "0", "0", "-", "11"]
    assert table[-1] == "  unpriced: 11 calls: install revenium[prices] for local cost estimates"


@pytest.mark.parametrize(
    ("module", "extra", "absent", "calls"),
    [("anthropic", "anthropic", "claude", 9), ("google.genai", "google", "gemini", 7)],
)
def test_demo_without_a_provider_sdk_skips_that_part_and_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    module: str,
    extra: str,
    absent: str,
    calls: int,
) -> None:
    installed = demo._installed  # the demo's seam for a missing SDK
    monkeypatch.setattr(demo, "_installed", lambda name: name != module and installed(name))
    ledger = tmp_path / "demo.sqlite3"
    assert main(["demo", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    sdk = "google-genai" if module == "google.genai" else module
    assert f"skipped: the {sdk} SDK is not installed (pip install 'revenium[{extra}]')" in out
    assert absent not in out
    assert f"{calls} calls metered; {calls} written to the ledger at {ledger}; 0 dropped." in out


def test_demo_live_without_a_key_is_a_clear_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["demo", "--live"]) == 2
    assert "needs OPENAI_API_KEY" in capsys.readouterr().out


def test_python_dash_m_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "revenium", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.startswith("revenium ")


def test_bad_usage_exits_2_with_one_line_of_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["no-such-command"])
    assert excinfo.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


# --- the commands over real files, through real subprocesses ----------------------------------

_FALLBACK_VARIABLES = {"ENVIRONMENT", "DEPLOYMENT_ENV", "AWS_REGION", "AWS_DEFAULT_REGION"}
KEY = "hak_0123456789abcdef0123456789ab7f3a"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no REVENIUM_* but what the test sets, no proxy, HOME in tmp."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("REVENIUM_")
        and name not in _FALLBACK_VARIABLES
        and not name.lower().endswith("_proxy")
    }
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        NO_PROXY="*",
    )
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m revenium ARGS`` in a clean environment."""
    return subprocess.run(
        [sys.executable, "-m", "revenium", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=_env(tmp_path, **env),
    )


def _one_line_error(done: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert done.returncode == code, done
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert text in done.stderr
    assert "Traceback" not in done.stderr


# Rates in USD per token, as genai-prices lists them (asserted below): input, cached read, cache
# write, output. The expected costs are worked out from these by hand, never by the code tested.
RATES = {
    "gpt-4o": (Decimal("2.5e-6"), Decimal("1.25e-6"), Decimal("2.5e-6"), Decimal("10e-6")),
    "gpt-4o-mini": (Decimal("0.15e-6"), Decimal("0.075e-6"), Decimal("0.15e-6"), Decimal("0.6e-6")),
    "claude-haiku-4-5": (Decimal("1e-6"), Decimal("0.1e-6"), Decimal("1.25e-6"), Decimal("5e-6")),
    "gemini-2.5-flash": (
        Decimal("0.3e-6"),
        Decimal("0.03e-6"),
        Decimal("0.3e-6"),
        Decimal("2.5e-6"),
    ),
}
# gpt-4o: 1000 input of which 400 cached reads; 500 output of which 200 reasoning.
GPT_4O = 600 * RATES["gpt-4o"][0] + 400 * RATES["gpt-4o"][1] + 500 * RATES["gpt-4o"][3]
# claude-haiku-4-5: Anthropic's 100 input exclude the 2000 cache reads and 300 cache writes.
HAIKU = (
    100 * RATES["claude-haiku-4-5"][0]
    + 2000 * RATES["claude-haiku-4-5"][1]
    + 300 * RATES["claude-haiku-4-5"][2]
    + 50 * RATES["claude-haiku-4-5"][3]
)
MINI = 200 * RATES["gpt-4o-mini"][0] + 100 * RATES["gpt-4o-mini"][3]


def _at(day: int, hour: int) -> datetime:
    return datetime(2025, 6, day, hour, tzinfo=UTC)


def _records() -> list[Record]:
    acme = Metadata(organization_name="Acme", product_name="support-bot", trace_id="t-1")
    return [
        CompletionRecord(
            model="gpt-4o",
            provider="OPENAI",
            request_time=_at(1, 10),
            request_duration_ms=800.0,
            input_token_count=1000,
            output_token_count=500,
            cache_read_token_count=400,
            reasoning_token_count=200,
            metadata=attrs.evolve(acme, subscriber=Subscriber(id="u-1")),
        ),
        CompletionRecord(
            model="claude-haiku-4-5",
            provider="ANTHROPIC",
            request_time=_at(2, 9),
            request_duration_ms=400.0,
            input_token_count=100,
            output_token_count=50,
            cache_read_token_count=2000,
            cache_creation_token_count=300,
            cache_in_input=False,
            metadata=attrs.evolve(acme, subscriber=Subscriber(email="ann@acme.test")),
        ),
        CompletionRecord(
            model="gpt-4o-mini",
            provider="OPENAI",
            request_time=_at(2, 11),
            request_duration_ms=300.0,
            input_token_count=200,
            output_token_count=100,
            estimated=True,
            metadata=Metadata(organization_name="Globex", product_name="support-bot"),
        ),
        CompletionRecord(
            model="acme-llm-1",
            provider="OPENAI",
            request_time=_at(3, 8),
            request_duration_ms=100.0,
            input_token_count=10,
            output_token_count=5,
            metadata=Metadata(organization_name="Globex", trace_id="t-2"),
        ),
        ToolEventRecord(
            tool_id="customer-db",
            operation="lookup",
            timestamp=_at(3, 9),
            duration_ms=12.0,
            success=True,
        ),
    ]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    pytest.importorskip("genai_prices")
    path = tmp_path / "ledger.sqlite3"
    book = Ledger(path)
    batch = [(r, endpoint_for(r), json.dumps(to_wire(r)).encode()) for r in _records()]
    assert book.write(batch) == 5
    book.close()
    return path


def _no_price_note() -> str:
    return f"no price for acme-llm-1 from OPENAI in {price_source()}"


def test_the_per_token_rates_are_genai_prices_rates() -> None:
    genai_prices = pytest.importorskip("genai_prices")
    for model, (uncached, cached, written, output) in RATES.items():

        def price(model: str = model, **tokens: int) -> Decimal:
            usage = genai_prices.Usage(**tokens)
            return Decimal(str(genai_prices.calc_price(usage, model).total_price))

        assert price(input_tokens=1000) == 1000 * uncached
        # genai-prices counts cached reads inside input_tokens.
        assert price(input_tokens=1000, cache_read_tokens=1000) == 1000 * cached
        assert price(output_tokens=1000) == 1000 * output
        assert price(input_tokens=1000, cache_write_tokens=1000) == 1000 * written


def test_summary_human_output_is_a_table_with_costs_and_a_total(
    ledger: Path, tmp_path: Path
) -> None:
    done = cli(tmp_path, "summary", "--ledger", str(ledger))
    assert done.returncode == 0, done.stderr
    assert (format_usd(GPT_4O), format_usd(HAIKU), format_usd(MINI)) == (
        "$0.007000",
        "$0.000925",
        "$0.000090",
    )
    assert done.stdout == (
        f"4 calls in the ledger at {ledger}, by model:\n"
        "model             calls  input  output  cache read  cache write  est. cost  unpriced\n"
        "acme-llm-1            1     10       5           0            0          -         1\n"
        "claude-haiku-4-5      1    100      50       2,000          300  $0.000925         0\n"
        "gpt-4o                1  1,000     500         400            0  $0.007000         0\n"
        "gpt-4o-mini           1    200     100           0            0  $0.000090         0\n"
        "total                 4  1,310     655       2,400          300  $0.008015         1\n"
        f"unpriced: 1 call: {_no_price_note()}\n"
        "estimated tokens: 1 call (streams closed before the provider reported usage)\n"
        "not shown: 1 tool event\n"
    )
    assert done.stderr == ""


def _counts(
    calls: int, tokens: tuple[int, ...], cost: Decimal | None, unpriced: int = 0, estimated: int = 0
) -> dict[str, object]:
    names = ("input", "output", "cacheRead", "cacheCreation", "reasoning")
    return {
        "calls": calls,
        **{f"{name}TokenCount": count for name, count in zip(names, tokens, strict=True)},
        "estimatedCostUsd": None if cost is None else pytest.approx(float(cost), rel=1e-9),
        "unpricedCalls": unpriced,
        "callsWithEstimatedTokens": estimated,
    }


def test_summary_json_is_one_document_with_rows_and_totals(ledger: Path, tmp_path: Path) -> None:
    done = cli(tmp_path, "summary", "--ledger", str(ledger), "--by", "organization", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "ledger": str(ledger),
        "by": "organization",
        "since": None,
        "rows": [
            {"organization": "Acme", **_counts(2, (1100, 550, 2400, 300, 200), GPT_4O + HAIKU)},
            {"organization": "Globex", **_counts(2, (210, 105, 0, 0, 0), MINI, 1, 1)},
        ],
        "totals": {
            **_counts(4, (1310, 655, 2400, 300, 200), GPT_4O + HAIKU + MINI, 1, 1),
            "toolEvents": 1,
        },
        "unpriced": [{"reason": _no_price_note(), "calls": 1}],
    }


def test_summary_csv_is_a_header_and_one_row_per_group(ledger: Path, tmp_path: Path) -> None:
    done = cli(tmp_path, "summary", "--ledger", str(ledger), "--by", "day", "--csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "day,calls,input_tokens,output_tokens,cache_read_tokens,cache_creation_tokens,"
        "reasoning_tokens,estimated_cost_usd,unpriced_calls\n"
        f"2025-06-01,1,1000,500,400,0,200,{GPT_4O.normalize():f},0\n"
        f"2025-06-02,2,300,150,2000,300,0,{(HAIKU + MINI).normalize():f},0\n"
        "2025-06-03,1,10,5,0,0,0,,1\n"
    )


@pytest.mark.parametrize(
    ("by", "keys"),
    [
        ("model", ["acme-llm-1", "claude-haiku-4-5", "gpt-4o", "gpt-4o-mini"]),
        ("provider", ["ANTHROPIC", "OPENAI"]),
        ("organization", ["Acme", "Globex"]),
        ("product", ["support-bot", None]),
        ("subscriber", ["ann@acme.test", "u-1", None]),
        ("trace", ["t-1", "t-2", None]),
        ("day", ["2025-06-01", "2025-06-02", "2025-06-03"]),
    ],
)
def test_summary_groups_by_every_key(
    by: str, keys: list[str | None], ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", "--ledger", str(ledger), "--by", by, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [row[by] for row in document["rows"]] == keys
    assert sum(row["calls"] for row in document["rows"]) == document["totals"]["calls"] == 4
    cost = sum(row["estimatedCostUsd"] or 0 for row in document["rows"])
    assert cost == pytest.approx(float(GPT_4O + HAIKU + MINI), rel=1e-9)


@pytest.mark.parametrize(
    ("since", "models"),
    [
        ("2025-06-02", ["acme-llm-1", "claude-haiku-4-5", "gpt-4o-mini"]),
        ("2025-06-02T10:00:00Z", ["acme-llm-1", "gpt-4o-mini"]),
        ("2025-06-02T12:00:00+02:00", ["acme-llm-1", "gpt-4o-mini"]),  # 10:00 UTC
        ("2025-06-02T10:00:00", ["acme-llm-1", "gpt-4o-mini"]),  # naive: UTC
        ("2025-06-04", []),
    ],
)
def test_summary_since_a_date_or_an_iso_datetime_in_utc(
    since: str, models: list[str], ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", "--ledger", str(ledger), "--since", since, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [row["model"] for row in document["rows"]] == models
    assert document["totals"]["toolEvents"] == (1 if since != "2025-06-04" else 0)


def test_summary_of_a_ledger_from_before_cost_estimates_shows_its_calls_as_unpriced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.commit()
    db.close()
    before = path.read_bytes()
    assert main(["summary", "--ledger", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gpt-4o      1      1       2           0            0          -         1" in out
    assert "unpriced: 1 call: recorded before local cost estimates existed" in out
    assert path.read_bytes() == before  # read-only: the columns are not added by a summary


def test_summary_errors_are_one_line_with_the_exit_code(ledger: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ledger.sqlite3"
    _one_line_error(
        cli(tmp_path, "summary", "--ledger", str(missing)), 1, f"no ledger at {missing}"
    )
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"\x00\xffnot a database\x13" * 300)
    _one_line_error(
        cli(tmp_path, "summary", "--ledger", str(corrupt)),
        1,
        f"revenium summary: cannot read the ledger at {corrupt}: file is not a database",
    )
    assert not missing.exists()
    _one_line_error(
        cli(tmp_path, "summary", "--ledger", str(ledger), "--since", "last week"),
        2,
        "argument --since: 'last week' is not a date",
    )
    _one_line_error(
        cli(tmp_path, "summary", "--by", "colour"), 2, "argument --by: invalid choice: 'colour'"
    )
    _one_line_error(
        cli(tmp_path, "summary", "--json", "--csv"), 2, "not allowed with argument --json"
    )
    # With a key and no ledger path, records go to the API only: there is no ledger to read.
    _one_line_error(cli(tmp_path, "summary", REVENIUM_METERING_API_KEY=KEY), 1, "no local ledger")


def test_summary_reads_the_default_ledger_of_the_environment(tmp_path: Path) -> None:
    done = cli(tmp_path, "summary")  # no key: the user data directory
    default = tmp_path / "data" / "revenium" / "ledger.sqlite3"
    _one_line_error(done, 1, f"no ledger at {default}")
    pytest.importorskip("genai_prices")
    elsewhere = tmp_path / "mine.sqlite3"
    book = Ledger(elsewhere)
    record = _records()[0]
    book.write([(record, endpoint_for(record), b"{}")])
    book.close()
    done = cli(tmp_path, "summary", REVENIUM_LEDGER_PATH=str(elsewhere))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"1 call in the ledger at {elsewhere}, by model:\n")


# --- doctor -------------------------------------------------------------------------------------


def test_doctor_against_a_loopback_api_reports_settings_latency_and_files(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool = Spool(default_path(spool_dir))
    spool.quarantine(_envelope(1), status=400, reason="bad model")
    spool.close()
    ledger_file = tmp_path / "kept.sqlite3"
    Ledger(ledger_file).close()
    ledger_file.chmod(0o644)
    with MeteringServer() as server:
        done = cli(
            tmp_path,
            "doctor",
            "--json",
            REVENIUM_METERING_API_KEY=KEY,
            REVENIUM_METERING_BASE_URL=server.url,
            REVENIUM_TEAM_ID="team 1",
            REVENIUM_SPOOL_DIR=str(spool_dir),
            REVENIUM_LEDGER_PATH=str(ledger_file),
        )
        assert server.requests == []  # nothing was metered: nothing was created
        (feed,) = server.rule_requests
    assert done.returncode == 0, done.stdout + done.stderr  # warnings only
    assert KEY not in done.stdout
    assert feed.team == "team 1"
    assert feed.headers["x-api-key"] == KEY
    document = json.loads(done.stdout)
    assert document["ok"] is True
    settings = document["settings"]
    assert settings["api_key"] == "hak_…7f3a (36 chars)"
    assert settings["meter_url"] == f"{server.url}/meter"
    assert settings["team_id"] == "team 1"
    assert settings["max_retries"] == 3
    checks = {c["name"]: c for c in document["checks"]}
    assert [c["status"] for c in document["checks"]] == [
        "ok",  # environment
        "ok",  # api key
        "ok",  # metering host
        "ok",  # enforcement host
        "ok",  # spool
        "warn",  # ledger: mode 0644
        checks["cost estimates"]["status"],
    ]
    meter = checks["metering host"]["details"]
    assert meter["method"] == "HEAD"
    assert meter["url"] == f"{server.url}/meter"
    assert meter["httpStatus"] == 501  # any HTTP answer: reachable
    assert meter["latencyMs"] >= 0
    assert checks["enforcement host"]["details"]["httpStatus"] == 204
    assert checks["spool"]["details"]["quarantined"] == 1
    assert "revenium spool quarantine" in checks["spool"]["message"]
    assert "mode 0644 lets other users read it" in checks["ledger"]["message"]
    assert checks["ledger"]["details"]["records"] == 0


def test_doctor_fails_when_the_hosts_do_not_answer(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = cli(
        tmp_path,
        "doctor",
        REVENIUM_METERING_API_KEY="sk-not-a-revenium-key-0000",
        REVENIUM_METERING_BASE_URL=f"http://127.0.0.1:{port}",
        REVENIUM_METERING_CONNECT_TIMEOUT_SECONDS="2",
        REVENIUM_MAX_RETRIES="many",
    )
    assert done.returncode == 1
    assert "sk-not-a-revenium-key-0000" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "  api_key                   …0000 (26 chars)" in lines
    assert re.search(
        r"^  FAIL  metering host +http://127\.0\.0\.1:\d+/meter did not answer", done.stdout, re.M
    )
    assert re.search(
        r"^  FAIL  enforcement host +http://127\.0\.0\.1:\d+ did not answer", done.stdout, re.M
    )
    assert re.search(
        r"^  WARN  api key +…0000 \(26 chars\) does not start with hak_", done.stdout, re.M
    )
    assert lines[-1] == "2 check(s) failed, 1 warning(s)."


def test_doctor_without_a_key_says_records_go_to_the_ledger(tmp_path: Path) -> None:
    done = cli(tmp_path, "doctor", REVENIUM_METERING_TIMEOUT_SECONDS="soon")
    assert done.returncode == 0, done.stdout
    ledger_file = tmp_path / "data" / "revenium" / "ledger.sqlite3"
    assert (
        f"  INFO  api key           not set: records go to the local ledger at {ledger_file}"
        in done.stdout
    )
    assert "no API key: delivery goes to the local ledger; host not checked" in done.stdout
    assert (
        "WARN  environment       ignoring REVENIUM_METERING_TIMEOUT_SECONDS: 'soon' is not a float"
        in done.stdout
    )
    assert done.stdout.splitlines()[-1] == "No check failed; 1 warning(s)."
    assert not ledger_file.exists()  # the doctor creates nothing
    assert done.stderr == ""


# --- spool ---------------------------------------------------------------------------------------


def _envelope(n: int, age: float = 3600.0) -> Envelope:
    body = {"model": "gpt-4o", "n": n}
    return Envelope(
        key=f"00000000-0000-4000-8000-{n:012d}",
        path="/v2/ai/completions",
        body=json.dumps(body).encode(),
        created_at=time.time() - age,
    )


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """A spool with two pending records and two quarantined ones."""
    directory = tmp_path / "spool"
    spool = Spool(default_path(directory))
    spool.add([_envelope(1, age=7200), _envelope(2)])
    spool.quarantine(_envelope(3), status=400, reason='{"error": "unknown model"}', now=1.0e9)
    spool.quarantine(_envelope(4), status=422, reason="missing field\nproductName", now=2.0e9)
    spool.close()
    return directory


def test_spool_status_counts_pending_and_quarantined_records(
    spool_dir: Path, tmp_path: Path
) -> None:
    done = cli(tmp_path, "spool", "status", "--json", REVENIUM_SPOOL_DIR=str(spool_dir))
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status.pop("oldestPendingAgeSeconds") == pytest.approx(7200, abs=60)
    assert status == {
        "path": str(default_path(spool_dir)),
        "exists": True,
        "pending": 2,
        "leased": 0,
        "quarantined": 2,
    }
    done = cli(tmp_path, "spool", "status", REVENIUM_SPOOL_DIR=str(spool_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:4] == [
        f"spool           {default_path(spool_dir)}",
        "pending         2",
        "leased          0",
        "quarantined     2",
    ]
    assert re.match(r"oldest pending  (2h 0m|1h 59m) \(\d{4}-", done.stdout.splitlines()[4])
    # No spool yet: nothing waits; the file is not created.
    done = cli(tmp_path, "spool", "status")
    assert done.returncode == 0
    assert done.stdout.startswith("No spool file at ")
    assert not (tmp_path / "state" / "revenium").exists()


def test_spool_quarantine_lists_requeues_and_purges(spool_dir: Path, tmp_path: Path) -> None:
    env = {"REVENIUM_SPOOL_DIR": str(spool_dir)}
    done = cli(tmp_path, "spool", "quarantine", "--json", **env)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["quarantined"] == 2
    assert [(r["key"][-1], r["status"], r["model"]) for r in listed["records"]] == [
        ("4", 422, "gpt-4o"),  # newest first
        ("3", 400, "gpt-4o"),
    ]
    assert listed["records"][1]["reason"] == '{"error": "unknown model"}'
    done = cli(tmp_path, "spool", "quarantine", **env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"2 quarantined records in {default_path(spool_dir)}:"
    assert lines[1].split() == ["key", "status", "quarantined", "at", "endpoint", "model", "reason"]
    assert lines[2].endswith(
        "422     2033-05-18 03:33:20 UTC  /v2/ai/completions  gpt-4o  missing field productName"
    )

    key = _envelope(3).key
    done = cli(tmp_path, "spool", "quarantine", "--requeue", key, "no-such-key", **env)
    assert done.returncode == 1  # one of the keys was not there
    assert "Requeued 1 quarantined records" in done.stdout
    assert "1 of the keys given are not in the quarantine" in done.stdout

    _one_line_error(cli(tmp_path, "spool", "quarantine", "--purge", **env), 2, "needs --yes")
    done = cli(tmp_path, "spool", "quarantine", "--purge", "--yes", "--json", **env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["purged"] == 1
    spool = Spool(default_path(spool_dir))
    assert spool.counts() == SpoolCounts(pending=3, claimed=0, quarantined=0)
    spool.close()


def test_spool_replay_delivers_to_the_api_and_reports_what_remains(
    spool_dir: Path, tmp_path: Path
) -> None:
    env = {"REVENIUM_SPOOL_DIR": str(spool_dir), "REVENIUM_METERING_API_KEY": KEY}
    with MeteringServer() as server:
        server.responder = lambda request: Response(401, {"message": "invalid api key"})
        refused = cli(
            tmp_path,
            "spool",
            "replay",
            "--timeout",
            "5",
            REVENIUM_METERING_BASE_URL=server.url,
            **env,
        )
        server.responder = None
        done = cli(
            tmp_path, "spool", "replay", "--json", REVENIUM_METERING_BASE_URL=server.url, **env
        )
        delivered = server.bodies("/v2/ai/completions")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Delivered 0; 0 rejected into the quarantine; 2 remain in the spool." in refused.stdout
    assert "HTTP 401" in refused.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (report["before"], report["delivered"], report["remaining"]) == (2, 2, 0)
    assert sorted(body["n"] for body in delivered) == [1, 2]


def test_spool_errors_are_one_line_with_the_exit_code(spool_dir: Path, tmp_path: Path) -> None:
    _one_line_error(
        cli(tmp_path, "spool", "replay", REVENIUM_SPOOL_DIR=str(spool_dir)),
        1,
        "revenium spool: no API key: set REVENIUM_METERING_API_KEY",
    )
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    default_path(corrupt).write_bytes(b"\x13garbage, not SQLite\x00" * 200)
    for action in ("status", "quarantine"):
        _one_line_error(
            cli(tmp_path, "spool", action, REVENIUM_SPOOL_DIR=str(corrupt)),
            1,
            f"cannot read the spool at {default_path(corrupt)}: file is not a database",
        )
    _one_line_error(cli(tmp_path, "spool"), 2, "the following arguments are required: ACTION")
