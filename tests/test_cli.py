"""The revenium command line: the demo runs offline; bad usage exits 2."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from revenium import demo
from revenium.cli import main


def test_demo_meters_real_openai_and_anthropic_calls_into_its_own_ledger(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ledger = tmp_path / "demo.sqlite3"
    assert main(["demo", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    openai_part, _, anthropic_part = out.partition("Totals by model")[0].partition("anthropic SDK:")
    assert openai_part.count("  CHAT ") == 4
    assert openai_part.count("  EMBED ") == 1
    assert "Acme Corp/u-17" in openai_part
    assert "Globex" in openai_part
    # The Anthropic part: one message and one messages.stream(), inside a session.
    assert anthropic_part.count("  CHAT ") == 2
    assert anthropic_part.count("claude-haiku-4-5") == 2
    assert anthropic_part.count("Initech/u-42") == 2
    assert "(stream)" in anthropic_part
    assert f"7 calls metered; 7 written to the ledger at {ledger}; 0 dropped." in out
    db = sqlite3.connect(ledger)
    rows = db.execute("SELECT organization_name, product_name FROM records").fetchall()
    db.close()
    assert sorted(rows) == [
        *[("Acme Corp", "support-assistant")] * 3,
        *[("Globex", None)] * 2,
        *[("Initech", "support-assistant")] * 2,
    ]


def test_demo_without_the_anthropic_sdk_skips_that_part_and_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installed = demo._installed  # the demo's seam for a missing SDK
    monkeypatch.setattr(
        demo, "_installed", lambda module: module != "anthropic" and installed(module)
    )
    ledger = tmp_path / "demo.sqlite3"
    assert main(["demo", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    assert "skipped: the anthropic SDK is not installed (pip install 'revenium[anthropic]')" in out
    assert "claude" not in out
    assert f"5 calls metered; 5 written to the ledger at {ledger}; 0 dropped." in out


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
