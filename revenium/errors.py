"""Exceptions that ``revenium`` lets reach user code.

There are deliberately few. Metering never raises into a provider call: the only exception a
wrapped call can raise on our behalf is :class:`BudgetExceededError`, and it is raised *before*
the provider is contacted, so nothing was spent. Everything else is raised where the user wrote
something invalid (``ValueError`` from ``session()``, ``@metadata``, ``wrap(metadata=...)``;
``TypeError`` from ``configure()`` or ``wrap()`` given the wrong kind of object).

Hierarchy::

    ReveniumError
    ├── BudgetExceededError      a cost control blocks the call before it is sent
    └── InternalMeteringError    only in strict test mode: a metering failure re-raised
"""

from __future__ import annotations

__all__ = ["BudgetExceededError", "InternalMeteringError", "ReveniumError"]


class ReveniumError(Exception):
    """Base class of the exceptions this package defines."""


class BudgetExceededError(ReveniumError):
    """A Revenium cost control blocked the call before it reached the provider.

    Kept separate from every metering failure so that a broad ``except`` in the SDK can never
    swallow it: it is the one exception a wrapped call raises on purpose.
    """

    def __init__(
        self,
        message: str,
        *,
        rule_name: str | None = None,
        rule_id: str | int | None = None,
        current_value: float | None = None,
        threshold: float | None = None,
        resets_at: str | None = None,
        deny_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.rule_name = rule_name
        self.rule_id = rule_id
        self.current_value = current_value
        self.threshold = threshold
        self.resets_at = resets_at
        self.deny_message = deny_message


class InternalMeteringError(ReveniumError):
    """A failure inside the SDK, re-raised only under ``revenium.testing`` strict mode.

    Outside strict mode the same failure is logged on the ``revenium`` logger, counted in
    ``revenium.statistics()`` and passed to the error hook, and the user's call carries on.
    """
