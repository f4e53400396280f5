"""The benchmark figures that need no server run with tiny sizes, so they cannot rot.

Timings are never asserted here (they belong to ``nox -s bench``): only that each figure runs
in a fresh interpreter and reports the numbers the results table reads.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
FIGURES = BENCHMARKS / "figures.py"
RUN = BENCHMARKS / "run.py"
FAKE_API = BENCHMARKS / "fake_api.py"


def run_python(args: list[str], tmp_path: Path) -> dict[str, Any]:
    """Run a fresh interpreter with ``args``; the ``RESULT {json}`` line it prints."""
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def run_figure(name: str, params: dict[str, object], tmp_path: Path) -> dict[str, object]:
    return run_python(
        [str(FIGURES), name, json.dumps({**params, "scratch": str(tmp_path)})], tmp_path
    )


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


def load_run_module() -> ModuleType:
    """``benchmarks/run.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def assert_overhead(result: dict[str, Any], pairs: int) -> None:
    """Every block pair measured, and every wrapped call left exactly one record."""
    for key in ("plain_us", "wrapped_us", "added_us", "ratio", "drain_us", "cpu_added_us"):
        samples = result[key]
        assert len(samples) == pairs, key
        assert all(isinstance(s, float) for s in samples), key
    assert result["records"] == result["wrapped_calls"] > 0


