"""Defensive readers for provider responses, shared by every adapter.

Adapters read SDK objects by attribute without importing the SDK, and an SDK that changes
shape (or a server that sends something odd) must never make metering raise into a call.
These helpers turn whatever arrives into the few types a record needs, or ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeGuard, cast

__all__ = ["count", "field", "is_list", "opt_count", "text", "text_length"]


def is_list(value: object) -> TypeGuard[list[Any]]:
    return isinstance(value, list)


MAX_COUNT: Final = 2**63 - 1  # the server stores 64-bit counts; larger is a broken response


def opt_count(value: object) -> int | None:
    """A token count: a non-negative whole number (``3.0`` included), else ``None``."""
    if type(value) is int:  # the usual case, first
        return value if 0 <= value <= MAX_COUNT else (MAX_COUNT if value > 0 else None)
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= 0:
        return min(value, MAX_COUNT)
    return None


def count(value: object) -> int:
    return opt_count(value) or 0


def text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def text_length(value: object) -> int:
    """Characters of text in a prompt structure, for estimates (messages, parts, strings)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Mapping):
        items = cast("Mapping[object, object]", value)
        return sum(text_length(v) for k, v in items.items() if k in {"content", "text", "input"})
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return sum(text_length(v) for v in cast("Sequence[object]", value))
    return 0


def field(value: object, name: str) -> object:
    """An attribute, or a key of a plain dict (a pydantic extra the SDK does not declare)."""
    if isinstance(value, Mapping):
        return cast("Mapping[str, object]", value).get(name)
    return getattr(value, name, None)
