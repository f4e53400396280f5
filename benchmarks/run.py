"""Run every benchmark figure and write ``docs/benchmarks.md``: ``python benchmarks/run.py``.

Why it is built this way:

- Every figure runs in a fresh subprocess (:mod:`figures`), one repetition per process, so a
  figure never inherits another's threads, heap, warm connection pool or peak RSS.
- Repetitions are *interleaved*: each round runs one repetition of every figure, so a slow
  patch of the machine (a noisy neighbour, a CPU frequency change) spreads over all figures
  instead of sinking one of them. The order rotates from round to round.
- The metering API is ``benchmarks/fake_api.py`` in its own process, so the client and the
  server do not share a GIL (the machine this was written for has two cores: one each). The
  stand-in OpenAI server of figure 8 runs in its own process for the same reason.
- Every figure reports its median and its spread (min-max over repetitions, or the
  interquartile range of pooled samples), next to its bar from PRODUCT.md.
- An overhead figure of ours (7a, 7c, 7f-7i, 9a, 9b) that misses its bar is profiled once
  more, in a process of its own, and the page says where the time goes.
- The existing SDK (figure 12) patches the ``openai`` classes on import, so it only ever runs
  in figure processes of its own; when it does not import, its figure is skipped, not failed.

``--quick`` shrinks every record count by 10x for a smoke run (about 90 s): the call
figures run fewer blocks, in one round, and only the first missed one is profiled. Unless
``--output`` is given, it prints the table without overwriting the published figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIGURES = HERE / "figures.py"
FAKE_API = HERE / "fake_api.py"
DOC = ROOT / "docs" / "benchmarks.md"
CHILD_TIMEOUT = 300.0
IMPORT_RUNS = 10
ADAPTER_IMPORT_RUNS = 7  # for each of figure 10's provider SDKs
CONCURRENCY = 8  # the runtime's default max_concurrency, and raw httpx's for the comparison

Result = dict[str, Any]


# --------------------------------------------------------------------- plumbing


@contextmanager
def server_process(
    args: list[str], out_file: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Start a server in its own process; yield what it writes to ``out_file`` once ready."""
    proc = subprocess.Popen(
        [sys.executable, *args, str(out_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=out_file.parent,
        env=env,
    )
    try:
        deadline = time.monotonic() + 15
        while not (out_file.exists() and out_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server {args[0]} did not start")
            time.sleep(0.02)
        yield out_file.read_text().strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def fake_api(scratch: Path) -> Iterator[str]:
    """Start the fake metering API in its own process; yield its base URL."""
    with server_process([str(FAKE_API)], scratch / "fake_api.port") as port:
        yield f"http://127.0.0.1:{port}"


# The stand-in OpenAI server of ``revenium demo`` and the tests, in a process of its own so
# that its work does not compete with the measured client for one GIL. It writes its URL.
STANDIN_SNIPPET = """
import sys, threading
from revenium.providers._openai_standin import StandInServer
server = StandInServer().start()
with open(sys.argv[1], "w") as f:
    f.write(server.base_url)
threading.Event().wait()
"""


@contextmanager
def standin_server(scratch: Path) -> Iterator[str]:
    """Start the stand-in OpenAI server in its own process; yield its base URL (``.../v1``)."""
    with server_process(
        ["-c", STANDIN_SNIPPET], scratch / "standin.url", env=child_env(scratch)
    ) as url:
        yield url


def closed_port_url() -> str:
    """A URL nobody listens on: bind a port, remember it, close it (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def child_env(scratch: Path) -> dict[str, str]:
    """The parent's environment without ``REVENIUM_*`` settings, user dirs in scratch.

    A developer's own ``REVENIUM_METERING_API_KEY`` or queue size must not change the
    figures, and nothing may land in their real spool or ledger.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVENIUM_")}
    env["XDG_STATE_HOME"] = str(scratch / "state")
    env["XDG_DATA_HOME"] = str(scratch / "data")
    return env


@dataclass
class Runner:
    """Runs figure processes and keeps their failures for the final report."""

    scratch: Path
    failures: list[str] = field(default_factory=list)
    _count: int = 0

    def figure(self, name: str, params: dict[str, Any]) -> Result | None:
        self._count += 1
        work = self.scratch / f"{self._count:03d}-{name}"
        work.mkdir()
        return self.command(
            name, [str(FIGURES), name, json.dumps({**params, "scratch": str(work)})]
        )

    def command(self, name: str, args: list[str]) -> Result | None:
        try:
            done = subprocess.run(
                [sys.executable, *args],
                capture_output=True,
                text=True,
                timeout=CHILD_TIMEOUT,
                # Not the checkout: ``python -c`` puts the working directory first on
                # sys.path, which would shadow the revenium that PYTHONPATH points at.
                cwd=self.scratch,
                env=child_env(self.scratch),
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.failures.append(f"{name}: timed out after {CHILD_TIMEOUT:.0f} s")
            return None
        for line in done.stdout.splitlines():
            if line.startswith("RESULT "):
                result: Result = json.loads(line[7:])
                return result
        tail = "\n    ".join(done.stderr.strip().splitlines()[-8:])
        self.failures.append(f"{name}: exit {done.returncode}\n    {tail}")
        return None


# Import time is measured with ``-c`` rather than through figures.py, which itself imports
# asyncio, json and pathlib: they would already be loaded and make the import look cheaper.
IMPORT_SNIPPET = """
import time
t0 = time.perf_counter()
import revenium
t1 = time.perf_counter()
with revenium.session(organization_name="Acme"):
    pass
t2 = time.perf_counter()
import json, sys
sdks = [m for m in ("openai", "anthropic", "google.genai") if m in sys.modules]
mods = sorted(m for m in sys.modules if m == "revenium" or m.startswith("revenium."))
print("RESULT " + json.dumps({"import_ms": (t1 - t0) * 1e3, "session_ms": (t2 - t1) * 1e3,
                              "provider_sdks": sdks, "modules": mods}))
"""


# The provider SDK alone (``import openai``), then what revenium adds on top of it for its
# user: the package, the proxy and engine modules and the adapter, which load at the first
# ``wrap``, and that first wrap itself (it clones the client). The client is built before
# revenium is imported, so its construction (the user's own cost) is timed apart.
ADAPTER_IMPORT_SNIPPET = """
import os, time
perf = time.perf_counter
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1])
r0, t0 = rss(), perf()
import SDK
t1 = perf()
r1 = rss()
client = SDK.CLIENT(api_key="k")
t2 = perf()
r2 = rss()
import revenium
wrapped = revenium.wrap(client)
t3 = perf()
r3 = rss()
import json, sys
page = os.sysconf("SC_PAGE_SIZE") / 2**20
mods = sorted(m for m in sys.modules if m == "revenium" or m.startswith("revenium."))
print("RESULT " + json.dumps({
    "sdk_ms": (t1 - t0) * 1e3, "client_ms": (t2 - t1) * 1e3, "adapter_ms": (t3 - t2) * 1e3,
    "sdk_mb": (r1 - r0) * page, "adapter_mb": (r3 - r2) * page,
    "runtime_loaded": "revenium.runtime" in sys.modules, "modules": mods}))
"""
PACKAGES = ("revenium", "httpx", "httpcore", "anyio", "openai", "anthropic", "google-genai",
            "httpx2")  # fmt: skip
# Figure 10's runs: result key -> (the provider SDK's module, its client class).
ADAPTER_IMPORTS = {
    "openai_import": ("openai", "OpenAI"),
    "anthropic_import": ("anthropic", "Anthropic"),
    "google_import": ("google.genai", "Client"),
}


def adapter_import_snippet(sdk: str, client: str) -> str:
    return ADAPTER_IMPORT_SNIPPET.replace("SDK", sdk).replace("CLIENT", client)


# The existing SDK (figure 12): whether it imports in the figures' interpreter, and which
# version. ``nox -s bench`` installs it into the bench venv only; it is never a dependency.
SEED_DIST = "revenium-python-sdk"
SEED_PIN = f"{SEED_DIST}==0.12.0"
SEED_PROBE = """
import json, os
os.environ["REVENIUM_METERING_API_KEY"] = "hak_probe_00000000"  # no "key missing" error
try:
    import revenium_middleware.openai as integration
    from importlib import metadata
    if integration.create_wrapper is None:  # its import swallows a missing wrapt or openai
        out = {"missing": "revenium_middleware.openai loaded without its OpenAI wrappers"}
    else:
        out = {"version": metadata.version("revenium-python-sdk")}
except Exception as error:
    out = {"missing": f"{type(error).__name__}: {error}"}
print("RESULT " + json.dumps(out))
"""


# --------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Job:
    """One repetition of one figure: a key to file the result under, a figure, parameters."""

    key: str
    figure: str
    params: dict[str, Any]
    rounds: int = 0  # runs in the first ``rounds`` rounds only; 0: in every round


# Figures 7-9 and 12: the wrapped client against the same client unwrapped. Blocks of calls
# (or of streams) alternate in each process; every process is one repetition.
CALLS_PER_BLOCK = 200
CALL_PAIRS = 15
LOOPBACK_CALLS = 100
LOOPBACK_PAIRS = 10
STREAM_CHUNKS = 1_000
STREAM_PAIRS = 25
# Figure 12: the existing SDK adds hundreds of µs a call and delivers each record slowly, so
# fewer and smaller blocks measure it well enough and keep the run short; ours on the same
# workload (12b) runs the same blocks.
SEED_CALLS = 100
SEED_PAIRS = 10
SEED_STREAM_PAIRS = 15
LAG_CALLS = 1_000  # figure 13: calls at once
LAG_PAIRS = 2


def _call(*, quick: bool, calls: int = CALLS_PER_BLOCK, pairs: int = CALL_PAIRS) -> dict[str, Any]:
    return {"kind": "call", "calls": 50 if quick else calls, "warmup": 1,
            "pairs": 4 if quick else pairs}  # fmt: skip


def _stream(*, quick: bool, pairs: int = STREAM_PAIRS) -> dict[str, Any]:
    return {"kind": "stream", "chunks": STREAM_CHUNKS, "streams": 1, "warmup": 1,
            "pairs": 3 if quick else pairs}  # fmt: skip


def openai_jobs(*, quick: bool, openai_url: str) -> list[Job]:
    """Figures 7-9 and 13; ``quick`` runs far fewer blocks, in the first round only."""
    call, stream = _call(quick=quick), _stream(quick=quick)
    jobs = [
        Job(
            f"{provider}_{colour}{'' if delivery == 'ledger' else '_capture'}",
            "call_overhead",
            {**call, "provider": provider, "is_async": colour == "async", "delivery": delivery},
        )
        for provider, deliveries in (
            ("openai", ("ledger", "capture")),
            ("anthropic", ("ledger",)),
            ("google", ("ledger",)),
        )
        for colour in ("sync", "async")
        for delivery in deliveries
    ]
    jobs.append(
        Job(
            "openai_loopback",
            "call_overhead",
            {
                "kind": "call",
                "calls": 25 if quick else LOOPBACK_CALLS,
                "pairs": 3 if quick else LOOPBACK_PAIRS,
                "warmup": 1,
                "is_async": False,
                "delivery": "ledger",
                "openai_url": openai_url,
            },
        )
    )
    jobs += [
        Job(f"stream_{colour}", "call_overhead", {**stream, "is_async": colour == "async"})
        for colour in ("sync", "async")
    ]
    lag = {"calls": LAG_CALLS, "pairs": 1 if quick else LAG_PAIRS, "warmup": 1}
    jobs += [
        Job("loop_lag", "loop_lag", lag),
        Job("loop_lag_capture", "loop_lag", {**lag, "delivery": "capture"}),
    ]
    if quick:  # a smoke run: each of these processes costs a second of imports alone
        return [Job(j.key, j.figure, j.params, rounds=1) for j in jobs]
    return jobs


def seed_jobs(*, quick: bool, api: str) -> list[Job]:
    """Figure 12: the existing SDK on the workloads of 7a, 7c and 9a, sending to the fake API,
    and ours on 7a's workload sending to the same fake API."""
    call = _call(quick=quick, calls=SEED_CALLS, pairs=SEED_PAIRS)
    stream = _stream(quick=quick, pairs=SEED_STREAM_PAIRS)
    jobs = [
        Job("seed_sync", "call_overhead", {**call, "is_async": False, "delivery": "seed"}),
        Job("seed_async", "call_overhead", {**call, "is_async": True, "delivery": "seed"}),
        Job("seed_stream", "call_overhead", {**stream, "is_async": False, "delivery": "seed"}),
        Job("openai_sync_api", "call_overhead", {**call, "is_async": False, "delivery": "api"}),
    ]
    jobs = [Job(j.key, j.figure, {**j.params, "base_url": api}) for j in jobs]
    if quick:
        return [Job(j.key, j.figure, j.params, rounds=1) for j in jobs]
    return jobs


def plan(*, scale: int, api: str, openai_url: str, seed: bool) -> list[Job]:
    """Every repetition of a round; ``scale`` divides every record count (``--quick``).

    ``seed``: the existing SDK imports here, so figure 12 runs.
    """
    closed = closed_port_url()
    return [
        *openai_jobs(quick=scale > 1, openai_url=openai_url),
        *(seed_jobs(quick=scale > 1, api=api) if seed else []),
        Job("handoff", "handoff", {"batch": 100, "batches": 200 // scale, "idle": 200 // scale}),
        Job(
            "throughput",
            "throughput",
            {"base_url": api, "n": 5_000 // scale, "warmup": 500 // scale},
        ),
        Job(
            "raw_httpx",
            "raw_httpx",
            {
                "base_url": api,
                "n": 5_000 // scale,
                "warmup": 500 // scale,
                "concurrency": CONCURRENCY,
            },
        ),
        Job(
            "stall",
            "loop_stall",
            {"base_url": api, "n": 20_000 // scale, "burst": 200, "control": False},
        ),
        Job(
            "stall_control",
            "loop_stall",
            {
                "base_url": api,
                "n": 20_000 // scale,
                "burst": 200,
                "control": True,
                "idle_seconds": 1.0 / scale,
            },
        ),
        Job(
            "memory",
            "memory_down",
            {"base_url": closed, "n": 100_000 // scale, "batch": 1_000, "yield_gil": True},
        ),
        Job(
            "memory_tight",
            "memory_down",
            {"base_url": closed, "n": 100_000 // scale, "batch": 1_000, "yield_gil": False},
        ),
        Job("memory_idle", "memory_idle", {"base_url": closed}),
        Job("shutdown", "shutdown_flush", {"base_url": api, "n": 10_000 // scale, "timeout": 60}),
        Job(
            "shutdown_default",
            "shutdown_flush",
            {"base_url": api, "n": 10_000 // scale, "timeout": None},
        ),
        *(
            Job(f"check_{rules}", "enforcement_check", {"rules": rules, "n": 20_000 // scale})
            for rules in (0, 10, 1_000)
        ),
        Job(
            "check_1000_same",
            "enforcement_check",
            {"rules": 1_000, "n": 2_000 // scale, "same_model": True},
        ),
    ]


def run_all(
    runner: Runner, jobs: list[Job], rounds: int, *, adapter_imports: int
) -> dict[str, list[Result]]:
    """``rounds`` interleaved rounds; the import runs are spread over the rounds too."""
    results: dict[str, list[Result]] = {job.key: [] for job in jobs}
    # One throwaway interpreter first, so the first measured one does not pay for a cold
    # page cache.
    modules = "revenium, httpx, anyio, cattrs, openai, anthropic, google.genai"
    runner.command("warm-up", ["-c", f"import {modules}; print('RESULT {{}}')"])
    commands = {
        "import": (["-c", IMPORT_SNIPPET], IMPORT_RUNS),
        **{
            key: (["-c", adapter_import_snippet(sdk, client)], adapter_imports)
            for key, (sdk, client) in ADAPTER_IMPORTS.items()
        },
    }
    left = {key: runs for key, (_args, runs) in commands.items()}
    for key in commands:
        results[key] = []
    for r in range(rounds):
        order = jobs[r % len(jobs) :] + jobs[: r % len(jobs)]
        for job in (j for j in order if not j.rounds or r < j.rounds):
            started = time.perf_counter()
            result = runner.figure(job.figure, job.params)
            print(
                f"  round {r + 1}/{rounds} {job.key:<20} {time.perf_counter() - started:5.1f} s",
                file=sys.stderr,
                flush=True,
            )
            if result is not None:
                results[job.key].append(result)
        for key, (args, _runs) in commands.items():
            for _ in range(left[key] // (rounds - r)):
                result = runner.command(key, args)
                left[key] -= 1
                if result is not None:
                    results[key].append(result)
    return results


# Figures that miss their bar are profiled once, each in a process of its own: which job,
# and the profile's parameters (smaller blocks: the profiler slows everything threefold).
PROFILED: dict[str, str] = {
    "openai_sync": "7a",
    "openai_async": "7c",
    "anthropic_sync": "7f",
    "anthropic_async": "7g",
    "google_sync": "7h",
    "google_async": "7i",
    "stream_sync": "9a",
    "stream_async": "9b",
}


def run_profiles(
    runner: Runner, jobs: list[Job], missed: list[str], *, quick: bool
) -> dict[str, Result]:
    """cProfile, once, for every figure in ``missed`` (see ``figures.call_profile``)."""
    by_key = {job.key: job for job in jobs}
    profiles: dict[str, Result] = {}
    for key in missed[:1] if quick else missed:  # a smoke run checks that profiling works
        params = dict(by_key[key].params)
        if params["kind"] == "stream":
            params.update(streams=1 if quick else 2, warmup=1)
        else:
            params.update(calls=100 if quick else 400, warmup=1, threads=True)
        started = time.perf_counter()
        result = runner.figure("call_profile", params)
        print(
            f"  profile {key:<20} {time.perf_counter() - started:5.1f} s",
            file=sys.stderr,
            flush=True,
        )
        if result is not None:
            profiles[key] = result
    return profiles


# --------------------------------------------------------------------- statistics and rows


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def iqr(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN: the figure failed
        return "n/a"
    return f"{value:,.{digits}f}"


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    figure: str
    value: str
    spread: str
    target: str
    verdict: str


def verdict(ok: bool | None) -> str:
    """``None`` when PRODUCT.md gives no bar to meet for this figure."""
    if ok is None:
        return "(reported)"
    return "met" if ok else "**missed**"


def pooled(results: list[Result], key: str) -> list[float]:
    return [x for r in results for x in r.get(key, [])]


def per_rep(results: list[Result], key: str) -> list[float]:
    return [float(r[key]) for r in results if key in r]


def minmax(values: list[float], digits: int = 1, unit: str = "") -> str:
    if not values:
        return "n/a"
    return (
        f"{fmt(min(values), digits)}-{fmt(max(values), digits)}{unit} (min-max, {len(values)} runs)"
    )


def quartiles(values: list[float], digits: int = 2) -> str:
    lo, hi = iqr(values)
    return f"{fmt(lo, digits)}-{fmt(hi, digits)} (IQR, {len(values)} batches)"


def rows_for(res: dict[str, list[Result]], seed: str) -> list[Row]:
    """Turn per-repetition results into table rows, each beside its PRODUCT.md bar."""
    rows: list[Row] = []
    n = {k: v[0].get("n") for k, v in res.items() if v}

    hand = res["handoff"]
    submit, idle = pooled(hand, "submit"), pooled(hand, "idle")
    rows += [
        Row(
            "1a. Hand-off `submit(record)` alone, per record (batches of 100, runtime running)",
            f"{fmt(median(submit), 2)} µs",
            quartiles(submit),
            "a few µs (≤ 5 µs), inside the ≤ 15 µs per call overhead bar",
            verdict(median(submit) <= 5) if submit else "failed",
        ),
        Row(
            "1b. Hand-off of a lone record to a sleeping runtime (pays the loop wake-up)",
            f"{fmt(median(idle), 2)} µs",
            f"{quartiles(idle).replace('batches', 'records')}; p99 {fmt(_p99(idle), 1)} µs",
            "a few µs (≤ 5 µs)",
            verdict(median(idle) <= 5) if idle else "failed",
        ),
    ]
    for key, label in (
        ("report", "1c. `report_tool_call(...)`, per call, no session"),
        ("report_session", "1d. `report_tool_call(...)`, per call, inside a 3-field `session()`"),
    ):
        values = pooled(hand, key)
        rows.append(
            Row(
                label,
                f"{fmt(median(values), 2)} µs",
                quartiles(values),
                "≤ 15 µs added per call",
                verdict(median(values) <= 15) if values else "failed",
            )
        )

    # The same call while the runtime thread is busy delivering: from the stall figure's
    # production phase (n records in bursts of 200), beside its control (no runtime).
    busy = [r["produce_seconds"] / r["n"] * 1e6 for r in res["stall"]]
    calm = [r["produce_seconds"] / r["n"] * 1e6 for r in res["stall_control"]]
    rows.append(
        Row(
            "1e. `report_tool_call(...)` in a session while the runtime is delivering "
            "(3a's production phase / N; control without a runtime)",
            f"{fmt(median(busy), 1)} µs (control {fmt(median(calm), 1)} µs)",
            minmax(busy, 1),
            "≤ 15 µs added per call",
            verdict(median(busy) <= 15) if busy else "failed",
        )
    )

    thr, raw = res["throughput"], res["raw_httpx"]
    rate, cpu = per_rep(thr, "rate"), per_rep(thr, "cpu_us")
    raw_rate, raw_cpu = per_rep(raw, "rate"), per_rep(raw, "cpu_us")
    lost = [r["n"] - r["delivered"] for r in thr]
    rows += [
        Row(
            f"2a. Delivery to the fake API, {n.get('throughput', 0):,} records, "
            f"concurrency {CONCURRENCY} (first submit → flush done)",
            f"{fmt(median(rate), 0)} records/s",
            minmax(rate, 0),
            "≥ 1,000 records/s",
            verdict(median(rate) >= 1000 and not any(lost)) if rate else "failed",
        ),
        Row(
            "2b. Process CPU per delivered record (all threads)",
            f"{fmt(median(cpu), 0)} µs",
            minmax(cpu, 0),
            "reported beside raw httpx's (2d)",
            f"{fmt(median(cpu) / median(raw_cpu), 2)}x raw httpx" if cpu and raw_cpu else "n/a",
        ),
        Row(
            f"2c. Raw `httpx.AsyncClient`, same bodies, concurrency {CONCURRENCY}",
            f"{fmt(median(raw_rate), 0)} requests/s",
            minmax(raw_rate, 0),
            "(reference)",
            "(reference)",
        ),
        Row(
            "2d. Raw httpx: process CPU per request",
            f"{fmt(median(raw_cpu), 0)} µs",
            minmax(raw_cpu, 0),
            "(reference)",
            "(reference)",
        ),
    ]

    stall, control = res["stall"], res["stall_control"]
    smax, sp99 = per_rep(stall, "max_ms"), per_rep(stall, "p99_ms")
    cmax, cp99 = per_rep(control, "max_ms"), per_rep(control, "p99_ms")
    no_bar = "never blocks the caller's loop (no number given)"
    rows += [
        Row(
            f"3a. Worst lateness of a 1 ms ticker on the caller's loop, "
            f"{n.get('stall', 0):,} records in bursts of 200, until delivered",
            f"{fmt(median(smax), 1)} ms",
            minmax(smax, 1),
            no_bar,
            verdict(None),
        ),
        Row(
            "3b. Same, p99 lateness",
            f"{fmt(median(sp99), 2)} ms",
            minmax(sp99, 2),
            no_bar,
            verdict(None),
        ),
        Row(
            "3c. Control: same producer, delivery replaced by a no-op (max / p99)",
            f"{fmt(median(cmax), 1)} / {fmt(median(cp99), 2)} ms",
            minmax(cmax, 1),
            "(reference)",
            "(reference)",
        ),
    ]

    mem, tight, base = res["memory"], res["memory_tight"], res["memory_idle"]
    peak, base_rss = per_rep(mem, "peak_rss_mb"), per_rep(base, "peak_rss_mb")
    spooled, dropped = per_rep(mem, "spooled"), per_rep(mem, "dropped")
    t_drop, t_peak = per_rep(tight, "dropped"), per_rep(tight, "peak_rss_mb")
    n_mem = n.get("memory", 0) or 0
    rows += [
        Row(
            f"4a. Peak RSS, API down, {n_mem:,} records (batches of 1,000, GIL yield "
            "between batches), then `shutdown_sync(30)`",
            f"{fmt(median(peak), 1)} MB",
            minmax(peak, 1),
            "memory bounded while the API is down",
            (
                f"+{fmt(median(peak) - median(base_rss), 1)} MB over idle "
                f"({fmt((median(peak) - median(base_rss)) * 2**20 / n_mem, 0)} B/record)"
            )
            if peak and base_rss and n_mem
            else "n/a",
        ),
        Row(
            "4b. Idle baseline: import, start the runtime with one record",
            f"{fmt(median(base_rss), 1)} MB",
            minmax(base_rss, 1),
            "(reference)",
            "(reference)",
        ),
        Row(
            "4c. Spooled / dropped (4a)",
            f"{fmt(median(spooled), 0)} / {fmt(median(dropped), 0)}",
            f"dropped {minmax(dropped, 0)}; runs with drops: {_lossy(dropped)}",
            f"{n_mem:,} spooled, 0 dropped (0 lost; overflow goes to the spool)",
            verdict(all(s == n_mem for s in spooled) and not any(dropped)) if spooled else "failed",
        ),
        Row(
            "4d. Same as 4a, but one tight producer loop (no yield at all): dropped / peak RSS",
            f"{fmt(median(t_drop), 0)} dropped / {fmt(median(t_peak), 1)} MB",
            f"dropped {minmax(t_drop, 0)}; runs with drops: {_lossy(t_drop)}",
            "0 dropped",
            verdict(not any(t_drop)) if t_drop else "failed",
        ),
    ]

    shut, default = res["shutdown"], res["shutdown_default"]
    secs, delivered = per_rep(shut, "seconds"), per_rep(shut, "delivered")
    d_secs = per_rep(default, "seconds")
    d_deliv, d_spool = per_rep(default, "delivered"), per_rep(default, "spooled")
    d_drop = per_rep(default, "dropped")
    n_shut = n.get("shutdown", 0) or 0
    rows += [
        Row(
            f"5a. `shutdown_sync(timeout=60)` right after producing {n_shut:,} records",
            f"{fmt(median(secs), 2)} s, {fmt(median(delivered), 0)} delivered",
            minmax(secs, 2, " s"),
            f"0 lost; ≤ {n_shut / 1000:g} s (the 1,000 records/s bar)",
            verdict(all(d == n_shut for d in delivered) and median(secs) <= n_shut / 1000)
            if secs
            else "failed",
        ),
        Row(
            "5b. Same with the default timeout (5 s): delivered / spooled",
            f"{fmt(median(d_deliv), 0)} / {fmt(median(d_spool), 0)} in {fmt(median(d_secs), 2)} s",
            minmax(d_secs, 2, " s"),
            "0 lost (the rest waits in the spool)",
            verdict(
                all(a + b == n_shut for a, b in zip(d_deliv, d_spool, strict=True))
                and not any(d_drop)
            )
            if d_secs
            else "failed",
        ),
    ]

    imp = res["import"]
    imp_ms, ses_ms = per_rep(imp, "import_ms"), per_rep(imp, "session_ms")
    sdks = sorted({m for r in imp for m in r.get("provider_sdks", [])})
    rows += [
        Row(
            "6a. `import revenium` (fresh interpreter)",
            f"{fmt(median(imp_ms), 2)} ms",
            minmax(imp_ms, 2, " ms"),
            "≤ 50 ms and no provider SDK imported",
            verdict(median(imp_ms) <= 50 and not sdks) if imp_ms else "failed",
        ),
        Row(
            "6b. First `with revenium.session(...)` (loads the scope machinery)",
            f"{fmt(median(ses_ms), 1)} ms",
            minmax(ses_ms, 1, " ms"),
            "no bar (paid once, at first use)",
            verdict(None),
        ),
    ]
    for key, label in (
        ("check_0", "11a. Cost-control check before a call, no rules in force"),
        ("check_10", "11b. The same, 10 rules in force, each naming another model"),
        ("check_1000", "11c. The same, 1,000 rules in force, each naming another model"),
        ("check_1000_same", "11d. 1,000 rules all naming the call's model (all evaluated)"),
    ):
        checks = pooled(res.get(key, []), "check_us")
        rows.append(
            Row(
                label + "; none blocks",
                f"{fmt(median(checks), 2)} µs" if checks else "failed",
                quartiles(checks) if checks else "",
                "microseconds: inside the ≤ 15 µs per call bar"
                if key != "check_1000_same"
                else "no bar (a pathological feed)",
                (verdict(median(checks) <= 15) if key != "check_1000_same" else verdict(None))
                if checks
                else "failed",
            )
        )
    return rows + openai_rows(res) + seed_rows(res, seed) + lag_rows(res)


# --------------------------------------------------------------------- 7-10: OpenAI rows

CALL_BAR = "≤ 15 µs added a call and ratio ≤ 1.05"
CHUNK_BAR = "≤ 1 µs added a chunk"
TITLES = {
    "openai_sync": "`chat.completions.create`, sync, in-process transport, local ledger on",
    "openai_sync_capture": "Same, nothing delivered (`testing.capture`): the caller's side alone",
    "openai_async": "`chat.completions.create`, async, in-process transport, local ledger on",
    "openai_async_capture": "Same, async, nothing delivered (`testing.capture`)",
    "anthropic_sync": "Anthropic `messages.create`, sync, in-process transport, local ledger on",
    "anthropic_async": "Anthropic `messages.create`, async, in-process transport, local ledger on",
    "google_sync": "Google `models.generate_content`, sync, in-process transport, local ledger on",
    "google_async": (
        "Google `aio.models.generate_content`, async, in-process transport, local ledger on"
    ),
    "stream_sync": "1,000-chunk chat stream iterated to its end, sync, in-process transport",
    "stream_async": "Same, async",
}


def overhead_ok(reps: list[Result], *, per_chunk: bool) -> bool | None:
    """The PRODUCT.md overhead bar; ``None`` when the figure produced nothing."""
    added, ratio = pooled(reps, "added_us"), pooled(reps, "ratio")
    if not added:
        return None
    if per_chunk:
        return median(added) <= 1
    return median(added) <= 15 and median(ratio) <= 1.05


def missed_overhead(res: dict[str, list[Result]]) -> list[str]:
    """The profiled figures (7a, 7c, 7f-7i, 9a, 9b) that missed their bar: these get a
    profile."""
    return [
        key
        for key in PROFILED
        if overhead_ok(res.get(key, []), per_chunk=key.startswith("stream")) is False
    ]


def _unmetered(reps: list[Result]) -> int:
    """Wrapped calls (or streams) that left no record: each must leave exactly one."""
    return sum(abs(r.get("wrapped_calls", 0) - r.get("records", 0)) for r in reps)


def overhead_row(
    label: str,
    reps: list[Result],
    *,
    unit: str,
    target: str,
    beside: str | None = None,
    shown: str | None = None,
) -> Row:
    """Added µs a unit (median of per-pair differences), the ratio, and both sides' times.

    ``beside``: the figure whose verdict decides (this one's is shown in parentheses);
    ``shown``: a verdict cell of its own (for a figure that is not ours).
    """
    added, ratio = pooled(reps, "added_us"), pooled(reps, "ratio")
    plain, wrapped = pooled(reps, "plain_us"), pooled(reps, "wrapped_us")
    if not added:
        return Row(label, "n/a", "n/a", target, "failed")
    lo, hi = iqr(added)
    digits = 2 if unit == "chunk" else 1
    ok = overhead_ok(reps, per_chunk=unit == "chunk") if target != "(reported)" else None
    if shown is not None:
        pass
    elif ok is None:
        shown = verdict(None)
    elif beside:
        shown = f"({'met' if ok else 'missed'}; {beside} decides)"
    else:
        shown = verdict(ok)
    if _unmetered(reps):
        shown += f"; {_unmetered(reps)} wrapped calls without a record"
    sign = "+" if median(added) >= 0 else ""
    return Row(
        label,
        f"{sign}{fmt(median(added), digits)} µs a {unit} (ratio {fmt(median(ratio), 3)})",
        f"{fmt(lo, digits)} to {fmt(hi, digits)} µs (IQR, {len(added)} block pairs); "
        f"{fmt(median(plain), 1)} → {fmt(median(wrapped), 1)} µs a {unit}",
        target,
        shown,
    )


def titled_row(res: dict[str, list[Result]], number: str, key: str, beside: str = "") -> Row:
    """An overhead row of ours titled from ``TITLES``, against its bar (a call's or a chunk's)."""
    unit = "chunk" if key.startswith("stream") else "call"
    target = CHUNK_BAR if unit == "chunk" else CALL_BAR
    label = f"{number}. {TITLES[key]}"
    return overhead_row(label, res[key], unit=unit, target=target, beside=beside or None)


def openai_rows(res: dict[str, list[Result]]) -> list[Row]:
    rows = [
        titled_row(res, "7a", "openai_sync"),
        titled_row(res, "7b", "openai_sync_capture", beside="7a"),
        titled_row(res, "7c", "openai_async"),
        titled_row(res, "7d", "openai_async_capture", beside="7c"),
    ]
    drain_sync = pooled(res["openai_sync"], "drain_us")
    drain_async = pooled(res["openai_async"], "drain_us")
    rows += [
        Row(
            "7e. Delivery work left at the end of each 7a / 7c block (the untimed `flush` "
            "between blocks), a call",
            f"{fmt(median(drain_sync), 1)} / {fmt(median(drain_async), 1)} µs",
            quartiles(drain_sync, 1).replace("batches", "7a blocks"),
            "(reported: the runtime's work, on its own thread)",
            verdict(None),
        ),
        titled_row(res, "7f", "anthropic_sync"),
        titled_row(res, "7g", "anthropic_async"),
        titled_row(res, "7h", "google_sync"),
        titled_row(res, "7i", "google_async"),
        overhead_row(
            "8. `chat.completions.create`, sync, over loopback HTTP to the stand-in server "
            "(its own process), local ledger on",
            res["openai_loopback"],
            unit="call",
            target="(reported)",
        ),
        titled_row(res, "9a", "stream_sync"),
        titled_row(res, "9b", "stream_async"),
    ]
    rows += import_rows(res["openai_import"], ("10a", "10b"), "openai", "openai.OpenAI")
    rows += import_rows(res["anthropic_import"], ("10c", "10d"), "anthropic", "anthropic.Anthropic")
    rows += import_rows(res["google_import"], ("10e", "10f"), "google.genai", "genai.Client")
    return rows


def import_rows(imp: list[Result], numbers: tuple[str, str], sdk: str, client: str) -> list[Row]:
    """Figure 10 for one provider SDK: the SDK's import, then revenium's and the first wrap."""
    ms, mb = per_rep(imp, "sdk_ms"), per_rep(imp, "sdk_mb")
    ams, amb, cms = (
        per_rep(imp, "adapter_ms"),
        per_rep(imp, "adapter_mb"),
        per_rep(imp, "client_ms"),
    )
    runtime = any(r.get("runtime_loaded") for r in imp)
    return [
        Row(
            f"{numbers[0]}. `import {sdk}` alone (fresh interpreter)",
            f"{fmt(median(ms), 1)} ms, +{fmt(median(mb), 1)} MB RSS",
            minmax(ms, 1, " ms"),
            "(reference)",
            "(reference)",
        ),
        Row(
            f"{numbers[1]}. After it, `import revenium` + the first "
            f"`revenium.wrap({client}(...))`: the adapter's modules and the first wrap",
            f"+{fmt(median(ams), 1)} ms, +{fmt(median(amb), 1)} MB RSS",
            f"{minmax(ams, 1, ' ms')}; building the client ({fmt(median(cms), 1)} ms) not counted",
            "no bar (paid once, at the first wrap)",
            verdict(None) + ("; the runtime was loaded by wrap" if runtime else ""),
        ),
    ]


def _ours(reps: list[Result], unit: str = "call") -> str:
    """Our figure in a few words, for the verdict cell of the existing SDK's."""
    added, ratio = pooled(reps, "added_us"), pooled(reps, "ratio")
    if not added:
        return "n/a"
    digits = 2 if unit == "chunk" else 1
    return f"{fmt(median(added), digits)} µs a {unit}, ratio {fmt(median(ratio), 3)}"


def seed_rows(res: dict[str, list[Result]], seed: str) -> list[Row]:
    """Figure 12: the existing SDK beside ours, from the same run; ``seed`` is its version, or
    why it did not import."""
    name = f"`{SEED_DIST}`"
    if not seed.startswith("version "):
        return [
            Row(
                f"12. The existing SDK, {name}, on the workloads of 7a, 7c and 9a",
                "not installed",
                seed,
                f"(reported beside ours; `pip install {SEED_PIN}`, as `nox -s bench` does)",
                "skipped",
            )
        ]
    label = f"{name} {seed.removeprefix('version ')} (patched on import)"
    api = "sending to the fake API"

    def theirs(number: str, key: str, workload: str, ours: str) -> Row:
        unit = "chunk" if key.endswith("stream") else "call"
        return overhead_row(
            f"{number}. {label}: {workload}, {api}",
            res.get(key, []),
            unit=unit,
            target="(reported beside ours)",
            shown="ours: " + "; ".join(f"{n} {_ours(res.get(k, []), unit)}" for n, k in ours),
        )

    rows = [
        theirs("12a", "seed_sync", "7a's workload, sync",
               [("7a", "openai_sync"), ("12b", "openai_sync_api")]),
        overhead_row(
            f"12b. Ours on the same workload, {api} too (7a with `api_key` and `base_url`)",
            res.get("openai_sync_api", []),
            unit="call",
            target=CALL_BAR,
            beside="7a",
        ),
        theirs("12c", "seed_async", "7c's workload, async", [("7c", "openai_async")]),
        theirs("12d", "seed_stream", "9a's 1,000-chunk stream, sync", [("9a", "stream_sync")]),
    ]  # fmt: skip
    keys = ("seed_sync", "openai_sync_api")
    drain = {k: pooled(res.get(k, []), "drain_us") for k in keys}
    cpu = {k: pooled(res.get(k, []), "cpu_added_us") for k in keys}
    # How much delivery lands inside a block rather than after it depends on how the threads
    # share the GIL, which varies from run to run: the sum is the steadier figure.
    total = {k: median(pooled(res.get(k, []), "added_us")) + median(drain[k]) for k in keys}
    rows += [
        Row(
            "12e. Delivery work left at the end of each block (the untimed flush), a call: "
            "12a / 12b",
            f"{fmt(median(drain['seed_sync']), 0)} / {fmt(median(drain['openai_sync_api']), 0)} µs",
            quartiles(drain["seed_sync"], 0).replace("batches", "12a blocks"),
            "(reported: delivery on background threads)",
            f"(reported) added + left, a call: {fmt(total['seed_sync'], 0)} / "
            f"{fmt(total['openai_sync_api'], 0)} µs",
        ),
        Row(
            "12f. The caller's thread CPU time added a call (`time.thread_time`, which leaves "
            "out waiting for the GIL): 12a / 12b",
            f"{fmt(median(cpu['seed_sync']), 1)} / {fmt(median(cpu['openai_sync_api']), 1)} µs",
            quartiles(cpu["seed_sync"], 1).replace("batches", "12a block pairs"),
            "(reported: the metering's own work on the caller's thread)",
            verdict(None),
        ),
    ]
    return rows


def lag_rows(res: dict[str, list[Result]]) -> list[Row]:
    """Figure 13: the caller's loop while 1,000 wrapped calls run at once, beside the control."""
    reps = res.get("loop_lag", [])
    calls = reps[0]["calls"] if reps else LAG_CALLS
    no_bar = "never blocks the caller's loop (no number given)"

    def worst(key: str) -> tuple[list[float], str, str]:
        """The per-burst worst lateness, the value cell (beside the control) and the verdict."""
        both = {k: pooled(res.get(key, []), f"{k}_burst_max_ms") for k in ("wrapped", "control")}
        held = (median(both["wrapped"]) - median(both["control"])) / calls * 1e3
        value = (f"{fmt(median(both['wrapped']), 0)} ms (control "
                 f"{fmt(median(both['control']), 0)} ms)")  # fmt: skip
        shown = f"(reported) {'+' if held >= 0 else ''}{fmt(held, 1)} µs a call in its turns"
        return both["wrapped"], value, shown

    lagged, value, shown = worst("loop_lag")
    if not lagged:
        return [Row(f"13. Loop lag under {calls:,} concurrent wrapped calls", "n/a", "n/a",
                    no_bar, "failed")]  # fmt: skip
    p99 = {k: per_rep(reps, f"{k}_p99_ms") for k in ("wrapped", "control")}
    secs = {k: pooled(reps, f"{k}_burst_seconds") for k in ("wrapped", "control")}
    ticks = sum(r.get("wrapped_ticks", 0) for r in reps)
    captured, captured_value, captured_shown = worst("loop_lag_capture")
    return [
        Row(
            f"13a. Worst lateness of a 1 ms ticker on the caller's loop while {calls:,} wrapped "
            "`AsyncOpenAI` `chat.completions.create` calls run at once (`gather`, in-process "
            "transport yielding to the loop), local ledger on, median of bursts; control: the "
            "client unwrapped",
            value,
            minmax(lagged, 0, " ms").replace("runs", "bursts"),
            no_bar,
            shown,
        ),
        Row(
            "13b. Same, p99 lateness (the loop's turns through all the calls are few)",
            f"{fmt(median(p99['wrapped']), 0)} ms (control {fmt(median(p99['control']), 0)} ms)",
            f"{ticks} ticks in all; {minmax(p99['wrapped'], 0, ' ms')}",
            no_bar,
            verdict(None),
        ),
        Row(
            f"13c. Same, the {calls:,} calls from first to last",
            f"{fmt(median(secs['wrapped']) * 1e3, 0)} ms (control "
            f"{fmt(median(secs['control']) * 1e3, 0)} ms)",
            minmax([x * 1e3 for x in secs["wrapped"]], 0, " ms").replace("runs", "bursts"),
            "(reference)",
            verdict(None),
        ),
        Row(
            "13d. 13a inside `testing.capture(strict_mode=False)`, nothing delivered: the "
            "caller's side alone (13a minus 13d: the runtime's delivery sharing the GIL)",
            captured_value if captured else "n/a",
            minmax(captured, 0, " ms").replace("runs", "bursts"),
            no_bar,
            captured_shown if captured else "failed",
        ),
    ]


def _lossy(dropped: list[float]) -> str:
    return f"{sum(1 for d in dropped if d)} of {len(dropped)}"


def _p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


# --------------------------------------------------------------------- the document

HEADER = """\
# Benchmarks

Generated by `benchmarks/run.py`; every run rewrites this page, so do not edit it by hand.
What each figure means: `benchmarks/README.md`. Targets are the quality bars of the product
decisions; "(reported)" marks a figure that has no numeric bar. Each figure is the median of
its repetitions (every repetition is a fresh process, interleaved with the other figures),
with its spread.
"""

METHOD = """\
## How it is measured

- **1** The records of 1a are built before the clock starts; `perf_counter` brackets 100
  `submit` calls, and `flush_sync` empties the buffer between batches, so each batch starts
  from the same idle runtime (its first record pays the wake-up). 1b times one `submit` to a
  runtime whose thread is asleep in its selector. 1c-1d time the public call: record
  construction, metadata merge and hand-off. Destination: the local ledger (the hand-off does
  not depend on it). 1e is the same call timed while the runtime thread is busy: the
  production phase of figure 3 divided by its record count.
- **2** One process submits pre-built records and waits in `flush_sync`. `time.process_time`
  counts every thread, so CPU per record is the sender's whole cost (encoding, HTTP,
  bookkeeping). The raw client POSTs the runtime's own encoding of the same record, with the
  same headers, from 8 tasks in `asyncio.run`. The fake API runs in its own process.
- **3** A task ticks `await asyncio.sleep(0.001)` and records how late it wakes, while the same
  loop calls `report_tool_call` in bursts of 200 per `await asyncio.sleep(0)` and then awaits
  `revenium.flush()`; the ticker watches until delivery is complete. The control replaces the
  delivery with a no-op (`revenium.sink.set_delivery`) and then watches the idle loop.
- **4** The API URL is a port that was bound and closed (connection refused). 4a produces with
  `report_tool_call` in batches of 1,000 with a `time.sleep(0)` between batches: it only
  releases the GIL, as any I/O a real producer does between paid calls would, and does not
  slow the producer down. 4d has no yield at all. Peak RSS is `getrusage().ru_maxrss` after
  `shutdown_sync(timeout=30)`.
- **5** `report_tool_call` N times on a warm runtime, then `shutdown_sync` at once.
- **6** `python -c` with `perf_counter` around `import revenium`, then around the first
  `with revenium.session(organization_name=...)`; 10 fresh interpreters.
- **7** Non-streamed `chat.completions.create` through the real `openai` SDK, with
  `http_client=httpx2.Client(transport=httpx2.MockTransport(handler))` (`AsyncClient` for
  async). The handler returns a response built once (the stand-in server's chat answer), so
  its cost is the same for every call. The unwrapped client is the very one handed to
  `revenium.wrap`; the wrapped clone shares its HTTP client, so both go through the same
  transport; the loop reads each answer's `choices[0].message.content`, as a caller does. In
  each process, after a warm-up pair, 15 pairs of 200-call blocks alternate in ABBA order
  (unwrapped-wrapped, wrapped-unwrapped, ...). Between blocks, off the clock, the
  runtime is flushed and the garbage collected, so every block starts from the same state.
  Each pair gives the added µs a call (wrapped minus unwrapped) and the ratio; the figure is
  the median over the pairs of all repetitions, the spread their IQR. 7a/7c:
  `revenium.configure(api_key=None, ledger_path=...)`, the runtime writes every record to a
  local SQLite ledger, as it does for a user without a key; its thread shares the GIL with
  the caller during a block. 7b/7d: inside `revenium.testing.capture(strict_mode=False)`, the
  records are kept from delivery and no runtime runs: the caller's side alone. 7e is the
  `flush` between blocks, a call: the runtime's work still pending when a block ended. 7f/7g
  are 7a/7c for `anthropic.Anthropic` / `AsyncAnthropic` `messages.create` (`max_tokens=64`),
  the handler returning the Anthropic stand-in's `message` body; the loop reads
  `content[0].text`. 7h/7i are 7a/7c for Google: one `genai.Client` (the Gemini API, with
  `http_options=types.HttpOptions(httpx_client=..., httpx_async_client=...,
  retry_options=types.HttpRetryOptions(attempts=1))`, both `httpx2` clients over the same
  kind of transport, so `client.aio` does not go through aiohttp), `models.generate_content`
  (7h) and `aio.models.generate_content` (7i) with a plain-string `contents`, the handler
  returning the Google stand-in's `generateContent` body; the loop reads `response.text`.
- **8** As 7a, over a socket: the stand-in OpenAI server
  (`revenium.providers._openai_standin.StandInServer`, a `ThreadingHTTPServer`) in its own
  process, the SDK's default HTTP client, 10 pairs of 100-call blocks.
- **9** A chat stream of 1,000 content chunks, the finish chunk, the usage chunk and
  `[DONE]`, as SSE frames built once and handed out one per read by a `MockTransport`
  handler. Both sides pass `stream_options={"include_usage": True}`, so the requests are
  identical and the wrapper hides no chunk. The loop reads each chunk's
  `choices[0].delta.content`, as a caller does. Blocks of one stream iterated to its end, 25
  pairs in ABBA order, flush and collection between blocks; added a chunk = (wrapped - unwrapped) /
  1,000, which spreads the per-stream work (the record, the hooks) over the chunks.
- **10** `python -c` in 7 fresh interpreters for each SDK: `perf_counter` around
  `import openai` (10a), `import anthropic` (10c) or `import google.genai` (10e), then
  `openai.OpenAI(api_key="k")`, `anthropic.Anthropic(api_key="k")` or
  `google.genai.Client(api_key="k")` (timed apart, not counted), then around
  `import revenium` and `revenium.wrap(client)` (10b, 10d, 10f); resident memory from
  `/proc/self/statm` before and after each.
- **12** The existing SDK, `revenium-python-sdk` (import name `revenium_middleware`), installed
  in the bench environment only. Importing `revenium_middleware.openai` patches
  `Completions.create` and `AsyncCompletions.create` on the `openai` classes for the whole
  process, so it runs in processes of its own, configured as its users do, by its
  environment: `REVENIUM_METERING_API_KEY` and `REVENIUM_METERING_BASE_URL` (the fake API of
  figure 2; it appends `/meter/`). The workloads are 7a's, 7c's and 9a's, with one client:
  the original `create` methods are kept before the import, and the unwrapped blocks call
  them through a subclass of the resource that puts them back. Its delivery is a pool of 32
  daemon worker threads, each with its own event loop, that POST one record per call through
  its generated `httpx` client; between blocks, untimed, `flush_metering(30)` waits until
  they are done, as our `flush` does in 7a. 10 pairs of 100-call blocks (15 pairs of one
  stream for 12d); every call must be delivered (its `success_count`). 12b is ours on 12a's
  blocks, delivering to the same fake API. 12f is `time.thread_time()` around each block:
  the caller's own CPU, without the time it waited for the GIL held by delivery threads.
- **13** One process, one `AsyncOpenAI` client and its wrapped clone over a `MockTransport`
  whose async handler awaits `asyncio.sleep(0)` before answering, so that concurrent calls
  interleave on the loop as they would over sockets. A burst is 1,000 `create` calls in one
  `asyncio.gather`, while a task ticks `await asyncio.sleep(0.001)` and records how late it
  wakes; bursts alternate between the wrapped client and the unwrapped one (the control) in
  ABBA order, 2 pairs after a warm-up pair, with the runtime (local ledger) flushed between
  bursts; 13d is the same inside `revenium.testing.capture(strict_mode=False)`, no runtime.
  asyncio runs every callback that is ready before a timer that fell due meanwhile, so a
  tick waits for whole turns of the loop through the 1,000 calls (one turn builds the
  requests, the next reads the answers): the worst lateness is close to the burst itself,
  and the wrapped side's excess over the control, divided by 1,000, is what metering adds to
  a call's time on the loop, its own work and the runtime thread's turns with the GIL.
"""

REPRODUCE = """\
## How to reproduce

```bash
nox -s bench                       # a fresh venv with the extras and revenium-python-sdk
python benchmarks/run.py           # where revenium is installed; about nine minutes
python benchmarks/run.py --quick   # smoke run: record counts / 10, prints the table only
```

Numbers move with the machine: compare runs made on the same one.
"""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision(package: Path) -> str:
    """The commit measured, and whether the package had uncommitted changes (read-only)."""
    if package != ROOT / "revenium":
        return f"none: revenium imported from `{package}`, not from this checkout"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "revenium"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (revenium/ had uncommitted changes)" if dirty else head


def source_hashes(package: Path) -> dict[str, str]:
    """sha1 of every file of the package, to notice code that changed during a run.

    Other people may be editing the package while the benchmark runs; a figure measured
    half on one version and half on another is worth knowing about.
    """
    return {
        path.relative_to(package.parent).as_posix(): hashlib.sha1(
            path.read_bytes(), usedforsecurity=False
        ).hexdigest()
        for path in sorted(package.rglob("*.py"))
    }


def seed_sdk(runner: Runner) -> str:
    """``version X`` when the existing SDK imports in the figures' interpreter, else why not."""
    found = runner.command("seed-probe", ["-c", SEED_PROBE])
    if found is None:  # the probe itself failed: not the SDK's absence, a real failure
        return "the probe failed (see Failures)"
    if "version" in found:
        return f"version {found['version']}"
    print(f"figure 12 skipped: {SEED_DIST} does not import ({found['missing']})", file=sys.stderr)
    return f"`import revenium_middleware.openai` failed: {found['missing']}"


def locate_package(runner: Runner) -> Path:
    """The ``revenium`` the figure processes import (``PYTHONPATH`` may point elsewhere)."""
    found = runner.command(
        "locate",
        [
            "-c",
            "import json, revenium; print('RESULT ' + json.dumps({'dir': revenium.__path__[0]}))",
        ],
    )
    if found is None:
        raise SystemExit("cannot import revenium:\n" + "\n".join(runner.failures))
    return Path(found["dir"]).resolve()


def module_files(module: str) -> set[str]:
    """Where a module's source may live: ``a/b.py`` or ``a/b/__init__.py``."""
    stem = module.replace(".", "/")
    return {f"{stem}.py", f"{stem}/__init__.py"}


def source_report(
    before: dict[str, str], after: dict[str, str], res: dict[str, list[Result]]
) -> tuple[str, bool]:
    """A line for the Machine table, and whether code the figures loaded changed mid-run.

    Only the modules the figure processes loaded count: an edit to a provider adapter no
    benchmark imports does not make the figures mix versions.
    """
    loaded = {
        f
        for reps in res.values()
        for r in reps
        for m in r.get("modules", [])
        for f in module_files(m)
    }
    measured = sorted(f for f in before.keys() | after.keys() if f in loaded)
    changed = [f for f in measured if before.get(f) != after.get(f)]
    if changed:
        return f"**{', '.join(changed)} changed during the run: figures mix versions**", True
    digest = hashlib.sha1(usedforsecurity=False)
    for f in measured:
        digest.update(f"{f}:{before.get(f)}\n".encode())
    return f"{digest.hexdigest()[:12]} ({len(measured)} modules, unchanged during the run)", False


def render(
    rows: list[Row],
    res: dict[str, list[Result]],
    *,
    quick: bool,
    rounds: int,
    seconds: float,
    load: tuple[float, float],
    package: Path,
    sources: str,
    failures: list[str],
    profiles: dict[str, Result],
) -> str:
    """The whole of docs/benchmarks.md (or the stdout table of a --quick run)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = [
        ("Date", now),
        ("Platform", platform.platform()),
        ("CPU", f"{cpu_model()}, {os.cpu_count()} logical cores"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        (
            "Packages",
            ", ".join(f"{d} {version(d)}" for d in (*PACKAGES, SEED_DIST)),
        ),
        ("Commit", git_revision(package)),
        ("Sources (sha1 of the modules measured)", sources),
        ("Run", f"{'--quick, ' if quick else ''}{rounds} interleaved rounds, {seconds:.0f} s"),
        (
            "Load average (1 min)",
            f"{load[0]:.2f} before, {load[1]:.2f} after (other work on the machine adds noise)",
        ),
    ]
    out = [
        HEADER,
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine),
        "",
        "## Results",
        "",
        table_only(rows),
        "",
    ]
    if failures:
        out += ["## Failures", "", *(f"- `{f.splitlines()[0]}`" for f in failures), ""]
    out += where_time_goes(profiles)
    out += [METHOD, "## Per repetition", "", *details(res), "", REPRODUCE]
    return "\n".join(out)


PROFILE_INTRO = """\
Every overhead figure of ours (7a, 7c, 7f-7i, 9a, 9b) that missed its bar, profiled once with
cProfile in a process of its own: after a warm-up pair, one unwrapped and one wrapped block
(7: 400 calls; 9: two streams), each under the profiler, and the same two blocks without it
(one block each, so noisier than the table). Only the caller's thread is profiled there.
cProfile adds a fixed cost to every Python-level call, so it inflates most the functions that
make many small calls: read the µs below as shares, next to the unprofiled times. *tottime* is
the function's own code, *cumtime* includes what it calls. For 7a, 7c and 7f-7i the
runtime's threads are profiled too, per record written: the runtime is shut down after the
warm-up and a fresh one starts under the profiler for the measured blocks (its start-up
counted, the first imports not; blocking waits left out). That is the delivery work that
shares the GIL with the caller during a block (7a minus 7b) and that 7e drains after it.
"""


def _profile_table(rows: list[Result], unit: str, *, cumulative: bool = True) -> list[str]:
    head = f"| function | where | calls a {unit} | tottime µs a {unit} |"
    lines = [head + (f" cumtime µs a {unit} |" if cumulative else ""), ""]
    lines[1] = "|---|---|---|---|" + ("---|" if cumulative else "")
    for r in rows:
        name = str(r["function"]).replace("|", "\\|")
        line = f"| `{name}` | {r['where']} | {fmt(r['calls'], 2)} | {fmt(r['tottime_us'], 2)} |"
        lines.append(line + (f" {fmt(r['cumtime_us'], 2)} |" if cumulative else ""))
    return lines


def where_time_goes(profiles: dict[str, Result]) -> list[str]:
    """The "Where the time goes" section: one profile per missed figure."""
    if not profiles:
        return []
    out = ["## Where the time goes", "", PROFILE_INTRO]
    for key, prof in profiles.items():
        unit, un, pr = prof["unit"], prof["unprofiled_us"], prof["profiled_us"]
        out += [
            f"### {PROFILED[key]}. {TITLES[key]}",
            "",
            (
                f"A {unit}, unwrapped → wrapped: {fmt(un['plain'], 2)} → "
                f"{fmt(un['wrapped'], 2)} µs without the profiler, {fmt(pr['plain'], 2)} → "
                f"{fmt(pr['wrapped'], 2)} µs under it. revenium's own code (sum of its "
                f"tottime): {fmt(prof['revenium_tottime_us'], 2)} µs a {unit} under the profiler."
            ),
            "",
            "revenium's functions on the caller's thread, by tottime:",
            "",
            *_profile_table(prof["revenium"], unit),
            "",
        ]
        if prof.get("outside"):
            out += [
                (
                    "Outside revenium, called more often on the wrapped path (the added calls and "
                    "their added tottime):"
                ),
                "",
                *_profile_table(prof["outside"], unit, cumulative=False),
                "",
            ]
        threads = prof.get("threads")
        if threads:
            out += [
                (
                    f"The runtime's threads ({', '.join(threads['names'])}), a record "
                    f"({threads['records']:,} records written): "
                    f"{fmt(threads['tottime_us'], 1)} µs of profiled work, of which revenium's "
                    f"own code {fmt(threads['revenium_tottime_us'], 1)} µs:"
                ),
                "",
                *_profile_table(threads["revenium"], "record"),
                "",
                "Outside revenium, on those threads (tottime a record):",
                "",
                *_profile_table(threads["outside"], "record", cumulative=False),
                "",
            ]
    return out


DETAIL_KEYS: dict[str, tuple[str, ...]] = {
    "throughput": ("rate", "cpu_us", "seconds", "delivered"),
    "raw_httpx": ("rate", "cpu_us", "seconds", "delivered"),
    "stall": ("max_ms", "p99_ms", "p50_ms", "produce_max_ms", "total_seconds", "delivered"),
    "stall_control": ("max_ms", "p99_ms", "p50_ms", "produce_seconds"),
    "memory": ("peak_rss_mb", "spooled", "dropped", "produce_seconds", "shutdown_seconds"),
    "memory_tight": ("peak_rss_mb", "spooled", "dropped", "produce_seconds", "shutdown_seconds"),
    "memory_idle": ("peak_rss_mb",),
    "shutdown": ("seconds", "delivered", "spooled", "dropped", "completed"),
    "shutdown_default": ("seconds", "delivered", "spooled", "dropped", "completed"),
    "import": ("import_ms", "session_ms"),
    **dict.fromkeys(ADAPTER_IMPORTS, ("sdk_ms", "client_ms", "adapter_ms", "sdk_mb", "adapter_mb")),
    **dict.fromkeys(("loop_lag", "loop_lag_capture"), (
        "wrapped_max_ms", "control_max_ms", "wrapped_p99_ms", "control_p99_ms",
        "wrapped_ticks", "control_ticks", "records", "wrapped_calls")),
}  # fmt: skip
OVERHEAD_KEYS = (
    "openai_sync",
    "openai_sync_capture",
    "openai_async",
    "openai_async_capture",
    "anthropic_sync",
    "anthropic_async",
    "google_sync",
    "google_async",
    "openai_loopback",
    "stream_sync",
    "stream_async",
    "seed_sync",
    "openai_sync_api",
    "seed_async",
    "seed_stream",
)


def details(res: dict[str, list[Result]]) -> list[str]:
    """A compact line per figure with every repetition's numbers, for judging the spread."""
    lines = []
    hand = res.get("handoff", [])
    if hand:
        meds = {
            k: ", ".join(fmt(median(r[k]), 2) for r in hand)
            for k in ("submit", "idle", "report", "report_session")
        }
        lines.append(
            "- `handoff` (median µs per repetition): "
            + "; ".join(f"{k} {v}" for k, v in meds.items())
        )
    for key in OVERHEAD_KEYS:
        reps = res.get(key, [])
        if not reps:
            continue
        unit = "chunk" if key.endswith("stream") or key.startswith("stream") else "call"
        meds = {
            k: ", ".join(fmt(median(r.get(k, [])), 3 if k == "ratio" else 2) for r in reps)
            for k in ("added_us", "ratio", "plain_us", "wrapped_us", "drain_us", "cpu_added_us")
        }
        meds["records/wrapped calls"] = ", ".join(
            f"{r.get('records')}/{r.get('wrapped_calls')}" for r in reps
        )
        lines.append(
            f"- `{key}` (medians per repetition, µs a {unit}): "
            + "; ".join(f"{k} {v}" for k, v in meds.items())
        )
    for key, fields in DETAIL_KEYS.items():
        reps = res.get(key, [])
        if not reps:
            continue
        parts = []
        for name in fields:
            values = [r.get(name) for r in reps]
            parts.append(f"{name} " + ", ".join(_short(v) for v in values))
        lines.append(f"- `{key}`: " + "; ".join(parts))
    return lines


def _short(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return fmt(value, 2 if abs(value) < 100 else 0)
    return str(value)


def table_only(rows: list[Row]) -> str:
    return "\n".join(
        [
            "| figure | median | spread | target | verdict |",
            "|---|---|---|---|---|",
            *(f"| {r.figure} | {r.value} | {r.spread} | {r.target} | {r.verdict} |" for r in rows),
        ]
    )


# --------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="record counts / 10; smoke run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"where to write the page (default: {DOC.relative_to(ROOT)}; --quick: nowhere)",
    )
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    output: Path | None = args.output or (None if args.quick else DOC)

    started, load_before = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="revenium-bench-") as tmp:
        scratch = Path(tmp)
        runner = Runner(scratch)
        package = locate_package(runner)
        sources_before = source_hashes(package)
        with fake_api(scratch) as api, standin_server(scratch) as openai_url:
            seed = seed_sdk(runner)
            jobs = plan(
                scale=scale, api=api, openai_url=openai_url, seed=seed.startswith("version ")
            )
            results = run_all(
                runner,
                jobs,
                max(args.rounds, 1),
                adapter_imports=ADAPTER_IMPORT_RUNS if scale == 1 else 3,
            )
        profiles = run_profiles(runner, jobs, missed_overhead(results), quick=args.quick)
    seconds = time.perf_counter() - started
    rows = rows_for(results, seed)
    measured = {**results, "profiles": list(profiles.values())}
    sources, changed = source_report(sources_before, source_hashes(package), measured)
    page = render(
        rows,
        results,
        quick=args.quick,
        rounds=max(args.rounds, 1),
        seconds=seconds,
        load=(load_before, os.getloadavg()[0]),
        package=package,
        sources=sources,
        failures=runner.failures,
        profiles=profiles,
    )
    print(table_only(rows))
    if changed:
        print(f"WARNING: {sources.strip('*')}", file=sys.stderr)
    print(f"\n{seconds:.0f} s in all", file=sys.stderr)
    for failure in runner.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if output is not None:
        output.write_text(page, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    return 1 if runner.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
