"""One decorator engine for sync functions, coroutines, generators and async generators.

``@metadata``, ``@meter`` and ``@meter_tool`` all need the same four shapes handled, and the
seed SDK's hand-written copies of each drifted apart. Here each shape is written once, driven
by two optional hooks:

- ``scope``: a context manager entered around *every* stretch of user code. For a generator
  that means around each step, not across the ``yield``: a context variable set across a
  ``yield`` would leak into whatever the consumer runs between steps.
- ``lifetime``: observed once per invocation, from the first step to the end, and told how it
  ended (a tool call's duration and success).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol, TypeVar

__all__ = ["Lifetime", "decorate"]

F = TypeVar("F", bound=Callable[..., Any])


class Lifetime(Protocol):
    """Observes one invocation: ``finish(None)`` on success, ``finish(exc)`` on failure."""

    def finish(self, error: BaseException | None) -> None: ...


ScopeFactory = Callable[[], AbstractContextManager[object]]
LifetimeFactory = Callable[[], Lifetime]


def _no_scope() -> AbstractContextManager[object]:
    return nullcontext()


def decorate(
    fn: F,
    *,
    scope: ScopeFactory | None = None,
    lifetime: LifetimeFactory | None = None,
) -> F:
    """Wrap ``fn`` (of any of the four shapes) so that the hooks run around its code."""
    enter = scope or _no_scope
    if inspect.isasyncgenfunction(fn):
        wrapper: Callable[..., Any] = _async_gen_wrapper(fn, enter, lifetime)
    elif inspect.isgeneratorfunction(fn):
        wrapper = _gen_wrapper(fn, enter, lifetime)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _coroutine_wrapper(fn, enter, lifetime)
    else:
        wrapper = _function_wrapper(fn, enter, lifetime)
    return functools.wraps(fn)(wrapper)  # type: ignore[return-value]


def _function_wrapper(
    fn: Callable[..., Any], enter: ScopeFactory, lifetime: LifetimeFactory | None
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        life = lifetime() if lifetime else None
        try:
            with enter():
                result = fn(*args, **kwargs)
        except BaseException as exc:
            if life:
                life.finish(exc)
            raise
        if life:
            life.finish(None)
        return result

    return wrapper


def _coroutine_wrapper(
    fn: Callable[..., Any], enter: ScopeFactory, lifetime: LifetimeFactory | None
) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        life = lifetime() if lifetime else None
        try:
            with enter():  # a coroutine runs in its task's context: set and reset stay inside
                result = await fn(*args, **kwargs)
        except BaseException as exc:
            if life:
                life.finish(exc)
            raise
        if life:
            life.finish(None)
        return result

    return wrapper


def _gen_wrapper(
    fn: Callable[..., Generator[Any, Any, Any]],
    enter: ScopeFactory,
    lifetime: LifetimeFactory | None,
) -> Callable[..., Generator[Any, Any, Any]]:
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        with enter():
            gen = fn(*args, **kwargs)
        life: Lifetime | None = None
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                if life is None and lifetime is not None:
                    life = lifetime()
                with enter():
                    try:
                        item = gen.send(sent) if thrown is None else gen.throw(thrown)
                    except StopIteration as stop:
                        result = stop.value
                        break
                try:
                    sent, thrown = (yield item), None
                except GeneratorExit:
                    with enter():
                        gen.close()
                    raise
                except BaseException as exc:  # noqa: BLE001 - thrown into the user's generator
                    sent, thrown = None, exc
        except GeneratorExit:
            if life:
                life.finish(None)  # the consumer stopped early; the work done so far counts
            raise
        except BaseException as exc:
            if life:
                life.finish(exc)
            raise
        if life:
            life.finish(None)
        return result

    return wrapper


def _async_gen_wrapper(
    fn: Callable[..., AsyncGenerator[Any, Any]],
    enter: ScopeFactory,
    lifetime: LifetimeFactory | None,
) -> Callable[..., AsyncGenerator[Any, Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        with enter():
            agen = fn(*args, **kwargs)
        life: Lifetime | None = None
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                if life is None and lifetime is not None:
                    life = lifetime()
                with enter():
                    try:
                        if thrown is None:
                            item = await agen.asend(sent)
                        else:
                            item = await agen.athrow(thrown)
                    except StopAsyncIteration:
                        break
                try:
                    sent, thrown = (yield item), None
                except GeneratorExit:
                    with enter():
                        await agen.aclose()
                    raise
                except BaseException as exc:  # noqa: BLE001 - thrown into the user's generator
                    sent, thrown = None, exc
        except GeneratorExit:
            if life:
                life.finish(None)
            raise
        except BaseException as exc:
            if life:
                life.finish(exc)
            raise
        if life:
            life.finish(None)

    return wrapper
