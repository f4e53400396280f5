"""Long-running operations: remembered when submitted, metered once when first seen done.

A video generation (google-genai's ``generate_videos``) returns an operation at once; the
video exists minutes later, when a poll (``operations.get``) reports it done. Its record needs
both ends: who asked, when and for what (the submission: metadata, requested duration) and
what came back (the finished operation: how many videos, or the failure).

The submission is remembered here, in memory, by operation name (the latest
:data:`LIMIT` submissions). The first poll that sees the operation done takes it, so an
operation polled twice, or by two threads at once, is metered once. Across processes the
record's idempotency key is derived from the operation's name, so the Revenium API keeps one
record even when two processes (or a restarted one) meter the same operation.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Final

from revenium.providers.base import CallInfo

__all__ = ["LIMIT", "idempotency_key", "known", "remember", "take"]

LIMIT: Final = 4096
_NAMESPACE: Final = uuid.UUID("6f1c2a5e-63b9-4c4e-9a57-0e2f3c7d8b41")  # revenium operations

_lock = threading.Lock()
_submitted: OrderedDict[str, CallInfo] = OrderedDict()
_taken: OrderedDict[str, None] = OrderedDict()


def remember(name: str, call: CallInfo) -> None:
    """Keep the submission of operation ``name`` until it is seen done."""
    with _lock:
        _submitted[name] = call
        _submitted.move_to_end(name)
        while len(_submitted) > LIMIT:
            _submitted.popitem(last=False)


def known(name: str) -> bool:
    """Whether this process submitted operation ``name`` (and it was not taken yet)."""
    with _lock:
        return name in _submitted


def take(name: str) -> tuple[bool, CallInfo | None]:
    """``(first, submission)``: whether this is the first time ``name`` is seen done, and the
    call that submitted it when this process did (``None``: another process, or forgotten)."""
    with _lock:
        if name in _taken:
            return False, None
        _taken[name] = None
        while len(_taken) > LIMIT:
            _taken.popitem(last=False)
        return True, _submitted.pop(name, None)


def idempotency_key(scope: str, name: str) -> str:
    """The same key for the same operation, in every process and through any endpoint of the
    API (``scope``: the provider; its operation names are unique)."""
    return str(uuid.uuid5(_NAMESPACE, f"{scope}\n{name}"))


def reinit_after_fork() -> None:
    """A forked child starts with a fresh lock (another thread may have held it)."""
    global _lock  # noqa: PLW0603 - a lock held at fork time would stay locked forever
    _lock = threading.Lock()
