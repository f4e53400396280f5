"""Local cost estimates and the terminal summary: golden numbers from the per-token rates.

Each expected cost is worked out here from genai-prices' own per-token rates for the model,
one token class at a time, so an estimate that priced cached tokens twice (or reasoning
tokens not at all) cannot match.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from genai_prices import Usage, calc_price

import revenium
from revenium import pricing
from revenium.attribution import parse_metadata
from revenium.records import CompletionRecord, ImageRecord, TokenClasses
from revenium.summary import SummaryPrinter

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
MILLION = 1_000_000
UNIT = 10_000  # rates are read below any long-context tier (Claude's starts at 200k input)


def rate(model: str, provider: str, **usage: int) -> Decimal:
    """The price of one token of one class, from ``UNIT`` tokens of it."""
    price = calc_price(Usage(**usage), model, provider_id=provider, genai_request_timestamp=WHEN)
    return Decimal(price.total_price) / UNIT


def record(**fields: Any) -> CompletionRecord:
    base: dict[str, Any] = {"request_time": WHEN, "request_duration_ms": 1234.0}
    return CompletionRecord(**{**base, **fields})


def test_openai_counts_cached_reads_once_and_reasoning_as_output() -> None:
    r = record(
        model="gpt-4o", provider="OPENAI",
        input_token_count=10_000, cache_read_token_count=4_000,  # 4,000 of the 10,000 cached
        output_token_count=800, reasoning_token_count=300,  # 300 of the 800 reasoning
    )  # fmt: skip
    assert r.token_classes == TokenClasses(
        uncached_input=6_000, cache_read=4_000, output=500, reasoning=300
    )
    input_rate = rate("gpt-4o", "openai", input_tokens=UNIT)
    cached_rate = rate("gpt-4o", "openai", input_tokens=UNIT, cache_read_tokens=UNIT)
    output_rate = rate("gpt-4o", "openai", output_tokens=UNIT)
    assert cached_rate < input_rate  # the cached rate is the discounted one
    expected = 6_000 * input_rate + 4_000 * cached_rate + 800 * output_rate
    cost = pricing.estimate(r)
    assert cost.usd == pytest.approx(expected, rel=Decimal("1e-9"))
    assert cost.source is not None
    assert cost.source.startswith("genai-prices ")
    assert cost.note is None


def test_anthropic_input_excludes_cache_traffic_which_is_priced_at_its_own_rates() -> None:
    r = record(
        model="claude-sonnet-4-5", provider="ANTHROPIC", cache_in_input=False,
        input_token_count=2_000,  # Anthropic's own count: cache traffic excluded
        cache_read_token_count=30_000, cache_creation_token_count=5_000,
        cache_creation_5m_token_count=4_000, cache_creation_1h_token_count=1_000,
        output_token_count=700,
    )  # fmt: skip
    assert r.token_classes == TokenClasses(
        uncached_input=2_000, cache_read=30_000, cache_write_5m=4_000, cache_write_1h=1_000,
        output=700,
    )  # fmt: skip
    model, provider = "claude-sonnet-4-5", "anthropic"
    input_rate = rate(model, provider, input_tokens=UNIT)
    read_rate = rate(model, provider, input_tokens=UNIT, cache_read_tokens=UNIT)
    write_5m = rate(
        model, provider, input_tokens=UNIT, cache_write_tokens=UNIT,
        cache_write_5m_tokens=UNIT,
    )  # fmt: skip
    write_1h = rate(
        model, provider, input_tokens=UNIT, cache_write_tokens=UNIT,
        cache_write_1h_tokens=UNIT,
    )  # fmt: skip
    output_rate = rate(model, provider, output_tokens=UNIT)
    assert read_rate < input_rate < write_5m < write_1h
    expected = (
        2_000 * input_rate + 30_000 * read_rate + 4_000 * write_5m + 1_000 * write_1h
        + 700 * output_rate
    )  # fmt: skip
    assert pricing.estimate(r).usd == pytest.approx(expected, rel=Decimal("1e-9"))


def test_a_cache_write_without_its_split_is_priced_as_five_minute_writes() -> None:
    r = record(
        model="claude-sonnet-4-5", provider="AWS", cache_in_input=False,
        input_token_count=100, cache_creation_token_count=1_000, output_token_count=10,
    )  # fmt: skip
    assert (r.token_classes.cache_write_5m, r.token_classes.cache_write_1h) == (1_000, 0)


def test_no_estimate_says_why_and_the_tokens_still_count() -> None:
    unknown = pricing.estimate(
        record(model="house-model-7", provider="llm.internal", input_token_count=9)
    )
    assert unknown.usd is None
    assert unknown.note is not None
    assert "house-model-7" in unknown.note
    image = ImageRecord(model="dall-e-3", provider="OPENAI", request_time=WHEN,
                        request_duration_ms=1.0)  # fmt: skip
    assert pricing.estimate(image).note == "ImageRecords are not priced locally"


def test_without_the_prices_extra_the_note_says_how_to_get_estimates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pricing, "_library", lambda: None)
    cost = pricing.estimate(record(model="gpt-4o", provider="OPENAI", input_token_count=1))
    assert (cost.usd, cost.note) == (None, "install revenium[prices] for local cost estimates")


def test_the_price_in_force_at_the_request_time_is_used() -> None:
    # Prices change: the estimate asks for the request's time, not today's.
    r = record(model="gpt-4o", provider="OPENAI", input_token_count=MILLION)
    expected = calc_price(
        Usage(input_tokens=MILLION), "gpt-4o", provider_id="openai", genai_request_timestamp=WHEN
    ).total_price
    assert pricing.estimate(r).usd == Decimal(expected)


# -- the terminal summary ---------------------------------------------------------------------


def _calls() -> list[CompletionRecord]:
    traced = parse_metadata({"trace_id": "t-1"}, origin="test", strict=True)
    return [
        record(model="gpt-4o", provider="OPENAI", input_token_count=1_000,
               output_token_count=100, metadata=traced),
        record(model="gpt-4o", provider="OPENAI", input_token_count=3_000,
               output_token_count=300),
        record(model="house-model-7", provider="llm.internal", input_token_count=5,
               output_token_count=6, estimated=True),
    ]  # fmt: skip


def test_the_human_summary_prints_each_call_then_totals_by_model() -> None:
    out = io.StringIO()
    printer = SummaryPrinter("human", out)
    for r in _calls():
        printer.add(r)
    printer.close()
    first = pricing.estimate(_calls()[0]).usd
    second = pricing.estimate(_calls()[1]).usd
    assert first is not None
    assert second is not None
    lines = out.getvalue().splitlines()
    assert lines[0] == f"revenium: gpt-4o (OPENAI) in=1000 out=100 1.23s ${first:.6f} trace=t-1"
    assert lines[1] == f"revenium: gpt-4o (OPENAI) in=3000 out=300 1.23s ${second:.6f}"
    assert lines[2] == "revenium: house-model-7 (llm.internal) in=5 out=6 (estimated) 1.23s cost: -"
    assert lines[3] == "revenium: totals by model (3 calls)"
    assert lines[4].split() == [
        "gpt-4o", "OPENAI", "calls=2", "in=4000", "out=400", f"${first + second:.6f}"
    ]  # fmt: skip
    assert lines[5].split() == [
        "house-model-7", "llm.internal", "calls=1", "in=5", "out=6", "-"
    ]  # fmt: skip
    assert lines[6].split() == ["total", f"${first + second:.6f}"]
    printer.close()  # closing again prints nothing more
    assert len(out.getvalue().splitlines()) == 7


def test_the_json_summary_prints_one_object_per_line() -> None:
    out = io.StringIO()
    printer = SummaryPrinter("json", out)
    for r in _calls():
        printer.add(r)
    printer.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 4
    first = lines[0]
    assert {k: first[k] for k in ("model", "provider", "inputTokenCount", "outputTokenCount",
                                  "totalTokenCount", "durationSeconds", "traceId")} == {
        "model": "gpt-4o", "provider": "OPENAI", "inputTokenCount": 1000,
        "outputTokenCount": 100, "totalTokenCount": 1100, "durationSeconds": 1.234,
        "traceId": "t-1",
    }  # fmt: skip
    assert first["estimatedCostUsd"] == float(pricing.estimate(_calls()[0]).usd or 0)
    assert lines[2]["estimatedCostUsd"] is None
    assert "house-model-7" in lines[2]["costNote"]
    totals = lines[3]["summary"]
    assert [(t["model"], t["calls"], t["unpricedCalls"]) for t in totals] == [
        ("gpt-4o", 2, 0),
        ("house-model-7", 1, 1),
    ]
    assert totals[1]["estimatedCostUsd"] is None


def test_the_runtime_prints_the_summary_off_the_callers_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import openai

    from revenium.providers._openai_standin import StandInServer

    revenium.configure(print_summary="json")
    with StandInServer() as server:
        client = revenium.wrap(openai.OpenAI(base_url=server.base_url, api_key="sk-test"))
        with client, revenium.session(trace_id="summary-trace"):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
            )
        assert capsys.readouterr().err == ""  # nothing printed by the call itself
        revenium.shutdown_sync(timeout=10)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line.get("traceId") for line in lines[:1]] == ["summary-trace"]
    assert lines[0]["model"] == "gpt-4o-mini-2024-07-18"
    assert lines[0]["estimatedCostUsd"] > 0
    assert lines[-1]["summary"][0]["calls"] == 1


def test_a_bedrock_call_is_priced_by_the_profile_it_used() -> None:
    def bedrock(profile: str | None) -> CompletionRecord:
        return record(
            model="claude-sonnet-4-5", provider="AWS", model_source="ANTHROPIC",
            provider_model_id=profile, cache_in_input=False,
            input_token_count=1_000, output_token_count=100,
        )  # fmt: skip

    regional = bedrock("us.anthropic.claude-sonnet-4-5-20250929-v1:0").cost_estimate.usd
    cross_region = bedrock("global.anthropic.claude-sonnet-4-5-20250929-v1:0").cost_estimate.usd
    assert regional is not None
    assert cross_region is not None
    assert regional > cross_region  # Bedrock's regional profiles cost more
    # a name the platform's list does not carry falls back to the maker's list
    assert (
        bedrock(None).cost_estimate.usd
        == rate("claude-sonnet-4-5", "anthropic", input_tokens=UNIT) * 1_000
        + rate("claude-sonnet-4-5", "anthropic", output_tokens=UNIT) * 100
    )


@pytest.mark.parametrize(
    ("model", "provider", "classes"),
    [
        ("gpt-4o-mini", "OPENAI", {"input_token_count": 1_234, "cache_read_token_count": 200,
                                   "output_token_count": 77, "reasoning_token_count": 20}),
        ("claude-haiku-4-5", "ANTHROPIC", {"input_token_count": 300, "cache_read_token_count": 900,
                                           "cache_creation_token_count": 500,
                                           "cache_creation_1h_token_count": 100,
                                           "output_token_count": 50, "cache_in_input": False}),
        ("claude-sonnet-4-5", "ANTHROPIC", {"input_token_count": 250_000,
                                            "output_token_count": 10, "cache_in_input": False}),
    ],
)  # fmt: skip
def test_the_fast_path_agrees_with_genai_prices_own_calculation(
    model: str, provider: str, classes: dict[str, Any]
) -> None:
    # flat prices are summed here; tiered ones (Sonnet past 200k input) go to genai-prices
    r = record(model=model, provider=provider, **classes)
    c = r.token_classes
    usage = Usage(
        input_tokens=c.input, cache_read_tokens=c.cache_read,
        cache_write_tokens=c.cache_write_5m + c.cache_write_1h,
        cache_write_5m_tokens=c.cache_write_5m, cache_write_1h_tokens=c.cache_write_1h,
        output_tokens=c.output + c.reasoning,
    )  # fmt: skip
    expected = calc_price(
        usage, model, provider_id=provider.lower(), genai_request_timestamp=WHEN
    ).total_price
    assert r.cost_estimate.usd == Decimal(expected)


def test_the_fast_path_agrees_with_genai_prices_for_every_model_it_knows() -> None:
    """Every model of the price data, three usage shapes: the sum of tokens times rates must
    equal genai-prices' own calculation wherever the fast path is taken."""
    from genai_prices import data_snapshot

    shapes: list[dict[str, Any]] = [
        {"input_token_count": 1_000, "output_token_count": 500},
        {"input_token_count": 3_000, "cache_read_token_count": 1_000,
         "output_token_count": 200, "reasoning_token_count": 50},
        {"input_token_count": 800, "cache_creation_token_count": 300,
         "cache_creation_1h_token_count": 100, "output_token_count": 20},
    ]  # fmt: skip
    checked = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            info = pricing._model_info(model.id, provider.id)
            if info is None:
                continue
            for shape in shapes:
                r = record(model=model.id, provider="test", **shape)
                try:
                    prices = info.get_prices(r.request_time)
                    expected = pricing._calculated(
                        pricing._library(),
                        prices,
                        r.token_classes,
                    )
                except Exception:
                    continue
                assert pricing._price(pricing._library(), info, r) == expected, (
                    provider.id,
                    model.id,
                    shape,
                )
                checked += 1
    assert checked > 1_000


