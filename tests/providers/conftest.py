"""Shared by the provider tests: a strict capture of the records each test produces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import revenium
from revenium.testing import Capture


@pytest.fixture
def captured() -> Iterator[Capture]:
    """Records produced during the test, kept in memory; internal metering errors raise."""
    with revenium.testing.capture() as capture:
        yield capture
