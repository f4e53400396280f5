"""Meter every paid AI call: tokens, model, timings and who it was for.

The public API is listed here, once. Importing this package does no I/O, starts no thread,
patches nothing and imports no provider SDK. Names load on first use (PEP 562), so that
``import revenium`` costs about a millisecond in a web server's start-up, and the modules
behind ``revenium.session`` or ``revenium.wrap`` load when the program first touches them.
"""

from __future__ import annotations

import importlib

from revenium._version import __version__

# Not ``typing.TYPE_CHECKING``: importing ``typing`` alone would cost more than the rest of
# this module. Type checkers recognise this module-level constant too.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from revenium import testing
    from revenium.attribution import Credential, Metadata, Subscriber
    from revenium.config import Config, configure
    from revenium.context import Scope, carry_context, metadata, meter, session
    from revenium.context import metadata as revenium_metadata
    from revenium.context import meter as revenium_meter
    from revenium.errors import BudgetExceededError, InternalMeteringError, ReveniumError
    from revenium.lifecycle import (
        flush,
        flush_sync,
        shutdown,
        shutdown_sync,
        statistics,
    )
    from revenium.proxy import unwrap, wrap
    from revenium.records import (
        AudioRecord,
        CompletionRecord,
        ImageRecord,
        OperationType,
        StopReason,
        ToolEventRecord,
        VideoRecord,
    )
    from revenium.reports import DeliveryReport, Statistics
    from revenium.tools import meter_tool, report_tool_call

__all__ = [
    "AudioRecord",
    "BudgetExceededError",
    "CompletionRecord",
    "Config",
    "Credential",
    "DeliveryReport",
    "ImageRecord",
    "InternalMeteringError",
    "Metadata",
    "OperationType",
    "ReveniumError",
    "Scope",
    "Statistics",
    "StopReason",
    "Subscriber",
    "ToolEventRecord",
    "VideoRecord",
    "__version__",
    "carry_context",
    "configure",
    "flush",
    "flush_sync",
    "metadata",
    "meter",
    "meter_tool",
    "report_tool_call",
    "revenium_metadata",
    "revenium_meter",
    "session",
    "shutdown",
    "shutdown_sync",
    "statistics",
    "testing",
    "unwrap",
    "wrap",
]

# name -> (module, attribute); ``revenium_metadata`` and ``revenium_meter`` are the seed SDK's
# names, kept so that porting code is a change of imports.
_LAZY: dict[str, tuple[str, str | None]] = {
    "AudioRecord": ("revenium.records", "AudioRecord"),
    "BudgetExceededError": ("revenium.errors", "BudgetExceededError"),
    "CompletionRecord": ("revenium.records", "CompletionRecord"),
    "Config": ("revenium.config", "Config"),
    "Credential": ("revenium.attribution", "Credential"),
    "DeliveryReport": ("revenium.reports", "DeliveryReport"),
    "Statistics": ("revenium.reports", "Statistics"),
    "flush": ("revenium.lifecycle", "flush"),
    "flush_sync": ("revenium.lifecycle", "flush_sync"),
    "shutdown": ("revenium.lifecycle", "shutdown"),
    "shutdown_sync": ("revenium.lifecycle", "shutdown_sync"),
    "statistics": ("revenium.lifecycle", "statistics"),
    "ImageRecord": ("revenium.records", "ImageRecord"),
    "InternalMeteringError": ("revenium.errors", "InternalMeteringError"),
    "Metadata": ("revenium.attribution", "Metadata"),
    "OperationType": ("revenium.records", "OperationType"),
    "ReveniumError": ("revenium.errors", "ReveniumError"),
    "Scope": ("revenium.context", "Scope"),
    "StopReason": ("revenium.records", "StopReason"),
    "Subscriber": ("revenium.attribution", "Subscriber"),
    "ToolEventRecord": ("revenium.records", "ToolEventRecord"),
    "VideoRecord": ("revenium.records", "VideoRecord"),
    "carry_context": ("revenium.context", "carry_context"),
    "configure": ("revenium.config", "configure"),
    "meter": ("revenium.context", "meter"),
    "meter_tool": ("revenium.tools", "meter_tool"),
    "metadata": ("revenium.context", "metadata"),
    "report_tool_call": ("revenium.tools", "report_tool_call"),
    "revenium_metadata": ("revenium.context", "metadata"),
    "revenium_meter": ("revenium.context", "meter"),
    "session": ("revenium.context", "session"),
    "testing": ("revenium.testing", None),
    "unwrap": ("revenium.proxy", "unwrap"),
    "wrap": ("revenium.proxy", "wrap"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'revenium' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