@pytest.mark.parametrize("provider", ["anthropic", "google"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_the_other_providers_call_overhead_figures_run(
    provider: str, is_async: bool, tmp_path: Path
) -> None:
    """7f/7g (Anthropic) and 7h/7i (Google: ``models`` and ``aio.models.generate_content``)."""
    params = {"provider": provider, "kind": "call", "calls": 5, "pairs": 2, "warmup": 1}
    result = run_figure("call_overhead", {**params, "is_async": is_async}, tmp_path)
    assert_overhead(result, pairs=2)
    assert f"revenium.providers.{provider}" in result["modules"]  # type: ignore[operator]


def test_the_google_profile_figure_runs(tmp_path: Path) -> None:
    """A missed 7h or 7i is profiled, the runtime's threads too."""
    params = {"provider": "google", "kind": "call", "calls": 5, "pairs": 1, "warmup": 1,
              "is_async": True, "threads": True}  # fmt: skip
    profile = run_figure("call_profile", params, tmp_path)
    assert profile["unit"] == "call"
    assert profile["revenium"]


@pytest.mark.parametrize("delivery", ["ledger", "capture"])
def test_the_loop_lag_figure_runs(delivery: str, tmp_path: Path) -> None:
    params = {"calls": 50, "pairs": 1, "warmup": 1, "delivery": delivery}
    result = run_figure("loop_lag", params, tmp_path)
    assert result["records"] == result["wrapped_calls"] == 100
    for side in ("wrapped", "control"):
        assert len(result[f"{side}_burst_seconds"]) == 1  # type: ignore[arg-type]
        assert isinstance(result[f"{side}_max_ms"], float)
        assert result[f"{side}_ticks"] >= 1  # type: ignore[operator]


@pytest.mark.parametrize("key", ["anthropic_import", "google_import"])
def test_the_adapter_import_figures_run(key: str, tmp_path: Path) -> None:
    """10c/10d (Anthropic) and 10e/10f (Google), as ``run.py`` runs them."""
    run = load_run_module()
    sdk, client = run.ADAPTER_IMPORTS[key]
    result = run_python(["-c", run.adapter_import_snippet(sdk, client)], tmp_path)
    assert {"sdk_ms", "client_ms", "adapter_ms", "sdk_mb", "adapter_mb"} <= result.keys()
    provider = key.removesuffix("_import")
    assert f"revenium.providers.{provider}" in result["modules"]


def test_the_report_shows_the_google_figures() -> None:
    """7h, 7i, 10e and 10f reach the results table (from made-up repetitions)."""
    run = load_run_module()
    pair: dict[str, Any] = {"added_us": [2.0], "ratio": [1.01], "plain_us": [400.0]}
    pair |= {"wrapped_us": [402.0], "drain_us": [50.0], "cpu_added_us": [2.0]}
    pair |= {"records": 1, "wrapped_calls": 1}
    imported: dict[str, Any] = {"sdk_ms": 300.0, "client_ms": 5.0, "adapter_ms": 20.0}
    imported |= {"sdk_mb": 40.0, "adapter_mb": 3.0, "runtime_loaded": False}
    res = {key: [pair] for key in run.OVERHEAD_KEYS}
    res |= {key: [imported] for key in run.ADAPTER_IMPORTS}
    labels = [row.figure for row in run.openai_rows(res)]
    for number in ("7h. Google `models.generate_content`", "7i. Google `aio.models",
                   "10e. `import google.genai`", "10f. After it"):  # fmt: skip
        assert any(label.startswith(number) for label in labels), number
    assert run.PROFILED["google_sync"] == "7h"
    assert run.PROFILED["google_async"] == "7i"
    details = "\n".join(run.details(res))
    assert "`google_sync`" in details
    assert "`google_import`" in details


def test_without_the_existing_sdk_its_figure_says_not_installed() -> None:
    run = load_run_module()
    rows = run.seed_rows({}, "`import revenium_middleware.openai` failed: ModuleNotFoundError")
    assert [(r.value, r.verdict) for r in rows] == [("not installed", "skipped")]


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[str]:
    """The benchmarks' fake metering API in its own process; its base URL."""
    port_file = tmp_path / "fake_api.port"
    server = subprocess.Popen([sys.executable, str(FAKE_API), str(port_file)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 15
        while not (port_file.exists() and port_file.read_text().strip()):
            assert server.poll() is None, "the fake API exited"
            assert time.monotonic() < deadline, "the fake API did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        server.terminate()
        server.wait(timeout=5)


@pytest.mark.parametrize("kind", ["call", "stream"])
def test_the_existing_sdk_figure_runs(kind: str, fake_api: str, tmp_path: Path) -> None:
    """Figure 12, where ``revenium-python-sdk`` imports (``nox -s bench`` installs it)."""
    run = load_run_module()
    probe = run_python(
        ["-c", run.SEED_PROBE], tmp_path
    )  # its import patches openai: not in this process
    if "missing" in probe:
        pytest.skip(f"revenium-python-sdk does not import: {probe['missing']}")
    params = {"kind": kind, "pairs": 2, "warmup": 1, "is_async": False, "delivery": "seed"}
    if kind == "call":
        params["calls"] = 5
    else:
        params.update(chunks=20, streams=1)
    result = run_figure("call_overhead", {**params, "base_url": fake_api}, tmp_path)
    assert_overhead(result, pairs=2)
    assert result["stats"]["errors"] == 0  # type: ignore[index]


# -- every other figure, tiny, so none of them can rot ---------------------------------------


def _closed_port() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


@pytest.mark.parametrize(
    ("figure", "params", "keys"),
    [
        ("throughput", {"n": 60, "warmup": 6}, ("delivered",)),
        ("raw_httpx", {"n": 60, "warmup": 6, "concurrency": 2}, ()),
        ("loop_stall", {"n": 400, "burst": 200, "control": False}, ()),
        ("shutdown_flush", {"n": 200, "timeout": 10}, ("delivered", "dropped")),
    ],
)
def test_the_delivery_figures_run_against_the_fake_api(
    figure: str, params: dict[str, object], keys: tuple[str, ...], fake_api: str, tmp_path: Path
) -> None:
    result = run_figure(figure, {**params, "base_url": fake_api}, tmp_path)
    for key in keys:
        assert key in result, key
    if "dropped" in result:
        assert result["dropped"] == 0


@pytest.mark.parametrize(
    ("figure", "params"),
    [
        ("memory_down", {"n": 2_000, "batch": 1_000, "yield_gil": True}),
        ("memory_idle", {}),
    ],
)
def test_the_memory_figures_run_with_the_api_down(
    figure: str, params: dict[str, object], tmp_path: Path
) -> None:
    result = run_figure(figure, {**params, "base_url": _closed_port()}, tmp_path)
    assert isinstance(result["peak_rss_mb"], float)
    if figure == "memory_down":
        assert result["dropped"] == 0


def test_the_handoff_figure_runs(tmp_path: Path) -> None:
    result = run_figure("handoff", {"batch": 10, "batches": 5, "idle": 5}, tmp_path)
    assert result["submit"]


@pytest.mark.parametrize("kind", ["call", "stream"])
def test_the_openai_overhead_and_profile_figures_run(kind: str, tmp_path: Path) -> None:
    params: dict[str, object] = {"provider": "openai", "kind": kind, "pairs": 2, "warmup": 1,
                                 "is_async": False, "delivery": "ledger"}  # fmt: skip
    if kind == "call":
        params["calls"] = 5
    else:
        params.update(chunks=20, streams=1)
    assert_overhead(run_figure("call_overhead", params, tmp_path), pairs=2)
    profile = run_figure("call_profile", {**params, "pairs": 1}, tmp_path)
    assert profile
