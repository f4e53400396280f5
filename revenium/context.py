"""Ambient business context: ``session()``, ``@metadata``, ``@meter`` and ``carry_context``.

Metadata travels in a :class:`~contextvars.ContextVar`, the one carrier that follows the code
through ``await``, asyncio tasks (each gets a copy at creation), ``asyncio.to_thread`` and
``anyio.to_thread.run_sync``. What it does not follow on its own, a bare
``ThreadPoolExecutor.submit``, :func:`carry_context` hands over explicitly.

A scope stores the *already merged* metadata, so reading the ambient metadata on the hot path
is one ``ContextVar.get()``; merging happens once, when a scope is entered.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar, cast, overload

from revenium._decorate import decorate
from revenium.attribution import EMPTY, Metadata, merge, parse_metadata
from revenium.config import get_config

__all__ = [
    "Scope",
    "carry_context",
    "current_metadata",
    "effective_metadata",
    "is_metered",
    "metadata",
    "metadata_sources",
    "meter",
    "session",
]

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

_metadata_var: ContextVar[Metadata] = ContextVar("revenium.metadata", default=EMPTY)
_metered_var: ContextVar[bool] = ContextVar("revenium.metered", default=False)


def current_metadata() -> Metadata:
    """The metadata of the innermost active scope (every enclosing scope merged in)."""
    return _metadata_var.get()


def effective_metadata(*, client: Metadata = EMPTY, call: Metadata = EMPTY) -> Metadata:
    """The metadata a record made now carries, every source merged by precedence.

    Lowest to highest: environment defaults, ``wrap(metadata=...)`` of the client, the ambient
    scopes (inner over outer), the per-call ``usage_metadata``. The client's metadata is a
    default for everything done with that client; a session says who *this* request is for,
    so it is more specific and wins.
    """
    result = merge(get_config().defaults, client)
    result = merge(result, _metadata_var.get())
    return merge(result, call)


def metadata_sources(*, client: Metadata = EMPTY, call: Metadata = EMPTY) -> tuple[Metadata, ...]:
    """The sources :func:`effective_metadata` merges, captured now, merged later (cheaper)."""
    return (get_config().defaults, client, _metadata_var.get(), call)


def is_metered(*, selective: bool) -> bool:
    """Whether a call made now is metered: always, unless selective metering is on."""
    return not selective or _metered_var.get()


class _Activation:
    """One entry into a scope, holding the tokens that undo it."""

    __slots__ = ("_md_token", "_metered_token")

    def __init__(self, scope: Scope) -> None:
        self._md_token: Token[Metadata] = _metadata_var.set(
            merge(_metadata_var.get(), scope.metadata)
        )
        self._metered_token: Token[bool] | None = _metered_var.set(True) if scope.metered else None

    def close(self) -> None:
        if self._metered_token is not None:
            _metered_var.reset(self._metered_token)
        _metadata_var.reset(self._md_token)


class _Entered:
    """Context manager form of a single activation, for the decorator engine."""

    __slots__ = ("_activation", "_scope")

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._activation: _Activation | None = None

    def __enter__(self) -> None:
        self._activation = _Activation(self._scope)

    def __exit__(self, *exc_info: object) -> None:
        if self._activation is not None:
            self._activation.close()


class Scope:
    """Metadata (and optionally "meter this") applied to the code inside it.

    Usable as ``with``, ``async with`` and as a decorator on sync and async functions,
    generators and async generators. Entering merges its fields over the enclosing scope's,
    field by field, the inner value winning; leaving restores the outer scope exactly.
    One ``Scope`` object may be entered by one ``with`` at a time; as a decorator it may run
    any number of times concurrently.
    """

    __slots__ = ("_active", "metadata", "metered")

    def __init__(self, metadata: Metadata, *, metered: bool = False) -> None:
        self.metadata = metadata
        self.metered = metered
        self._active: _Activation | None = None

    def __repr__(self) -> str:
        kind = "meter" if self.metered else "session"
        return f"<revenium.{kind} {self.metadata!r}>"

    def __enter__(self) -> Metadata:
        if self._active is not None:
            raise RuntimeError(
                "this revenium scope is already entered; call revenium.session(...) again "
                "for each nested or concurrent use"
            )
        self._active = _Activation(self)
        return _metadata_var.get()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        active, self._active = self._active, None
        if active is not None:
            active.close()

    async def __aenter__(self) -> Metadata:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` so that every run of its body happens inside this scope."""
        return decorate(fn, scope=lambda: _Entered(self))

    def __copy__(self) -> Self:  # pragma: no cover - trivial
        return type(self)(self.metadata, metered=self.metered)


def _scope_from(
    mapping: Mapping[str, object] | Metadata | None,
    fields: dict[str, object],
    *,
    origin: str,
    metered: bool,
) -> Scope:
    nested = fields.get("metadata")
    if isinstance(nested, Mapping) and mapping is None:
        # The seed SDK's ``revenium_meter(metadata={...})`` spelling: the mapping by keyword.
        fields = {k: v for k, v in fields.items() if k != "metadata"}
        mapping = cast("Mapping[str, object]", nested)
    md = parse_metadata(mapping, origin=origin, strict=True)
    if fields:
        md = merge(md, parse_metadata(fields, origin=origin, strict=True))
    return Scope(md, metered=metered)


def session(metadata: Mapping[str, object] | Metadata | None = None, /, **fields: object) -> Scope:
    """A scope of business metadata: ``with``/``async with revenium.session(...)``.

    Takes a mapping, keywords, or both (keywords win), in snake_case or camelCase. Invalid
    metadata raises ``ValueError`` here, not later inside a provider call.
    """
    return _scope_from(metadata, fields, origin="revenium.session()", metered=False)


def metadata(metadata: Mapping[str, object] | Metadata | None = None, /, **fields: object) -> Scope:
    """Decorator form of :func:`session`: ``@revenium.metadata(task_type="support")``."""
    return _scope_from(metadata, fields, origin="revenium.metadata()", metered=False)


def meter(metadata: Mapping[str, object] | Metadata | None = None, /, **fields: object) -> Scope:
    """Mark code for selective metering (``REVENIUM_SELECTIVE_METERING``), with optional metadata.

    With selective metering off (the default), every wrapped call is metered and this only
    applies its metadata.
    """
    return _scope_from(metadata, fields, origin="revenium.meter()", metered=True)


@overload
def carry_context(fn: Callable[P, R]) -> Callable[P, R]: ...
@overload
def carry_context(fn: None = None) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def carry_context(fn: Callable[P, R] | None = None) -> Any:
    """Bind ``fn`` to a copy of the current context, for executors that do not copy it.

    ``pool.submit(revenium.carry_context(work), item)`` runs ``work`` with the metadata that was
    active when ``carry_context`` was called, in any thread.
    """
    if fn is None:
        return carry_context
    ctx = contextvars.copy_context()
    func = fn

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(func, *args, **kwargs)

    return run
