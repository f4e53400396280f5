"""``revenium.wrap``: a metered client of the caller's exact type, the original left alone.

How, and why this way (``docs/design.md`` has the long form):

- The adapter *clones* the client (``client.copy()`` for the Stainless SDKs: a new client of
  the same class sharing the same HTTP connection pool), and the metered methods are installed
  on the clone's own resource objects. The caller's client is never touched and keeps working
  unmetered; the clone is a genuine ``OpenAI`` (``type(c) is OpenAI``), so static types,
  ``isinstance`` checks and IDE completion all hold without a proxy class.
- Installing on the resource instances means the SDK's own helpers find the metered methods:
  ``chat.completions.stream()`` and ``responses.stream()`` call ``self.create``, and
  ``with_raw_response`` / ``with_streaming_response`` are built from the instance's methods.
- ``copy()`` / ``with_options()`` of the wrapped client are wrapped too; wrapping a wrapped
  client re-wraps its original (never two meters on one call); ``unwrap`` returns the original.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import attrs

from revenium.attribution import Metadata, merge, parse_metadata
from revenium.call_groups import grouped_async, grouped_sync, request_begin, request_observer
from revenium.calls import ClientState, metered_async, metered_deferred, metered_sync
from revenium.providers import adapter_for, supported_clients
from revenium.providers.base import Adapter, Endpoint

__all__ = ["unwrap", "wrap"]

T = TypeVar("T")
_STATE = "_revenium_state"


def _is_async_client(client: object) -> bool:
    return any(cls.__name__.startswith("Async") for cls in type(client).__mro__)


def _install(client: Any, adapter: Adapter, state: ClientState) -> None:
    client_is_async = _is_async_client(client)
    for endpoint in adapter.endpoints:
        *parents, name = endpoint.path.split(".")
        owner: Any = client
        try:
            for part in parents:
                owner = getattr(owner, part)
            original = getattr(owner, name)
        except AttributeError:
            continue  # an SDK version without this resource: nothing to meter there
        is_async = client_is_async if endpoint.asynchronous is None else endpoint.asynchronous
        if endpoint.deferred is not None:
            setattr(owner, name, metered_deferred(original, endpoint, state, is_async=is_async))
        elif endpoint.per_request is not None:
            _install_grouped(owner, name, original, endpoint, state, is_async=is_async)
        else:
            metered = metered_async if is_async else metered_sync
            setattr(owner, name, metered(original, endpoint, state))
    for method in adapter.copy_methods:
        original_copy = getattr(client, method, None)
        if callable(original_copy):
            setattr(client, method, _rewrapping(original_copy, adapter, state))
    object.__setattr__(client, _STATE, state)


def _install_grouped(
    owner: Any,
    name: str,
    original: Callable[..., Any],
    endpoint: Endpoint,
    state: ClientState,
    *,
    is_async: bool,
) -> None:
    """A call that may send several requests: metered per request (``revenium.call_groups``)."""
    assert endpoint.per_request is not None
    per_request = getattr(owner, endpoint.per_request, None)
    if callable(per_request):  # absent in some SDK version: the call says so when it ends
        metered = metered_async if is_async else metered_sync
        request = attrs.evolve(endpoint, observe=request_observer(endpoint))
        hook = metered(per_request, request, state, request_begin(request))
        setattr(owner, endpoint.per_request, hook)
    grouped = grouped_async if is_async else grouped_sync
    setattr(owner, name, grouped(original, endpoint, state))


def _rewrapping(
    original_copy: Callable[..., Any], adapter: Adapter, state: ClientState
) -> Callable[..., Any]:
    def copy(*args: Any, **kwargs: Any) -> Any:
        fresh = original_copy(*args, **kwargs)  # a new, unpatched client of the same class
        fresh_state = ClientState(
            original=state.original,
            labels=adapter.labels(fresh),
            metadata=state.metadata,
            hints=adapter.hints(fresh),
            model_name=adapter.model_name,
        )
        _install(fresh, adapter, fresh_state)
        return fresh

    return copy


def wrap(client: T, *, metadata: Mapping[str, object] | Metadata | None = None) -> T:
    """A metered client of the same type as ``client``; ``client`` itself is left unmetered.

    ``metadata`` applies to every call made with the returned client, under the ambient
    ``session()`` scopes and the per-call ``usage_metadata``. Invalid metadata raises
    ``ValueError`` here. A client type no adapter supports raises ``TypeError``.
    """
    extra = parse_metadata(metadata, origin="revenium.wrap(metadata=...)", strict=True)
    state: ClientState | None = getattr(client, _STATE, None)
    if state is not None:  # already metered: re-wrap the original, merging the metadata
        return cast("T", wrap(state.original, metadata=merge(state.metadata, extra)))
    adapter = adapter_for(client)
    if adapter is None:
        kind = f"{type(client).__module__}.{type(client).__qualname__}"
        raise TypeError(
            f"revenium.wrap() does not support {kind}; supported clients: "
            + ", ".join(supported_clients())
        )
    clone = adapter.clone(client)
    _install(
        clone,
        adapter,
        ClientState(
            original=client,
            labels=adapter.labels(client),
            metadata=extra,
            hints=adapter.hints(client),
            model_name=adapter.model_name,
        ),
    )
    return cast("T", clone)


def unwrap(client: T) -> T:
    """The original client behind a wrapped one (a client that is not wrapped: itself)."""
    state: ClientState | None = getattr(client, _STATE, None)
    return client if state is None else cast("T", state.original)
