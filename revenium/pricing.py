"""Local cost estimates: what a call probably cost, from public list prices, offline.

A user without a Revenium account still wants to see money, not only tokens. With the
``[prices]`` extra (Pydantic's ``genai-prices``, whose price data ships inside the package),
each completion record is priced from its provider, its model and its normalized token
classes (:attr:`~revenium.records.CompletionRecord.token_classes`: cached input billed at the
cached rate and never twice, reasoning billed as output), at the price in force at the
request's time.

Estimates are local: they go to the ledger, the terminal summary and ``revenium summary``,
and are **never** sent to the Revenium API, whose own pricing is authoritative. They are
computed off the caller's path (on the runtime's threads). When there is no estimate, the
reason is kept instead (unknown model, unknown provider, the extra not installed), and the
tokens are counted all the same.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from decimal import Decimal
from typing import Any, Final

import attrs

from revenium.records import CompletionRecord, Record, TokenClasses

__all__ = ["CostEstimate", "estimate", "price_source"]

# Our provider labels -> genai-prices provider ids. A label not here (a gateway's host name)
# lets genai-prices find the model's maker from the model's name.
_PROVIDERS: Final = {
    "OPENAI": "openai",
    "Azure": "azure",
    "ANTHROPIC": "anthropic",
    "AWS": "aws",
    "Google": "google",
    "XAI": "x-ai",
    "DEEPSEEK": "deepseek",
    "GROQ": "groq",
    "TOGETHER": "together",
    "FIREWORKS": "fireworks",
    "OPENROUTER": "openrouter",
    "PERPLEXITY": "perplexity",
    "MISTRAL": "mistral",
    "Foundry": "azure",
}


@attrs.frozen
class CostEstimate:
    """A record's estimated cost in US dollars, or why there is none."""

    usd: Decimal | None = None
    source: str | None = None  # "genai-prices 0.2.3"
    note: str | None = None  # why there is no estimate

    @property
    def priced(self) -> bool:
        return self.usd is not None


@functools.cache
def _library() -> Any | None:
    try:
        return importlib.import_module("genai_prices")
    except ImportError:
        return None


@functools.cache
def price_source() -> str | None:
    """``genai-prices <version>`` when the ``[prices]`` extra is installed, else ``None``."""
    if _library() is None:
        return None
    return f"genai-prices {importlib.metadata.version('genai-prices')}"


def estimate(record: Record) -> CostEstimate:
    """The estimated cost of ``record`` (never raises: a failure is the estimate's note)."""
    if not isinstance(record, CompletionRecord):
        return CostEstimate(note=f"{type(record).__name__}s are not priced locally")
    library = _library()
    if library is None:
        return CostEstimate(note="install revenium[prices] for local cost estimates")
    source = price_source()
    provider = _PROVIDERS.get(record.provider)
    for model, provider_id in _lookups(record, provider):
        found = _model_info(model, provider_id)
        if found is None:
            continue
        try:
            return CostEstimate(usd=_price(library, found, record), source=source)
        except Exception as exc:  # noqa: BLE001 - an estimate must never fail a write or a print
            return CostEstimate(source=source, note=f"cannot price: {type(exc).__name__}: {exc}")
    where = f" from {record.provider}" if provider else ""
    return CostEstimate(source=source, note=f"no price for {record.model}{where} in {source}")


@functools.lru_cache(maxsize=1024)  # a process calls few models: find each once
def _model_info(model: str, provider_id: str | None) -> Any | None:
    """genai-prices' entry for a model at a provider, or ``None`` when it has none."""
    library: Any = _library()
    try:
        _provider, info = library.data_snapshot.get_snapshot().find_provider_model(
            model, None, provider_id, None
        )
    except LookupError:
        return None
    return info


# Token class -> the ModelPrice field that prices it (per million tokens).
_RATES: Final = (
    ("uncached_input", "input_mtok"),
    ("cache_read", "cache_read_mtok"),
    ("cache_write_5m", "cache_write_mtok"),
    ("cache_write_1h", "cache_write_1h_mtok"),
    ("output", "output_mtok"),
    ("reasoning", "output_mtok"),  # reasoning is billed as output
)
_MILLION: Final = Decimal(1_000_000)
# Charges every call pays besides its tokens: the fast path cannot see them.
_OTHER_CHARGES: Final = ("requests_kcount",)


def _price(library: Any, info: Any, record: CompletionRecord) -> Decimal:
    """The price in force at the request's time, for the record's token classes.

    A flat price (one rate per class, no long-context tiers) is a sum of tokens times
    rates: a few microseconds, on the runtime's thread. Anything else (tiers, a class the
    model has no rate for) goes through genai-prices' own calculation, about 0.1 ms.
    """
    prices = info.get_prices(record.request_time)
    classes = record.token_classes
    if any(getattr(prices, field, None) is not None for field in _OTHER_CHARGES):
        return _calculated(library, prices, classes)  # e.g. a price per request (Perplexity)
    total = Decimal(0)
    for name, field in _RATES:
        tokens = getattr(classes, name)
        if not tokens:
            continue
        rate = getattr(prices, field, None)
        if type(rate) is not Decimal:  # tiered, or no rate for this class: genai-prices
            return _calculated(library, prices, classes)
        total += tokens * rate
    return total / _MILLION


def _calculated(library: Any, prices: Any, classes: TokenClasses) -> Decimal:
    usage = library.Usage(
        input_tokens=classes.input,
        cache_read_tokens=classes.cache_read,
        cache_write_5m_tokens=classes.cache_write_5m,
        cache_write_1h_tokens=classes.cache_write_1h,
        cache_write_tokens=classes.cache_write_5m + classes.cache_write_1h,
        output_tokens=classes.output + classes.reasoning,  # reasoning is billed as output
    )
    return Decimal(prices.calc_price(usage)["total_price"])


def _lookups(record: CompletionRecord, provider: str | None) -> list[tuple[str, str | None]]:
    """Where to look a model up, most specific first.

    A platform's own id comes first (a Bedrock ``global.`` inference profile is priced
    differently from a regional one); then the model's name at the provider; then, for a
    cloud platform that lists only some of a maker's models, the maker's own price list.
    """
    lookups: list[tuple[str, str | None]] = []
    if record.provider_model_id:
        lookups.append((record.provider_model_id, provider))
    lookups.append((record.model, provider))
    source = record.model_source or ""
    maker = _PROVIDERS.get(source) or source.lower()  # XAI is genai-prices' x-ai
    if maker and maker != provider:  # also for a gateway's host, whose maker the name told
        lookups.append((record.model, maker))
    return lookups
