"""What the delivery runtime tells you: statistics, flush/shutdown reports, stream hooks.

Kept apart from the runtime so that code reading the numbers (the CLI, tests, the benchmark)
need not import the machinery that produces them.
"""

from __future__ import annotations

import attrs

__all__ = ["DeliveryReport", "Statistics"]


@attrs.frozen
class Statistics:
    """Counters of this process's delivery, as ``revenium.statistics()`` returns them.

    Running totals since the runtime started, then what is in motion at this moment.
    """

    delivered: int = 0
    spooled: int = 0
    replayed: int = 0
    quarantined: int = 0
    dropped: int = 0
    ledger_written: int = 0
    estimated: int = 0
    restarts: int = 0
    last_error: str | None = None
    queued: int = 0
    in_flight: int = 0
    retried: int = 0
    internal_errors: int = 0
    paused: str | None = None
    blocked: int = 0  # calls a cost control refused before the provider saw them (no record)


@attrs.frozen
class DeliveryReport:
    """What a ``flush()`` or ``shutdown()`` achieved, and how long it took.

    ``delivered``, ``spooled``, ``quarantined`` and ``dropped`` count this runtime's whole
    life; ``pending`` is what the spool still holds for later delivery. ``dropped`` should be 0.
    """

    delivered: int
    spooled: int
    quarantined: int
    dropped: int
    ledger_written: int
    pending: int
    seconds: float
    completed: bool

    @property
    def ok(self) -> bool:
        """Nothing was lost: every record is delivered, in the ledger, spooled or quarantined."""
        return self.dropped == 0
