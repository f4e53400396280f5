"""Every test starts from a clean SDK: no REVENIUM_* environment, fresh config, no listeners."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from revenium import _diagnostics, config, lifecycle, sink

_FALLBACK_VARIABLES = {
    "ENVIRONMENT",
    "DEPLOYMENT_ENV",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AZURE_REGION",
    "GCP_REGION",
    "GOOGLE_CLOUD_REGION",
}


@pytest.fixture(autouse=True)
def clean_sdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("REVENIUM_") or name in _FALLBACK_VARIABLES:
            monkeypatch.delenv(name)
    # Durable files of the SDK land in this test's own directory, never in the real home.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config.reset_config()
    _diagnostics.reset_warnings()
    _reset_cost_controls()
    yield
    lifecycle.shutdown_sync(timeout=5)  # each test leaves no runtime thread behind
    _reset_cost_controls()  # after the runtime (and its rule poller) stopped
    config.reset_config()
    _diagnostics.set_strict(False)
    sink.set_delivery(None)
    for listener in sink.listeners():
        sink.remove_listener(listener)


def _reset_cost_controls() -> None:
    enforcement = sys.modules.get("revenium.enforcement")
    if enforcement is not None:
        enforcement.reset()
