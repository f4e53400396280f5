"""The engine's deferred requests (stream managers) when an SDK keeps them in another shape."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from revenium.attribution import EMPTY
from revenium.calls import ClientState, metered_deferred
from revenium.providers.base import Endpoint, Labels

if TYPE_CHECKING:
    import pytest


class Manager:
    """A manager of an SDK version that keeps a plain callable where a coroutine was."""

    def __init__(self, request: Any) -> None:
        self.__api_request = request

    async def __aenter__(self) -> Any:
        return self.__api_request()  # called, not awaited

    async def __aexit__(self, *exc: object) -> None:
        return None


def test_an_unknown_request_shape_is_left_alone_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = Endpoint(
        "messages.stream", record=lambda call, result: None, deferred="__api_request"
    )
    state = ClientState(original=None, labels=Labels("TEST"), metadata=EMPTY, hints={})
    stream = metered_deferred(
        lambda **kw: Manager(lambda: "the stream"), endpoint, state, is_async=True
    )

    async def use() -> Any:
        async with stream(model="m") as got:
            return got

    with caplog.at_level(logging.WARNING, logger="revenium"):
        assert asyncio.run(use()) == "the stream"  # the caller's code works as before
        assert asyncio.run(use()) == "the stream"
    assert sum("form this version does not know" in r.getMessage() for r in caplog.records) == 1


def test_a_copied_call_has_every_field_of_the_original() -> None:
    """``CallInfo.copy`` names its fields one by one (for speed): a new field must be copied."""
    from revenium.providers.base import CallInfo
    from revenium.records import OperationType

    call = CallInfo(
        labels=Labels("P"), operation=OperationType.CHAT, request={"model": "m"}, metadata=EMPTY
    )
    twin = call.copy()
    for name in CallInfo.__slots__:
        assert getattr(twin, name) is getattr(call, name), name
