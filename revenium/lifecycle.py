"""One runtime per process: start it lazily, flush it, shut it down, survive fork and exit.

These are the functions behind ``revenium.flush()``, ``shutdown()``, ``statistics()`` and the
sink's hand-off. They own the process-wide state (the current runtime and the exit, fork and
signal hooks); :mod:`revenium.runtime` owns the machinery of one runtime.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import anyio.to_thread
import attrs

from revenium import _diagnostics, sink
from revenium import config as config_module
from revenium._diagnostics import internal_error_count, logger
from revenium.config import get_config
from revenium.reports import DeliveryReport, Statistics
from revenium.runtime import Pending, Runtime

__all__ = [
    "flush",
    "flush_sync",
    "install_signal_handler",
    "shutdown",
    "shutdown_sync",
    "spawn",
    "statistics",
    "submit",
]

_lock = threading.Lock()
_current: list[Runtime] = []
_last: list[Runtime] = []  # the runtime most recently shut down, for statistics()
_mp_hook: list[bool] = []  # the multiprocessing exit hook is registered once per process


def _runtime(*, create: bool = True) -> Runtime | None:
    if _current:
        runtime = _current[0]
        if runtime.pid == os.getpid() and not runtime.closing:
            return runtime
    if not create:
        return None
    with _lock:
        if _current and _current[0].pid == os.getpid() and not _current[0].closing:
            return _current[0]
        runtime = Runtime()
        _current[:] = [runtime]
        _install_signal_handler()
        if "multiprocessing" in sys.modules and not _mp_hook:
            # multiprocessing children end with os._exit, which skips atexit; its own exit
            # hook runs these finalizers, so a worker process delivers its records too.
            mp_util = importlib.import_module("multiprocessing.util")
            mp_util.Finalize(None, _at_exit, exitpriority=100)
            _mp_hook.append(True)
        return runtime


def submit(record: Pending) -> None:
    """Hand ``record`` to this process's runtime, starting it on first use."""
    runtime = _runtime()
    assert runtime is not None
    runtime.submit(record)


def spawn(name: str, task: Callable[[], Any]) -> concurrent.futures.Future[None]:
    """Run ``task`` in this process's runtime (starting it) until shutdown."""
    runtime = _runtime()
    assert runtime is not None
    return runtime.spawn(name, task)


def statistics() -> Statistics:
    """Delivery counters of this process's runtime (the last one, after a shutdown)."""
    runtime = _runtime(create=False) or (
        _last[0] if _last and _last[0].pid == os.getpid() else None
    )
    if runtime is None:
        stats = Statistics(internal_errors=internal_error_count())
    else:
        stats = runtime.statistics()
    enforcement = sys.modules.get("revenium.enforcement")
    if enforcement is not None:
        stats = attrs.evolve(stats, blocked=enforcement.blocked_count())
    return stats


def _timeout(timeout: float | None) -> float:
    return get_config().shutdown_timeout_seconds if timeout is None else timeout


def flush_sync(timeout: float | None = None) -> DeliveryReport:
    """Deliver or spool everything pending, and replay due spooled records, within ``timeout``.

    Starts a runtime when there is none and an API key is set, so a short job that restarts
    after an outage delivers what an earlier run left in the spool.
    """
    create = get_config().api_key is not None
    runtime = _runtime(create=create)
    if runtime is None:
        return DeliveryReport(0, 0, 0, 0, 0, 0, 0.0, completed=True)
    return runtime.flush(_timeout(timeout))


async def flush(timeout: float | None = None) -> DeliveryReport:  # noqa: ASYNC109 - decided API
    """:func:`flush_sync` without blocking the caller's event loop."""
    return await anyio.to_thread.run_sync(flush_sync, timeout)


def shutdown_sync(timeout: float | None = None) -> DeliveryReport:
    """Finalize open streams, flush within ``timeout``, spool the rest and stop the runtime.

    A record submitted afterwards starts a fresh runtime: nothing vanishes after shutdown.
    """
    streams = sys.modules.get("revenium.streams")
    if streams is not None:  # only loaded once a wrapped client made a stream
        streams.finalize_open_streams()
    create = get_config().api_key is not None
    runtime = _runtime(create=create)
    if runtime is None:
        return DeliveryReport(0, 0, 0, 0, 0, 0, 0.0, completed=True)
    with _lock:
        if _current and _current[0] is runtime:
            _current.clear()
        _last[:] = [runtime]
    return runtime.shutdown(_timeout(timeout))


async def shutdown(timeout: float | None = None) -> DeliveryReport:  # noqa: ASYNC109 - decided API
    """:func:`shutdown_sync` without blocking the caller's event loop."""
    return await anyio.to_thread.run_sync(shutdown_sync, timeout)


def _at_exit() -> None:
    streams = sys.modules.get("revenium.streams")
    if streams is not None:  # a stream the caller never closed still gets its record
        streams.finalize_open_streams()
    runtime = _runtime(create=False)
    if runtime is None:
        return
    try:
        report = shutdown_sync()
    except Exception as exc:  # noqa: BLE001 - nothing may raise at interpreter exit
        logger.warning("revenium: flushing at exit failed: %r", exc)
        return
    if report.pending or report.dropped:
        logger.warning(
            "revenium: at exit, %d record(s) wait in the spool for the next run; %d dropped",
            report.pending,
            report.dropped,
        )


def _after_fork_in_child() -> None:
    """The child starts with no runtime: the parent's thread does not exist here, and the
    parent's queued records are the parent's to deliver (delivering them here would double
    them)."""
    global _lock  # noqa: PLW0603 - a lock held at fork time would stay locked forever
    _lock = threading.Lock()
    _current.clear()
    _last.clear()
    _mp_hook.clear()
    for module in (_diagnostics, config_module, sink):
        module.reinit_after_fork()
    modules = ("streams", "enforcement", "operations", "call_groups")
    for name in (f"revenium.{module}" for module in modules):
        loaded = sys.modules.get(name)
        if loaded is not None:
            loaded.reinit_after_fork()


_previous_handlers: dict[int, Any] = {}


def _install_signal_handler() -> None:
    if not get_config().install_signal_handlers or signal.SIGTERM in _previous_handlers:
        return
    if threading.current_thread() is not threading.main_thread():
        logger.warning(
            "revenium: REVENIUM_INSTALL_SIGNAL_HANDLERS is set but the first record came from a "
            "worker thread; call revenium.lifecycle.install_signal_handler() from the main thread"
        )
        return
    install_signal_handler()


def install_signal_handler() -> None:
    """Flush on SIGTERM, then hand the signal to the handler that was there before."""
    previous = signal.getsignal(signal.SIGTERM)
    _previous_handlers[signal.SIGTERM] = previous

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        shutdown_sync()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
