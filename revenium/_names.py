"""Field names: the SDK's snake_case and the JSON APIs' camelCase (Revenium's and Google's)."""

from __future__ import annotations

__all__ = ["camel"]


def camel(name: str) -> str:
    """``organization_name`` -> ``organizationName``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
