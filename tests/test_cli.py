"""The revenium command line: the demo runs offline; bad usage exits 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from revenium.cli import main


def test_demo_prints_the_records_it_metered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("POST {meter}/v2/tool/events") == 2
    assert out.rstrip().endswith("2 records metered.")
    first_body = out.split("\n{", 1)[1].split("\n}\n", 1)[0]
    body = json.loads("{" + first_body + "}")
    assert body["toolId"] == "customer-db"
    assert body["organizationName"] == "Acme Corp"
    assert body["success"] is True


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
