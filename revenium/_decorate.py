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


class _Observed:
    """The lifetime of one invocation: started lazily, finished once on the way out.

    A consumer closing a generator early (``GeneratorExit``) is a normal end: the work done
    so far counts as a success.
    """

    __slots__ = ("_factory", "_life")

    def __init__(self, factory: LifetimeFactory | None) -> None:
        self._factory = factory
        self._life: Lifetime | None = None

    def start(self) -> None:
        if self._life is None and self._factory is not None:
            self._life = self._factory()

    def __enter__(self) -> _Observed:
        return self

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        if self._life is not None:
            self._life.finish(None if isinstance(error, GeneratorExit) else error)


def _function_wrapper(
    fn: Callable[..., Any], enter: ScopeFactory, lifetime: LifetimeFactory | None
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _Observed(lifetime) as observed:
            observed.start()
            with enter():
                return fn(*args, **kwargs)

    return wrapper


def _coroutine_wrapper(
    fn: Callable[..., Any], enter: ScopeFactory, lifetime: LifetimeFactory | None
) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _Observed(lifetime) as observed:
            observed.start()
            with enter():  # a coroutine runs in its task's context: set and reset stay inside
                return await fn(*args, **kwargs)

    return wrapper


def _gen_wrapper(
    fn: Callable[..., Generator[Any, Any, Any]],
    enter: ScopeFactory,
    lifetime: LifetimeFactory | None,
) -> Callable[..., Generator[Any, Any, Any]]:
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        with enter():
            gen = fn(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        with _Observed(lifetime) as observed:  # started at the first step, not at creation
            while True:
                observed.start()
                with enter():
                    try:
                        item = gen.send(sent) if thrown is None else gen.throw(thrown)
                    except StopIteration as stop:
                        return stop.value
                try:
                    sent, thrown = (yield item), None
                except GeneratorExit:
                    with enter():
                        gen.close()
                    raise
                except BaseException as exc:  # noqa: BLE001 - thrown into the user's generator
                    sent, thrown = None, exc

    return wrapper


def _async_gen_wrapper(
    fn: Callable[..., AsyncGenerator[Any, Any]],
    enter: ScopeFactory,
    lifetime: LifetimeFactory | None,
) -> Callable[..., AsyncGenerator[Any, Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        with enter():
            agen = fn(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        with _Observed(lifetime) as observed:
            while True:
                observed.start()
                with enter():
                    try:
                        step = agen.asend(sent) if thrown is None else agen.athrow(thrown)
                        item = await step
                    except StopAsyncIteration:
                        return
                try:
                    sent, thrown = (yield item), None
                except GeneratorExit:
                    with enter():
                        await agen.aclose()
                    raise
                except BaseException as exc:  # noqa: BLE001 - thrown into the user's generator
                    sent, thrown = None, exc

    return wrapper
