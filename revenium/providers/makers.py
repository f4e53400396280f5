"""Who made a model, and which host a client talks to: shared by every adapter's labels.

``provider`` on a record names who served (and bills) the call; ``modelSource`` names who made
the model. Hosts that serve several makers' models (OpenRouter, gateways, a local server)
cannot fix ``modelSource`` per host, so it is read from the model's name when the name belongs
to a known family (``docs/providers/index.md`` has the table).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

__all__ = ["client_host", "host_matches", "model_maker"]

# model-name prefix -> the model's maker
_MAKERS: Final[tuple[tuple[str, str], ...]] = (
    ("gpt-", "OPENAI"),
    ("o1", "OPENAI"),
    ("o3", "OPENAI"),
    ("o4", "OPENAI"),
    ("text-embedding", "OPENAI"),
    ("dall-e", "OPENAI"),
    ("whisper", "OPENAI"),
    ("tts-", "OPENAI"),
    ("claude", "ANTHROPIC"),
    ("gemini", "GOOGLE"),
    ("gemma", "GOOGLE"),
    ("grok", "XAI"),
    ("llama", "META"),
    ("mistral", "MISTRAL"),
    ("mixtral", "MISTRAL"),
    ("deepseek", "DEEPSEEK"),
    ("qwen", "ALIBABA"),
    ("sonar", "PERPLEXITY"),
)


def model_maker(model: str) -> str | None:
    """The maker of a model from its name (``anthropic/claude-...`` too), or ``None``."""
    name = model.lower().rsplit("/", 1)[-1]
    return next((maker for prefix, maker in _MAKERS if name.startswith(prefix)), None)


def client_host(client: Any) -> str:
    """The lower-case host name of a client's ``base_url`` (``""`` when it has none)."""
    return (urlsplit(str(getattr(client, "base_url", "") or "")).hostname or "").lower()


def host_matches(host: str, suffix: str) -> bool:
    """``host`` is ``suffix`` or one of its subdomains."""
    return host == suffix or host.endswith("." + suffix)
