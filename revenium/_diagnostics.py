"""Where internal failures go instead of into the user's call.

A metering bug must never break a provider call, and must never be silent either. Every
``except`` in the SDK that protects a user's call ends in :func:`report_internal_error`, which

- logs on the ``revenium`` logger (with the traceback at DEBUG, one line at WARNING),
- counts the failure (``revenium.statistics()`` shows it),
- calls the user's error hook (``configure(on_error=...)``), and
- re-raises as :class:`~revenium.errors.InternalMeteringError` under ``revenium.testing``
  strict mode, so our own tests and the user's tests see the bug.

:func:`warn_once` keeps repeated configuration and input problems to one line each, so a
misconfigured process does not log on every call.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable
from typing import Final

from revenium.errors import InternalMeteringError

__all__ = [
    "ErrorHook",
    "external_stacklevel",
    "internal_error_count",
    "logger",
    "report_internal_error",
    "set_error_hook",
    "set_strict",
    "strict_enabled",
    "warn_once",
]

logger: Final = logging.getLogger("revenium")

ErrorHook = Callable[[BaseException, str], object]
"""Called as ``hook(exception, where)``; its own exceptions are logged and ignored."""

_lock = threading.Lock()
_warned: set[str] = set()
_state: dict[str, object] = {"strict": False, "hook": None}
_counts: dict[str, int] = {"internal_errors": 0}


_PACKAGE_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep  # noqa: PTH100, PTH120


def external_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the first frame outside this package.

    Called by the function that warns; the warning then points at the user's line however
    many of our frames sit in between.
    """
    here = inspect.currentframe()
    frame = here.f_back if here is not None else None  # the function that will warn
    level = 1
    while frame is not None and frame.f_back is not None:
        if not frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            break
        frame = frame.f_back
        level += 1
    return level


def warn_once(key: str, message: str, *args: object) -> None:
    """Log ``message % args`` at WARNING the first time ``key`` is seen in this process."""
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(message, *args)


def reset_warnings() -> None:
    """Forget which warnings were given (tests, and ``configure()`` after a fix)."""
    with _lock:
        _warned.clear()


def set_strict(enabled: bool) -> None:
    """Turn strict mode on or off (``revenium.testing`` owns this switch)."""
    _state["strict"] = enabled


def strict_enabled() -> bool:
    """Whether internal failures re-raise instead of being contained."""
    return bool(_state["strict"])


def set_error_hook(hook: ErrorHook | None) -> None:
    """Install the user's error hook (``configure(on_error=...)``)."""
    _state["hook"] = hook


def internal_error_count() -> int:
    """How many internal failures were contained in this process."""
    return _counts["internal_errors"]


def report_internal_error(exc: BaseException, where: str, *, reraise: bool = True) -> None:
    """Contain an SDK failure: log it, count it, tell the hook; re-raise only in strict mode.

    ``reraise=False`` is for the runtime thread, where raising would only kill a task that
    the supervisor restarts; strict mode matters on the caller's path.
    """
    with _lock:
        _counts["internal_errors"] += 1
    logger.warning("revenium: internal error in %s: %r (metering continues)", where, exc)
    logger.debug("revenium: traceback for the internal error in %s", where, exc_info=exc)
    hook = _state["hook"]
    if callable(hook):
        try:
            hook(exc, where)
        except Exception:  # the hook is user code; it must not take metering down either
            logger.exception("revenium: the on_error hook raised")
    if reraise and strict_enabled():
        raise InternalMeteringError(f"internal metering error in {where}: {exc!r}") from exc


def reinit_after_fork() -> None:
    """Replace the module lock in a forked child (another thread may have held it)."""
    global _lock  # noqa: PLW0603 - see the docstring
    _lock = threading.Lock()
