"""The benchmark figures that need no server run with tiny sizes, so they cannot rot.

Timings are never asserted here (they belong to ``nox -s bench``): only that each figure runs
in a fresh interpreter and reports the numbers the results table reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FIGURES = Path(__file__).resolve().parent.parent / "benchmarks" / "figures.py"


def run_figure(name: str, params: dict[str, object], tmp_path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(FIGURES), name, json.dumps({**params, "scratch": str(tmp_path)})],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, object] = json.loads(line.removeprefix("RESULT "))
    return result


@pytest.mark.parametrize(
    "params",
    [{"rules": 0, "n": 200}, {"rules": 10, "n": 200}, {"rules": 50, "n": 40, "same_model": True}],
)
def test_the_cost_control_check_figure_runs(params: dict[str, object], tmp_path: Path) -> None:
    result = run_figure("enforcement_check", params, tmp_path)
    samples = result["check_us"]
    assert isinstance(samples, list)
    assert len(samples) == 20
    assert all(isinstance(s, float) and s > 0 for s in samples)
    assert "revenium.enforcement" in result["modules"]  # type: ignore[operator]


def test_the_import_figure_runs_and_loads_no_provider_sdk(tmp_path: Path) -> None:
    result = run_figure("import_time", {}, tmp_path)
    assert result["loaded"] == []
    assert isinstance(result["import_ms"], float)