def test_without_any_stderr_the_summary_costs_no_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import sqlite3

    import openai

    from revenium.providers._openai_standin import StandInServer

    ledger = tmp_path / "ledger.sqlite3"
    revenium.configure(print_summary="human", ledger_path=ledger)
    monkeypatch.setattr("sys.stderr", None)  # pythonw, or a service started with 2>&-
    with StandInServer() as server:
        client = revenium.wrap(openai.OpenAI(base_url=server.base_url, api_key="sk-test"))
        with client:
            for _ in range(3):
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
        report = revenium.shutdown_sync(timeout=10)  # no exception either
    assert (report.ledger_written, report.dropped) == (3, 0)
    db = sqlite3.connect(ledger)
    try:
        assert db.execute("SELECT COUNT(*) FROM records").fetchone() == (3,)
    finally:
        db.close()


def test_cache_writes_the_split_leaves_out_are_billed_as_five_minute_writes() -> None:
    r = record(
        model="claude-haiku-4-5", provider="ANTHROPIC", cache_in_input=False,
        input_token_count=10, cache_creation_token_count=1_000,
        cache_creation_5m_token_count=600, cache_creation_1h_token_count=100,
        output_token_count=1,
    )  # fmt: skip
    assert (r.token_classes.cache_write_5m, r.token_classes.cache_write_1h) == (900, 100)
