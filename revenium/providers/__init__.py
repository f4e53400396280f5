"""Provider adapters, found by the module of the client's class (no SDK is imported here).

Each adapter module holds one :class:`~revenium.providers.base.Adapter` value named
``ADAPTER``. The registry lists the modules; an adapter module is imported only when a client
of its SDK is wrapped, so wrapping an OpenAI client never loads Anthropic's adapter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from revenium.providers.base import Adapter

__all__ = ["adapter_for", "supported_clients"]

# SDK module prefix -> adapter module. Order matters only for overlapping prefixes.
_REGISTRY: Final[tuple[tuple[str, str], ...]] = (
    ("openai", "revenium.providers.openai"),
    ("anthropic", "revenium.providers.anthropic"),
    ("google.genai", "revenium.providers.google"),
)
_SUPPORTED: Final = (
    "openai.OpenAI",
    "openai.AsyncOpenAI",
    "openai.AzureOpenAI",
    "openai.AsyncAzureOpenAI",
    "anthropic.Anthropic",
    "anthropic.AsyncAnthropic",
    "anthropic.AnthropicBedrock",
    "anthropic.AsyncAnthropicBedrock",
    "anthropic.AnthropicVertex",
    "anthropic.AsyncAnthropicVertex",
    "google.genai.Client",
)


def supported_clients() -> tuple[str, ...]:
    """The client classes ``revenium.wrap`` accepts, for error messages and docs."""
    return _SUPPORTED


def adapter_for(client: object) -> Adapter | None:
    """The adapter whose SDK ``client`` comes from, or ``None``."""
    module = type(client).__module__
    for prefix, adapter_module in _REGISTRY:
        if module == prefix or module.startswith(prefix + "."):
            adapter: Adapter = importlib.import_module(adapter_module).ADAPTER
            if adapter.handles(client):
                return adapter
    return None
